#!/usr/bin/env bash
# The whole test suite, with what it needs: Debian's spamassassin (the digest's score) and
# chromium (the digest on a phone and a desktop, light and dark), installed when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v spamassassin >/dev/null 2>&1 || missing+=(spamassassin)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)   # certificates for the SMTP test server
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ] && ! command -v sudo >/dev/null 2>&1; then
    echo "the tests need: ${missing[*]} (Debian packages); install them as root" >&2
    exit 2
  fi
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  echo "installing ${missing[*]} from Debian's packages" >&2
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The SMTP test server (tests/smtp/server.py) runs on aiosmtpd.
python3 -c 'import aiosmtpd' 2>/dev/null || python3 -m pip install --quiet aiosmtpd
python3 -c 'import dkim, nacl' 2>/dev/null || python3 -m pip install --quiet dkimpy pynacl   # tests/smtp/dkim_verify.py

if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --no-fail-fast "$@"
  cargo test --doc --quiet
else
  cargo test --no-fail-fast "$@"
fi
