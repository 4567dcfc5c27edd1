#!/usr/bin/env bash
# The manual: builds docs/ with mdBook into docs/book and fails on a broken internal link
# (a relative href or src that names no file of the book, or a #fragment that names no id).
# Installs mdBook 0.4 from crates.io when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

mdbook=mdbook
if ! command -v mdbook >/dev/null 2>&1 || ! mdbook --version | grep -q ' v0\.4\.'; then
  echo "installing mdbook 0.4 from crates.io" >&2
  cargo install mdbook --locked --version '^0.4' --quiet
  mdbook="${CARGO_HOME:-$HOME/.cargo}/bin/mdbook"
fi

"$mdbook" build docs
python3 scripts/check_links.py docs/book
