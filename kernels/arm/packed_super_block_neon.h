// Private to kernels/arm/: the driver every packed 256-weight type (Q4_K, Q5_K, Q6_K,
// Q2_K, Q3_K, IQ4_XS) shares on Packing{4, 4}, included by their headers after
// qmatmul_packed_neon.h. Each type gives a Kern: its packed layout's constants (kGroupQs
// code bytes and kRecord record bytes per row group and super-block, kTokens the GEMM
// tile's width), its tile of T tokens against one row group, tile<T>(group, X, t0, Y, ldy,
// r), and its GEMV on two row groups at once, gemv2(g0, group_bytes, X, Y, r).
#pragma once
#include <cstddef>
#include <cstdint>

#include "kernels/kernels.h"
#include "quant/blocks.h"

namespace ember::kernels {
namespace {

#if defined(__ARM_FEATURE_DOTPROD)
// The last `rest` (1 .. T) tokens by the tile of that width.
template <class Kern, int T>
void sdot_rest_super_blocks(const uint8_t* g, const PackedActs& X, size_t t, size_t rest, float* Y, size_t ldy,
                            size_t r) {
  if constexpr (T > 0) {
    if (rest == T) return Kern::template tile<T>(g, X, t, Y, ldy, r);
    sdot_rest_super_blocks<Kern, T - 1>(g, X, t, rest, Y, ldy, r);
  }
}

// A PackedQMatmulFn: row groups of 4, tokens kTokens at a time, then the last few; decode
// (n = 1) two row groups at a time (an odd last group: the 1-token tile). The types name
// its instantiations by constant pointers (wrappers changed Q4_K's loop code).
template <class Kern>
void sdot_super_blocks(const void* W, Packing, const PackedActs& X, size_t n, size_t K, float* Y, size_t ldy,
                       size_t r0, size_t r1) {
  constexpr int kTokens = Kern::kTokens;
  const size_t group_bytes = (K / kQKK) * (Kern::kGroupQs + Kern::kRecord);
  const auto* w = static_cast<const uint8_t*>(W);
  size_t r = r0;
  if (n == 1)
    for (; r + 8 <= r1; r += 8) Kern::gemv2(w + (r / 4) * group_bytes, group_bytes, X, Y, r);
  for (; r < r1; r += 4) {
    const uint8_t* g = w + (r / 4) * group_bytes;
    size_t t = 0;
    for (; t + kTokens <= n; t += kTokens) Kern::template tile<kTokens>(g, X, t, Y, ldy, r);
    sdot_rest_super_blocks<Kern, kTokens - 1>(g, X, t, n - t, Y, ldy, r);
  }
}
#endif  // __ARM_FEATURE_DOTPROD

}  // namespace
}  // namespace ember::kernels
