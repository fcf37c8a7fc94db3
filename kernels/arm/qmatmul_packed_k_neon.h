// Private to kernels/arm/: GEMM and GEMV on Q4_K and Q5_K (and Q6_K: its own section
// below) weights repacked as Packing{4, 4}
// (quant/repack.h: 4 rows x 4 code bytes per register, then per super-block a record of
// d [4], dmin [4] (fp16), the sub-block scales [8][4] and mins [8][4] as bytes), with
// SDOT by element, included after qmatmul_packed_neon.h by the dotprod and i8mm files.
// Q5_K: Q4_K's record and kernels; its codes start with the block's qh (8 pieces), then
// the qs as Q4_K's, and each code gets its fifth bit from qh (PackedK::code5).
//
// Per super-block, row group and token (activations Q8_K, read in place):
//   sub-block s (chunk s / 2 of the qs, low nibbles for even s): its 8 code registers
//   (AND or USHR of the 8 pieces; Q5_K: + the fifth bits) against the token's 32 codes,
//   8 SDOTs by element into a fresh s32 chain (4 rows in 4 lanes, |.| <= 32 * 31 * 128),
//   then isum += sc * part (MLA, sc the 4 rows' scales as s32 lanes);
//   msum = sum_s m[s] * (bsums[2s] + bsums[2s + 1]): the pair sums (ADDP, |.| <= 4064)
//   against the mins widened to s16, 8 SMLAL by element;
//   then kernels.h's two float steps, lane-wise: acc + (d * dx) * float(isum), then
//   acc - (dmin * dx) * float(msum). SCVTF, not the magic-number trick of the Q4_0
//   kernels: |isum| can reach 256 * 31 * 128 * 63 > 2^24 (Q4_K: 15, > 2^22), and SCVTF
//   rounds as the reference's conversion does. Both integer sums are exact: bit for bit the reference.
// The codes are unpacked once per sub-block for all the tile's tokens; the GEMV (n = 1)
// takes two row groups at a time so that their SDOT chains alternate (sdot_block2), for
// Q4_K, Q5_K and Q6_K alike (Q6_K: two sub-blocks of each group at a time, four chains).
#pragma once
#include <arm_neon.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <utility>

#include "kernels/arm/packed_super_block_neon.h"
#include "kernels/kernels.h"
#include "quant/blocks.h"

namespace ember::kernels {
namespace {

#if defined(__ARM_FEATURE_DOTPROD)
// float(isum) of a lane-wise sum held as 2^kFbits isum (Q2_K, Q3_K:
// qmatmul_packed_q2_q3_k_neon.h): SCVTF's fixed-point form divides it back, the exact
// integer rounded as SCVTF rounds it, in one instruction.
template <int kFbits = 0>
[[gnu::always_inline]] inline float32x4_t sum_to_float(int32x4_t isum) {
  if constexpr (kFbits == 0)
    return vcvtq_f32_s32(isum);
  else
    return vcvtq_n_f32_s32(isum, kFbits);
}

// k5: Q5_K (the qh pieces first), else Q4_K.
template <bool k5>
struct PackedK {
  static constexpr size_t kQh = k5 ? 8 * 16 : 0;       // the qh pieces' bytes, before the qs
  static constexpr size_t kQs = kQh / 4 + kQKK / 2;    // code bytes per row and super-block
  static constexpr size_t kGroupQs = 4 * kQs;          // per row group
  static constexpr size_t kRecord = 4 * 20;            // scale record per row group
  static constexpr size_t kXQs = 4, kXBsums = 4 + kQKK;  // Q8_K: d, qs, bsums
  static constexpr int kTokens = 4;  // GEMM tile: 15.9 cycles/(super-block x row x token) on N1, 6: 16.4, 8: 16.8 (spills)

  // Q5_K: sub-block s's codes from the qs byte raw (its nibble) and bit s of the qh byte h.
  // s is known once the sub-block loops are unrolled (not at the template level), so the
  // tests fold: 2 ops for s = 0, 4, 7, else 3 (Q4_K's nibble alone: 1):
  //   s = 0: SLI raw, h, 4 (bits 0..3 of h over the high nibble), AND 0x1F;
  //   s = 7: USHR h, 3 (bit 7 to 4, nothing above), SRI of raw's high nibble;
  //   else the nibble (AND / USHR) and BIT under 0x10 of h shifted by 4 - s (USHL by a
  //   constant register, which gcc makes an immediate shift; s = 4: none).
  template <bool kHigh>
  [[gnu::always_inline]] static uint8x16_t code5(uint8x16_t raw, uint8x16_t h, size_t s) {
    if (s == 0) return vandq_u8(vsliq_n_u8(raw, h, 4), vdupq_n_u8(0x1F));
    if (s == 7) return vsriq_n_u8(vshrq_n_u8(h, 3), raw, 4);
    const uint8x16_t v = kHigh ? vshrq_n_u8(raw, 4) : vandq_u8(raw, vdupq_n_u8(0x0F));
    const uint8x16_t at4 = vshlq_u8(h, vdupq_n_s8(static_cast<int8_t>(4 - static_cast<int>(s))));
    return vbslq_u8(vdupq_n_u8(0x10), at4, v);
  }
  // Sub-block s's 8 code registers (qs pieces 8 (s / 2) .. + 7 of super-block q; kHigh =
  // s odd, the high nibbles; Q5_K: piece k's fifth bits from qh piece k).
  template <bool kHigh>
  [[gnu::always_inline]] static void codes(const uint8_t* q, size_t s, int8x16_t* c) {
    const uint8_t* p = q + kQh + (s / 2) * 8 * 16;
    for (int k = 0; k < 8; ++k) {
      const uint8x16_t raw = vld1q_u8(p + 16 * k);
      if constexpr (k5)
        c[k] = vreinterpretq_s8_u8(code5<kHigh>(raw, vld1q_u8(q + 16 * k), s));
      else
        c[k] = vreinterpretq_s8_u8(kHigh ? vshrq_n_u8(raw, 4) : vandq_u8(raw, vdupq_n_u8(0x0F)));
    }
  }
  // The 4 rows' scales of sub-block s (record bytes 16 + 4s ..) as s32 lanes.
  [[gnu::always_inline]] static int32x4_t scales(const uint8_t* rec, size_t s) {
    uint64_t v = 0;  // one LDR S: no lane insert or DUP on the vector pipes
    std::memcpy(&v, rec + 16 + 4 * s, 4);
    const uint16x8_t w = vmovl_u8(vcreate_u8(v));
    return vreinterpretq_s32_u32(vmovl_u16(vget_low_u16(w)));
  }
  // The mins [8][4] (record bytes 48 ..) as s16: m[j] holds sub-blocks 2j (low half)
  // and 2j + 1 (high half).
  [[gnu::always_inline]] static void mins(const uint8_t* rec, int16x8_t* m) {
    const uint8x16_t a = vld1q_u8(rec + 48), b = vld1q_u8(rec + 64);
    m[0] = vreinterpretq_s16_u16(vmovl_u8(vget_low_u8(a)));
    m[1] = vreinterpretq_s16_u16(vmovl_high_u8(a));
    m[2] = vreinterpretq_s16_u16(vmovl_u8(vget_low_u8(b)));
    m[3] = vreinterpretq_s16_u16(vmovl_high_u8(b));
  }
  // sum_s m[s] (bsums[2s] + bsums[2s + 1]) for the token block xb, in the 4 row lanes.
  [[gnu::always_inline]] static int32x4_t min_sum(const int16x8_t* m, const uint8_t* xb) {
    const uint8_t* bs = xb + kXBsums;  // loaded as bytes: no copy through the stack
    const int16x8_t pairs =
        vpaddq_s16(vreinterpretq_s16_u8(vld1q_u8(bs)), vreinterpretq_s16_u8(vld1q_u8(bs + 16)));
    int32x4_t o = vmull_laneq_s16(vget_low_s16(m[0]), pairs, 0);
    o = vmlal_high_laneq_s16(o, m[0], pairs, 1);
    o = vmlal_laneq_s16(o, vget_low_s16(m[1]), pairs, 2);
    o = vmlal_high_laneq_s16(o, m[1], pairs, 3);
    o = vmlal_laneq_s16(o, vget_low_s16(m[2]), pairs, 4);
    o = vmlal_high_laneq_s16(o, m[2], pairs, 5);
    o = vmlal_laneq_s16(o, vget_low_s16(m[3]), pairs, 6);
    return vmlal_high_laneq_s16(o, m[3], pairs, 7);
  }
  // kernels.h's two float steps for one super-block, lane-wise (kFbits: sum_to_float's).
  template <int kFbits = 0>
  [[gnu::always_inline]] static float32x4_t steps(float32x4_t acc, float32x4_t d, float32x4_t dmin, const uint8_t* xb,
                                                  int32x4_t isum, int32x4_t msum) {
    float dx;
    std::memcpy(&dx, xb, sizeof dx);
    acc = vaddq_f32(acc, vmulq_f32(vmulq_n_f32(d, dx), sum_to_float<kFbits>(isum)));
    return vsubq_f32(acc, vmulq_f32(vmulq_n_f32(dmin, dx), vcvtq_f32_s32(msum)));
  }
  static const int8_t* xcodes(const uint8_t* xb, size_t s) { return reinterpret_cast<const int8_t*>(xb + kXQs + 32 * s); }
};
using PackedQ4K = PackedK<false>;

// T tokens (t0 ..) against one Q4_K (k5: Q5_K) row group: 4 x T outputs.
template <int T, bool k5 = false>
[[gnu::always_inline]] inline void sdot_tile_q4_k(const uint8_t* group, const PackedActs& X, size_t t0, float* Y,
                                                  size_t ldy, size_t r) {
  using P = PackedK<k5>;
  const size_t xs = X.stride;
  // Super-block b: codes q, record rec, token t0's Q8_K block xb (token t's: + t * xs).
  const auto block = [&](const uint8_t* q, const uint8_t* rec, const uint8_t* xb, float32x4_t* acc)
                         __attribute__((always_inline)) {
    int32x4_t isum[T];
#pragma GCC unroll 16
    for (int t = 0; t < T; ++t) isum[t] = start_lanes(0);
    // Sub-block s for the T tokens, token pairs' chains alternating (sdot_block2).
    auto sub = [&]<bool kHigh>(size_t s) [[gnu::always_inline]] {
      int8x16_t c[8];
      P::template codes<kHigh>(q, s, c);
      const int32x4_t sc = P::scales(rec, s);
      sdot_sub32_scaled<T>(c, P::xcodes(xb, s), xs, sc, isum);
      asm volatile("" ::: "memory");  // one sub-block's codes at a time: gcc's hoisted loads spilled
    };
#pragma GCC unroll 4  // the isum registers stay put (a rolled loop shuffled them with MOVs)
    for (size_t s = 0; s < 8; s += 2) {
      sub.template operator()<false>(s);
      sub.template operator()<true>(s + 1);
    }
    int16x8_t m[4];
    P::mins(rec, m);
    const float32x4_t d = half4(rec), dmin = half4(rec + 8);
#pragma GCC unroll 16
    for (int t = 0; t < T; ++t) {
      const uint8_t* x = xb + t * xs;
      acc[t] = P::steps(acc[t], d, dmin, x, isum[t], P::min_sum(m, x));
    }
  };
  tile_super_blocks<P, T>(group, X, t0, Y, ldy, r, block);
}

// Sub-block s of two row groups' super-blocks (codes q0, q1, records rec0, rec1) against
// one token's block xb, into isum[0], isum[1]: the two chains alternate (sdot_block2).
template <bool kHigh, bool k5>
[[gnu::always_inline]] inline void gemv2_sub_q4_k(const uint8_t* q0, const uint8_t* q1, const uint8_t* rec0,
                                                  const uint8_t* rec1, const uint8_t* xb, size_t s, int32x4_t* isum) {
  using P = PackedK<k5>;
  int8x16_t c0[8], c1[8];
  P::template codes<kHigh>(q0, s, c0);
  P::template codes<kHigh>(q1, s, c1);
  const int8_t* x = P::xcodes(xb, s);
  const int8x16_t xl = vld1q_s8(x), xh = vld1q_s8(x + 16);
  int32x4_t part[2] = {start_lanes(0), start_lanes(0)};
  sdot_block2(part, c0, xl, xh, c1, xl, xh);
  isum[0] = vmlaq_s32(isum[0], part[0], P::scales(rec0, s));
  isum[1] = vmlaq_s32(isum[1], part[1], P::scales(rec1, s));
  asm volatile("" ::: "memory");  // gcc would keep the raw codes for the next sub-block, and spill
}

// GEMV (token 0) on two row groups at once, rows r .. r+7: the token's codes are loaded
// once for both, and the two groups' chains alternate (k5: Q5_K).
template <bool k5 = false>
[[gnu::always_inline]] inline void sdot_gemv2_q4_k(const uint8_t* g0, size_t group_bytes, const PackedActs& X,
                                                   float* Y, size_t r) {
  using P = PackedK<k5>;
  const auto block = [&](const uint8_t* q0, const uint8_t* q1, const uint8_t* rec0, const uint8_t* rec1,
                         const uint8_t* xb, float32x4_t& acc0, float32x4_t& acc1) __attribute__((always_inline)) {
    int32x4_t isum[2] = {start_lanes(0), start_lanes(0)};
#pragma GCC unroll 4
    for (size_t s = 0; s < 8; s += 2) {
      gemv2_sub_q4_k<false, k5>(q0, q1, rec0, rec1, xb, s, isum);
      gemv2_sub_q4_k<true, k5>(q0, q1, rec0, rec1, xb, s + 1, isum);
    }
    int16x8_t m0[4], m1[4];
    P::mins(rec0, m0);
    P::mins(rec1, m1);
    acc0 = P::steps(acc0, half4(rec0), half4(rec0 + 8), xb, isum[0], P::min_sum(m0, xb));
    acc1 = P::steps(acc1, half4(rec1), half4(rec1 + 8), xb, isum[1], P::min_sum(m1, xb));
  };
  gemv2_super_blocks<P>(g0, group_bytes, X, Y, r, block);
}

// ---- Q6_K ---------------------------------------------------------------------------
// Packing{4, 4}: per super-block, ql's 32 pieces then qh's 16 (one register = 4 rows x 4
// code bytes each), then records of d [4] (fp16) and the sixteen s8 scales [16][4].
// Quarter kQ of half h holds weights 128h + 32kQ + l (l < 32; sub-blocks 8h + 2kQ for
// l < 16, + 1 above): low 4 bits from ql piece 16h + 8 (kQ & 1) + l / 4 (low nibbles for
// kQ < 2), high 2 bits from qh piece 32 + 8h + l / 4, bits 2kQ. Codes 0..63 against the
// activation: 4 SDOTs by element per sub-block of 16 and token, one MLA by the 4 rows'
// scales; the -32 is 32 sum_s sc[s] bsums[s] (16 SMLAL by element, s16 scales against the
// s16 bsums), taken off once per super-block: the reference's integer exactly, then
// acc + (d * dx) * float(isum) (SCVTF: |isum| may pass 2^24).
// The GEMV (sdot_gemv2_q6_k) takes two row groups and, per step, the two sub-blocks whose
// codes come from the same ql and qh registers (quarters kA and kA + 2): each piece is
// loaded once, and four SDOT chains (2 groups x 2 sub-blocks) alternate. llvm-mca, cycles
// per super-block x row on N1: 43.0 (the 1-token tile: 50.5, before the cheaper codes
// 62.8), near the two vector pipes' bound (per 8 rows: 128 SDOT, ~300 ops of codes,
// 32 MLA of 2 uops, 64 SXTL, 32 SMLAL).
struct PackedQ6K {
  static constexpr size_t kCodes = kQKK / 2 + kQKK / 4;  // code bytes per row and super-block
  static constexpr size_t kGroupQs = 4 * kCodes;
  static constexpr size_t kRecord = 4 * 18;
  static constexpr int kTokens = 4;

  // The 4 code registers of sub-block 8h + 2kQ + half (pieces 4 half .. of the quarter):
  // the nibble and qh's bits 2kQ, 2kQ + 1 put together in 2 ops (kQ = 1: 3), by shift-and-
  // insert or BIT (bits under the mask 0x30 from the shifted qh):
  //   kQ = 0: SLI ql, qh, 4 (ql's low nibble kept), AND 0x3F;
  //   kQ = 1: AND ql 0x0F, SHL qh 2, BIT under 0x30;
  //   kQ = 2: AND qh 0x30, SRI ql, 4;
  //   kQ = 3: USHR qh 2 (bits 6, 7 to 4, 5, the top two 0), SRI ql, 4 (its high nibble in).
  // 9 ops for a register of each quarter, was 14 (nibble, 2 bits, SLI): llvm-mca on N1,
  // the 1-token tile 62.8 -> 51.0 cycles per super-block x row, the GEMM 27.1 -> 23.8.
  template <int kQ>
  [[gnu::always_inline]] static int8x16_t code(uint8x16_t l, uint8x16_t hb) {
    uint8x16_t v;
    if constexpr (kQ == 0)
      v = vandq_u8(vsliq_n_u8(l, hb, 4), vdupq_n_u8(0x3F));
    else if constexpr (kQ == 1)
      v = vbslq_u8(vdupq_n_u8(0x30), vshlq_n_u8(hb, 2), vandq_u8(l, vdupq_n_u8(0x0F)));
    else if constexpr (kQ == 2)
      v = vsriq_n_u8(vandq_u8(hb, vdupq_n_u8(0x30)), l, 4);
    else
      v = vsriq_n_u8(vshrq_n_u8(hb, 2), l, 4);
    return vreinterpretq_s8_u8(v);
  }
  static const uint8_t* ql(const uint8_t* q, size_t h, int kQ, size_t k) { return q + (16 * h + 8 * (kQ & 1) + k) * 16; }
  static const uint8_t* qh(const uint8_t* q, size_t h, size_t k) { return q + (32 + 8 * h + k) * 16; }
  template <int kQ>
  [[gnu::always_inline]] static void codes(const uint8_t* q, size_t h, size_t half, int8x16_t* c) {
    for (int j = 0; j < 4; ++j) {  // a constant trip count: unrolled, c[j] in registers
      const size_t k = 4 * half + j;
      c[j] = code<kQ>(vld1q_u8(ql(q, h, kQ, k)), vld1q_u8(qh(q, h, k)));
    }
  }
  // Quarters kA and kA + 2 (kA < 2) of sub-block half `half`: they share their ql and qh
  // registers, loaded once.
  template <int kA>
  [[gnu::always_inline]] static void codes_pair(const uint8_t* q, size_t h, size_t half, int8x16_t* a, int8x16_t* b) {
    for (int j = 0; j < 4; ++j) {
      const size_t k = 4 * half + j;
      const uint8x16_t l = vld1q_u8(ql(q, h, kA, k)), hb = vld1q_u8(qh(q, h, k));
      a[j] = code<kA>(l, hb);
      b[j] = code<kA + 2>(l, hb);
    }
  }
  // The 4 rows' scales of sub-block s (record bytes 8 + 4s ..) as s32 lanes.
  [[gnu::always_inline]] static int32x4_t scales(const uint8_t* rec, size_t s) {
    uint64_t v = 0;
    std::memcpy(&v, rec + 8 + 4 * s, 4);
    return vmovl_s16(vget_low_s16(vmovl_s8(vreinterpret_s8_u64(vcreate_u64(v)))));
  }
  // The scales [16][4] as s16: w[j] holds sub-blocks 2j (low half) and 2j + 1 (high half).
  [[gnu::always_inline]] static void scales16(const uint8_t* rec, int16x8_t* w) {
    for (int i = 0; i < 4; ++i) {
      const int8x16_t v = vld1q_s8(reinterpret_cast<const int8_t*>(rec + 8 + 16 * i));
      w[2 * i] = vmovl_s8(vget_low_s8(v));
      w[2 * i + 1] = vmovl_high_s8(v);
    }
  }
  // sum_s sc[s] bsums[s] for the token block xb, in the 4 row lanes (|.| < 2^21).
  template <int J>
  [[gnu::always_inline]] static int32x4_t bsum_step(int32x4_t o, const int16x8_t* w, int16x8_t b) {
    return vmlal_high_laneq_s16(vmlal_laneq_s16(o, vget_low_s16(w[J]), b, (2 * J) % 8), w[J], b, (2 * J + 1) % 8);
  }
  // kChains (1, 2, 4) independent SMLAL chains, added at the end: the GEMVs of Q2_K and
  // Q3_K (qmatmul_packed_q2_q3_k_neon.h) take 4, the 16-deep chain's latency otherwise
  // holding the reorder buffer.
  template <int kChains = 1>
  [[gnu::always_inline]] static int32x4_t bsum_dot(const int16x8_t* w, const uint8_t* xb) {
    // The s16 bsums as bytes (little-endian lanes): a memcpy to int16_t[16] went through the stack.
    const uint8_t* bs = xb + PackedQ4K::kXBsums;
    const int16x8_t b0 = vreinterpretq_s16_u8(vld1q_u8(bs)), b1 = vreinterpretq_s16_u8(vld1q_u8(bs + 16));
    int32x4_t o[kChains];
    for (int c = 0; c < kChains; ++c) o[c] = start_lanes(0);
    o[0] = bsum_step<0>(o[0], w, b0);
    o[1 % kChains] = bsum_step<1>(o[1 % kChains], w, b0);
    o[2 % kChains] = bsum_step<2>(o[2 % kChains], w, b0);
    o[3 % kChains] = bsum_step<3>(o[3 % kChains], w, b0);
    o[4 % kChains] = bsum_step<4>(o[4 % kChains], w, b1);
    o[5 % kChains] = bsum_step<5>(o[5 % kChains], w, b1);
    o[6 % kChains] = bsum_step<6>(o[6 % kChains], w, b1);
    o[7 % kChains] = bsum_step<7>(o[7 % kChains], w, b1);
    for (int c = 1; c < kChains; ++c) o[0] = vaddq_s32(o[0], o[c]);
    return o[0];
  }
};

// One sub-block of 16 weights (code registers c[0..4), 4 rows x 4 weights each) for T
// tokens whose 16 activation bytes are at x + t xs: 4 SDOTs by element into a fresh
// chain per token, then isum[t] += sc * part (sc: the 4 rows' scales as s32 lanes).
// Q6_K's, and Q2_K's and Q3_K's (qmatmul_packed_q2_q3_k_neon.h).
template <int T>
[[gnu::always_inline]] inline void sdot_sub16(const int8x16_t* c, int32x4_t sc, const uint8_t* x, size_t xs,
                                              int32x4_t* isum) {
#pragma GCC unroll 16
  for (int t = 0; t < T; ++t) {
    const int8x16_t xt = vld1q_s8(reinterpret_cast<const int8_t*>(x + t * xs));
    int32x4_t part = start_lanes(0);
    part = vdotq_laneq_s32(part, c[0], xt, 0);
    part = vdotq_laneq_s32(part, c[1], xt, 1);
    part = vdotq_laneq_s32(part, c[2], xt, 2);
    part = vdotq_laneq_s32(part, c[3], xt, 3);
    isum[t] = vmlaq_s32(isum[t], part, sc);
  }
}

// Sub-block 8h + 2kQ + half of one row group for T tokens (token t's block at xb + t xs).
template <int T, int kQ>
[[gnu::always_inline]] inline void q6_k_sub(const uint8_t* q, const uint8_t* rec, const uint8_t* xb, size_t xs,
                                            size_t h, size_t half, int32x4_t* isum) {
  using P = PackedQ6K;
  int8x16_t c[4];
  P::codes<kQ>(q, h, half, c);
  const int32x4_t sc = P::scales(rec, 8 * h + 2 * kQ + half);
  sdot_sub16<T>(c, sc, xb + PackedQ4K::kXQs + 128 * h + 32 * kQ + 16 * half, xs, isum);
  asm volatile("" ::: "memory");  // one sub-block's codes at a time
}

// T tokens (t0 ..) against one Q6_K row group: 4 x T outputs.
template <int T>
[[gnu::always_inline]] inline void sdot_tile_q6_k(const uint8_t* group, const PackedActs& X, size_t t0, float* Y,
                                                  size_t ldy, size_t r) {
  using P = PackedQ6K;
  const size_t xs = X.stride;
  // Super-block b: codes q, record rec, token t0's Q8_K block xb (token t's: + t * xs).
  const auto block = [&](const uint8_t* q, const uint8_t* rec, const uint8_t* xb, float32x4_t* acc)
                         __attribute__((always_inline)) {
    int32x4_t isum[T];
#pragma GCC unroll 16
    for (int t = 0; t < T; ++t) isum[t] = start_lanes(0);
    for (size_t h = 0; h < 2; ++h)
      for (size_t half = 0; half < 2; ++half) {
        q6_k_sub<T, 0>(q, rec, xb, xs, h, half, isum);
        q6_k_sub<T, 1>(q, rec, xb, xs, h, half, isum);
        q6_k_sub<T, 2>(q, rec, xb, xs, h, half, isum);
        q6_k_sub<T, 3>(q, rec, xb, xs, h, half, isum);
      }
    int16x8_t w[8];
    P::scales16(rec, w);
    const float32x4_t d = half4(rec);
#pragma GCC unroll 16
    for (int t = 0; t < T; ++t) {
      const uint8_t* x = xb + t * xs;
      float dx;
      std::memcpy(&dx, x, sizeof dx);
      const int32x4_t is = vsubq_s32(isum[t], vshlq_n_s32(P::bsum_dot(w, x), 5));
      acc[t] = vaddq_f32(acc[t], vmulq_f32(vmulq_n_f32(d, dx), vcvtq_f32_s32(is)));
    }
  };
  tile_super_blocks<P, T>(group, X, t0, Y, ldy, r, block);
}

// Sub-blocks 8h + 2kA + half and 8h + 2(kA + 2) + half (kA < 2) of two row groups (codes
// q0, q1; the 4 rows' scales sa0, sa1 and sb0, sb1 as s32 lanes) against one token's block
// xb, into isum[0], isum[1]: four SDOT chains alternating, each token register loaded
// once for both groups.
template <int kA>
[[gnu::always_inline]] inline void gemv2_subs_q6_k(const uint8_t* q0, const uint8_t* q1, int32x4_t sa0, int32x4_t sa1,
                                                   int32x4_t sb0, int32x4_t sb1, const uint8_t* xb, size_t h,
                                                   size_t half, int32x4_t* isum) {
  using P = PackedQ6K;
  int8x16_t a0[4], b0[4], a1[4], b1[4];
  P::codes_pair<kA>(q0, h, half, a0, b0);
  P::codes_pair<kA>(q1, h, half, a1, b1);
  const int8_t* x = reinterpret_cast<const int8_t*>(xb + PackedQ4K::kXQs + 128 * h + 32 * kA + 16 * half);
  const int8x16_t xa = vld1q_s8(x), xc = vld1q_s8(x + 64);  // quarters kA, kA + 2
  int32x4_t p[4] = {start_lanes(0), start_lanes(0), start_lanes(0), start_lanes(0)};
  auto step = [&]<int J>() [[gnu::always_inline]] {
    p[0] = vdotq_laneq_s32(p[0], a0[J], xa, J);
    p[1] = vdotq_laneq_s32(p[1], a1[J], xa, J);
    p[2] = vdotq_laneq_s32(p[2], b0[J], xc, J);
    p[3] = vdotq_laneq_s32(p[3], b1[J], xc, J);
  };
  step.template operator()<0>();
  step.template operator()<1>();
  step.template operator()<2>();
  step.template operator()<3>();
  isum[0] = vmlaq_s32(isum[0], p[0], sa0);
  isum[1] = vmlaq_s32(isum[1], p[1], sa1);
  isum[0] = vmlaq_s32(isum[0], p[2], sb0);
  isum[1] = vmlaq_s32(isum[1], p[3], sb1);
  asm volatile("" ::: "memory");  // one pair's codes at a time (without: 46.4 cycles on N1, spills)
}

// Both halves of quarters kA, kA + 2 of two row groups: the scales of sub-blocks 8h + 2kA,
// + 1 (and + 4, + 5) loaded as 8 bytes per group and widened together (3 SXTL, not 4).
template <int kA>
[[gnu::always_inline]] inline void gemv2_pair_q6_k(const uint8_t* q0, const uint8_t* q1, const uint8_t* rec0,
                                                   const uint8_t* rec1, const uint8_t* xb, size_t h, int32x4_t* isum) {
  const size_t at = 8 + 4 * (8 * h + 2 * kA);
  auto w = [](const uint8_t* p) { return vmovl_s8(vld1_s8(reinterpret_cast<const int8_t*>(p))); };
  const int16x8_t a0 = w(rec0 + at), a1 = w(rec1 + at), b0 = w(rec0 + at + 16), b1 = w(rec1 + at + 16);
  gemv2_subs_q6_k<kA>(q0, q1, vmovl_s16(vget_low_s16(a0)), vmovl_s16(vget_low_s16(a1)), vmovl_s16(vget_low_s16(b0)),
                      vmovl_s16(vget_low_s16(b1)), xb, h, 0, isum);
  gemv2_subs_q6_k<kA>(q0, q1, vmovl_high_s16(a0), vmovl_high_s16(a1), vmovl_high_s16(b0), vmovl_high_s16(b1), xb, h, 1,
                      isum);
}

// kernels.h's float step for one Q6_K super-block of one row group: the -32 taken off
// isum (32 sum_s sc[s] bsums[s]), then acc + (d * dx) * float(isum). Q3_K's too (the same
// record): its -4 times the 16 its isum carries, 2^6, and kFbits = 4 (sum_to_float).
// osum: sum_s sc[s] bsums[s] (q6_k_osum), computed ahead where the caller wants it.
template <int kOffsetShift = 5, int kFbits = 0>
[[gnu::always_inline]] inline float32x4_t q6_k_step(float32x4_t acc, const uint8_t* rec, const uint8_t* xb,
                                                   int32x4_t isum, int32x4_t osum) {
  float dx;
  std::memcpy(&dx, xb, sizeof dx);
  const int32x4_t is = vsubq_s32(isum, vshlq_n_s32(osum, kOffsetShift));
  return vaddq_f32(acc, vmulq_f32(vmulq_n_f32(half4(rec), dx), sum_to_float<kFbits>(is)));
}
template <int kChains = 1>
[[gnu::always_inline]] inline int32x4_t q6_k_osum(const uint8_t* rec, const uint8_t* xb) {
  int16x8_t w[8];
  PackedQ6K::scales16(rec, w);
  return PackedQ6K::bsum_dot<kChains>(w, xb);
}
[[gnu::always_inline]] inline float32x4_t q6_k_step(float32x4_t acc, const uint8_t* rec, const uint8_t* xb,
                                                   int32x4_t isum) {
  return q6_k_step(acc, rec, xb, isum, q6_k_osum(rec, xb));
}

// GEMV (token 0) on two Q6_K row groups at once, rows r .. r+7 (as sdot_gemv2_q4_k).
[[gnu::always_inline]] inline void sdot_gemv2_q6_k(const uint8_t* g0, size_t group_bytes, const PackedActs& X,
                                                   float* Y, size_t r) {
  using P = PackedQ6K;
  const auto block = [&](const uint8_t* q0, const uint8_t* q1, const uint8_t* rec0, const uint8_t* rec1,
                         const uint8_t* xb, float32x4_t& acc0, float32x4_t& acc1) __attribute__((always_inline)) {
    int32x4_t isum[2] = {start_lanes(0), start_lanes(0)};
#pragma GCC unroll 2
    for (size_t h = 0; h < 2; ++h) {
      gemv2_pair_q6_k<0>(q0, q1, rec0, rec1, xb, h, isum);
      gemv2_pair_q6_k<1>(q0, q1, rec0, rec1, xb, h, isum);
    }
    acc0 = q6_k_step(acc0, rec0, xb, isum[0]);
    acc1 = q6_k_step(acc1, rec1, xb, isum[1]);
  };
  gemv2_super_blocks<P>(g0, group_bytes, X, Y, r, block);
}

// ---- drivers (packed_super_block_neon.h) -------------------------------------------------
template <bool k5>
struct SdotQ45K : PackedK<k5> {
  template <int T>
  [[gnu::always_inline]] static void tile(const uint8_t* g, const PackedActs& X, size_t t, float* Y, size_t ldy,
                                          size_t r) {
    sdot_tile_q4_k<T, k5>(g, X, t, Y, ldy, r);
  }
  [[gnu::always_inline]] static void gemv2(const uint8_t* g0, size_t group_bytes, const PackedActs& X, float* Y,
                                           size_t r) {
    sdot_gemv2_q4_k<k5>(g0, group_bytes, X, Y, r);
  }
};
constexpr PackedQMatmulFn qmatmul_packed_sdot_q4_k = sdot_super_blocks<SdotQ45K<false>>;
constexpr PackedQMatmulFn qmatmul_packed_sdot_q5_k = sdot_super_blocks<SdotQ45K<true>>;

struct SdotQ6K : PackedQ6K {
  template <int T>
  [[gnu::always_inline]] static void tile(const uint8_t* g, const PackedActs& X, size_t t, float* Y, size_t ldy,
                                          size_t r) {
    sdot_tile_q6_k<T>(g, X, t, Y, ldy, r);
  }
  [[gnu::always_inline]] static void gemv2(const uint8_t* g0, size_t group_bytes, const PackedActs& X, float* Y,
                                           size_t r) {
    sdot_gemv2_q6_k(g0, group_bytes, X, Y, r);
  }
};
constexpr PackedQMatmulFn qmatmul_packed_sdot_q6_k = sdot_super_blocks<SdotQ6K>;

// Q2_K's and Q3_K's PackedQMatmulFn (qmatmul_packed_q2_q3_k_neon.h, included after this file).
void qmatmul_packed_sdot_q2_k(const void* W, Packing, const PackedActs& X, size_t n, size_t K, float* Y, size_t ldy,
                              size_t r0, size_t r1);
void qmatmul_packed_sdot_q3_k(const void* W, Packing, const PackedActs& X, size_t n, size_t K, float* Y, size_t ldy,
                              size_t r0, size_t r1);

// The packings both SDOT tables (dotprod, i8mm) give these SDOT kernels, 4 rows x 4 bytes:
// the K-quants (Q2_K, Q3_K: qmatmul_packed_q2_q3_k_neon.h, included after this file),
// IQ4_XS (qmatmul_packed_iq4_xs_neon.h, included before it), and the 32-weight types
// whose SMMLA form would not pay (qmatmul_i8mm.cpp).
// Q4_0 and Q8_0 are each table's own.
inline void add_packed_sdot_4x4(Table& t) {
  const std::pair<DType, PackedQMatmulFn> packed[] = {
      {DType::Q5_0, qmatmul_packed_sdot<PackedNeonQ5_0>}, {DType::Q4_1, qmatmul_packed_sdot<PackedNeonQ4_1>},
      {DType::Q5_1, qmatmul_packed_sdot<PackedNeonQ5_1>}, {DType::IQ4_NL, qmatmul_packed_sdot<PackedNeonIQ4_NL>},
      {DType::Q4_K, qmatmul_packed_sdot_q4_k},            {DType::Q5_K, qmatmul_packed_sdot_q5_k},
      {DType::Q6_K, qmatmul_packed_sdot_q6_k},            {DType::IQ4_XS, qmatmul_packed_sdot_iq4_xs},
      {DType::Q2_K, qmatmul_packed_sdot_q2_k},            {DType::Q3_K, qmatmul_packed_sdot_q3_k}};
  for (const auto& [type, fn] : packed) {
    t.of(type).packing = Packing{4, 4, false};
    t.of(type).qmatmul_packed = fn;
  }
}
#endif  // __ARM_FEATURE_DOTPROD

}  // namespace
}  // namespace ember::kernels
