#!/usr/bin/env bash
# Delivery benchmark: gazette sending one 20-article issue to N subscribers (SQLite) into
# Postfix's smtp-sink on loopback, against Postfix's own smtp-source sending the same number of
# messages of the same size over the same number of connections into the same sink, in the same
# run. Prints both rates, their ratio, and gazette's peak resident memory.
#
#   bash benches/delivery.sh                       # N=100000, CONN=8, SQLite
#   N=1000000 bash benches/delivery.sh             # the memory run
#   DB=postgres WORKERS=2 bash benches/delivery.sh # PostgreSQL, the issue queued by `send
#                                                  # --queue-only` and drained by 2 workers
#   ARTICLES=3 bash benches/delivery.sh            # a 3-article digest (about 12.6 KB) instead
#                                                  # of 20 articles (about 45 KB)
#   WRAP="perf record -g -o /tmp/perf.data" bash benches/delivery.sh
#                                                  # SQLite's send run under a profiler
#   RELAYS=2 bash benches/delivery.sh              # two [[relay]]s of weight 1, each its own
#                                                  # smtp-sink, instead of [delivery] smtp_url
#                                                  # (smtp-source still sends into the first)
#   SHAPING=1 bash benches/delivery.sh             # a [[shaping]] group of every reader's domain
#                                                  # whose caps never bind: the machinery's cost
#
# With WORKERS, the CONN connections are split between the workers, so gazette and smtp-source
# always use the same number of connections. PostgreSQL is the one on 127.0.0.1:5432 (user
# postgres); a database is created for the run and dropped after it.
#
# Needs Debian's postfix (smtp-sink, smtp-source) and GNU time; installs them when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-100000}
CONN=${CONN:-8}
DB=${DB:-sqlite}
WORKERS=${WORKERS:-1}
ARTICLES=${ARTICLES:-20}
RELAYS=${RELAYS:-1}
SHAPING=${SHAPING:-0}
export DB WORKERS ARTICLES RELAYS SHAPING

# shellcheck source=benches/common.sh
. benches/common.sh
bench_tools
bench_bin
work=$(mktemp -d)
pgdb=gazette_bench_$$
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"; [ "$DB" = postgres ] && psql -qh 127.0.0.1 -U postgres -c "DROP DATABASE IF EXISTS $pgdb WITH (FORCE)" >/dev/null 2>&1; true' EXIT
if [ "$DB" = postgres ]; then
  psql -qh 127.0.0.1 -U postgres -c "CREATE DATABASE $pgdb" >/dev/null
  export DATABASE_URL="postgres://postgres@127.0.0.1:5432/$pgdb${PGOPTS:-}"
fi
port=$(free_port)
start_sink "$port"
if [ "$RELAYS" = 2 ]; then
  port2=$(free_port)
  start_sink "$port2"
fi
# The sinks' CPU together.
sinks_cpu() {
  local total=0 pid
  for pid in "${sink_pids[@]}"; do
    total=$(python3 -c "print($total + $(cpu_of "$pid"))")
  done
  echo "$total"
}

pg_pid=$(head -n1 /var/run/postgresql/*.pid 2>/dev/null | head -n1 || true)
pg_cpu() { if [ -n "$pg_pid" ]; then cpu_of "$pg_pid"; else echo 0; fi; }

{ bench_publication "$ARTICLES"; bench_feeds; cat <<TOML; } >"$work/gazette.toml"

[[list]]
name = "weekly"

[delivery]
transport = "smtp"
$([ "$RELAYS" = 2 ] || echo "smtp_url = \"smtp://127.0.0.1:$port\"")
concurrency = $(( CONN / WORKERS ))
TOML
if [ "$RELAYS" = 2 ]; then
  # Two relays of equal weight and no cap of their own, each a sink of its own.
  for p in "$port" "$port2"; do
    printf '\n[[relay]]\nurl = "smtp://127.0.0.1:%s"\nweight = 1\n' "$p" >>"$work/gazette.toml"
  done
fi
if [ "$SHAPING" = 1 ]; then
  # A group holding every reader (they are all at example.org), with caps that never bind: what
  # is measured is the machinery's cost.
  printf '\n[[shaping]]\ndomains = ["example.org"]\nconcurrency = %s\nrate = "%s"\n' "$CONN" "${SHAPING_RATE:-1000000/s}" >>"$work/gazette.toml"
fi

python3 benches/subscribers_csv.py "$N" >"$work/subscribers.csv"
export GAZETTE_SECRET=bench-secret-0123456789abcdef
t0=$(date +%s.%N)
if [ "$DB" = postgres ]; then
  # The store is created and migrated by gazette itself; the rows are then made in the server.
  "$bin" --config "$work/gazette.toml" lists >/dev/null
  psql -qh 127.0.0.1 -U postgres -d "$pgdb" >/dev/null <<SQL
INSERT INTO lists (name) VALUES ('weekly') ON CONFLICT DO NOTHING;
INSERT INTO subscribers (email, name, attributes, status, created_at, updated_at)
  SELECT 'reader' || i || '@example.org', 'Reader ' || i, '{}', 'active', 0, 0 FROM generate_series(0, $N - 1) AS i;
INSERT INTO memberships (list_id, subscriber_id, created_at)
  SELECT (SELECT id FROM lists WHERE name = 'weekly'), id, 0 FROM subscribers;
ANALYZE;
SQL
else
  "$bin" --config "$work/gazette.toml" subscribers import "$work/subscribers.csv" >/dev/null
fi
t1=$(date +%s.%N)
size=$("$bin" --config "$work/gazette.toml" preview --as-of 2026-01-01 --format eml | wc -c)

# smtp-source runs before gazette and again after it, and the baseline is their mean: the load
# of a shared machine drifts over minutes, and a baseline on one side only would carry the drift.
source_run() {
  local a b c0 c1
  a=$(date +%s.%N); c0=$(sinks_cpu)
  /usr/bin/time -f "%U %S" -o "$work/source.cpu" \
    smtp-source -s "$CONN" -m "$N" -l "$size" -f weekly@example.org -t reader@example.org 127.0.0.1:"$port"
  b=$(date +%s.%N); c1=$(sinks_cpu)
  read -r su ss < <(tail -n1 "$work/source.cpu")
  echo "smtp-source ($1): $(python3 -c "print(round($b - $a, 1))") s, its CPU ${su}s user + ${ss}s system, smtp-sink CPU $(python3 -c "print(round($c1 - $c0, 1))") s" >&2
  python3 -c "print($b - $a)"
}
source_before=$(source_run before)

if [ "$DB" = sqlite ]; then
  /usr/bin/time -f "%M %U %S %e" -o "$work/rss" ${WRAP:-} "$bin" --config "$work/gazette.toml" --json send --as-of 2026-01-01 --yes >"$work/send.json"
  sent=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["counts"]["sent"])' "$work/send.json")
  gz_secs=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["elapsed_seconds"])' "$work/send.json")
  # From the command's start (before the issue is made and its first readers queued) to the
  # first message the server accepted.
  first_secs=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d.get("first_message_seconds"))' "$work/send.json")
  echo "first_message_seconds: $first_secs"
  read -r rss_kb cpu_user cpu_sys _ < "$work/rss"
else
  # Queue the issue, then time the workers from their start until the issue is sent.
  "$bin" --config "$work/gazette.toml" send --queue-only --as-of 2026-01-01 --yes >/dev/null
  w0=$(date +%s.%N)
  pg0=$(pg_cpu); sink0=$(sinks_cpu)
  pids=()
  for i in $(seq 1 "$WORKERS"); do
    RUST_LOG=warn /usr/bin/time -f "%M %U %S %e" -o "$work/rss.$i" "$bin" --config "$work/gazette.toml" worker 2>"$work/worker.$i.log" &
    pids+=($!)
  done
  # Each poll forks a psql and a PostgreSQL backend, so polls are rare (a poll every 50 ms took a
  # fifth of the machine); the end is the issue's own finishing time, to the millisecond.
  until [ "$(psql -qtAh 127.0.0.1 -U postgres -d "$pgdb" -c "SELECT status FROM issues WHERE number = 1")" = sent ]; do
    sleep 1
  done
  pg1=$(pg_cpu); sink1=$(sinks_cpu)
  w1=$(psql -qtAh 127.0.0.1 -U postgres -d "$pgdb" -c "SELECT finished_at / 1000.0 FROM issues WHERE number = 1")
  echo "during the workers' run: PostgreSQL server CPU $(python3 -c "print(round($pg1 - $pg0, 1))") s, smtp-sink CPU $(python3 -c "print(round($sink1 - $sink0, 1))") s"
  # SIGTERM reaches gazette, not time(1): time waits for it and then writes its figures.
  pkill -TERM -f "^$bin --config $work/gazette.toml worker" || true
  wait "${pids[@]}" 2>/dev/null || true
  sent=$(psql -qtAh 127.0.0.1 -U postgres -d "$pgdb" -c "SELECT count(*) FROM deliveries WHERE state = 'sent'")
  gz_secs=$(python3 -c "print($w1 - $w0)")
  rss_kb=0; cpu_user=0; cpu_sys=0
  for i in $(seq 1 "$WORKERS"); do
    read -r r u s _ < <(tail -n1 "$work/rss.$i")
    echo "worker $i: peak resident memory $((r / 1024)) MB, CPU ${u}s user + ${s}s system"
    # What a worker warned of (a retry, a lease taken over) explains a slow run.
    grep -v '^\s*$' "$work/worker.$i.log" | tail -n 20 | sed "s/^/worker $i: /" >&2 || true
    [ "$r" -gt "$rss_kb" ] && rss_kb=$r
    cpu_user=$(python3 -c "print($cpu_user + $u)"); cpu_sys=$(python3 -c "print($cpu_sys + $s)")
  done
fi

source_after=$(source_run after)
python3 - "$N" "$sent" "$gz_secs" "$source_before" "$source_after" "$rss_kb" "$size" "$t0" "$t1" "$CONN" "$cpu_user" "$cpu_sys" <<'PY'
import sys
n, sent, gz, sb, sa, rss, size, t0, t1, conn, cu, cs = sys.argv[1:]
n, sent, gz, rss, size, conn = int(n), int(sent), float(gz), int(rss), int(size), int(conn)
src = (float(sb) + float(sa)) / 2
g_rate, s_rate = sent / gz, n / src
import os
print(f"store: {os.environ.get('DB', 'sqlite')}, workers: {os.environ.get('WORKERS', '1')}, articles: {os.environ.get('ARTICLES', '20')}, relays: {os.environ.get('RELAYS', '1')}, shaping: {os.environ.get('SHAPING', '0')}")
print(f"subscribers: {n}, connections: {conn}, message size: {size/1024:.1f} KB")
print(f"import of {n} subscribers: {float(t1)-float(t0):.1f} s")
print(f"gazette:     {sent} messages in {gz:.1f} s = {g_rate:.0f} messages/s")
print(f"smtp-source: {n} messages in {src:.1f} s (mean of {float(sb):.1f} s before and {float(sa):.1f} s after) = {s_rate:.0f} messages/s")
print(f"ratio gazette / smtp-source: {g_rate / s_rate:.2f}")
print(f"gazette peak resident memory (the largest process): {rss/1024:.1f} MB")
print(f"gazette CPU: {float(cu):.1f} s user + {float(cs):.1f} s system for the whole send command")
PY
