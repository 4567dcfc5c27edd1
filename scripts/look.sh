#!/usr/bin/env bash
# Look at an HTML email the way readers will: headless Chromium screenshots of a phone (375 px)
# and a desktop (1200 px) window, each in light and dark colour scheme, plus a check that
# nothing scrolls sideways.
#
#   scripts/look.sh FILE.html OUTDIR
#
# Writes OUTDIR/{phone,desktop}-{light,dark}.png and prints, per width, the page's
# scrollWidth against the window width. Exits 1 when the page is wider than the window.
# Needs Debian's `chromium` (apt-get install -y chromium; fonts-noto-core and fonts-noto-cjk
# for Arabic, Armenian and Japanese glyphs). Nothing is fetched from the network: remote
# images show their alt text.
# Dark mode: `--force-dark-mode` makes `prefers-color-scheme: dark` match in headless Chromium
# (it does not invert the page; it only sets the preference, like a reader's OS setting).
set -euo pipefail

html=${1:?usage: look.sh FILE.html OUTDIR}
out=${2:?usage: look.sh FILE.html OUTDIR}
[ -f "$html" ] || { echo "look.sh: no such file: $html" >&2; exit 2; }
command -v chromium >/dev/null || { echo "look.sh: chromium not found (apt-get install -y chromium)" >&2; exit 2; }
mkdir -p "$out"
html=$(cd "$(dirname "$html")" && pwd)/$(basename "$html")
out=$(cd "$out" && pwd)

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

chrome() {
  # One throw-away profile per run; no sync, updates or background traffic.
  timeout 120 chromium --headless --no-sandbox --disable-gpu --disable-background-networking \
    --no-first-run --disable-component-update --disable-sync --disable-extensions \
    --hide-scrollbars --user-data-dir="$(mktemp -d -p "$scratch")" "$@" 2>/dev/null
}

# The size probe: a scratch page that loads the email in an iframe exactly as wide as the
# device and reports the email's scrollWidth and scrollHeight in its title. (Headless
# Chromium will not make a window narrower than 500 px, so the window itself can't be the
# probe; the email file is left untouched.)
probe() { # width
  cat >"$scratch/probe-$1.html" <<HTML
<!DOCTYPE html><html><head><title>probe</title></head><body style="margin:0">
<iframe id="f" src="file://$html" style="border:0;width:$1px;height:900px"></iframe>
<script>
document.getElementById('f').addEventListener('load', function () {
  var d = this.contentDocument.documentElement;
  document.title = 'LOOK ' + d.scrollWidth + ' ' + Math.max(d.scrollHeight, this.contentDocument.body.scrollHeight);
});
</script></body></html>
HTML
  chrome --allow-file-access-from-files --window-size="$(( $1 < 500 ? 500 : $1 )),900" \
    --dump-dom "file://$scratch/probe-$1.html" | grep -o 'LOOK [0-9]* [0-9]*' | head -1 | cut -d' ' -f2-
}

status=0
for device in phone:375 desktop:1200; do
  name=${device%%:*} width=${device##*:}
  read -r sw sh < <(probe "$width"; echo)
  sw=${sw:-0} sh=${sh:-2000}
  height=$(( sh < 16000 ? sh : 16000 ))
  if [ "$sw" -gt "$width" ]; then
    echo "$name: OVERFLOW scrollWidth $sw > window $width" >&2; status=1
  else
    echo "$name: ok, scrollWidth $sw <= window $width, page height $sh"
  fi
  for scheme in light dark; do
    flag=(); [ "$scheme" = dark ] && flag=(--force-dark-mode)
    chrome "${flag[@]}" --window-size="$width,$height" --screenshot="$out/$name-$scheme.png" "file://$html" >/dev/null
    echo "  $out/$name-$scheme.png"
  done
done
exit $status
