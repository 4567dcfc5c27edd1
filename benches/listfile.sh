#!/usr/bin/env bash
# Memory benchmark of a list file: `send` of one issue to N readers who are the rows of the
# publication's list file (SQLite), so that the send first syncs the file into the store, then
# makes and queues the issue, then sends it into Postfix's smtp-sink on loopback. Samples the
# send's resident memory every 0.2 s and prints its peak, the peak and length of each phase, and
# the samples themselves (to $OUT, when given).
#
#   N=1000000 bash benches/listfile.sh                    # the million-reader run
#   QUEUE_ONLY=1 N=10000000 bash benches/listfile.sh      # sync and queue only (`--queue-only`)
#   STOP_AFTER=180 N=10000000 bash benches/listfile.sh    # SIGTERM after 180 s of the send
#   BIN=path/to/gazette N=1000000 bash benches/listfile.sh # another build, in the same session
#
# The phases are told by the send's debug lines ("list files synced", "issue … queued"); a build
# without them shows the sync and the queueing as one phase, before the first message is sent.
# Needs Debian's postfix (smtp-sink); installs it when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=benches/common.sh
. benches/common.sh
N=${N:-1000000}
CONN=${CONN:-8}
ARTICLES=${ARTICLES:-3}

if ! command -v smtp-sink >/dev/null 2>&1 && [ ! -x /usr/sbin/smtp-sink ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postfix >/dev/null
  postfix stop >/dev/null 2>&1 || true
fi
export PATH="$PATH:/usr/sbin"

if [ -z "${BIN:-}" ]; then
  cargo build --release --quiet
fi
bin=${BIN:-$PWD/target/release/gazette}
work=${WORK:-$(mktemp -d)}
mkdir -p "$work"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
smtp-sink -u nobody 127.0.0.1:"$port" 1024 &
sleep 0.5

{ bench_publication "$ARTICLES"; bench_feeds; cat <<TOML; } >"$work/gazette.toml"

[[list]]
name = "weekly"
file = "$work/weekly.csv"

[delivery]
transport = "smtp"
smtp_url = "smtp://127.0.0.1:$port"
concurrency = $CONN
TOML
python3 benches/subscribers_csv.py "$N" >"$work/weekly.csv"
echo "list file: $N rows, $(( $(stat -c %s "$work/weekly.csv") / 1048576 )) MB" >&2
export GAZETTE_SECRET=bench-secret-0123456789abcdef
"$bin" --config "$work/gazette.toml" lists >/dev/null

args=(send --as-of 2026-01-01 --yes)
[ -n "${QUEUE_ONLY:-}" ] && args+=(--queue-only)
t0=$(date +%s.%N)
RUST_LOG=${RUST_LOG:-gazette=debug} "$bin" --config "$work/gazette.toml" --json "${args[@]}" >"$work/send.json" 2>"$work/send.log" &
pid=$!
# One line a sample: seconds since the start, resident memory in kB.
python3 - "$pid" "$t0" "${STOP_AFTER:-0}" >"$work/rss" <<'PY' &
import os, signal, sys, time
pid, t0, stop = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
stopped = False
while True:
    try:
        with open(f"/proc/{pid}/status") as f:
            kb = next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))
    except (OSError, StopIteration):
        break
    t = time.time() - t0
    print(f"{t:.1f} {kb}", flush=True)
    if stop and t >= stop and not stopped:
        os.kill(pid, signal.SIGTERM)
        stopped = True
    time.sleep(0.2)
PY
sampler=$!
wait "$pid" || true
t1=$(date +%s.%N)
wait "$sampler" || true
[ -n "${OUT:-}" ] && cp "$work/rss" "$OUT"

python3 - "$work" "$t0" "$t1" <<'PY'
import json, re, sys, datetime
work, t0, t1 = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
samples = [tuple(map(float, l.split())) for l in open(f"{work}/rss") if l.strip()]
marks = {}
for line in open(f"{work}/send.log"):
    m = re.match(r"(\S+Z)\s", re.sub(r"\x1b\[[0-9;]*m", "", line))
    if not m:
        continue
    when = datetime.datetime.fromisoformat(m.group(1).replace("Z", "+00:00")).timestamp() - t0
    for key, text in (("synced", "list files synced"), ("queued", "queued for")):
        if text in line and key not in marks:
            marks[key] = when
try:
    sent = json.load(open(f"{work}/send.json")).get("counts", {}).get("sent")
except (OSError, ValueError):
    sent = None
total = t1 - t0
def phase(name, a, b):
    inside = [kb for t, kb in samples if a <= t <= b]
    peak = max(inside) / 1024 if inside else 0
    print(f"{name:<28} {b - a:7.1f} s   peak {peak:6.1f} MB")
print(f"send of a list file: {total:.1f} s, peak resident memory {max(kb for _, kb in samples) / 1024:.1f} MB, sent {sent}")
if "synced" in marks and "queued" in marks:
    phase("sync of the list file", 0, marks["synced"])
    phase("issue made and queued", marks["synced"], marks["queued"])
    phase("sending (to the end)", marks["queued"], total)
else:
    print("(no phase lines in the log: a build without them)")
for t, kb in samples[:: max(1, len(samples) // 40)]:
    print(f"  {t:7.1f} s {kb / 1024:7.1f} MB")
PY
