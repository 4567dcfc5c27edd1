#!/usr/bin/env bash
# Import benchmark: `gazette subscribers import` of a CSV of N new subscribers on one list,
# against the database's own bulk load of the same rows (subscribers, memberships and the
# consent record, into the same migrated schema, in one transaction), in the same run.
# Prints both times and their ratio.
#
#   bash benches/import.sh                  # N=100000, SQLite
#   DB=postgres N=1000000 bash benches/import.sh
#
# The baseline is Python's sqlite3 `executemany` for SQLite and psql's `\copy` plus INSERT ...
# SELECT for PostgreSQL (127.0.0.1:5432, user postgres; a database is made and dropped for each
# of the two loads).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-100000}
DB=${DB:-sqlite}

cargo build --release --quiet
bin=$PWD/target/release/gazette
work=$(mktemp -d)
pgdb=gazette_import_$$
trap 'rm -rf "$work"; if [ "$DB" = postgres ]; then for d in gazette baseline; do psql -qh 127.0.0.1 -U postgres -c "DROP DATABASE IF EXISTS ${pgdb}_$d WITH (FORCE)" >/dev/null 2>&1; done; fi; true' EXIT

python3 benches/subscribers_csv.py "$N" >"$work/subscribers.csv"

# A store gazette made and migrated, with nobody in it yet: $work/NAME/gazette.toml.
new_store() {
  local dir=$work/$1 url
  mkdir -p "$dir"
  if [ "$DB" = postgres ]; then
    psql -qh 127.0.0.1 -U postgres -c "CREATE DATABASE ${pgdb}_$1" >/dev/null
    url="postgres://postgres@127.0.0.1:5432/${pgdb}_$1"
  else
    url="sqlite://$dir/gazette.db"
  fi
  cat >"$dir/gazette.toml" <<TOML
[publication]
name = "Bench Weekly"
from = "Bench Weekly <weekly@example.org>"
base_url = "https://news.example.org"
lists = ["weekly"]

[storage]
database_url = "$url"

[[list]]
name = "weekly"
TOML
  "$bin" --config "$dir/gazette.toml" lists >/dev/null
  echo "$url"
}

export GAZETTE_SECRET=bench-secret-0123456789abcdef
url=$(new_store gazette)
t0=$(date +%s.%N)
"$bin" --config "$work/gazette/gazette.toml" subscribers import "$work/subscribers.csv" >"$work/gazette.out"
t1=$(date +%s.%N)

url=$(new_store baseline)
t2=$(date +%s.%N)
if [ "$DB" = postgres ]; then
  psql -qh 127.0.0.1 -U postgres -d "${url##*/}" -v ON_ERROR_STOP=1 >/dev/null <<SQL
BEGIN;
CREATE TEMP TABLE rows (email TEXT, name TEXT, lists TEXT);
\copy rows FROM '$work/subscribers.csv' WITH (FORMAT csv, HEADER true)
INSERT INTO lists (name) VALUES ('weekly') ON CONFLICT DO NOTHING;
INSERT INTO subscribers (email, name, attributes, status, created_at, updated_at)
  SELECT email, name, '{}', 'active', 0, 0 FROM rows;
INSERT INTO consent_events (subscriber_id, event, source, at) SELECT id, 'import', 'bench', 0 FROM subscribers;
INSERT INTO memberships (list_id, subscriber_id, created_at)
  SELECT (SELECT id FROM lists WHERE name = 'weekly'), id, 0 FROM subscribers;
COMMIT;
SQL
else
  python3 - "$work/baseline/gazette.db" "$work/subscribers.csv" <<'PY'
import csv, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
with open(sys.argv[2]) as f:
    rows = list(csv.DictReader(f))
with db:
    db.execute("INSERT OR IGNORE INTO lists (name) VALUES ('weekly')")
    lid = db.execute("SELECT id FROM lists WHERE name = 'weekly'").fetchone()[0]
    for r in rows:
        sid = db.execute("INSERT INTO subscribers (email, name, attributes, status, created_at, updated_at) "
                         "VALUES (?, ?, '{}', 'active', 0, 0)", (r["email"], r["name"])).lastrowid
        db.execute("INSERT INTO consent_events (subscriber_id, event, source, at) VALUES (?, 'import', 'bench', 0)", (sid,))
        db.execute("INSERT INTO memberships (list_id, subscriber_id, created_at) VALUES (?, ?, 0)", (lid, sid))
PY
fi
t3=$(date +%s.%N)

python3 - "$N" "$DB" "$t0" "$t1" "$t2" "$t3" <<'PY'
import sys
n, db = int(sys.argv[1]), sys.argv[2]
t0, t1, t2, t3 = map(float, sys.argv[3:])
g, b = t1 - t0, t3 - t2
print(f"store: {db}, rows: {n}")
print(f"gazette subscribers import: {g:.1f} s = {n / g:,.0f} rows/s")
print(f"bulk load by the database:  {b:.1f} s = {n / b:,.0f} rows/s")
print(f"ratio gazette / bulk load (rows/s): {b / g:.2f}")
PY
echo "gazette said: $(tr '\n' ' ' <"$work/gazette.out")"
