#!/usr/bin/env bash
# The docs/PERFORMANCE.md preset table: `ember bench` on random-weight models with the
# shapes of real ones (ember synth), for each preset x weight type, one CSV row per
# thread count, then a Markdown table of the medians.
#
#   scripts/bench-presets.sh [-b BUILD_DIR] [-d MODEL_DIR] [-o OUT.csv] [-- BENCH_FLAGS...]
#
# Defaults: BUILD_DIR=build, MODEL_DIR=/tmp/ember-models (about 10 GB of models are
# written there once and reused), OUT=bench-presets.csv, BENCH_FLAGS=-p 128 -n 32 -t 1,2 -r 3.
# PRESETS and TYPES (space-separated) override the lists below.
set -euo pipefail

build=build
models=/tmp/ember-models
out=bench-presets.csv
while [ $# -gt 0 ]; do
  case "$1" in
    -b) build=$2; shift 2 ;;
    -d) models=$2; shift 2 ;;
    -o) out=$2; shift 2 ;;
    --) shift; break ;;
    *) echo "bench-presets.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
flags=("$@")
[ ${#flags[@]} -gt 0 ] || flags=(-p 128 -n 32 -t 1,2 -r 3)
ember="$build/bin/ember"
[ -x "$ember" ] || { echo "bench-presets.sh: $ember not found: build first (cmake --build $build)" >&2; exit 2; }
presets=${PRESETS:-"tinyllama-1.1b llama-3.2-1b gemma-2b"}
types=${TYPES:-"q4_0 q8_0 q4_k_m"}
mkdir -p "$models"

: > "$out"
for preset in $presets; do
  for type in $types; do
    model="$models/$preset-$type.gguf"
    [ -f "$model" ] || "$ember" synth --preset "$preset" --type "$type" -o "$model" -q
    # The header once; then this model's rows, the preset and type prepended.
    "$ember" bench -m "$model" "${flags[@]}" --output csv -q |
      awk -v p="$preset" -v t="$type" -v first="$([ -s "$out" ] && echo 0 || echo 1)" \
        'NR == 1 { if (first) print "preset,type," $0; next } { print p "," t "," $0 }' >> "$out"
  done
done

# Markdown: preset, type, threads, prefill, decode (median, min-max), TTFT, bytes, bandwidth.
awk -F, '
  NR == 1 { for (i = 1; i <= NF; ++i) col[$i] = i; next }
  function v(name) { return $(col[name]) }
  function mib(b) { return sprintf("%.0f", b / 1048576) }
  BEGIN { print "| preset | type | threads | prefill tok/s (min-max) | decode tok/s (min-max) | TTFT ms | model MiB | KV MiB | peak RSS MiB | decode GB/s | % of read bw | energy |"
          print "|---|---|---|---|---|---|---|---|---|---|---|---|" }
  { printf "| %s | %s | %s | %.1f (%.1f-%.1f) | %.2f (%.2f-%.2f) | %.1f | %s | %s | %s | %.2f | %s | %s |\n",
      v("preset"), v("type"), v("threads"), v("prefill_tps"), v("prefill_tps_min"), v("prefill_tps_max"),
      v("decode_tps"), v("decode_tps_min"), v("decode_tps_max"), v("ttft_ms"), mib(v("model_bytes")),
      mib(v("kv_bytes")), mib(v("peak_rss_bytes")), v("decode_bw_gbs"),
      v("decode_bw_pct") == "" ? "-" : sprintf("%.1f", v("decode_bw_pct")),
      v("energy_source") == "" ? "n/a" : sprintf("%.3f J/tok", $NF) }
' "$out"
