#!/bin/bash
# KV cache at a depth, Ember beside llama.cpp, alternating, 2 threads: one line per "model type"
# pair on stdin (type f32, f16, q8_0, or f16-full for --swa-full), e.g.
#   echo "gemma-3-1b-q4_k_m.gguf f16" | E=build/bin/ember L=/tmp/llamacpp-depth bash bench/llamacpp/kv_depth.sh
# Prints: file type ember_tok_s ember_kv_bytes llama_tok_s llama_kv_mib.
E=${E:-build/bin/ember}; L=${L:-/tmp/llamacpp-depth}; D=${D:-4096}; N=${N:-16}; R=${R:-2}
while read -r f t; do
  ty=${t%-full}; extra=""; lextra=""
  [ "$t" = f16-full ] && { extra=--swa-full; lextra=swa; }
  e=$($E bench -m "$f" -p 1 -n "$N" -d "$D" -t 2 -r "$R" -ctk "$ty" -ctv "$ty" $extra --probe-mib 0 --output json -q |
      python3 -c "import sys,json; j=json.load(sys.stdin)[0]; print('%.2f %d' % (j['decode_tps'], j['kv_bytes']))")
  l=$("$L" "$f" "$D" "$N" 2 "$R" "$ty" "$ty" $lextra 2>&1 | python3 -c "
import sys, re
s = sys.stdin.read()
tps = re.search(r'decode_tok_s ([0-9.]+)', s).group(1)
mib = sum(float(x) for x in re.findall(r'llama_kv_cache: size = +([0-9.]+) MiB', s))
print(tps, '%.1f' % mib)")
  echo "$f $t $e $l"
done
