#!/bin/bash
# llvm-mca on the packed K-quant kernels of kernels/arm/qmatmul_packed_k_neon.h
# (docs/PERFORMANCE.md, "AArch64: the packed kernels, llvm-mca"): cycles per 256-weight
# super-block x row (x token for the GEMM tile), Block RThroughput in parentheses.
#   bench/mca_packed_k.sh [TREE] [extra g++ flags]   (TREE: a checkout, default this one)
# A file of [[gnu::noinline]] wrappers around the kernels is compiled as the kernels are;
# each wrapper's super-block loop is written out as a straight trace (the loops nested in
# it repeated as they run: the tile's h / half loops, 2 x 2; branches dropped), then
#   llvm-mca-19 -mtriple=aarch64 -mcpu=<model> -iterations=1000 -skip-unsupported-instructions=parse-failure
# Needs aarch64-linux-gnu-g++ (gcc 12), llvm-mca-19, python3.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
tree=$(cd "${1:-$here}" && pwd)
shift || true
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

have_q6_gemv2=0
grep -q "sdot_gemv2_q6_k" "$tree/kernels/arm/qmatmul_packed_k_neon.h" && have_q6_gemv2=1
have_q5_k=0  # trees from before the packed Q5_K (8ba1af0) lack its kernels
grep -q "qmatmul_packed_sdot_q5_k" "$tree/kernels/arm/qmatmul_packed_k_neon.h" && have_q5_k=1
have_q2_k=0  # ---- Q2_K / Q3_K (qmatmul_packed_q2_q3_k_neon.h): trees from before it lack them
grep -q "sdot_gemv2_q2_k" "$tree/kernels/arm/qmatmul_packed_q2_q3_k_neon.h" 2>/dev/null && have_q2_k=1
have_q3_k=0
grep -q "sdot_gemv2_q3_k" "$tree/kernels/arm/qmatmul_packed_q2_q3_k_neon.h" 2>/dev/null && have_q3_k=1
cat >"$work/harness.cpp" <<'EOF'
#include "kernels/arm/qmatmul_dotprod.cpp"
namespace ember::kernels {
#if HAVE_Q2_K
[[gnu::noinline]] void mca_q2_tile4(const uint8_t* g, const PackedActs& X, float* Y, size_t ldy) {
  sdot_tile_q2_k<4>(g, X, 0, Y, ldy, 0);
}
[[gnu::noinline]] void mca_q2_gemv2(const uint8_t* g, size_t gb, const PackedActs& X, float* Y) {
  sdot_gemv2_q2_k(g, gb, X, Y, 0);
}
#endif
#if HAVE_Q3_K
[[gnu::noinline]] void mca_q3_tile4(const uint8_t* g, const PackedActs& X, float* Y, size_t ldy) {
  sdot_tile_q3_k<4>(g, X, 0, Y, ldy, 0);
}
[[gnu::noinline]] void mca_q3_gemv2(const uint8_t* g, size_t gb, const PackedActs& X, float* Y) {
  sdot_gemv2_q3_k(g, gb, X, Y, 0);
}
#endif  // ---- end Q2_K / Q3_K
[[gnu::noinline]] void mca_q6_tile1(const uint8_t* g, const PackedActs& X, float* Y) { sdot_tile_q6_k<1>(g, X, 0, Y, 0, 0); }
[[gnu::noinline]] void mca_q6_tile4(const uint8_t* g, const PackedActs& X, float* Y, size_t ldy) {
  sdot_tile_q6_k<4>(g, X, 0, Y, ldy, 0);
}
#if HAVE_Q6_GEMV2
[[gnu::noinline]] void mca_q6_gemv2(const uint8_t* g, size_t gb, const PackedActs& X, float* Y) {
  sdot_gemv2_q6_k(g, gb, X, Y, 0);
}
#endif
#if HAVE_Q5_K
[[gnu::noinline]] void mca_q5_gemv2(const uint8_t* g, size_t gb, const PackedActs& X, float* Y) {
  sdot_gemv2_q4_k<true>(g, gb, X, Y, 0);
}
[[gnu::noinline]] void mca_q4_tile4(const uint8_t* g, const PackedActs& X, float* Y, size_t ldy) {
  sdot_tile_q4_k<4>(g, X, 0, Y, ldy, 0);
}
[[gnu::noinline]] void mca_q5_tile4(const uint8_t* g, const PackedActs& X, float* Y, size_t ldy) {
  sdot_tile_q4_k<4, true>(g, X, 0, Y, ldy, 0);
}
#endif
[[gnu::noinline]] void mca_q4_gemv2(const uint8_t* g, size_t gb, const PackedActs& X, float* Y) {
  sdot_gemv2_q4_k(g, gb, X, Y, 0);
}
}  // namespace ember::kernels
EOF
# ---- IQ4_XS (kernels/arm/qmatmul_packed_iq4_xs_neon.h): its own wrappers and rows ----
have_iq4_xs=0
[ -f "$tree/kernels/arm/qmatmul_packed_iq4_xs_neon.h" ] && have_iq4_xs=1
if [ "$have_iq4_xs" = 1 ]; then
  cat >>"$work/harness.cpp" <<'EOF'
namespace ember::kernels {
[[gnu::noinline]] void mca_iq4_xs_tile4(const uint8_t* g, const PackedActs& X, float* Y, size_t ldy) {
  sdot_tile_iq4_xs<4>(g, X, 0, Y, ldy, 0);
}
[[gnu::noinline]] void mca_iq4_xs_gemv2(const uint8_t* g, size_t gb, const PackedActs& X, float* Y) {
  sdot_gemv2_iq4_xs(g, gb, X, Y, 0);
}
}  // namespace ember::kernels
EOF
fi
# ---- end IQ4_XS ----

aarch64-linux-gnu-g++ -O3 -ffp-contract=off -std=c++20 -march=armv8.2-a+dotprod -I"$tree" \
  -DHAVE_Q6_GEMV2=$have_q6_gemv2 -DHAVE_Q5_K=$have_q5_k -DHAVE_Q2_K=$have_q2_k -DHAVE_Q3_K=$have_q3_k "$@" -S "$work/harness.cpp" -o "$work/h.s"

# The i8mm table's SMMLA GEMM of Q4_K / Q5_K / Q6_K (qmatmul_packed_k_mmla_neon.h): the row
# group against 8 tokens (4 pairs) over one slab, its own harness compiled with i8mm.
have_mmla_k=0
[ -f "$tree/kernels/arm/qmatmul_packed_k_mmla_neon.h" ] && have_mmla_k=1
have_mmla_q6_k=0  # trees from before Q6_K's SMMLA slab lack it
grep -q "mmla_slab_q6_k" "$tree/kernels/arm/qmatmul_packed_k_mmla_neon.h" 2>/dev/null && have_mmla_q6_k=1
if [ "$have_mmla_k" = 1 ]; then
  cat >"$work/harness_mmla.cpp" <<'EOF'
#include "kernels/arm/qmatmul_i8mm.cpp"
namespace ember::kernels {  // gnu::used: PairCodesK's anonymous namespace makes them internal
[[gnu::noinline, gnu::used]] void mca_q4_mmla8(const uint8_t* g, const PackedActs& X, const PairCodesK (*buf)[4],
                                               size_t b1, float* Y, size_t ldy) {
  mmla_slab_q4_k<false, 4>(g, X, buf, 0, b1, 0, 8, Y, ldy, 0);
}
[[gnu::noinline, gnu::used]] void mca_q5_mmla8(const uint8_t* g, const PackedActs& X, const PairCodesK (*buf)[4],
                                               size_t b1, float* Y, size_t ldy) {
  mmla_slab_q4_k<true, 4>(g, X, buf, 0, b1, 0, 8, Y, ldy, 0);
}
#if HAVE_MMLA_Q6_K
[[gnu::noinline, gnu::used]] void mca_q6_mmla8(const uint8_t* g, const PackedActs& X, const PairCodesK (*buf)[4],
                                               size_t b1, float* Y, size_t ldy) {
  mmla_slab_q6_k<4>(g, X, buf, 0, b1, 0, 8, Y, ldy, 0);
}
#endif
}  // namespace ember::kernels
EOF
  aarch64-linux-gnu-g++ -O3 -ffp-contract=off -std=c++20 -march=armv8.6-a+dotprod+i8mm -I"$tree" \
    -DHAVE_MMLA_Q6_K=$have_mmla_q6_k "$@" \
    -S "$work/harness_mmla.cpp" -o "$work/h_mmla.s"
fi

# trace FUNC: the straight trace of FUNC's super-block loop (its first label). A loop
# nested in it (a backward branch to a later label) runs again once (2 iterations: the
# tile's half loop); a forward conditional branch is taken on its second visit (the
# tile's h loop: 2 iterations); the branch back to the first label ends the trace.
trace() {
  python3 - "${asm:-$work/h.s}" "$1" <<'EOF'
import re, sys
path, func = sys.argv[1:3]
lines = open(path).read().split("\n")
i0 = next(i for i, l in enumerate(lines) if l.startswith(func + ":"))
labels, insns = {}, []
for l in lines[i0 + 1:]:
    s = l.strip()
    if s.startswith(".LFE") or s.startswith(".size"):
        break
    m = re.match(r"^(\.L\d+):$", s)
    if m:
        labels[m.group(1)] = len(insns)
    elif s and not s.startswith("."):
        insns.append(s)
loop = next(iter(sorted(labels, key=labels.get)))  # the first numbered label: the block loop
cond = ("b.ne", "bne", "beq", "cbz", "cbnz", "tbz", "tbnz")
pc, seen, out = labels[loop], {}, []
while True:
    s = insns[pc]
    op, tgt = s.split()[0], s.split()[-1]
    if op == "ret":
        break
    if tgt in labels and (op == "b" or op in cond):
        if tgt == loop:
            break
        n = seen[pc] = seen.get(pc, 0) + 1
        backward = labels[tgt] <= pc
        taken = op == "b" or (n % 2 == 1 if backward else n % 2 == 0)
        pc = labels[tgt] if taken else pc + 1
        continue
    out.append(s)
    pc += 1
print("\n".join(out))
EOF
}

# row NAME FUNC DIVISOR
row() {
  local sym
  sym=$(grep -o "^_ZN5ember7kernels[0-9]*$2E[A-Za-z0-9_]*:" "${asm:-$work/h.s}" | tr -d :)
  trace "$sym" >"$work/$2.s"
  printf '%-34s %3d' "$1" "$(grep -c -E '^(sdot|smmla)' "$work/$2.s")"
  for m in neoverse-n1 neoverse-n2 neoverse-v2 cortex-a55; do
    llvm-mca-19 -mtriple=aarch64 -mcpu=$m -iterations=1000 -skip-unsupported-instructions=parse-failure \
      "$work/$2.s" 2>/dev/null |
      awk -v d="$3" '/Total Cycles/{c=$NF} /Block RThroughput/{r=$NF} END{printf " | %6.2f (%6.2f)", c/1000/d, r/d}'
  done
  echo
}
echo "kernel                    SDOTs (SMMLAs) | N1 | N2 | V2 | A55   (cycles, Block RThroughput)"
row "Q6_K GEMM tile, 4 rows x 4 tokens" mca_q6_tile4 16
row "Q6_K 1-token tile (4 rows)" mca_q6_tile1 4
[ "$have_q6_gemv2" = 1 ] && row "Q6_K GEMV, two row groups" mca_q6_gemv2 8
row "Q4_K GEMV, two row groups" mca_q4_gemv2 8
if [ "$have_q5_k" = 1 ]; then
  row "Q5_K GEMV, two row groups" mca_q5_gemv2 8
  row "Q4_K GEMM tile, 4 rows x 4 tokens" mca_q4_tile4 16
  row "Q5_K GEMM tile, 4 rows x 4 tokens" mca_q5_tile4 16
fi
# ---- IQ4_XS rows ----
if [ "$have_iq4_xs" = 1 ]; then
  row "IQ4_XS GEMM tile, 4 rows x 4 tokens" mca_iq4_xs_tile4 16
  row "IQ4_XS GEMV, two row groups" mca_iq4_xs_gemv2 8
fi
if [ "$have_q2_k" = 1 ]; then  # ---- Q2_K / Q3_K
  row "Q2_K GEMM tile, 4 rows x 4 tokens" mca_q2_tile4 16
  row "Q2_K GEMV, two row groups" mca_q2_gemv2 8
fi
if [ "$have_q3_k" = 1 ]; then
  row "Q3_K GEMM tile, 4 rows x 4 tokens" mca_q3_tile4 16
  row "Q3_K GEMV, two row groups" mca_q3_gemv2 8
fi  # ---- end Q2_K / Q3_K
if [ "$have_mmla_k" = 1 ]; then  # SMMLA: read the N2 and V2 columns (N1 and A55 have no i8mm)
  asm="$work/h_mmla.s" row "Q4_K SMMLA GEMM, 4 rows x 8 tokens" mca_q4_mmla8 32
  asm="$work/h_mmla.s" row "Q5_K SMMLA GEMM, 4 rows x 8 tokens" mca_q5_mmla8 32
  if [ "$have_mmla_q6_k" = 1 ]; then
    asm="$work/h_mmla.s" row "Q6_K SMMLA GEMM, 4 rows x 8 tokens" mca_q6_mmla8 32
  fi
fi
