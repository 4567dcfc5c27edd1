#!/usr/bin/env bash
# Editions and topics benchmark: the delivery ratio against Postfix's smtp-source of a publication
# whose N readers are spread over 2 editions x 10 topic combinations, beside the same ratio of a
# publication without editions or topics, in the same run, on SQLite.
#
#   bash benches/editions.sh            # N=100000, CONN=8
#   N=30000 bash benches/editions.sh    # a shorter run
#   BIN=path bash benches/editions.sh   # a binary built before, instead of building one
#
# Both runs send the same 20 tagged Markdown articles (made in a temporary folder; 5 carry two
# tags) into smtp-sink on loopback over CONN connections.
#   A: no [[edition]], no [[topic]]: N readers get the whole issue (the single-edition figure).
#   B: editions daily and weekly (weekly the default), topics Science, Arts, Politics and Sport
#      (one tag each), readers spread evenly over the 2 editions and 10 choices of topics (none,
#      each one alone, four pairs, three of them). Both editions' issues are sent, weekly then
#      daily, so that B also delivers N messages; B's rate is both sends' messages over both
#      sends' delivery time.
# Each run is compared with smtp-source sending N messages before and after it (the mean of the
# two) at the size of that run's messages: A's one size, B's mean over its 20 groups of readers
# (each group's copy measured with `preview --subscriber`). The count of renders comes from the
# "issue rendered" debug line of each send; "creation" is a send's wall time less its delivery
# time (articles read, audience and groups of readers computed, deliveries queued).
#
# `bash benches/editions.sh` (N=100000, CONN=8), twice, on a 2-core machine shared with other
# builds (load 2.5-4), December 2026; smtp-source sent 100,000 messages in 39-60 s:
#   A: 2,479 / 2,418 msg/s against smtp-source's 1,835 / 1,820 at 53.0 KB: ratio 1.35 / 1.33;
#      1 render
#   B: 2,878 / 3,238 msg/s (weekly 50,000 and daily 50,000 sent, 0 skipped) against
#      smtp-source's 1,940 / 2,432 at 31.5 KB (the mean copy): ratio 1.48 / 1.33; 10 renders
#      each edition (9 variants and the whole issue, which the readers of no topic get)
#   B / A: 1.10 / 1.00
# The daily's issue, made second, took 3.6 / 3.1 s to make and peaked at 103 MB (the weekly's
# 0.7 / 0.4 s, 47 MB): what readers received is read for every reader who got the weekly, not
# only for the daily's readers.
#
# Needs Debian's postfix (smtp-sink, smtp-source) and GNU time; installs them when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-100000}
CONN=${CONN:-8}
if [ $((N % 20)) -ne 0 ]; then
  echo "N must be a multiple of 20 (2 editions x 10 choices of topics)" >&2
  exit 2
fi

# shellcheck source=benches/common.sh
. benches/common.sh
bench_tools
bench_bin
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
port=$(free_port)
start_sink "$port"

# The articles, and the readers of both runs.
mkdir -p "$work/articles" "$work/a" "$work/b"
python3 - "$work" "$N" <<'PY'
import sys
work, n = sys.argv[1], int(sys.argv[2])
topics = ["science", "arts", "politics", "sport"]
words = ("harbour tide council budget gallery concert league match telescope cell vote museum "
         "season orbit river ballot painting stadium genome climate").split()
for j in range(20):
    tags = [topics[j % 4]] + ([topics[(j + 1) % 4]] if j % 4 == 0 else [])
    summary = " ".join(words[(j + k) % len(words)] for k in range(40)).capitalize() + "."
    body = "\n\n".join(
        " ".join(words[(j * 7 + p * 3 + k) % len(words)] for k in range(90)).capitalize() + "."
        for p in range(4))
    with open(f"{work}/articles/{j:02}.md", "w") as f:
        f.write(f'+++\ntitle = "Article {j}: the {words[j]} and the {words[(j + 5) % len(words)]}"\n'
                f'date = "2025-12-{j + 1:02}T08:00:00Z"\nauthor = "Desk {j % 3}"\n'
                f'url = "https://news.example.org/articles/{j}"\nsummary = "{summary}"\n'
                f'tags = {tags!r}\n+++\n{body}\n'.replace("'", '"'))
combos = ["", "Science", "Arts", "Politics", "Sport", "Science;Arts", "Politics;Sport",
          "Science;Politics", "Arts;Sport", "Science;Arts;Politics"]
with open(f"{work}/a/subscribers.csv", "w") as a, open(f"{work}/b/subscribers.csv", "w") as b:
    a.write("email,name,lists\n")
    b.write("email,name,lists,edition,topics\n")
    for i in range(n):
        a.write(f"reader{i}@example.org,Reader {i},weekly\n")
        edition = "daily" if i % 2 == 0 else "weekly"
        b.write(f"reader{i}@example.org,Reader {i},weekly,{edition},{combos[(i // 2) % 10]}\n")
PY

common=$(bench_publication 20; cat <<TOML

[[list]]
name = "weekly"

[delivery]
transport = "smtp"
smtp_url = "smtp://127.0.0.1:$port"
concurrency = $CONN

[[source]]
folder = "$work/articles"
TOML
)
printf '%s\n' "$common" >"$work/a/gazette.toml"
cat >"$work/b/gazette.toml" <<TOML
$common

[[topic]]
name = "Science"
tags = ["science"]

[[topic]]
name = "Arts"
tags = ["arts"]

[[topic]]
name = "Politics"
tags = ["politics"]

[[topic]]
name = "Sport"
tags = ["sport"]

[[edition]]
name = "daily"
cron = "0 0 7 * * *"
max_age = "99999d"

[[edition]]
name = "weekly"
cron = "0 0 9 * * Mon"
max_age = "99999d"
default = true
TOML

export GAZETTE_SECRET=bench-secret-0123456789abcdef
# Only the issue module's debug lines: one a send, saying how many copies were rendered.
export GAZETTE_LOG=warn,gazette::issue=debug
secs() { python3 -c "print($2 - $1)"; }
t0=$(date +%s.%N)
"$bin" --config "$work/a/gazette.toml" subscribers import "$work/a/subscribers.csv" >/dev/null
t1=$(date +%s.%N)
"$bin" --config "$work/b/gazette.toml" subscribers import "$work/b/subscribers.csv" >/dev/null
t2=$(date +%s.%N)
echo "import of $N readers: A $(secs "$t0" "$t1" | cut -c1-5) s, B (with editions and topics) $(secs "$t1" "$t2" | cut -c1-5) s" >&2

size_a=$("$bin" --config "$work/a/gazette.toml" preview --as-of 2026-01-01 --format eml | wc -c)
# One reader of each group: reader i is in edition i % 2 and choice (i / 2) % 10.
sizes_b=()
for i in $(seq 0 19); do
  edition=$([ $((i % 2)) -eq 0 ] && echo daily || echo weekly)
  sizes_b+=("$("$bin" --config "$work/b/gazette.toml" preview --subscriber "reader$i@example.org" \
    --edition "$edition" --as-of 2026-01-01 --format eml | wc -c)")
done
size_b=$(python3 -c "import sys; v=list(map(int, sys.argv[1:])); print(round(sum(v)/len(v)))" "${sizes_b[@]}")
echo "message size: A $size_a bytes; B mean $size_b bytes (groups: ${sizes_b[*]})" >&2

source_run() {
  local a b
  a=$(date +%s.%N)
  smtp-source -s "$CONN" -m "$N" -l "$1" -f weekly@example.org -t reader@example.org 127.0.0.1:"$port"
  b=$(date +%s.%N)
  echo "smtp-source ($2, $1 bytes): $(secs "$a" "$b" | cut -c1-5) s" >&2
  secs "$a" "$b"
}

# One send: prints "sent skipped delivery_seconds wall_seconds renders".
send() {
  local dir=$1 tag=$2
  shift 2
  /usr/bin/time -f "%e %M" -o "$work/$tag.time" "$bin" --config "$dir/gazette.toml" --json send \
    --as-of 2026-01-01 --yes "$@" >"$work/$tag.json" 2>"$work/$tag.log"
  python3 - "$work/$tag.json" "$work/$tag.time" "$work/$tag.log" <<'PY'
import json, re, sys
d = json.load(open(sys.argv[1]))
wall, rss = open(sys.argv[2]).read().split()[-2:]
renders = [int(m) for m in re.findall(r"issue rendered.*?renders=(\d+)", open(sys.argv[3]).read())]
c = d["counts"]
print(c["sent"], c["skipped"], d["elapsed_seconds"], wall, sum(renders) if renders else "?", rss)
PY
}

sa1=$(source_run "$size_a" "A, before")
read -r a_sent a_skipped a_secs a_wall a_renders a_rss < <(send "$work/a" a)
sa2=$(source_run "$size_a" "A, after")
sb1=$(source_run "$size_b" "B, before")
read -r w_sent w_skipped w_secs w_wall w_renders w_rss < <(send "$work/b" weekly --edition weekly)
read -r d_sent d_skipped d_secs d_wall d_renders d_rss < <(send "$work/b" daily --edition daily)
sb2=$(source_run "$size_b" "B, after")

python3 - <<PY
n, conn = $N, $CONN
sa, sb = ($sa1 + $sa2) / 2, ($sb1 + $sb2) / 2
src_a, src_b = n / sa, n / sb
a_rate = $a_sent / $a_secs
w_rate, d_rate = $w_sent / $w_secs, $d_sent / $d_secs
b_rate = ($w_sent + $d_sent) / ($w_secs + $d_secs)
ra, rb = a_rate / src_a, b_rate / src_b
print(f"readers: {n}, connections: {conn}, message size: A {$size_a / 1024:.1f} KB, B mean {$size_b / 1024:.1f} KB")
print(f"smtp-source: A {src_a:.0f} msg/s (mean of {$sa1:.1f} s and {$sa2:.1f} s), B {src_b:.0f} msg/s (mean of {$sb1:.1f} s and {$sb2:.1f} s)")
print(f"A, no editions:  {$a_sent} sent in {$a_secs:.1f} s = {a_rate:.0f} msg/s; send {$a_wall} s wall, creation {$a_wall - $a_secs:.1f} s; renders {'$a_renders'}; peak {$a_rss // 1024} MB")
print(f"B, weekly:       {$w_sent} sent, {$w_skipped} skipped in {$w_secs:.1f} s = {w_rate:.0f} msg/s; send {$w_wall} s wall, creation {$w_wall - $w_secs:.1f} s; renders {'$w_renders'}; peak {$w_rss // 1024} MB")
print(f"B, daily:        {$d_sent} sent, {$d_skipped} skipped in {$d_secs:.1f} s = {d_rate:.0f} msg/s; send {$d_wall} s wall, creation {$d_wall - $d_secs:.1f} s; renders {'$d_renders'}; peak {$d_rss // 1024} MB")
print(f"B, both:         {$w_sent + $d_sent} sent in {$w_secs + $d_secs:.1f} s = {b_rate:.0f} msg/s")
print(f"ratio A (gazette / smtp-source): {ra:.2f}")
print(f"ratio B (gazette / smtp-source): {rb:.2f}   (weekly alone {w_rate / src_b:.2f}, daily alone {d_rate / src_b:.2f})")
print(f"B / A: {rb / ra:.2f}")
PY
