// Private to kernels/arm/: the super-block loops and the driver every packed 256-weight
// type (Q4_K, Q5_K, Q6_K, Q2_K, Q3_K, IQ4_XS) shares on Packing{4, 4}, included by their headers after
// qmatmul_packed_neon.h. Each type gives a Kern: its packed layout's constants (kGroupQs
// code bytes and kRecord record bytes per row group and super-block, kTokens the GEMM
// tile's width), its tile of T tokens against one row group, tile<T>(group, X, t0, Y, ldy,
// r), and its GEMV on two row groups at once, gemv2(g0, group_bytes, X, Y, r).
#pragma once
#include <arm_neon.h>

#include <cstddef>
#include <cstdint>

#include "kernels/kernels.h"
#include "quant/blocks.h"

namespace ember::kernels {
namespace {

#if defined(__ARM_FEATURE_DOTPROD)
// T tokens (t0 ..) against one row group (rows r ..) of X.nb super-blocks of layout P:
// block(q, rec, xb, acc) adds super-block b's terms (its codes q, its record rec, token
// t0's Q8_K block xb, token t's at xb + t * X.stride) to acc[T]; 4 x T outputs. The
// types' lambdas are __attribute__((always_inline)): code as when the loops were each
// type's own (object sizes equal; [[gnu::always_inline]] after a lambda's parameters
// that end in a reference is ignored by gcc 12, and then the GEMVs changed).
template <class P, int T, class Block>
[[gnu::always_inline]] inline void tile_super_blocks(const uint8_t* group, const PackedActs& X, size_t t0, float* Y,
                                                     size_t ldy, size_t r, Block block) {
  const size_t nb = X.nb, xs = X.stride;
  const uint8_t* records = group + nb * P::kGroupQs;
  float32x4_t acc[T];
#pragma GCC unroll 16
  for (int t = 0; t < T; ++t) acc[t] = vdupq_n_f32(0.0f);
  for (size_t b = 0; b < nb; ++b)
    block(group + b * P::kGroupQs, records + b * P::kRecord, X.q + t0 * xs + b * sizeof(BlockQ8_K), acc);
#pragma GCC unroll 16
  for (int t = 0; t < T; ++t) vst1q_f32(Y + (t0 + t) * ldy + r, acc[t]);
}

// The GEMV (token 0) on two row groups at once (g0 and g0 + group_bytes, rows r .. r + 7):
// block(q0, q1, rec0, rec1, xb, acc0, acc1) adds super-block b's terms of both groups.
template <class P, class Block>
[[gnu::always_inline]] inline void gemv2_super_blocks(const uint8_t* g0, size_t group_bytes, const PackedActs& X,
                                                      float* Y, size_t r, Block block) {
  const size_t nb = X.nb;
  const uint8_t* g1 = g0 + group_bytes;
  const uint8_t* rec0 = g0 + nb * P::kGroupQs;
  const uint8_t* rec1 = g1 + nb * P::kGroupQs;
  float32x4_t acc0 = vdupq_n_f32(0.0f), acc1 = vdupq_n_f32(0.0f);
  for (size_t b = 0; b < nb; ++b, rec0 += P::kRecord, rec1 += P::kRecord)
    block(g0 + b * P::kGroupQs, g1 + b * P::kGroupQs, rec0, rec1, X.q + b * sizeof(BlockQ8_K), acc0, acc1);
  vst1q_f32(Y + r, acc0);  // n = 1: token 0's row of Y
  vst1q_f32(Y + r + 4, acc1);
}

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
