// Private to kernels/x86/: what every packed 256-weight (K-quant, IQ4_XS) tile shares,
// after qmatmul_packed_x86.h (VecYmm, Dot, prefetch_share, load_i32): the loop over a row
// group's super-blocks, the activation's Q8_K fields, the sums against its bsums and the
// float steps of kernels.h. Each type's tile (qmatmul_packed_k_x86.h,
// qmatmul_packed_iq4_xs_x86.h) is then its integer sums per super-block.
#pragma once

#include <cstddef>
#include <cstring>

namespace ember::kernels {
namespace {

constexpr size_t kQ8KQs = 4, kQ8KBsums = 4 + kQKK;  // offsets in BlockQ8_K (d first)

// The token's activation scale: Q8_K's d, its first field.
inline float q8k_d(const uint8_t* xb) {
  float dx;
  std::memcpy(&dx, xb, sizeof dx);
  return dx;
}

// T tokens (t0 ..) against one row group (rows r ..) of nb super-blocks, each kCodes code
// bytes and kRecord record bytes per row: `block(q, rec, xb, acc)` adds super-block b's terms
// (its codes q, its record rec, the tokens' Q8_K blocks xb[T]) to acc[T]; kLanes x T outputs.
// `next`: the GEMV's prefetch of the next group (qmatmul_packed_x86.h). The tiles' lambdas
// are always_inline: gcc otherwise calls them out of line, acc[] going through memory.
template <class V, int T, size_t kCodes, size_t kRecord, class Block>
[[gnu::always_inline]] inline void super_block_tile(const uint8_t* group, const PackedActs& X, size_t t0, float* Y,
                                                    size_t ldy, size_t r, const uint8_t* next, Block block) {
  constexpr size_t R = V::kLanes;
  const size_t nb = X.nb;
  const uint8_t* records = group + nb * R * kCodes;
  typename V::F acc[T];
  for (int t = 0; t < T; ++t) acc[t] = V::fzero();
  for (size_t b = 0; b < nb; ++b) {
    prefetch_share(next, b, R * (kCodes + kRecord));
    const uint8_t* xb[T];
    for (int t = 0; t < T; ++t) xb[t] = X.q + (t0 + t) * X.stride + b * sizeof(BlockQ8_K);
    block(group + b * R * kCodes, records + b * R * kRecord, xb, acc);
  }
  for (int t = 0; t < T; ++t) V::store(Y + (t0 + t) * ldy + r, acc[t]);
}

// sum[t] + the lane-wise sum over u < 8 of words(u) (two s16 per lane: the row's weights of
// 16-weight sub-blocks 2u and 2u + 1) times the token's bsums 2u, 2u + 1: the mins (Q4_K,
// Q2_K) or offsets (Q6_K, Q3_K, IQ4_XS) against the activation's sub-block sums.
template <class V, int T, class Words>
[[gnu::always_inline]] inline void bsum_pairs(const uint8_t* const* xb, typename V::I* sum, Words words) {
  for (size_t u = 0; u < 8; ++u) {
    const typename V::I w = words(u);
    for (int t = 0; t < T; ++t) sum[t] = Dot::wdot(sum[t], w, V::set1(load_i32(xb[t] + kQ8KBsums + 4 * u)));
  }
}

// kernels.h's float step per token, acc + (d * dx) * float(isum).
template <class V, int T>
[[gnu::always_inline]] inline void scale_steps(typename V::F* acc, const uint8_t* const* xb, typename V::F d,
                                               const typename V::I* isum) {
  for (int t = 0; t < T; ++t) acc[t] = V::step(acc[t], d, q8k_d(xb[t]), isum[t]);
}

// The two steps of the types with mins: acc + (d * dx) * float(isum), then
// acc - (dmin * dx) * float(msum).
template <class V, int T>
[[gnu::always_inline]] inline void scale_min_steps(typename V::F* acc, const uint8_t* const* xb, typename V::F d,
                                                   typename V::F dmin, const typename V::I* isum,
                                                   const typename V::I* msum) {
  for (int t = 0; t < T; ++t) {
    const float dx = q8k_d(xb[t]);
    acc[t] = V::step(acc[t], d, dx, isum[t]);
    acc[t] = _mm256_sub_ps(acc[t], _mm256_mul_ps(_mm256_mul_ps(dmin, _mm256_set1_ps(dx)), _mm256_cvtepi32_ps(msum[t])));
  }
}

}  // namespace
}  // namespace ember::kernels
