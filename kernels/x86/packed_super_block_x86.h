// Private to kernels/x86/: what every packed 256-weight (K-quant, IQ4_XS) tile shares,
// after qmatmul_packed_x86.h (VecYmm, Dot, prefetch_share, load_i32): the loop over a row
// group's super-blocks, the records' scale bytes as vectors, the activation's Q8_K fields,
// the sums against its bsums and the float steps of kernels.h. Each type's tile (qmatmul_packed_k_x86.h,
// qmatmul_packed_iq4_xs_x86.h) is then its integer sums per super-block.
#pragma once

#include <array>
#include <cstddef>
#include <cstring>

namespace ember::kernels {
namespace {

constexpr size_t kQ8KQs = 4, kQ8KBsums = 4 + kQKK;  // offsets in BlockQ8_K (d first)

// The records' scale bytes ([16][R] or [8][R]: row s = sub-block s's R = 8 rows) as
// the vectors the tiles multiply by, for VecYmm.
struct RecordBytes {
  using I = __m256i;
  // Two sub-blocks' record bytes ([2][R] at p: 16 bytes, R = 8) in both 128-bit halves:
  // one load for the in-half byte shuffles below (VPSHUFB). Lane i's words then come
  // from bytes i and 8 + i with one shuffle, where widening each row of bytes took a
  // VPMOVZXBD/VPMOVSXBD and an AND, shift and OR per pair of words: those shuffles and
  // shifts share Zen 3's two shuffle pipes with the activation broadcasts, the GEMVs'
  // bound (llvm-mca, znver3).
  static I byte_pair(const uint8_t* p) { return _mm256_broadcastsi128_si256(load128(p)); }
  // Lane i's bytes 0..3 = the pair's bytes kB0 + i, .., kB3 + i (< 0: zero).
  template <int kB0, int kB1, int kB2, int kB3>
  static I pick(I pair) {
    static constexpr auto kMask = [] {
      std::array<int8_t, 32> m{};
      const int b[4] = {kB0, kB1, kB2, kB3};
      for (int i = 0; i < 8; ++i)
        for (int n = 0; n < 4; ++n) m[4 * i + n] = static_cast<int8_t>(b[n] < 0 ? -128 : b[n] + i);
      return m;
    }();
    return _mm256_shuffle_epi8(pair, load256(reinterpret_cast<const uint8_t*>(kMask.data())));
  }
  // Half kE of the pair as flush's scale operand: unsigned bytes (AVX2 (b, b), VNNI (b, 0)).
  template <int kE>
  static I uscale(I pair) {
    if constexpr (Dot::kVnni) return pick<8 * kE, -1, -1, -1>(pair);
    return pick<8 * kE, -1, 8 * kE, -1>(pair);
  }
  // Half kE's signed bytes as lanes (sc, sc) of two s16 (VPMADDWD's operand on every
  // table): each byte to a word's high half, then an arithmetic shift.
  template <int kE>
  static I swords(I pair) { return _mm256_srai_epi16(pick<-1, 8 * kE, -1, 8 * kE>(pair), 8); }
  // The same as flush's operand: AVX2 (sc, sc), VNNI (sc, 0).
  template <int kE>
  static I sscale(I pair) {
    if constexpr (Dot::kVnni) return _mm256_srai_epi16(pick<-1, 8 * kE, -1, -1>(pair), 8);
    return swords<kE>(pair);
  }
  // The pair's signed bytes as lane i's words (a_i, b_i): bsum_pairs' operand.
  static I sword_pair(const uint8_t* p) { return _mm256_srai_epi16(pick<-1, 0, -1, 8>(byte_pair(p)), 8); }
};

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
