#!/usr/bin/env bash
# The whole test suite, with what it needs: Debian's spamassassin (the digest's score),
# chromium (the digest on a phone and a desktop, light and dark) and chromium-driver (the web
# pages, driven like a reader would), installed when missing, and postfix (a late bounce through
# a real mail server: tests/it/postfix.rs runs a private instance of its own on loopback).
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v spamassassin >/dev/null 2>&1 || missing+=(spamassassin)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)   # the web pages, driven (tests/it/browser.rs)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)   # certificates for the SMTP, IMAP and PostgreSQL TLS test servers
[ -x /usr/sbin/postfix ] || missing+=(postfix)
[ -x /usr/sbin/dovecot ] || missing+=(dovecot-imapd)   # the IMAP server the daemon reads bounces from (tests/it/imap.rs)

# The store's tests run on PostgreSQL too: at 127.0.0.1:5432 as `postgres` without a password,
# unless $GAZETTE_TEST_POSTGRES names another server.
postgres_up() { pg_isready -q -h 127.0.0.1 -p 5432 >/dev/null 2>&1; }
new_postgres=""
if [ -z "${GAZETTE_TEST_POSTGRES:-}" ] && ! postgres_up && [ -z "$(ls /etc/postgresql 2>/dev/null)" ]; then
  missing+=(postgresql)
  new_postgres=1
elif ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  # The TLS tests (src/store/tests/tls.rs) start a throwaway server of their own from these
  # programs, whatever server the other tests use.
  missing+=(postgresql)
fi
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ] && ! command -v sudo >/dev/null 2>&1; then
    echo "the tests need: ${missing[*]} (Debian packages); install them as root" >&2
    exit 2
  fi
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  echo "installing ${missing[*]} from Debian's packages" >&2
  if [[ " ${missing[*]} " == *" postfix "* ]]; then
    # Installed for its programs only: no system-wide mail configuration, so no question asked
    # and no instance of the package's own configured. The test's instance uses its own ports.
    echo "postfix postfix/main_mailer_type select No configuration" | $sudo_cmd debconf-set-selections
  fi
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ -z "${GAZETTE_TEST_POSTGRES:-}" ] && { [ -n "$new_postgres" ] || ! postgres_up; }; then
  as_root=""
  [ "$(id -u)" -ne 0 ] && as_root="sudo"
  version="$(ls /etc/postgresql | sort -V | tail -n 1)"
  if [ -n "$new_postgres" ]; then
    # A cluster made just now for the tests: local TCP connections are trusted, on the first
    # line so that no later one asks for a password.
    hba="/etc/postgresql/$version/main/pg_hba.conf"
    $as_root grep -qx 'host all all 127.0.0.1/32 trust' "$hba" || $as_root sed -i '1i host all all 127.0.0.1/32 trust' "$hba"
  fi
  if postgres_up; then
    $as_root pg_ctlcluster --skip-systemctl-redirect "$version" main reload >/dev/null
  else
    $as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start >/dev/null
  fi
  for _ in $(seq 30); do postgres_up && break; sleep 1; done
  if ! postgres_up; then
    echo "PostgreSQL $version did not start at 127.0.0.1:5432; see /var/log/postgresql/" >&2
    exit 2
  fi
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
