// Private to kernels/arm/: GEMM and GEMV on row-interleaved Q4_0, Q4_1, Q5_0, Q5_1,
// IQ4_NL and Q8_0 weights (quant/repack.h), included after qmatmul_neon.h by the SDOT
// and SMMLA ISA files:
//   Packing{4, 4}  (qmatmul_dotprod.cpp: Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL, Q8_0; the i8mm
//                  table runs these for all but Q4_0 and Q8_0 too): one q register
//                  = 4 rows x 4 code bytes, so SDOT by element (the activation's 4 bytes
//                  broadcast) gives the 4 rows' sums in the 4 s32 lanes: 8 SDOTs per
//                  block, token and row group, no horizontal reduction.
//   Packing{4, 8}  (qmatmul_i8mm.cpp: Q4_0, Q8_0): one q register = 2 rows x 8 code
//                  bytes, SMMLA's A operand; tokens paired the same way (2 x 8 bytes) give
//                  2x2 s32 tiles.
//
// Numerics (kernels.h): exact int32 block sums, then acc + (dw * dx) * float(isum) per
// output, plain FMUL/FADD (-ffp-contract=off). Two tricks keep that cheap:
//  * float(isum) without SCVTF (2 uops on one pipe on Neoverse N1/N2): every SDOT/SMMLA
//    chain starts at the bits of 1.5 * 2^23, so it ends at the bits of the float
//    1.5 * 2^23 + isum (exact: |isum| <= 32 * 128 * 127 < 2^22), and one FSUB of
//    1.5 * 2^23 gives float(isum) exactly (+0.0 for 0, as SCVTF).
//  * Q4_0's -8 (Q5_0's -16): codes stay unsigned (nibbles by AND / USHR, 2 ops per 16
//    bytes) and the chain's start value also carries -8 * sum(x) (PackedActs.sums): one
//    DUP from a general register per token and block (the M pipe on N1, off the vector
//    pipes), where subtracting 8 from the codes would cost 8 vector ops per block and row
//    group: more for every tile of fewer than 8 tokens, GEMV (decode) above all.
//    (Q5_0's codes 0..31 less 16: |isum| <= 32 * 16 * 127 < 2^22, exact as well.)
// Q4_1 and Q5_1 take the same codes with no offset, and each output the reference's
// second step per block, acc + (m * dx) * float(sum(x)) (min_step), after the first.
#pragma once
#include <arm_neon.h>

#include <cstddef>
#include <cstdint>

#include "kernels/kernels.h"
#include "quant/blocks.h"

namespace ember::kernels {
namespace {

constexpr int32_t kMagicBits = 0x4B400000;  // the float 1.5 * 2^23 = 12582912
constexpr float kMagic = 12582912.0f;

// A chain's start value in all lanes: DUP from a general register (the M pipe on N1,
// not a vector pipe), once per chain. The empty asm keeps v there (gcc otherwise
// rewrites kMagicBits - 8 * sum as an FMOV, SHL and DUP on the vector pipes) and, being
// volatile, is not merged: a constant start (Q8_0) would else be one register copied
// (MOV, a vector op) into every chain.
int32x4_t start_lanes(int32_t v) {
  asm volatile("" : "+r"(v));
  return vdupq_n_s32(v);
}

// float(isum) from a chain that started at kMagicBits (+ any offset).
float32x4_t magic_to_float(int32x4_t chain) { return vsubq_f32(vreinterpretq_f32_s32(chain), vdupq_n_f32(kMagic)); }

// The 4 fp16 scales at p (any alignment; a block's record starts with them) as floats.
float32x4_t half4(const uint8_t* p) { return vcvt_f32_f16(vreinterpret_f16_u8(vld1_u8(p))); }

// A block's 16-byte code registers for a row group, c[0..8), in both packings: the
// block's quants are 4 (Q4_0) or 8 (Q8_0) consecutive registers, and Q4_0's register j
// gives c[j] (low nibbles) and c[4 + j] (high nibbles: the weights 16 on). codes(q, rec,
// c) reads the quants at q and the block's record (4 rows' kRecord bytes each: the fp16
// scales first, then Q4_1 / Q5_1's fp16 mins, then the Q5 types' fifth bits) at rec.
//   Packing{4, 4}: c[k] = the 4 rows' weights 4k .. 4k+3 (lane i = row i).
//   Packing{4, 8}: c[2k + h] = rows 2h, 2h+1's weights 8k .. 8k+7 (SMMLA's A operand).
// start(sum): the chain's start value for an activation block whose codes sum to sum.
// kSdotTokens: the SDOT GEMM's tokens per tile (llvm-mca on neoverse-n1, docs/PERFORMANCE.md):
// Q4_0's unpacking and scale conversion (10 vector ops per block) spread over 12 tokens
// (1.61 cycles per block x row x token; 8: 1.66), while Q8_0 (2 ops) gains nothing past 8.
// Each token costs 12 vector ops per block: 8 SDOTs, FSUB, FMUL, FMUL, FADD.
// kMin: the record's second fp16 field (after the 4 rows' d) is Q4_1 / Q5_1's min m, and
// each output takes the reference's second step per block, acc + (m * dx) * float(sum).
struct PackedNeonQ4_0 {
  static constexpr size_t kQs = 16;     // qs bytes per row and block
  static constexpr size_t kRecord = 2;  // record bytes per row and block: the fp16 d
  static constexpr int kSdotTokens = 12;
  static constexpr bool kMin = false;
  static constexpr int32_t start(int32_t sum) { return kMagicBits - 8 * sum; }
  static void codes(const uint8_t* q, const uint8_t*, int8x16_t* c) {
    const uint8x16_t m = vdupq_n_u8(0x0F);
    for (int j = 0; j < 4; ++j) {
      const uint8x16_t raw = vld1q_u8(q + 16 * j);
      c[j] = vreinterpretq_s8_u8(vandq_u8(raw, m));
      c[4 + j] = vreinterpretq_s8_u8(vshrq_n_u8(raw, 4));
    }
  }
};

struct PackedNeonQ8_0 {
  static constexpr size_t kQs = 32;
  static constexpr size_t kRecord = 2;
  static constexpr int kSdotTokens = 8;
  static constexpr bool kMin = false;
  static constexpr int32_t start(int32_t) { return kMagicBits; }
  static void codes(const uint8_t* q, const uint8_t*, int8x16_t* c) {
    for (int j = 0; j < 8; ++j) c[j] = vld1q_s8(reinterpret_cast<const int8_t*>(q + 16 * j));
  }
};

// Q5_0, Packing{4, 4} only (the layout's fifth-bit words are defined for G = 4): Q4_0's
// nibbles, each with its fifth bit at bit 4 (codes 0..31; the -16 in start). The block's
// record holds, after the 4 scales, the rows' transposed fifth-bit words: one register w,
// lane i = row i, where bit k of byte m is the fifth bit of the same byte of c[k]. So
// p = (w >> j) & 0x11 per byte has c[j]'s bits at bit 0 and c[4 + j]'s at bit 4:
// c[j] = SLI(raw, p, 4) (p << 4 over raw's low nibble; p's bit 4 leaves the byte) and
// c[4 + j] = BIT of p's bit 4 into raw >> 4. 19 vector ops per block and row group
// (Q4_0: 8); SRI(p, raw, 4) for c[4 + j] would save the USHR, but SLI and SRI would each
// overwrite the register the other reads, and gcc then copies one (a MOV: no gain).
// kSdotTokens as Q4_0's (llvm-mca on neoverse-n1, cycles per block x row x token: 8
// tokens 1.83, 10: 1.78, 12: 1.73, 14: 1.75, 16: 1.81, spilled).
struct PackedNeonQ5_0 {
  static constexpr size_t kQs = 16;
  static constexpr size_t kRecord = 6;  // fp16 d, then (after all 4 rows' d) a u32 of fifth bits
  static constexpr int kSdotTokens = 12;
  static constexpr bool kMin = false;
  static constexpr int32_t start(int32_t sum) { return kMagicBits - 16 * sum; }
  // c[j] and c[4 + j] from quants register j.
  template <int j>
  static void pair(const uint8_t* q, uint8x16_t w, int8x16_t* c) {
    const uint8x16_t raw = vld1q_u8(q + 16 * j);
    uint8x16_t p = w;
    if constexpr (j > 0) p = vshrq_n_u8(w, j);  // (USHR's shift is 1..8)
    p = vandq_u8(p, vdupq_n_u8(0x11));
    c[j] = vreinterpretq_s8_u8(vsliq_n_u8(raw, p, 4));
    c[4 + j] = vreinterpretq_s8_u8(vbslq_u8(vdupq_n_u8(0x10), p, vshrq_n_u8(raw, 4)));
  }
  // The block's codes from its quants q and fifth-bit words w.
  static void codes_w(const uint8_t* q, uint8x16_t w, int8x16_t* c) {
    pair<0>(q, w, c);
    pair<1>(q, w, c);
    pair<2>(q, w, c);
    pair<3>(q, w, c);
  }
  static void codes(const uint8_t* q, const uint8_t* rec, int8x16_t* c) {
    codes_w(q, vld1q_u8(rec + 4 * 2), c);  // the words after the 4 rows' fp16 d
  }
};

// Q4_1 / Q5_1: Q4_0 / Q5_0's codes (0..15, 0..31) with no offset (the chain starts at
// kMagicBits alone; |isum| <= 32 * 31 * 128 < 2^22, exact), and the min step (kMin).
// Their records: the 4 rows' d, the 4 rows' m, then (Q5_1) the fifth-bit words.
struct PackedNeonQ4_1 : PackedNeonQ4_0 {
  static constexpr size_t kRecord = 4;
  static constexpr bool kMin = true;
  static constexpr int32_t start(int32_t) { return kMagicBits; }
};

struct PackedNeonQ5_1 : PackedNeonQ5_0 {
  static constexpr size_t kRecord = 8;
  static constexpr bool kMin = true;
  static constexpr int32_t start(int32_t) { return kMagicBits; }
  static void codes(const uint8_t* q, const uint8_t* rec, int8x16_t* c) {
    codes_w(q, vld1q_u8(rec + 4 * 4), c);  // after the 4 rows' d and the 4 rows' m
  }
};

// IQ4_NL, laid out as Q4_0: the nibbles looked up in the 16-level int8 grid (TBL), then
// Q8_0's signed dots with no offset (|isum| <= 32 * 127 * 128 < 2^22, the start's bound).
// 16 vector ops per block and row group (Q4_0: 8), shared by the tile's tokens.
struct PackedNeonIQ4_NL : PackedNeonQ4_0 {
  static constexpr int32_t start(int32_t) { return kMagicBits; }
  static void codes(const uint8_t* q, const uint8_t* rec, int8x16_t* c) {
    PackedNeonQ4_0::codes(q, rec, c);
    const int8x16_t grid = vld1q_s8(kIq4nlValues);
    for (int j = 0; j < 8; ++j) c[j] = vqtbl1q_s8(grid, vreinterpretq_u8_s8(c[j]));
  }
};

#if defined(__ARM_FEATURE_DOTPROD)
// The 4 rows' sums of one block against one token's codes (xl: 0..15, xh: 16..31),
// added to s: 8 SDOTs by element. (inline: the i8mm file compiles it without using it.)
inline int32x4_t sdot_block(int32x4_t s, const int8x16_t* c, int8x16_t xl, int8x16_t xh) {
  s = vdotq_laneq_s32(s, c[0], xl, 0);
  s = vdotq_laneq_s32(s, c[1], xl, 1);
  s = vdotq_laneq_s32(s, c[2], xl, 2);
  s = vdotq_laneq_s32(s, c[3], xl, 3);
  s = vdotq_laneq_s32(s, c[4], xh, 0);
  s = vdotq_laneq_s32(s, c[5], xh, 1);
  s = vdotq_laneq_s32(s, c[6], xh, 2);
  return vdotq_laneq_s32(s, c[7], xh, 3);
}

// sdot_block twice, the SDOTs of the two chains alternating (an in-order core, e.g.
// Cortex-A55, then has two chains in flight): codes ca against a token's codes (al, ah)
// into s[0], cb against (bl, bh) into s[1]. The GEMM passes one block and two tokens,
// the GEMV two row groups and one token.
inline void sdot_block2(int32x4_t* s, const int8x16_t* ca, int8x16_t al, int8x16_t ah, const int8x16_t* cb, int8x16_t bl,
                 int8x16_t bh) {
  s[0] = vdotq_laneq_s32(s[0], ca[0], al, 0);
  s[1] = vdotq_laneq_s32(s[1], cb[0], bl, 0);
  s[0] = vdotq_laneq_s32(s[0], ca[1], al, 1);
  s[1] = vdotq_laneq_s32(s[1], cb[1], bl, 1);
  s[0] = vdotq_laneq_s32(s[0], ca[2], al, 2);
  s[1] = vdotq_laneq_s32(s[1], cb[2], bl, 2);
  s[0] = vdotq_laneq_s32(s[0], ca[3], al, 3);
  s[1] = vdotq_laneq_s32(s[1], cb[3], bl, 3);
  s[0] = vdotq_laneq_s32(s[0], ca[4], ah, 0);
  s[1] = vdotq_laneq_s32(s[1], cb[4], bh, 0);
  s[0] = vdotq_laneq_s32(s[0], ca[5], ah, 1);
  s[1] = vdotq_laneq_s32(s[1], cb[5], bh, 1);
  s[0] = vdotq_laneq_s32(s[0], ca[6], ah, 2);
  s[1] = vdotq_laneq_s32(s[1], cb[6], bh, 2);
  s[0] = vdotq_laneq_s32(s[0], ca[7], ah, 3);
  s[1] = vdotq_laneq_s32(s[1], cb[7], bh, 3);
}

// A 32-weight sub-block's codes c (4 rows) against T tokens' 32 codes (token t's at x0 +
// t * xs), token pairs' chains alternating (sdot_block2), each chain times the rows'
// scales sc (MLA) into isum[t]: the K-quant-style tiles' inner step (Q4_K, Q5_K, IQ4_XS).
template <int T>
[[gnu::always_inline]] inline void sdot_sub32_scaled(const int8x16_t* c, const int8_t* x0, size_t xs, int32x4_t sc,
                                                     int32x4_t* isum) {
#pragma GCC unroll 16
  for (int t = 0; t < T; t += 2) {
    const int8_t* xa = x0 + t * xs;
    if (t + 1 < T) {
      const int8_t* xc = xa + xs;
      int32x4_t part[2] = {start_lanes(0), start_lanes(0)};
      sdot_block2(part, c, vld1q_s8(xa), vld1q_s8(xa + 16), c, vld1q_s8(xc), vld1q_s8(xc + 16));
      isum[t] = vmlaq_s32(isum[t], part[0], sc);
      isum[t + 1] = vmlaq_s32(isum[t + 1], part[1], sc);
    } else {
      isum[t] = vmlaq_s32(isum[t], sdot_block(start_lanes(0), c, vld1q_s8(xa), vld1q_s8(xa + 16)), sc);
    }
  }
}

// Q4_1 / Q5_1's second step per block and token (Ty::kMin; the others: acc as it is),
// after the scale step as in the reference: acc + (m * dx) * float(sum), mw the 4 rows'
// mins, sum the activation block's code sum (|sum| <= 32 * 128: SCVTF is exact).
template <class Ty>
[[gnu::always_inline]] inline float32x4_t min_step(float32x4_t acc, float32x4_t mw, float dx, int32_t sum) {
  if constexpr (!Ty::kMin) return acc;
  return vaddq_f32(acc, vmulq_n_f32(vmulq_n_f32(mw, dx), static_cast<float>(sum)));
}

// The 4 rows' mins of a block's record (Ty::kMin; the others: unused, optimized away).
template <class Ty>
[[gnu::always_inline]] inline float32x4_t mins4(const uint8_t* rec) {
  if constexpr (!Ty::kMin) return vdupq_n_f32(0.0f);
  return half4(rec + 4 * 2);  // after the 4 rows' d
}

// T tokens (t0 ..) against one Packing{4, 4} row group: 4 x T outputs. Each block's
// codes are unpacked once for the T tokens.
template <class Ty, int T>
[[gnu::always_inline]] inline void sdot_tile(const uint8_t* group, const PackedActs& X, size_t t0, float* Y,
                                             size_t ldy, size_t r) {
  const size_t nb = X.nb;
  const uint8_t* records = group + nb * 4 * Ty::kQs;
  float32x4_t acc[T];
#pragma GCC unroll 16
  for (int t = 0; t < T; ++t) acc[t] = vdupq_n_f32(0.0f);
  // One pointer per stream stepping over the tile's tokens (a pointer per token and
  // stream would not fit the 31 general registers: gcc spilled them).
  const size_t xs = X.stride;
  const uint8_t* xq = X.q + t0 * xs + 2;
  const float* dx = X.d + t0 * nb;
  const int32_t* sums = X.sums + t0 * nb;
  for (size_t b = 0; b < nb; ++b) {
    const uint8_t* rec = records + b * 4 * Ty::kRecord;
    int8x16_t c[8];
    Ty::codes(group + b * 4 * Ty::kQs, rec, c);
    const float32x4_t dw = half4(rec), mw = mins4<Ty>(rec);
    const uint8_t* x = xq + b * sizeof(BlockQ8_0);
#pragma GCC unroll 16  // fully, so that acc[] lives in registers
    for (int t = 0; t < T; t += 2) {  // token pairs (sdot_block2)
      const auto* xa = reinterpret_cast<const int8_t*>(x + t * xs);
      if (t + 1 < T) {
        const auto* xb = xa + xs;
        int32x4_t s[2] = {start_lanes(Ty::start(sums[t * nb + b])), start_lanes(Ty::start(sums[(t + 1) * nb + b]))};
        sdot_block2(s, c, vld1q_s8(xa), vld1q_s8(xa + 16), c, vld1q_s8(xb), vld1q_s8(xb + 16));
        acc[t] = vaddq_f32(acc[t], vmulq_f32(vmulq_n_f32(dw, dx[t * nb + b]), magic_to_float(s[0])));
        acc[t + 1] = vaddq_f32(acc[t + 1], vmulq_f32(vmulq_n_f32(dw, dx[(t + 1) * nb + b]), magic_to_float(s[1])));
        acc[t] = min_step<Ty>(acc[t], mw, dx[t * nb + b], sums[t * nb + b]);
        acc[t + 1] = min_step<Ty>(acc[t + 1], mw, dx[(t + 1) * nb + b], sums[(t + 1) * nb + b]);
      } else {
        const int32x4_t s = sdot_block(start_lanes(Ty::start(sums[t * nb + b])), c, vld1q_s8(xa), vld1q_s8(xa + 16));
        acc[t] = vaddq_f32(acc[t], vmulq_f32(vmulq_n_f32(dw, dx[t * nb + b]), magic_to_float(s)));
        acc[t] = min_step<Ty>(acc[t], mw, dx[t * nb + b], sums[t * nb + b]);
      }
      asm volatile("" ::: "memory");  // two tokens at a time: gcc's hoisted loads spilled acc[]
    }
  }
#pragma GCC unroll 16
  for (int t = 0; t < T; ++t) vst1q_f32(Y + (t0 + t) * ldy + r, acc[t]);
}

// GEMV (one token t) on two row groups at once, rows r .. r+7: the token's codes and
// start value are loaded once for both, and the two chains alternate (sdot_block2).
template <class Ty>
[[gnu::always_inline]] inline void sdot_gemv2(const uint8_t* g0, size_t group_bytes, const PackedActs& X, size_t t,
                                              float* Y, size_t r) {
  const size_t nb = X.nb;
  const uint8_t* g1 = g0 + group_bytes;
  const uint8_t* records0 = g0 + nb * 4 * Ty::kQs;
  const uint8_t* records1 = g1 + nb * 4 * Ty::kQs;
  const uint8_t* xq = X.q + t * X.stride + 2;
  float32x4_t acc0 = vdupq_n_f32(0.0f), acc1 = vdupq_n_f32(0.0f);
  for (size_t b = 0; b < nb; ++b) {
    const uint8_t *rec0 = records0 + b * 4 * Ty::kRecord, *rec1 = records1 + b * 4 * Ty::kRecord;
    int8x16_t c0[8], c1[8];
    Ty::codes(g0 + b * 4 * Ty::kQs, rec0, c0);
    Ty::codes(g1 + b * 4 * Ty::kQs, rec1, c1);
    const auto* x = reinterpret_cast<const int8_t*>(xq + b * sizeof(BlockQ8_0));
    const int8x16_t xl = vld1q_s8(x), xh = vld1q_s8(x + 16);
    const int32_t sum = X.sums[t * nb + b], start = Ty::start(sum);
    int32x4_t s[2] = {start_lanes(start), start_lanes(start)};
    sdot_block2(s, c0, xl, xh, c1, xl, xh);
    const float d = X.d[t * nb + b];
    acc0 = vaddq_f32(acc0, vmulq_f32(vmulq_n_f32(half4(rec0), d), magic_to_float(s[0])));
    acc1 = vaddq_f32(acc1, vmulq_f32(vmulq_n_f32(half4(rec1), d), magic_to_float(s[1])));
    acc0 = min_step<Ty>(acc0, mins4<Ty>(rec0), d, sum);
    acc1 = min_step<Ty>(acc1, mins4<Ty>(rec1), d, sum);
  }
  vst1q_f32(Y + r, acc0);  // n = 1: token 0's row of Y
  vst1q_f32(Y + r + 4, acc1);
}

// The last 1 .. T tokens (rest of them) by the tile of that width.
template <class Ty, int T>
void sdot_rest(const uint8_t* g, const PackedActs& X, size_t t, size_t rest, float* Y, size_t ldy, size_t r) {
  if constexpr (T > 0) {
    if (rest == T) return sdot_tile<Ty, T>(g, X, t, Y, ldy, r);
    sdot_rest<Ty, T - 1>(g, X, t, rest, Y, ldy, r);
  }
}

// The PackedQMatmulFn for Packing{4, 4}: row groups of 4, tokens Ty::kSdotTokens at a
// time, then the last few; decode (n = 1) two row groups at a time.
template <class Ty>
void qmatmul_packed_sdot(const void* W, Packing, const PackedActs& X, size_t n, size_t K, float* Y, size_t ldy,
                         size_t r0, size_t r1) {
  constexpr int kTokens = Ty::kSdotTokens;
  const size_t group_bytes = 4 * (K / kQK) * (Ty::kQs + Ty::kRecord);
  const auto* w = static_cast<const uint8_t*>(W);
  size_t r = r0;
  if (n == 1)  // decode: two row groups at a time
    for (; r + 8 <= r1; r += 8) sdot_gemv2<Ty>(w + (r / 4) * group_bytes, group_bytes, X, 0, Y, r);
  for (; r < r1; r += 4) {
    const uint8_t* g = w + (r / 4) * group_bytes;
    size_t t = 0;
    for (; t + kTokens <= n; t += kTokens) sdot_tile<Ty, kTokens>(g, X, t, Y, ldy, r);
    sdot_rest<Ty, kTokens - 1>(g, X, t, n - t, Y, ldy, r);
  }
}
#endif  // __ARM_FEATURE_DOTPROD

#if defined(__ARM_FEATURE_MATMUL_INT8)
// 64-bit interleaves of two registers: (a.lo, b.lo) and (a.hi, b.hi).
int8x16_t zip64_lo(int8x16_t a, int8x16_t b) {
  return vreinterpretq_s8_s64(vzip1q_s64(vreinterpretq_s64_s8(a), vreinterpretq_s64_s8(b)));
}
int8x16_t zip64_hi(int8x16_t a, int8x16_t b) {
  return vreinterpretq_s8_s64(vzip2q_s64(vreinterpretq_s64_s8(a), vreinterpretq_s64_s8(b)));
}

// GEMV on Packing{4, 8} (decode on i8mm cores), G row groups at once (rows r .. r+4G):
// SDOT on the same registers, with the activation's 8-byte pieces in both halves, so
// lanes 2i and 2i+1 hold the two halves of row i's sum (i = 0, 1 per register); one ADDP
// of the two row-pair chains gives the 4 rows. Each chain starts at half the start value
// (even), so the pair sums carry it once. SMMLA would waste half of its 2x2 output on a
// single token. Two groups share the activation's loads and broadcasts, and their
// chains alternate (in-order cores: four in flight).
template <class Ty, int G>
[[gnu::always_inline]] inline void mmla_gemv(const uint8_t* group, size_t group_bytes, const PackedActs& X,
                                             size_t t, float* Y, size_t ldy, size_t r) {
  const size_t nb = X.nb;
  const uint8_t* xq = X.q + t * X.stride + 2;
  float32x4_t acc[G];
  for (int g = 0; g < G; ++g) acc[g] = vdupq_n_f32(0.0f);
  for (size_t b = 0; b < nb; ++b) {
    int8x16_t c[G][8];
    const uint8_t* rec = group + nb * 4 * Ty::kQs + b * 4 * Ty::kRecord;  // group g's: + g * group_bytes
    for (int g = 0; g < G; ++g) Ty::codes(group + g * group_bytes + b * 4 * Ty::kQs, rec + g * group_bytes, c[g]);
    const auto* x = reinterpret_cast<const int8_t*>(xq + b * sizeof(BlockQ8_0));
    const int64x2_t xl = vreinterpretq_s64_s8(vld1q_s8(x)), xh = vreinterpretq_s64_s8(vld1q_s8(x + 16));
    const int8x16_t xd[4] = {vreinterpretq_s8_s64(vdupq_laneq_s64(xl, 0)), vreinterpretq_s8_s64(vdupq_laneq_s64(xl, 1)),
                             vreinterpretq_s8_s64(vdupq_laneq_s64(xh, 0)), vreinterpretq_s8_s64(vdupq_laneq_s64(xh, 1))};
    const int32_t half = Ty::start(X.sums[t * nb + b]) / 2;
    int32x4_t s[G][2];
    for (int g = 0; g < G; ++g) s[g][0] = start_lanes(half), s[g][1] = start_lanes(half);
    for (int k = 0; k < 4; ++k)
      for (int g = 0; g < G; ++g)
        for (int i = 0; i < 2; ++i) s[g][i] = vdotq_s32(s[g][i], c[g][2 * k + i], xd[k]);
    const float d = X.d[t * nb + b];
    for (int g = 0; g < G; ++g) {
      const float32x4_t dw = half4(rec + g * group_bytes);
      acc[g] = vaddq_f32(acc[g], vmulq_f32(vmulq_n_f32(dw, d), magic_to_float(vpaddq_s32(s[g][0], s[g][1]))));
    }
  }
  for (int g = 0; g < G; ++g) vst1q_f32(Y + t * ldy + r + 4 * g, acc[g]);
}

// One token pair's activation block as the SMMLA tiles read it: the pair's 8-byte pieces
// interleaved (B operands of weights 8k ..), the chains' start value (tokens a, b, a, b)
// twice, so each of the two row-pair chains loads its own (no register copy), and the
// scales (dxa, dxb, dxa, dxb).
struct PairBlock {
  int8x16_t bx[4];
  int32x4_t init[2];
  float32x4_t dxp;
};
constexpr size_t kSlab = 32;  // blocks per prepared slab: 4 pairs x 32 x 112 bytes on the stack

// The token of slot j of a tile whose first `valid` slots are real (the rest repeat the
// last real one; their outputs are dropped).
size_t slot_token(size_t t0, size_t valid, size_t j) { return t0 + (j < valid ? j : valid - 1); }

// Blocks b0 .. b1 of the tile's P token pairs into buf[b - b0][q], once per tile and
// slab for every row group (the interleave would otherwise be redone per group).
template <class Ty, int P>
void prep_pairs(const PackedActs& X, size_t t0, size_t valid, size_t b0, size_t b1, PairBlock (*buf)[4]) {
  const size_t nb = X.nb;
  for (int q = 0; q < P; ++q) {
    const size_t ta = slot_token(t0, valid, 2 * q), tb = slot_token(t0, valid, 2 * q + 1);
    for (size_t b = b0; b < b1; ++b) {
      const auto* xa = reinterpret_cast<const int8_t*>(X.q + ta * X.stride + b * sizeof(BlockQ8_0) + 2);
      const auto* xb = reinterpret_cast<const int8_t*>(X.q + tb * X.stride + b * sizeof(BlockQ8_0) + 2);
      const int8x16_t la = vld1q_s8(xa), ha = vld1q_s8(xa + 16), lb = vld1q_s8(xb), hb = vld1q_s8(xb + 16);
      PairBlock& pb = buf[b - b0][q];
      pb.bx[0] = zip64_lo(la, lb);
      pb.bx[1] = zip64_hi(la, lb);
      pb.bx[2] = zip64_lo(ha, hb);
      pb.bx[3] = zip64_hi(ha, hb);
      const int32_t sa = Ty::start(X.sums[ta * nb + b]), sb = Ty::start(X.sums[tb * nb + b]);
      pb.init[0] = pb.init[1] = int32x4_t{sa, sb, sa, sb};
      const float da = X.d[ta * nb + b], db = X.d[tb * nb + b];
      pb.dxp = float32x4_t{da, db, da, db};
    }
  }
}

// One Packing{4, 8} row group (rows r ..) against a tile's P token pairs over blocks
// b0 .. b1, as 2 x P SMMLA tiles of 2 rows x 2 tokens: lanes (row 2h, token 2q),
// (2h, 2q+1), (2h+1, 2q), (2h+1, 2q+1). The accumulators carry over between slabs in Y
// (stored and reloaded exactly); the first slab starts them at 0.
template <class Ty, int P>
[[gnu::always_inline]] inline void mmla_slab(const uint8_t* group, size_t nb, const PairBlock (*buf)[4], size_t b0,
                                             size_t b1, size_t t0, size_t valid, float* Y, size_t ldy, size_t r) {
  const uint8_t* records = group + nb * 4 * Ty::kQs;
  float32x4_t acc[2][P];
#pragma GCC unroll 8
  for (int q = 0; q < P; ++q) {
    if (b0 == 0) {
      acc[0][q] = acc[1][q] = vdupq_n_f32(0.0f);
    } else {  // rows 0..3 of tokens a, b -> (a0 b0 a1 b1), (a2 b2 a3 b3)
      const float32x4_t ya = vld1q_f32(Y + slot_token(t0, valid, 2 * q) * ldy + r);
      const float32x4_t yb = vld1q_f32(Y + slot_token(t0, valid, 2 * q + 1) * ldy + r);
      acc[0][q] = vzip1q_f32(ya, yb);
      acc[1][q] = vzip2q_f32(ya, yb);
    }
  }
  for (size_t b = b0; b < b1; ++b) {
    const uint8_t* rec = records + b * 4 * Ty::kRecord;
    int8x16_t c[8];
    Ty::codes(group + b * 4 * Ty::kQs, rec, c);
    const float32x4_t dw = half4(rec);
    const float32x4_t dwp[2] = {vzip1q_f32(dw, dw), vzip2q_f32(dw, dw)};  // (d0 d0 d1 d1), (d2 d2 d3 d3)
    const PairBlock* pb = buf[b - b0];
#pragma GCC unroll 8
    for (int q = 0; q < P; ++q) {
#pragma GCC unroll 2
      for (int h = 0; h < 2; ++h) {
        int32x4_t s = vmmlaq_s32(pb[q].init[h], c[h], pb[q].bx[0]);
        for (int k = 1; k < 4; ++k) s = vmmlaq_s32(s, c[2 * k + h], pb[q].bx[k]);
        acc[h][q] = vaddq_f32(acc[h][q], vmulq_f32(vmulq_f32(dwp[h], pb[q].dxp), magic_to_float(s)));
      }
      asm volatile("" ::: "memory");  // one pair at a time: gcc's interleaving spilled acc
    }
  }
#pragma GCC unroll 8
  for (int q = 0; q < P; ++q) {
    const float32x4_t ya = vuzp1q_f32(acc[0][q], acc[1][q]), yb = vuzp2q_f32(acc[0][q], acc[1][q]);
    if (static_cast<size_t>(2 * q) < valid) vst1q_f32(Y + (t0 + 2 * q) * ldy + r, ya);
    if (static_cast<size_t>(2 * q + 1) < valid) vst1q_f32(Y + (t0 + 2 * q + 1) * ldy + r, yb);
  }
}

// Tokens t0 .. t0 + valid (2P - 1 or 2P of them) against row groups r0 .. r1: per slab
// of blocks, the pairs prepared once, then every row group.
template <class Ty, int P>
void mmla_tokens(const uint8_t* w, size_t group_bytes, const PackedActs& X, size_t t0, size_t valid, float* Y,
                 size_t ldy, size_t r0, size_t r1) {
  PairBlock buf[kSlab][4];
  for (size_t b0 = 0; b0 < X.nb; b0 += kSlab) {
    const size_t b1 = b0 + kSlab < X.nb ? b0 + kSlab : X.nb;
    prep_pairs<Ty, P>(X, t0, valid, b0, b1, buf);
    for (size_t r = r0; r < r1; r += 4)
      mmla_slab<Ty, P>(w + (r / 4) * group_bytes, X.nb, buf, b0, b1, t0, valid, Y, ldy, r);
  }
}

// The SMMLA drivers' token loop (Q4_0 / Q8_0 here, the K-quants in
// qmatmul_packed_k_mmla_neon.h): tokens 8 at a time as P token pairs, pairs<P>(t, valid)
// for 2..8 of them (P = ceil(valid / 2): an odd count repeats its last token), lone(t)
// for a single last token (SMMLA would waste half of its 2 x 2 output on it).
template <class Pairs, class Lone>
[[gnu::always_inline]] inline void mmla_token_tiles(size_t n, Pairs pairs, Lone lone) {
  for (size_t t = 0; t < n; t += 8) {
    const size_t valid = n - t < 8 ? n - t : 8;
    switch ((valid + 1) / 2) {
      case 4: pairs.template operator()<4>(t, valid); break;
      case 3: pairs.template operator()<3>(t, valid); break;
      case 2: pairs.template operator()<2>(t, valid); break;
      default: valid == 2 ? pairs.template operator()<1>(t, valid) : lone(t); break;
    }
  }
}

// The PackedQMatmulFn for Packing{4, 8}: tokens 8 at a time by SMMLA (the last 2..7
// likewise), a lone token (decode) by SDOT, two row groups at a time.
template <class Ty>
void qmatmul_packed_mmla(const void* W, Packing, const PackedActs& X, size_t n, size_t K, float* Y, size_t ldy,
                         size_t r0, size_t r1) {
  static_assert(!Ty::kMin, "the SMMLA kernels have no min step (Q4_1 / Q5_1 stay plain on i8mm)");
  const size_t group_bytes = 4 * (K / kQK) * (Ty::kQs + Ty::kRecord);
  const auto* w = static_cast<const uint8_t*>(W);
  const auto pairs = [&]<int P>(size_t t, size_t valid) {
    mmla_tokens<Ty, P>(w, group_bytes, X, t, valid, Y, ldy, r0, r1);
  };
  const auto lone = [&](size_t t) {
    size_t r = r0;
    for (; r + 8 <= r1; r += 8) mmla_gemv<Ty, 2>(w + (r / 4) * group_bytes, group_bytes, X, t, Y, ldy, r);
    if (r < r1) mmla_gemv<Ty, 1>(w + (r / 4) * group_bytes, group_bytes, X, t, Y, ldy, r);
  };
  mmla_token_tiles(n, pairs, lone);
}
#endif  // __ARM_FEATURE_MATMUL_INT8

}  // namespace
}  // namespace ember::kernels
