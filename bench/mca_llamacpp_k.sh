#!/bin/bash
# llvm-mca on llama.cpp's AArch64 repacked kernels, K-quants, Q4_0, Q8_0 and IQ4_NL
# (ggml-cpu/arch/arm/repack.cpp), to
# compare with Ember's own figures (bench/mca_packed_k.sh, docs/PERFORMANCE.md "AArch64: the
# packed kernels, llvm-mca"). Nothing of llama.cpp is in this file: it compiles their source,
# calls the kernels through their public signature and times the assembly gcc made of them.
#   bench/mca_llamacpp_k.sh [LLAMA_SRC]   (default /tmp/llamacpp-b10256/src; the dir holding ggml-cpu/)
# What: for q4_K, q5_K, q6_K the dotprod 8x4 GEMM / GEMV and the 8x8 GEMM (i8mm) / GEMV (SDOT);
# for q8_0 the 4x4 (dotprod) and 4x8 (i8mm GEMM, SDOT GEMV) GEMM / GEMV; iq4_nl's 4x4 GEMM / GEMV;
# and q4_0's 4x4 / 4x8 GEMM / GEMV as a check of the method against /work/shared/ARM-COST.md
# (gemm 4x4 1.66 and gemv 4x4 3.13 on N1; gemm 4x8 1.28 and gemv 4x8 3.88 on N2).
# How:
#   1. repack.cpp -> assembly twice with gcc 12: aarch64-linux-gnu-g++ -O3 -std=c++17 -S with
#      -march=armv8.2-a+dotprod (8x4 and 4x4 kernels) and -march=armv8.6-a+dotprod+i8mm (8x8, 4x8).
#   2. Each assembly is assembled and linked with a small C harness that calls one kernel on
#      zeroed buffers (8 weight rows x 4 tokens for a K GEMM, 4 x 4 for a 32-weight GEMM (16
#      tokens for Q4_0's asm), x 1 token for a GEMV) with nb and nb+1 blocks, under
#      qemu-aarch64 -singlestep -d exec,nochain: the executed PCs.
#   3. One super-block is the difference of the two runs: the last period before they part,
#      checked to equal the period before it. So the inner loops (sub-blocks, halves, column
#      groups) appear as many times as they run, with the branches each took; branches are
#      then dropped (as bench/mca_packed_k.sh does). Instructions come from objdump, which
#      also decodes the .inst words of Q4_0's inline asm.
#   4. The trace must hold exactly the tile's multiply-adds (SDOT 16, SMMLA 32 each): that
#      proves the NEON path ran, not the generic fallback, and that the window is one block.
#   5. llvm-mca-19 -mtriple=aarch64 -mcpu=<neoverse-n1|n2|v2> -iterations=1000
#      -skip-unsupported-instructions=parse-failure (N1 left out for SMMLA code: no i8mm).
# Units, K rows: cycles per 256-weight super-block x weight-row x token (GEMM; Total Cycles / 1000 /
# 32) or per super-block x weight-row (GEMV; / 8); Block RThroughput / the same in parentheses.
# Q4_0, Q8_0, IQ4_NL: per 32-weight block x weight-row x token (GEMM; / tokens x 4 rows) or per
# block x weight-row (GEMV; / 4); x8 gives the 256-weight unit of the K rows.
# Cross-check with another compiler: CXXS="clang-14 --target=aarch64-linux-gnu" bench/mca_llamacpp_k.sh
# Needs aarch64-linux-gnu-g++ (gcc 12) with static libc, qemu-aarch64, llvm-mca-19, python3.
set -euo pipefail
src=$(cd "${1:-/tmp/llamacpp-b10256/src}" && pwd)
repack="$src/ggml-cpu/arch/arm/repack.cpp"
cxx=${CXXS:-aarch64-linux-gnu-g++}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# this copy prefixes ggml's names (lm_ggml_); upstream has none
pre=$(grep -o '^void [a-z_]*gemm_q4_K_8x4_q8_K(' "$repack" | sed 's/^void //; s/gemm_q4_K_8x4_q8_K($//')

# kernel table: build  name  tokens  rows(nc)  weights per block  divisor  label
kernels="dp gemm_q4_0_4x4_q8_0 16 4 32 64 Q4_0 GEMM 4x4 dotprod, 4 rows x 16 tokens (check)
dp gemv_q4_0_4x4_q8_0 1 4 32 4 Q4_0 GEMV 4x4 dotprod, 4 rows (check)
mm gemm_q4_0_4x8_q8_0 16 4 32 64 Q4_0 GEMM 4x8 i8mm, 4 rows x 16 tokens (check)
mm gemv_q4_0_4x8_q8_0 1 4 32 4 Q4_0 GEMV 4x8 (SDOT), 4 rows (check)
dp gemm_q8_0_4x4_q8_0 4 4 32 16 Q8_0 GEMM 4x4 dotprod, 4 rows x 4 tokens
dp gemv_q8_0_4x4_q8_0 1 4 32 4 Q8_0 GEMV 4x4 dotprod, 4 rows
mm gemm_q8_0_4x8_q8_0 4 4 32 16 Q8_0 GEMM 4x8 i8mm, 4 rows x 4 tokens
mm gemv_q8_0_4x8_q8_0 1 4 32 4 Q8_0 GEMV 4x8 (SDOT), 4 rows
dp gemm_iq4_nl_4x4_q8_0 4 4 32 16 IQ4_NL GEMM 4x4 dotprod, 4 rows x 4 tokens
dp gemv_iq4_nl_4x4_q8_0 1 4 32 4 IQ4_NL GEMV 4x4 dotprod, 4 rows
dp gemm_q4_K_8x4_q8_K 4 8 256 32 Q4_K GEMM 8x4 dotprod, 8 rows x 4 tokens
dp gemv_q4_K_8x4_q8_K 1 8 256 8 Q4_K GEMV 8x4 dotprod, 8 rows
mm gemm_q4_K_8x8_q8_K 4 8 256 32 Q4_K GEMM 8x8 i8mm, 8 rows x 4 tokens
mm gemv_q4_K_8x8_q8_K 1 8 256 8 Q4_K GEMV 8x8 (SDOT), 8 rows
dp gemm_q5_K_8x4_q8_K 4 8 256 32 Q5_K GEMM 8x4 dotprod, 8 rows x 4 tokens
dp gemv_q5_K_8x4_q8_K 1 8 256 8 Q5_K GEMV 8x4 dotprod, 8 rows
mm gemm_q5_K_8x8_q8_K 4 8 256 32 Q5_K GEMM 8x8 i8mm, 8 rows x 4 tokens
mm gemv_q5_K_8x8_q8_K 1 8 256 8 Q5_K GEMV 8x8 (SDOT), 8 rows
dp gemm_q6_K_8x4_q8_K 4 8 256 32 Q6_K GEMM 8x4 dotprod, 8 rows x 4 tokens
dp gemv_q6_K_8x4_q8_K 1 8 256 8 Q6_K GEMV 8x4 dotprod, 8 rows
mm gemm_q6_K_8x8_q8_K 4 8 256 32 Q6_K GEMM 8x8 i8mm, 8 rows x 4 tokens
mm gemv_q6_K_8x8_q8_K 1 8 256 8 Q6_K GEMV 8x8 (SDOT), 8 rows"

# the harness: kernel number, blocks, tokens, rows, weights per block on the command line
{
  echo '#include <stddef.h>'
  echo '#include <stdlib.h>'
  echo 'typedef void kfn(int, float*, size_t, const void*, const void*, int, int);'
  while read -r _ k _; do echo "extern kfn ${pre}$k;"; done <<<"$kernels"
  echo 'static kfn* const table[] = {'
  while read -r _ k _; do echo "  ${pre}$k,"; done <<<"$kernels"
  cat <<'EOF'
};
static unsigned char w[1 << 20], a[1 << 20];
static float out[1 << 12];
int main(int argc, char** argv) {
  (void)argc;
  int k = atoi(argv[1]), nb = atoi(argv[2]), nr = atoi(argv[3]), nc = atoi(argv[4]), qk = atoi(argv[5]);
  table[k](nb * qk, out, nc, w, a, nr, nc);
  return 0;
}
EOF
} >"$work/harness.c"
aarch64-linux-gnu-gcc -O1 -c "$work/harness.c" -o "$work/harness.o"
for b in "dp armv8.2-a+dotprod" "mm armv8.6-a+dotprod+i8mm"; do
  set -- $b
  $cxx -O3 -std=c++17 -march="$2" -I"$src" -I"$src/ggml-cpu" -S "$repack" -o "$work/$1.s" 2>"$work/cc.err" ||
    { cat "$work/cc.err" >&2; exit 1; }
  $cxx -march="$2" -c "$work/$1.s" -o "$work/$1.o"
  # the rest of ggml (generic fallbacks, ...) is never reached: leave it unresolved
  aarch64-linux-gnu-gcc -static "$work/harness.o" "$work/$1.o" -o "$work/h_$1" -Wl,--unresolved-symbols=ignore-all
done

# trace BUILD FUNC LOG_A LOG_B: one executed period of FUNC's super-block loop, branches dropped
trace() {
  python3 - "$work/h_$1" "$2" "$3" "$4" <<'EOF'
import re, subprocess, sys
binary, func, log_a, log_b = sys.argv[1:5]
dis = subprocess.run(["aarch64-linux-gnu-objdump", "-d", "--no-show-raw-insn", binary],
                     capture_output=True, text=True, check=True).stdout
text, infn = {}, False
for l in dis.split("\n"):
    if re.match(r"^[0-9a-f]+ <" + re.escape(func) + ">:$", l):
        infn = True
        continue
    if infn and re.match(r"^[0-9a-f]+ <", l):
        break
    m = re.match(r"^\s+([0-9a-f]+):\s+(.*)$", l) if infn else None
    if m:
        s = re.sub(r"\s*//.*$", "", m.group(2))
        text[int(m.group(1), 16)] = re.sub(r"\s*<[^>]*>$", "", s).strip()
def pcs(log):  # the PCs executed inside FUNC, in order
    out = []
    for l in open(log):
        m = re.search(r"\[[0-9a-f]+/([0-9a-f]+)/", l)
        if m and int(m.group(1), 16) in text:
            out.append(int(m.group(1), 16))
    return out
a, b = pcs(log_a), pcs(log_b)
period = len(b) - len(a)
p = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), len(a))
win = b[p - period:p]
assert period > 0 and p >= 2 * period and b[p - 2 * period:p - period] == win, "no steady period"
branch = re.compile(r"^(b|b\.\w+|cbn?z|tbn?z|ret)\b")
print("\n".join(text[pc] for pc in win if not branch.match(text[pc])))
EOF
}

printf '%-58s %-9s | %-15s | %-15s | %-15s\n' kernel dots N1 N2 V2
i=0
while read -r build k tokens rows qk div label; do
  if ! grep -q "^${pre}$k:" "$work/$build.s"; then
    printf '%-58s (not in this tree)\n' "$label"; i=$((i + 1)); continue
  fi
  for nb in 3 4; do
    qemu-aarch64 -singlestep -d exec,nochain -D "$work/log$nb" "$work/h_$build" $i $nb $tokens $rows $qk
  done
  trace "$build" "$pre$k" "$work/log3" "$work/log4" >"$work/$k.s"
  nsdot=$(grep -c '^sdot' "$work/$k.s" || true)
  nmmla=$(grep -c '^smmla' "$work/$k.s" || true)
  macs=$((nsdot * 16 + nmmla * 32))
  if [ "$macs" != $((tokens * rows * qk)) ]; then
    echo "$label: $macs multiply-adds per block, want $((tokens * rows * qk)): not the NEON path?" >&2
    exit 1
  fi
  dots="${nsdot}SD"
  [ "$nmmla" != 0 ] && dots="${nmmla}MM+$nsdot"
  printf '%-58s %-9s' "$label" "$dots"
  for m in neoverse-n1 neoverse-n2 neoverse-v2; do
    if [ $m = neoverse-n1 ] && [ "$nmmla" != 0 ]; then printf ' | %-15s' "n/a"; continue; fi
    llvm-mca-19 -mtriple=aarch64 -mcpu=$m -iterations=1000 -skip-unsupported-instructions=parse-failure \
      "$work/$k.s" 2>"$work/err" |
      awk -v d="$div" '/Total Cycles/{c=$NF} /Block RThroughput/{r=$NF} END{printf " | %6.2f (%6.2f)", c/1000/d, r/d}'
    # an instruction llvm-mca could not parse (skipped) would bias the figure: mark it
    if [ -s "$work/err" ]; then printf '*'; fi
  done
  echo
  i=$((i + 1))
done <<<"$kernels"
echo "Q4_0, Q8_0, IQ4_NL: per 32-weight block; x8 for the 256-weight unit of the K rows."
echo "*: llvm-mca skipped an instruction."
