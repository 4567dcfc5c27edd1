# What the delivery benchmarks share, sourced by them from the repository's root: the tools they
# need, the binary they run, a free loopback port, the sink that takes the messages, and the CPU
# seconds a process has used.

# Debian's postfix (smtp-sink, smtp-source) and GNU time, installed when missing.
bench_tools() {
  local need=()
  command -v smtp-sink >/dev/null 2>&1 || need+=(postfix)
  [ -x /usr/bin/time ] || need+=(time)
  if [ ${#need[@]} -gt 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
    postfix stop >/dev/null 2>&1 || true
  fi
  export PATH="$PATH:/usr/sbin"
}

# The binary to run: BIN (say, the last commit's, for a comparison in the same session), else the
# release build, built now.
bench_bin() {
  if [ -z "${BIN:-}" ]; then
    cargo build --release --quiet
  fi
  bin=${BIN:-$PWD/target/release/gazette}
}

# A loopback port nobody listens on now.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# smtp-sink on port $1, in the background; it accepts everything and keeps nothing. Its pid is
# added to sink_pids.
sink_pids=()
start_sink() {
  smtp-sink -u nobody 127.0.0.1:"$1" 1024 &
  sink_pids+=($!)
  sleep 0.5
}

# CPU seconds used so far by a process and its children, living and reaped: where the time of
# a run goes between gazette, the sink and the PostgreSQL server.
cpu_of() {
  python3 - "$1" <<'PY'
import os, sys
hz = os.sysconf("SC_CLK_TCK")
def stat(pid):
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()
def tree(pid):
    yield pid
    for t in os.listdir(f"/proc/{pid}/task"):
        try:
            kids = open(f"/proc/{pid}/task/{t}/children").read().split()
        except OSError:
            kids = []
        for k in kids:
            yield from tree(int(k))
root = int(sys.argv[1])
total = 0
for pid in tree(root):
    try:
        f = stat(pid)
    except OSError:
        continue
    total += int(f[11]) + int(f[12])
    if pid == root:
        total += int(f[13]) + int(f[14])
print(total / hz)
PY
}

# The bench publication's own tables: its name and addresses and a selection of $1 articles.
# Each script adds its list, its [delivery] and its sources.
bench_publication() {
  cat <<TOML
[publication]
name = "Bench Weekly"
from = "Bench Weekly <weekly@example.org>"
base_url = "https://news.example.org"
lists = ["weekly"]
unsubscribe_mailto = "unsubscribe@example.org"

[selection]
max_age = "99999d"
max_items = $1
TOML
}

# The feeds the tests keep, as sources.
bench_feeds() {
  for f in tests/fixtures/feeds/*.xml tests/fixtures/feeds/*.json; do
    printf '\n[[source]]\nfeed = "%s"\n' "$PWD/$f"
  done
}
