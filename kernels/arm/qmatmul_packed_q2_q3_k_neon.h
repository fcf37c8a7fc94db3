// Private to kernels/arm/: GEMM and GEMV on Q2_K (and Q3_K: its section below) weights
// repacked as Packing{4, 4} (quant/repack.h), with SDOT by element, included after
// qmatmul_packed_k_neon.h (whose add_packed_sdot_4x4 registers them, and whose Q4_K /
// Q6_K helpers these share) by the dotprod and i8mm files. Activations Q8_K, in place.
//
// Q2_K layout: per super-block, the 64 qs bytes as 16 pieces (one register = 4 rows x 4
// bytes); piece 8h + 4e + i at bits 2k, 2k + 1 holds 4 consecutive weights of sub-block
// s = 8h + 2k + e (activation bytes 128h + 32k + 16e + 4i ..); then records of d [4],
// dmin [4] (fp16) and the 16 scale bytes [16][4] (scale low nibble, min high nibble).
//
// Codes without shifting them down: field k is taken where it sits, v & (3 << 2k) for
// k = 0, 1, 2 (the code times 1, 4, 16) and v >> 6 for k = 3, one op per register
// (AND or USHR; shifting every field to bits 0..1 costs 6 ops per 4 registers, not 4).
// Each sub-block's scale is widened with the shift that makes its product 16 times the
// reference's term (USHLL by 4, 2, 0, 4 for k = 0..3: no extra op), so isum16 = 16 isum
// exactly (|isum16| <= 16 * 16 * 15 * 16 * 3 * 128 < 2^25), and SCVTF's fixed-point form
// (#4) gives float(isum) as SCVTF would: bit for bit the reference.
//
// Per super-block, row group and token: 16 sub-blocks x (4 SDOTs by element into a fresh
// chain, one MLA by the 4 rows' scales: sdot_sub16), i.e. 64 SDOT + 16 MLA. Shared by the
// tile's tokens: 64 code ops; the scales of two sub-blocks (e = 0, 1) from one 8-byte
// load, AND, UXTL, USHLL, USHLL2 (32 ops); the mins (high nibbles) 4 USHR, 8 UXTL. Per
// token also msum = sum_s m[s] bsums[s], 16 SMLAL by element (PackedQ6K::bsum_dot),
// taken first and in 2 (tile) or 4 (GEMV) chains: the 16-deep chain at the end of a
// super-block held the reorder buffer (llvm-mca N1, GEMV 35.5 -> 31.9 cycles); then
// kernels.h's two float steps (PackedK::steps). The GEMV takes two row groups at a time,
// their chains alternating, each activation register loaded once for both (as Q4_K's and
// Q6_K's). llvm-mca (bench/mca_packed_k.sh), cycles per super-block x row (x token for
// the 4-token tile), N1 / N2: tile 19.6 / 17.1, GEMV 30.0 / 27.9; the plain dotprod
// kernels (qmatmul_neon.h's gemm_k / gemv_k, traced by hand: not in the script):
// 42.0 / 38.4 and 51.9 / 51.6.
#pragma once
#include <arm_neon.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/arm/packed_super_block_neon.h"
#include "kernels/kernels.h"
#include "quant/blocks.h"

namespace ember::kernels {
namespace {

#if defined(__ARM_FEATURE_DOTPROD)
// Sub-block 16s of two row groups (codes a, b) against one token's 16 bytes x: two
// chains, their SDOTs alternating, into p[0], p[1].
[[gnu::always_inline]] inline void sdot_sub16x2(int32x4_t* p, const int8x16_t* a, const int8x16_t* b, int8x16_t x) {
  p[0] = vdotq_laneq_s32(p[0], a[0], x, 0);
  p[1] = vdotq_laneq_s32(p[1], b[0], x, 0);
  p[0] = vdotq_laneq_s32(p[0], a[1], x, 1);
  p[1] = vdotq_laneq_s32(p[1], b[1], x, 1);
  p[0] = vdotq_laneq_s32(p[0], a[2], x, 2);
  p[1] = vdotq_laneq_s32(p[1], b[2], x, 2);
  p[0] = vdotq_laneq_s32(p[0], a[3], x, 3);
  p[1] = vdotq_laneq_s32(p[1], b[3], x, 3);
}

// ---- Q2_K -----------------------------------------------------------------------------
struct PackedQ2K {
  static constexpr size_t kCodes = kQKK / 4;  // code bytes per row and super-block
  static constexpr size_t kGroupQs = 4 * kCodes;
  static constexpr size_t kRecord = 4 * 20;
  static constexpr int kTokens = 4;
  static constexpr int kFbits = 4;  // isum16 = 2^4 isum

  // Field k of a piece register, in place: the code times 4^k (k < 3), or times 1 (k = 3).
  template <int kK>
  [[gnu::always_inline]] static int8x16_t code(uint8x16_t v) {
    if constexpr (kK == 3) return vreinterpretq_s8_u8(vshrq_n_u8(v, 6));
    return vreinterpretq_s8_u8(vandq_u8(v, vdupq_n_u8(static_cast<uint8_t>(3 << (2 * kK)))));
  }
  // What sub-block field k's scale is shifted by: 16 / the code's factor.
  template <int kK>
  static constexpr int kScaleShift = kK == 1 ? 2 : kK == 2 ? 0 : 4;
  // The 4 code registers of sub-block 8h + 2k + e (pieces 8h + 4e ..).
  template <int kK>
  [[gnu::always_inline]] static void codes(const uint8_t* q, size_t h, size_t e, int8x16_t* c) {
    for (int i = 0; i < 4; ++i) c[i] = code<kK>(vld1q_u8(q + (8 * h + 4 * e + i) * 16));
  }
  // The 4 rows' scales of sub-blocks s, s + 1 (s even: low nibbles of record bytes
  // 16 + 4s .. + 8, one LDR D) as s32 lanes in sc[0], sc[1], times 16 / field k's factor
  // (the widening's shift): AND, UXTL, USHLL, USHLL2, 2 ops a sub-block.
  template <int kK>
  [[gnu::always_inline]] static void scales2(const uint8_t* rec, size_t s, int32x4_t* sc) {
    const uint16x8_t w = vmovl_u8(vand_u8(vld1_u8(rec + 16 + 4 * s), vdup_n_u8(0x0F)));
    sc[0] = vreinterpretq_s32_u32(vshll_n_u16(vget_low_u16(w), kScaleShift<kK>));
    sc[1] = vreinterpretq_s32_u32(vshll_high_n_u16(w, kScaleShift<kK>));
  }
  // The mins [16][4] (high nibbles) as s16: w[j] holds sub-blocks 2j (low half) and
  // 2j + 1 (high half), PackedQ6K::bsum_dot's operand.
  [[gnu::always_inline]] static void mins16(const uint8_t* rec, int16x8_t* w) {
    for (int i = 0; i < 4; ++i) {
      const uint8x16_t m = vshrq_n_u8(vld1q_u8(rec + 16 + 16 * i), 4);
      w[2 * i] = vreinterpretq_s16_u16(vmovl_u8(vget_low_u8(m)));
      w[2 * i + 1] = vreinterpretq_s16_u16(vmovl_high_u8(m));
    }
  }
  static const uint8_t* xcodes(const uint8_t* xb, size_t h, int k, size_t e) {
    return xb + PackedQ4K::kXQs + 128 * h + 32 * k + 16 * e;
  }
};

// Sub-blocks 8h + 2kK and + 1 (e = 0, 1) of one row group for T tokens (token t's block
// at xb + t xs).
template <int T, int kK>
[[gnu::always_inline]] inline void q2_k_subs(const uint8_t* q, const uint8_t* rec, const uint8_t* xb, size_t xs,
                                             size_t h, int32x4_t* isum) {
  using P = PackedQ2K;
  int32x4_t sc[2];
  P::scales2<kK>(rec, 8 * h + 2 * kK, sc);
  for (size_t e = 0; e < 2; ++e) {
    int8x16_t c[4];
    P::codes<kK>(q, h, e, c);
    sdot_sub16<T>(c, sc[e], P::xcodes(xb, h, kK, e), xs, isum);
    asm volatile("" ::: "memory");  // one sub-block's codes at a time
  }
}

// T tokens (t0 ..) against one Q2_K row group: 4 x T outputs.
template <int T>
[[gnu::always_inline]] inline void sdot_tile_q2_k(const uint8_t* group, const PackedActs& X, size_t t0, float* Y,
                                                  size_t ldy, size_t r) {
  using P = PackedQ2K;
  const size_t xs = X.stride;
  // Super-block b: codes q, record rec, token t0's Q8_K block xb (token t's: + t * xs).
  const auto block = [&](const uint8_t* q, const uint8_t* rec, const uint8_t* xb, float32x4_t* acc)
                         __attribute__((always_inline)) {
    int32x4_t msum[T];  // first, as the GEMV's (2 chains: llvm-mca N1 21.1 -> 20.1; 4: 20.6)
    {
      int16x8_t w[8];
      P::mins16(rec, w);
#pragma GCC unroll 16
      for (int t = 0; t < T; ++t) msum[t] = PackedQ6K::bsum_dot<2>(w, xb + t * xs);
    }
    int32x4_t isum[T];
#pragma GCC unroll 16
    for (int t = 0; t < T; ++t) isum[t] = start_lanes(0);
    for (size_t h = 0; h < 2; ++h) {
      q2_k_subs<T, 0>(q, rec, xb, xs, h, isum);
      q2_k_subs<T, 1>(q, rec, xb, xs, h, isum);
      q2_k_subs<T, 2>(q, rec, xb, xs, h, isum);
      q2_k_subs<T, 3>(q, rec, xb, xs, h, isum);
    }
    const float32x4_t d = half4(rec), dmin = half4(rec + 8);
#pragma GCC unroll 16
    for (int t = 0; t < T; ++t) acc[t] = PackedQ4K::steps<P::kFbits>(acc[t], d, dmin, xb + t * xs, isum[t], msum[t]);
  };
  tile_super_blocks<P, T>(group, X, t0, Y, ldy, r, block);
}

// Sub-blocks 8h + 2kK and + 1 of two row groups (codes q0, q1, records rec0, rec1)
// against one token's block xb, into isum[0], isum[1].
template <int kK>
[[gnu::always_inline]] inline void gemv2_subs_q2_k(const uint8_t* q0, const uint8_t* q1, const uint8_t* rec0,
                                                   const uint8_t* rec1, const uint8_t* xb, size_t h, int32x4_t* isum) {
  using P = PackedQ2K;
  int32x4_t sc0[2], sc1[2];
  P::scales2<kK>(rec0, 8 * h + 2 * kK, sc0);
  P::scales2<kK>(rec1, 8 * h + 2 * kK, sc1);
  for (size_t e = 0; e < 2; ++e) {
    int8x16_t c0[4], c1[4];
    P::codes<kK>(q0, h, e, c0);
    P::codes<kK>(q1, h, e, c1);
    int32x4_t p[2] = {start_lanes(0), start_lanes(0)};
    sdot_sub16x2(p, c0, c1, vld1q_s8(reinterpret_cast<const int8_t*>(P::xcodes(xb, h, kK, e))));
    isum[0] = vmlaq_s32(isum[0], p[0], sc0[e]);
    isum[1] = vmlaq_s32(isum[1], p[1], sc1[e]);
    asm volatile("" ::: "memory");  // one sub-block's codes at a time
  }
}

// GEMV (token 0) on two Q2_K row groups at once, rows r .. r+7.
[[gnu::always_inline]] inline void sdot_gemv2_q2_k(const uint8_t* g0, size_t group_bytes, const PackedActs& X,
                                                   float* Y, size_t r) {
  using P = PackedQ2K;
  const auto block = [&](const uint8_t* q0, const uint8_t* q1, const uint8_t* rec0, const uint8_t* rec1,
                         const uint8_t* xb, float32x4_t& acc0, float32x4_t& acc1) __attribute__((always_inline)) {
    // The mins' sums first: their SMLAL chains (16 deep) then run beside the sub-blocks'
    // work instead of holding the reorder buffer at the end of the super-block.
    int32x4_t msum[2];
    {
      int16x8_t w0[8], w1[8];
      P::mins16(rec0, w0);
      P::mins16(rec1, w1);
      msum[0] = PackedQ6K::bsum_dot<4>(w0, xb);
      msum[1] = PackedQ6K::bsum_dot<4>(w1, xb);
    }
    int32x4_t isum[2] = {start_lanes(0), start_lanes(0)};
    for (size_t h = 0; h < 2; ++h) {
      gemv2_subs_q2_k<0>(q0, q1, rec0, rec1, xb, h, isum);
      gemv2_subs_q2_k<1>(q0, q1, rec0, rec1, xb, h, isum);
      gemv2_subs_q2_k<2>(q0, q1, rec0, rec1, xb, h, isum);
      gemv2_subs_q2_k<3>(q0, q1, rec0, rec1, xb, h, isum);
    }
    acc0 = PackedQ4K::steps<P::kFbits>(acc0, half4(rec0), half4(rec0 + 8), xb, isum[0], msum[0]);
    acc1 = PackedQ4K::steps<P::kFbits>(acc1, half4(rec1), half4(rec1 + 8), xb, isum[1], msum[1]);
  };
  gemv2_super_blocks<P>(g0, group_bytes, X, Y, r, block);
}

// ---- Q3_K -----------------------------------------------------------------------------
// Layout: per super-block, the hmask pieces (0..7) then the qs pieces (8..23, as Q2_K's):
// sub-block s = 8h + 2k + e is qs piece 8 + 8h + 4e + i at bits 2k, 2k + 1 and, for its
// high bits, bit 4h + k of hmask piece 4e + i; then records of d [4] (fp16) and the 16
// s8 scales sc - 32 [16][4]: Q6_K's record, so PackedQ6K's scale helpers read it.
// u = low two bits | high bit << 2 (0..7), the reference's code u - 4, so
// isum = sum_s sc[s] (dot(u, x)_s - 4 bsums[s]). Codes as Q2_K's, in place: u at bits
// 0..2 (k = 0, 3), 2..4 (k = 1), 4..6 (k = 2), i.e. u times 1, 4, 16 (<= 112, an s8),
// the scales widened by 4, 2, 0, 4, so isum16 = 16 isum: the dots' part
// (|.| <= 16 * 16 * 32 * 16 * 7 * 128 < 2^27) less 64 sum_s sc[s] bsums[s] (2^26):
// exact, then q6_k_step<6, 4>. Per code register, 2 or 3 ops (PackedQ3K::code; a
// piece's 4 registers 11 for h = 0, 10 for h = 1, 168 per super-block and row group,
// against Q2_K's 64): the low field by AND (or USHR / SRI) and the high bit moved under
// it by SLI, BIT or SRI. The rest as Q2_K's: 64 SDOT + 16 MLA per token, the scales two
// sub-blocks at a time (SXTL, SSHLL, SSHLL2: 24 ops), the offset sum first (Q6_K's 16
// SMLAL, in 2 or 4 chains). llvm-mca N1 / N2: tile 22.1 / 19.8, GEMV 43.4 / 41.3
// cycles; the plain dotprod kernels (by hand, as Q2_K's): 52.6 / 46.1 and 81.5 / 80.4.
struct PackedQ3K {
  static constexpr size_t kCodes = kQKK / 8 + kQKK / 4;  // code bytes per row and super-block
  static constexpr size_t kGroupQs = 4 * kCodes;
  static constexpr size_t kRecord = 4 * 18;
  static constexpr int kTokens = 4;
  static constexpr int kFbits = 4;

  // Field k of qs register q with its high bit (bit 4kH + k of hmask register m) above it,
  // in place as above:
  //   (0, 0): SLI q, m, 2 (m's bit 0 to 2), AND 0x07;
  //   (0, 1), (0, 2), (1, 0), (1, 1): the field by AND (or USHR 6), m shifted so that
  //   its bit lands above it, BIT under that bit; (0, 3): the same with USHR q, 6;
  //   (1, 2): m's bit 6 already in place: AND, BIT;
  //   (1, 3): USHR m, 5 (bit 7 to 2, nothing above), SRI q, 6.
  template <int kH, int kK>
  [[gnu::always_inline]] static int8x16_t code(uint8x16_t q, uint8x16_t m) {
    const auto bit = [](uint8_t b, uint8x16_t from, uint8x16_t into) [[gnu::always_inline]] {
      return vbslq_u8(vdupq_n_u8(b), from, into);
    };
    uint8x16_t v;
    if constexpr (kH == 0 && kK == 0)
      v = vandq_u8(vsliq_n_u8(q, m, 2), vdupq_n_u8(0x07));
    else if constexpr (kH == 0 && kK == 1)
      v = bit(0x10, vshlq_n_u8(m, 3), vandq_u8(q, vdupq_n_u8(0x0C)));
    else if constexpr (kH == 0 && kK == 2)
      v = bit(0x40, vshlq_n_u8(m, 4), vandq_u8(q, vdupq_n_u8(0x30)));
    else if constexpr (kH == 0)
      v = bit(0x04, vshrq_n_u8(m, 1), vshrq_n_u8(q, 6));
    else if constexpr (kK == 0)
      v = bit(0x04, vshrq_n_u8(m, 2), vandq_u8(q, vdupq_n_u8(0x03)));
    else if constexpr (kK == 1)
      v = bit(0x10, vshrq_n_u8(m, 1), vandq_u8(q, vdupq_n_u8(0x0C)));
    else if constexpr (kK == 2)
      v = bit(0x40, m, vandq_u8(q, vdupq_n_u8(0x30)));
    else
      v = vsriq_n_u8(vshrq_n_u8(m, 5), q, 6);
    return vreinterpretq_s8_u8(v);
  }
  // The 4 code registers of sub-block 8kH + 2kK + e.
  template <int kH, int kK>
  [[gnu::always_inline]] static void codes(const uint8_t* q, size_t e, int8x16_t* c) {
    for (int i = 0; i < 4; ++i)
      c[i] = code<kH, kK>(vld1q_u8(q + (8 + 8 * kH + 4 * e + i) * 16), vld1q_u8(q + (4 * e + i) * 16));
  }
  // The 4 rows' s8 scales of sub-blocks s, s + 1 (s even: record bytes 8 + 4s .. + 8)
  // as s32 lanes in sc[0], sc[1], times 16 / field k's factor (Q2_K's shifts): SXTL,
  // SSHLL, SSHLL2.
  template <int kK>
  [[gnu::always_inline]] static void scales2(const uint8_t* rec, size_t s, int32x4_t* sc) {
    const int16x8_t w = vmovl_s8(vld1_s8(reinterpret_cast<const int8_t*>(rec + 8 + 4 * s)));
    sc[0] = vshll_n_s16(vget_low_s16(w), PackedQ2K::kScaleShift<kK>);
    sc[1] = vshll_high_n_s16(w, PackedQ2K::kScaleShift<kK>);
  }
};

// Sub-blocks 8kH + 2kK and + 1 of one row group for T tokens.
template <int T, int kH, int kK>
[[gnu::always_inline]] inline void q3_k_subs(const uint8_t* q, const uint8_t* rec, const uint8_t* xb, size_t xs,
                                             int32x4_t* isum) {
  using P = PackedQ3K;
  int32x4_t sc[2];
  P::scales2<kK>(rec, 8 * kH + 2 * kK, sc);
  for (size_t e = 0; e < 2; ++e) {
    int8x16_t c[4];
    P::codes<kH, kK>(q, e, c);
    sdot_sub16<T>(c, sc[e], PackedQ2K::xcodes(xb, kH, kK, e), xs, isum);
    asm volatile("" ::: "memory");  // one sub-block's codes at a time
  }
}

// The 8 sub-blocks of half kH for T tokens.
template <int T, int kH>
[[gnu::always_inline]] inline void q3_k_half(const uint8_t* q, const uint8_t* rec, const uint8_t* xb, size_t xs,
                                             int32x4_t* isum) {
  q3_k_subs<T, kH, 0>(q, rec, xb, xs, isum);
  q3_k_subs<T, kH, 1>(q, rec, xb, xs, isum);
  q3_k_subs<T, kH, 2>(q, rec, xb, xs, isum);
  q3_k_subs<T, kH, 3>(q, rec, xb, xs, isum);
}

// T tokens (t0 ..) against one Q3_K row group: 4 x T outputs.
template <int T>
[[gnu::always_inline]] inline void sdot_tile_q3_k(const uint8_t* group, const PackedActs& X, size_t t0, float* Y,
                                                  size_t ldy, size_t r) {
  using P = PackedQ3K;
  const size_t xs = X.stride;
  // Super-block b: codes q, record rec, token t0's Q8_K block xb (token t's: + t * xs).
  const auto block = [&](const uint8_t* q, const uint8_t* rec, const uint8_t* xb, float32x4_t* acc)
                         __attribute__((always_inline)) {
    int32x4_t osum[T];  // first, as Q2_K's mins
    {
      int16x8_t w[8];
      PackedQ6K::scales16(rec, w);
#pragma GCC unroll 16
      for (int t = 0; t < T; ++t) osum[t] = PackedQ6K::bsum_dot<2>(w, xb + t * xs);
    }
    int32x4_t isum[T];
#pragma GCC unroll 16
    for (int t = 0; t < T; ++t) isum[t] = start_lanes(0);
    q3_k_half<T, 0>(q, rec, xb, xs, isum);
    q3_k_half<T, 1>(q, rec, xb, xs, isum);
#pragma GCC unroll 16
    for (int t = 0; t < T; ++t) acc[t] = q6_k_step<6, P::kFbits>(acc[t], rec, xb + t * xs, isum[t], osum[t]);
  };
  tile_super_blocks<P, T>(group, X, t0, Y, ldy, r, block);
}

// Sub-blocks 8kH + 2kK and + 1 of two Q3_K row groups against one token's block xb.
template <int kH, int kK>
[[gnu::always_inline]] inline void gemv2_subs_q3_k(const uint8_t* q0, const uint8_t* q1, const uint8_t* rec0,
                                                   const uint8_t* rec1, const uint8_t* xb, int32x4_t* isum) {
  using P = PackedQ3K;
  int32x4_t sc0[2], sc1[2];
  P::scales2<kK>(rec0, 8 * kH + 2 * kK, sc0);
  P::scales2<kK>(rec1, 8 * kH + 2 * kK, sc1);
  for (size_t e = 0; e < 2; ++e) {
    int8x16_t c0[4], c1[4];
    P::codes<kH, kK>(q0, e, c0);
    P::codes<kH, kK>(q1, e, c1);
    int32x4_t p[2] = {start_lanes(0), start_lanes(0)};
    sdot_sub16x2(p, c0, c1, vld1q_s8(reinterpret_cast<const int8_t*>(PackedQ2K::xcodes(xb, kH, kK, e))));
    isum[0] = vmlaq_s32(isum[0], p[0], sc0[e]);
    isum[1] = vmlaq_s32(isum[1], p[1], sc1[e]);
    asm volatile("" ::: "memory");  // one sub-block's codes at a time
  }
}

template <int kH>
[[gnu::always_inline]] inline void gemv2_half_q3_k(const uint8_t* q0, const uint8_t* q1, const uint8_t* rec0,
                                                   const uint8_t* rec1, const uint8_t* xb, int32x4_t* isum) {
  gemv2_subs_q3_k<kH, 0>(q0, q1, rec0, rec1, xb, isum);
  gemv2_subs_q3_k<kH, 1>(q0, q1, rec0, rec1, xb, isum);
  gemv2_subs_q3_k<kH, 2>(q0, q1, rec0, rec1, xb, isum);
  gemv2_subs_q3_k<kH, 3>(q0, q1, rec0, rec1, xb, isum);
}

// GEMV (token 0) on two Q3_K row groups at once, rows r .. r+7.
[[gnu::always_inline]] inline void sdot_gemv2_q3_k(const uint8_t* g0, size_t group_bytes, const PackedActs& X,
                                                   float* Y, size_t r) {
  using P = PackedQ3K;
  const auto block = [&](const uint8_t* q0, const uint8_t* q1, const uint8_t* rec0, const uint8_t* rec1,
                         const uint8_t* xb, float32x4_t& acc0, float32x4_t& acc1) __attribute__((always_inline)) {
    // The offsets' sums first, as Q2_K's mins.
    const int32x4_t osum0 = q6_k_osum<4>(rec0, xb), osum1 = q6_k_osum<4>(rec1, xb);
    int32x4_t isum[2] = {start_lanes(0), start_lanes(0)};
    gemv2_half_q3_k<0>(q0, q1, rec0, rec1, xb, isum);
    gemv2_half_q3_k<1>(q0, q1, rec0, rec1, xb, isum);
    acc0 = q6_k_step<6, P::kFbits>(acc0, rec0, xb, isum[0], osum0);
    acc1 = q6_k_step<6, P::kFbits>(acc1, rec1, xb, isum[1], osum1);
  };
  gemv2_super_blocks<P>(g0, group_bytes, X, Y, r, block);
}

// ---- drivers (packed_super_block_neon.h) -------------------------------------------------
struct SdotQ2K : PackedQ2K {
  template <int T>
  [[gnu::always_inline]] static void tile(const uint8_t* g, const PackedActs& X, size_t t, float* Y, size_t ldy,
                                          size_t r) {
    sdot_tile_q2_k<T>(g, X, t, Y, ldy, r);
  }
  [[gnu::always_inline]] static void gemv2(const uint8_t* g0, size_t group_bytes, const PackedActs& X, float* Y,
                                           size_t r) {
    sdot_gemv2_q2_k(g0, group_bytes, X, Y, r);
  }
};

struct SdotQ3K : PackedQ3K {
  template <int T>
  [[gnu::always_inline]] static void tile(const uint8_t* g, const PackedActs& X, size_t t, float* Y, size_t ldy,
                                          size_t r) {
    sdot_tile_q3_k<T>(g, X, t, Y, ldy, r);
  }
  [[gnu::always_inline]] static void gemv2(const uint8_t* g0, size_t group_bytes, const PackedActs& X, float* Y,
                                           size_t r) {
    sdot_gemv2_q3_k(g0, group_bytes, X, Y, r);
  }
};

// Declared by qmatmul_packed_k_neon.h, whose add_packed_sdot_4x4 registers them.
void qmatmul_packed_sdot_q2_k(const void* W, Packing p, const PackedActs& X, size_t n, size_t K, float* Y, size_t ldy,
                              size_t r0, size_t r1) {
  sdot_super_blocks<SdotQ2K>(W, p, X, n, K, Y, ldy, r0, r1);
}

void qmatmul_packed_sdot_q3_k(const void* W, Packing p, const PackedActs& X, size_t n, size_t K, float* Y, size_t ldy,
                              size_t r0, size_t r1) {
  sdot_super_blocks<SdotQ3K>(W, p, X, n, K, Y, ldy, r0, r1);
}
#endif  // __ARM_FEATURE_DOTPROD

}  // namespace
}  // namespace ember::kernels
