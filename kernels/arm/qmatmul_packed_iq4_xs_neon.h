// Private to kernels/arm/: GEMM and GEMV on IQ4_XS weights repacked as Packing{4, 4}
// (quant/repack.h: the 128 qs bytes of a super-block as pieces of 4 bytes x 4 rows, one
// register each; after all the group's codes, per super-block a record of d [4] (fp16)
// then the eight signed sub-block scales ls - 32 as s8 [8][4]), with SDOT by element.
// Included after qmatmul_packed_neon.h (sdot_block, half4, start_lanes) and before
// qmatmul_packed_k_neon.h, whose add_packed_sdot_4x4 registers it for both SDOT tables.
//
// Sub-block s is pieces 4s .. 4s + 3: piece 4s + k holds, per row, weights 32s + 4k .. + 3
// in its low nibbles and 32s + 16 + 4k .. + 3 in its high ones, so its low nibbles go
// against lane k of the token's bytes 32s .. 32s + 15 and its high ones against lane k of
// 32s + 16 .. + 31: sdot_block's c[k] and c[4 + k]. The nibbles (AND 0x0F, USHR 4) are
// looked up in IQ4_NL's 16 signed levels (TBL), as PackedNeonIQ4_NL, then signed SDOT
// against the Q8_K codes.
//
// Per super-block, row group of 4 and token (activations Q8_K, read in place):
//   per sub-block: 8 SDOTs by element into a fresh s32 chain (|.| <= 32 * 127 * 128 <
//   2^19), then isum += sc * part (MLA, sc the 4 rows' ls - 32 as s32 lanes: |isum| <=
//   8 * 32 * 2^19 < 2^27, exact); then kernels.h's step, acc + (d * dx) * float(isum)
//   (SCVTF: |isum| may pass 2^24, where the magic-number trick of the Q4_0 kernels would
//   round; SCVTF rounds as the reference's conversion does). Bit for bit the reference.
// Op counts per super-block and row group: 32 code loads, 128 vector ops of codes (per
// sub-block 4 AND, 4 USHR, 8 TBL: IQ4_NL's 16 per block of 32), 12 of scales (an 8-byte
// load, SXTL and SXTL / SXTL2 per pair of sub-blocks); per token 64 SDOT, 8 MLA and 4 of
// the float step. No min term (IQ4_XS has none) and no offset (the levels are signed).
// The codes are unpacked once per sub-block for all the tile's tokens (kTokens = 4, as
// Q4_K's: the 8 code registers, the grid and 4 + 4 accumulators fit the 32 registers;
// 6 and 8 tokens: llvm-mca 14.6 and 13.9 on N1 against 15.2, but gcc 12 keeps the
// isum registers on the stack there, stored and reloaded per sub-block);
// the GEMV (n = 1) takes two row groups at a time so that their SDOT chains alternate
// and the token's two registers per sub-block are loaded once for both (sdot_block2).
// llvm-mca (bench/mca_packed_k.sh), cycles per super-block x row (x token for the tile)
// on Neoverse N1 / N2: tile 15.2 / 14.3, GEMV 28.5 / 27.5, both bound by the two vector
// pipes (GEMV: 384 of its ~456 vector uops per 8 rows are codes and SDOTs, the rest the
// MLAs (2 uops each), the scales' SXTL and the float steps); the plain IQ4_XS kernels
// (qmatmul_neon.h's gemm_k 4 x 4, gemv_k) 29.8 / 24.5 and 37.0 / 36.0.
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
struct PackedIQ4XS {
  static constexpr size_t kGroupQs = 4 * kQKK / 2;  // code bytes per row group and super-block
  static constexpr size_t kRecord = 4 * 10;         // scale record per row group
  static constexpr size_t kXQs = 4;                 // Q8_K: d, then qs
  static constexpr int kTokens = 4;

  // Sub-block s's 8 code registers of super-block q (pieces 4s ..): c[k] the levels of
  // piece 4s + k's low nibbles, c[4 + k] of its high ones.
  [[gnu::always_inline]] static void codes(const uint8_t* q, size_t s, int8x16_t grid, int8x16_t* c) {
    const uint8_t* p = q + 4 * 16 * s;
    for (int k = 0; k < 4; ++k) {
      const uint8x16_t raw = vld1q_u8(p + 16 * k);
      c[k] = vqtbl1q_s8(grid, vandq_u8(raw, vdupq_n_u8(0x0F)));
      c[4 + k] = vqtbl1q_s8(grid, vshrq_n_u8(raw, 4));  // 0..15: TBL's index range
    }
  }
  // The 4 rows' scales of sub-blocks s and s + 1 (record bytes 8 + 4s ..) as s32 lanes:
  // one 8-byte load, 3 SXTL.
  [[gnu::always_inline]] static void scales2(const uint8_t* rec, size_t s, int32x4_t* sc) {
    const int16x8_t w = vmovl_s8(vld1_s8(reinterpret_cast<const int8_t*>(rec + 8 + 4 * s)));
    sc[0] = vmovl_s16(vget_low_s16(w));
    sc[1] = vmovl_high_s16(w);
  }
  // kernels.h's step for one super-block, lane-wise: acc + (d * dx) * float(isum).
  [[gnu::always_inline]] static float32x4_t step(float32x4_t acc, float32x4_t d, const uint8_t* xb, int32x4_t isum) {
    float dx;
    std::memcpy(&dx, xb, sizeof dx);
    return vaddq_f32(acc, vmulq_f32(vmulq_n_f32(d, dx), vcvtq_f32_s32(isum)));
  }
  static const int8_t* xcodes(const uint8_t* xb, size_t s) { return reinterpret_cast<const int8_t*>(xb + kXQs + 32 * s); }
};

// T tokens (t0 ..) against one IQ4_XS row group: 4 x T outputs.
template <int T>
[[gnu::always_inline]] inline void sdot_tile_iq4_xs(const uint8_t* group, const PackedActs& X, size_t t0, float* Y,
                                                    size_t ldy, size_t r) {
  using P = PackedIQ4XS;
  const size_t xs = X.stride;
  const int8x16_t grid = vld1q_s8(kIq4nlValues);
  // Super-block b: codes q, record rec, token t0's Q8_K block xb (token t's: + t * xs).
  const auto block = [&](const uint8_t* q, const uint8_t* rec, const uint8_t* xb, float32x4_t* acc)
                         __attribute__((always_inline)) {
    int32x4_t isum[T];
#pragma GCC unroll 16
    for (int t = 0; t < T; ++t) isum[t] = start_lanes(0);
    // Sub-block s for the T tokens, token pairs' chains alternating (sdot_block2).
    auto sub = [&](size_t s, int32x4_t sc) [[gnu::always_inline]] {
      int8x16_t c[8];
      P::codes(q, s, grid, c);
      sdot_sub32_scaled<T>(c, P::xcodes(xb, s), xs, sc, isum);
      asm volatile("" ::: "memory");  // one sub-block's codes at a time (as Q4_K's tile)
    };
#pragma GCC unroll 4  // the isum registers stay put
    for (size_t s = 0; s < 8; s += 2) {
      int32x4_t sc[2];
      P::scales2(rec, s, sc);
      sub(s, sc[0]);
      sub(s + 1, sc[1]);
    }
    const float32x4_t d = half4(rec);
#pragma GCC unroll 16
    for (int t = 0; t < T; ++t) acc[t] = P::step(acc[t], d, xb + t * xs, isum[t]);
  };
  tile_super_blocks<P, T>(group, X, t0, Y, ldy, r, block);
}

// Sub-block s of two row groups' super-blocks (codes q0, q1; the 4 rows' scales sc0, sc1)
// against one token's block xb, into isum[0], isum[1]: the two chains alternate.
[[gnu::always_inline]] inline void gemv2_sub_iq4_xs(const uint8_t* q0, const uint8_t* q1, int32x4_t sc0, int32x4_t sc1,
                                                    int8x16_t grid, const uint8_t* xb, size_t s, int32x4_t* isum) {
  using P = PackedIQ4XS;
  int8x16_t c0[8], c1[8];
  P::codes(q0, s, grid, c0);
  P::codes(q1, s, grid, c1);
  const int8_t* x = P::xcodes(xb, s);
  const int8x16_t xl = vld1q_s8(x), xh = vld1q_s8(x + 16);
  int32x4_t part[2] = {start_lanes(0), start_lanes(0)};
  sdot_block2(part, c0, xl, xh, c1, xl, xh);
  isum[0] = vmlaq_s32(isum[0], part[0], sc0);
  isum[1] = vmlaq_s32(isum[1], part[1], sc1);
  asm volatile("" ::: "memory");  // one sub-block's codes at a time
}

// GEMV (token 0) on two IQ4_XS row groups at once, rows r .. r+7.
[[gnu::always_inline]] inline void sdot_gemv2_iq4_xs(const uint8_t* g0, size_t group_bytes, const PackedActs& X,
                                                     float* Y, size_t r) {
  using P = PackedIQ4XS;
  const int8x16_t grid = vld1q_s8(kIq4nlValues);
  const auto block = [&](const uint8_t* q0, const uint8_t* q1, const uint8_t* rec0, const uint8_t* rec1,
                         const uint8_t* xb, float32x4_t& acc0, float32x4_t& acc1) __attribute__((always_inline)) {
    int32x4_t isum[2] = {start_lanes(0), start_lanes(0)};
#pragma GCC unroll 4
    for (size_t s = 0; s < 8; s += 2) {
      int32x4_t sc0[2], sc1[2];
      P::scales2(rec0, s, sc0);
      P::scales2(rec1, s, sc1);
      gemv2_sub_iq4_xs(q0, q1, sc0[0], sc1[0], grid, xb, s, isum);
      gemv2_sub_iq4_xs(q0, q1, sc0[1], sc1[1], grid, xb, s + 1, isum);
    }
    acc0 = P::step(acc0, half4(rec0), xb, isum[0]);
    acc1 = P::step(acc1, half4(rec1), xb, isum[1]);
  };
  gemv2_super_blocks<P>(g0, group_bytes, X, Y, r, block);
}

// The driver (packed_super_block_neon.h).
struct SdotIQ4XS : PackedIQ4XS {
  template <int T>
  [[gnu::always_inline]] static void tile(const uint8_t* g, const PackedActs& X, size_t t, float* Y, size_t ldy,
                                          size_t r) {
    sdot_tile_iq4_xs<T>(g, X, t, Y, ldy, r);
  }
  [[gnu::always_inline]] static void gemv2(const uint8_t* g0, size_t group_bytes, const PackedActs& X, float* Y,
                                           size_t r) {
    sdot_gemv2_iq4_xs(g0, group_bytes, X, Y, r);
  }
};
constexpr PackedQMatmulFn qmatmul_packed_sdot_iq4_xs = sdot_super_blocks<SdotIQ4XS>;
#endif  // __ARM_FEATURE_DOTPROD

}  // namespace
}  // namespace ember::kernels
