#!/usr/bin/env bash
# Renders an SVG written by `ember bench --plot FILE.svg` to PNG, for a quick look or to
# paste where SVG is not shown:
#   scripts/render-plot.sh bench.svg [bench.png]
# Uses rsvg-convert (Debian: librsvg2-bin) when present, else ImageMagick's convert.
set -euo pipefail
if [[ $# -lt 1 || $# -gt 2 || $1 == -h || $1 == --help ]]; then
  echo "usage: $0 IN.svg [OUT.png]  (default OUT: IN with .png)" >&2
  exit 2
fi
in=$1
out=${2:-${in%.svg}.png}
[[ -r $in ]] || { echo "$0: cannot read '$in'" >&2; exit 1; }
if command -v rsvg-convert >/dev/null 2>&1; then
  # 1.25 x the SVG's size: ~120 dpi for the document's 96-dpi pixels, like convert -density 120.
  rsvg-convert --zoom 1.25 --background-color white -o "$out" "$in"
elif command -v convert >/dev/null 2>&1 && convert -version 2>/dev/null | grep -q ImageMagick; then
  convert -density 120 -background white "$in" "$out"
else
  echo "$0: no SVG renderer: install librsvg2-bin (rsvg-convert) or imagemagick" >&2
  exit 1
fi
echo "$out"
