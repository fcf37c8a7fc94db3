// Private to kernels/: the AArch64 quantized-matmul kernels, written once and
// instantiated by each NEON ISA file with its integer-dot policy:
//   qmatmul_neon.cpp     DotNeon  SMULL/SMLAL2 to s16, SADALP to s32   (armv8-a)
//   qmatmul_dotprod.cpp  DotSdot  SDOT                                  (armv8.2-a+dotprod)
//   qmatmul_i8mm.cpp     DotSdot for GEMV, SMMLA tiles for the GEMM     (armv8.6-a+i8mm)
// Q4_0 and Q8_0 weights repacked at load (quant/repack.h) run qmatmul_packed_neon.h's
// kernels instead (dotprod: 4 rows x 4 bytes, i8mm: 4 x 8; the base NEON table keeps
// the plain layout), Q4_K and Q6_K (4 x 4 on dotprod and i8mm) qmatmul_packed_k_neon.h's.
// Everything is in an anonymous namespace: each file compiles this header with its own
// target flags, so no symbol may be shared (and merged by the linker) between them.
//
// The numerics are kernels.h's: exact integer sums per block, then
// acc + (dw * dx) * float(isum) per output with lanes = output rows (or, for SMMLA,
// 2 rows x 2 tokens), so every table equals the reference bit for bit. The float
// operations are plain FMUL/FADD: the build's -ffp-contract=off keeps them unfused.
//
// Blocking: Q4_0/Q8_0 GEMV 8 rows x 1 token, GEMM 4 rows x 4 tokens (each weight block
// unpacked once per 4 tokens); K-quant GEMV 4 rows straight from the blocks, K-quant
// GEMM 4 rows x up to 4 tokens from super-blocks unpacked per row into an L1 buffer
// (int8 codes, int32 sub-block scales). Incomplete row/token groups reuse a valid
// pointer and drop the duplicate outputs. GEMV prefetches the next row group.
// Cycle figures (llvm-mca) and the reasoning behind the tricks: docs/PERFORMANCE.md.
#pragma once
#include <arm_neon.h>

#include <cmath>
#include <cstddef>
#include <cstring>
#include <type_traits>

#include "kernels/isa_tables.h"
#include "kernels/qmatmul_driver.h"
#include "quant/blocks.h"
#include "quant/unpack.h"

namespace ember::kernels {
namespace {

float f16(const uint8_t* p) {
  __fp16 h;  // FCVT: exact
  std::memcpy(&h, p, 2);
  return static_cast<float>(h);
}
float f32(const uint8_t* p) {
  float f;
  std::memcpy(&f, p, 4);
  return f;
}

// The fp16 scales at byte `off` of rows w[0..3], as floats. Packed in a general-purpose
// register (integer pipes are idle in these loops) and moved over once, instead of
// four lane inserts on the vector pipes.
float32x4_t f16x4(const uint8_t* const* w, size_t off) {
  uint16_t h[4];
  for (int i = 0; i < 4; ++i) std::memcpy(&h[i], w[i] + off, 2);
  const uint64_t bits =
      uint64_t{h[0]} | uint64_t{h[1]} << 16 | uint64_t{h[2]} << 32 | uint64_t{h[3]} << 48;
  return vcvt_f32_f16(vreinterpret_f16_u64(vcreate_u64(bits)));
}

// The exact sums of a, b, c, d's lanes, in lanes 0..3.
int32x4_t reduce4(int32x4_t a, int32x4_t b, int32x4_t c, int32x4_t d) {
  return vpaddq_s32(vpaddq_s32(a, b), vpaddq_s32(c, d));
}

// The same for s16 lanes whose absolute values sum to < 2^15 (every partial sum fits),
// widened: ADDP stays off the multiply pipe that SADDLP would share with SMULL/SMLAL
// on Cortex-A72 (the base-NEON kernels' bottleneck there).
int32x4_t reduce4_i16(int16x8_t a, int16x8_t b, int16x8_t c, int16x8_t d) {
  const int16x8_t abcd = vpaddq_s16(vpaddq_s16(a, b), vpaddq_s16(c, d));  // a a b b c c d d
  return vmovl_s16(vget_low_s16(vpaddq_s16(abcd, abcd)));
}

// acc + (scale * dx) * float(isum), lane-wise.
float32x4_t step(float32x4_t acc, float32x4_t scale, float32x4_t dx, int32x4_t isum) {
  return vaddq_f32(acc, vmulq_f32(vmulq_f32(scale, dx), vcvtq_f32_s32(isum)));
}
// acc + (mw * dx) * xsum for types with a min (Q4_1), xsum already a float.
float32x4_t min_step(float32x4_t acc, float32x4_t mw, float32x4_t dx, float32x4_t xsum) {
  return vaddq_f32(acc, vmulq_f32(vmulq_f32(mw, dx), xsum));
}
float32x4_t step_sub(float32x4_t acc, float32x4_t scale, float32x4_t dx, int32x4_t isum) {
  return vsubq_f32(acc, vmulq_f32(vmulq_f32(scale, dx), vcvtq_f32_s32(isum)));
}

// ---- integer dot policies: the products of a and b summed into s32 lanes ------------
// (a fresh sum: no accumulator to copy in). b is always an activation (|b| <= 127,
// kernels.h); "small": |a| <= 32.

struct DotNeon {
  // 16 products: SMULL/SMLAL2 pairs to s16 (<= 2 * 128 * 127), SADDLP to s32.
  static int16x8_t mul16(int8x16_t a, int8x16_t b) {
    return vmlal_high_s8(vmull_s8(vget_low_s8(a), vget_low_s8(b)), a, b);
  }
  static int32x4_t dot16(int8x16_t a, int8x16_t b) { return vpaddlq_s16(mul16(a, b)); }
  static int32x4_t dot16_small(int8x16_t a, int8x16_t b) { return dot16(a, b); }
  static int32x4_t dot32(int8x16_t a0, int8x16_t b0, int8x16_t a1, int8x16_t b1) {
    return vpadalq_s16(vpaddlq_s16(mul16(a0, b0)), mul16(a1, b1));
  }
  // 32 products with |a| <= 32: four per s16 lane (<= 4 * 32 * 127 < 2^15), one SADDLP.
  static int32x4_t dot32_small(int8x16_t a0, int8x16_t b0, int8x16_t a1, int8x16_t b1) {
    int16x8_t p = vmull_s8(vget_low_s8(a0), vget_low_s8(b0));
    p = vmlal_high_s8(p, a0, b0);
    p = vmlal_s8(p, vget_low_s8(a1), vget_low_s8(b1));
    p = vmlal_high_s8(p, a1, b1);
    return vpaddlq_s16(p);
  }
};

#if defined(__ARM_FEATURE_DOTPROD)
struct DotSdot {
  static int32x4_t dot16(int8x16_t a, int8x16_t b) { return vdotq_s32(vdupq_n_s32(0), a, b); }
  static int32x4_t dot16_small(int8x16_t a, int8x16_t b) { return dot16(a, b); }
  static int32x4_t dot32(int8x16_t a0, int8x16_t b0, int8x16_t a1, int8x16_t b1) {
    return vdotq_s32(vdotq_s32(vdupq_n_s32(0), a0, b0), a1, b1);
  }
  static int32x4_t dot32_small(int8x16_t a0, int8x16_t b0, int8x16_t a1, int8x16_t b1) {
    return dot32(a0, b0, a1, b1);
  }
};
#endif

// ---- activation quantizers' vector steps (qmatmul_driver.h; bitwise the reference's) ----

// 16 int32 codes (|.| <= 127) -> 16 bytes: plain narrowing is exact.
void store_codes16(const int32x4_t* c, int8_t* q) {
  const int16x8_t ab = vcombine_s16(vmovn_s32(c[0]), vmovn_s32(c[1]));
  const int16x8_t ce = vcombine_s16(vmovn_s32(c[2]), vmovn_s32(c[3]));
  vst1q_s8(q, vcombine_s8(vmovn_s16(ab), vmovn_s16(ce)));
}

struct QuantOps {
  static float absmax(const float* x, int n) {  // n a multiple of 4
    float32x4_t mx = vdupq_n_f32(0.0f);
    for (int i = 0; i < n; i += 4) mx = vmaxq_f32(mx, vabsq_f32(vld1q_f32(x + i)));
    return vmaxvq_f32(mx);
  }
  // FCVTAS rounds to nearest with ties away from zero: roundf exactly.
  static void round_away(const float* x, float s, int8_t* q, int n) {  // n a multiple of 16
    for (int i = 0; i < n; i += 16) {
      int32x4_t c[4];
      for (int j = 0; j < 4; ++j) c[j] = vcvtaq_s32_f32(vmulq_n_f32(vld1q_f32(x + i + 4 * j), s));
      store_codes16(c, q + i);
    }
  }
  // FCVTNS rounds half to even, as the reference's 1.5 * 2^23 trick.
  static void round_even_capped(const float* x, float s, int8_t* q, int n) {
    const int32x4_t cap = vdupq_n_s32(127);
    for (int i = 0; i < n; i += 16) {
      int32x4_t c[4];
      for (int j = 0; j < 4; ++j) c[j] = vminq_s32(vcvtnq_s32_f32(vmulq_n_f32(vld1q_f32(x + i + 4 * j), s)), cap);
      store_codes16(c, q + i);
    }
  }
  static void sums16(const int8_t* q, int16_t* sums, int n_groups) {
    for (int j = 0; j < n_groups; ++j) sums[j] = vaddlvq_s8(vld1q_s8(q + 16 * j));
  }
};

// ---- 32-weight blocks: Q4_0, Q8_0 (activations Q8_0) -------------------------------

struct Xq8_0 {
  int8x16_t lo, hi;  // codes 0..15, 16..31
  float d;
};
Xq8_0 load_x(const uint8_t* p) {
  return {vld1q_s8(reinterpret_cast<const int8_t*>(p + 2)),
          vld1q_s8(reinterpret_cast<const int8_t*>(p + 18)), f16(p)};
}

// Q4_0's -8 is paid where it is cheapest. GEMM: once per weight block, as signed codes
// (the block then serves 4 tokens). GEMV: once per activation block, as an offset
// shared by the 8 rows: -8 sum(x) from the reduced sums (DotNeon), or as the start
// value of every SDOT chain (DotSdot), which costs nothing more than starting at 0.
struct Q4_0 {
  static constexpr size_t kWBytes = sizeof(BlockQ4_0), kXBytes = sizeof(BlockQ8_0);
  static constexpr bool kHasMin = false;
  struct Wv {
    int8x16_t lo, hi;  // codes of weights 0..15 and 16..31
  };
  static Wv unpack_unsigned(const uint8_t* p) {  // codes 0..15
    const uint8x16_t raw = vld1q_u8(p + 2);
    return {vreinterpretq_s8_u8(vandq_u8(raw, vdupq_n_u8(0x0F))),
            vreinterpretq_s8_u8(vshrq_n_u8(raw, 4))};
  }
  static Wv unpack(const uint8_t* p) {  // codes - 8, in [-8, 7]
    const Wv u = unpack_unsigned(p);
    const int8x16_t m8 = vdupq_n_s8(8);
    return {vsubq_s8(u.lo, m8), vsubq_s8(u.hi, m8)};
  }
  template <class D>
  static int32x4_t dot(const Wv& w, const Xq8_0& x) {
    return D::dot32_small(w.lo, x.lo, w.hi, x.hi);
  }
};

struct Q8_0 {
  static constexpr size_t kWBytes = sizeof(BlockQ8_0), kXBytes = sizeof(BlockQ8_0);
  static constexpr bool kHasMin = false;
  struct Wv {
    int8x16_t lo, hi;
  };
  static Wv unpack(const uint8_t* p) {
    return {vld1q_s8(reinterpret_cast<const int8_t*>(p + 2)),
            vld1q_s8(reinterpret_cast<const int8_t*>(p + 18))};
  }
  template <class D>
  static int32x4_t dot(const Wv& w, const Xq8_0& x) {
    return D::dot32(w.lo, x.lo, w.hi, x.hi);
  }
};

// Q5_0: signed codes (nibble | fifth bit << 4) - 16 in [-16, 15] (the "small" dots).
// The fifth bits (u32 at byte 2, bit j = weight j) become 0x10 or 0 per byte: each byte
// takes the qh byte holding its bit, CMTST against a per-byte mask.
struct Q5_0 {
  static constexpr size_t kWBytes = sizeof(BlockQ5_0), kXBytes = sizeof(BlockQ8_0);
  static constexpr bool kHasMin = false;
  struct Wv {
    int8x16_t lo, hi;  // codes - 16 of weights 0..15 and 16..31
  };
  static uint8x16_t fifth16(uint32_t bits16) {
    const uint8x16_t spread = vcombine_u8(vdup_n_u8(static_cast<uint8_t>(bits16)),
                                          vdup_n_u8(static_cast<uint8_t>(bits16 >> 8)));
    const uint8x16_t mask = vreinterpretq_u8_u64(vdupq_n_u64(0x8040201008040201ull));
    return vandq_u8(vtstq_u8(spread, mask), vdupq_n_u8(0x10));
  }
  static Wv unpack(const uint8_t* p) {
    uint32_t qh;
    std::memcpy(&qh, p + 2, 4);
    const uint8x16_t raw = vld1q_u8(p + 6), sixteen = vdupq_n_u8(16);
    const uint8x16_t lo = vorrq_u8(vandq_u8(raw, vdupq_n_u8(0x0F)), fifth16(qh & 0xFFFF));
    const uint8x16_t hi = vorrq_u8(vshrq_n_u8(raw, 4), fifth16(qh >> 16));
    return {vreinterpretq_s8_u8(vsubq_u8(lo, sixteen)), vreinterpretq_s8_u8(vsubq_u8(hi, sixteen))};
  }
  template <class D>
  static int32x4_t dot(const Wv& w, const Xq8_0& x) {
    return D::dot32_small(w.lo, x.lo, w.hi, x.hi);
  }
};

// IQ4_NL: the nibbles looked up in the 16-level int8 grid (TBL); |w| <= 127, so the
// dots are Q8_0's (full-range products).
struct IQ4_NL {
  static constexpr size_t kWBytes = sizeof(BlockIQ4_NL), kXBytes = sizeof(BlockQ8_0);
  static constexpr bool kHasMin = false;
  struct Wv {
    int8x16_t lo, hi;
  };
  static Wv unpack(const uint8_t* p) {
    const int8x16_t grid = vld1q_s8(kIq4nlValues);
    const uint8x16_t raw = vld1q_u8(p + 2);
    return {vqtbl1q_s8(grid, vandq_u8(raw, vdupq_n_u8(0x0F))), vqtbl1q_s8(grid, vshrq_n_u8(raw, 4))};
  }
  template <class D>
  static int32x4_t dot(const Wv& w, const Xq8_0& x) {
    return D::dot32(w.lo, x.lo, w.hi, x.hi);
  }
};

// Q4_1: unsigned codes 0..15 at byte 4 (|a| <= 15: the "small" dots) and a min term,
// mw * dx * sum(x), added after the scale term (kernels.h); the min sits at byte 2.
struct Q4_1 {
  static constexpr size_t kWBytes = sizeof(BlockQ4_1), kXBytes = sizeof(BlockQ8_0);
  static constexpr bool kHasMin = true;
  static constexpr size_t kMinOffset = 2;
  struct Wv {
    int8x16_t lo, hi;  // codes of weights 0..15 and 16..31
  };
  static Wv unpack(const uint8_t* p) {
    const uint8x16_t raw = vld1q_u8(p + 4);
    return {vreinterpretq_s8_u8(vandq_u8(raw, vdupq_n_u8(0x0F))), vreinterpretq_s8_u8(vshrq_n_u8(raw, 4))};
  }
  template <class D>
  static int32x4_t dot(const Wv& w, const Xq8_0& x) {
    return D::dot32_small(w.lo, x.lo, w.hi, x.hi);
  }
  // float(sum of the activation block's 32 codes), in every lane (exact: |.| < 2^13).
  static float32x4_t xsum(const Xq8_0& x) {
    return vdupq_n_f32(static_cast<float>(vaddlvq_s8(x.lo) + vaddlvq_s8(x.hi)));
  }
};

// Q4_0 GEMV: the exact block sums of 8 rows (w[i] + wo) against one activation block,
// rows 0..3 in isum0 and 4..7 in isum1; the -8 paid once per activation block, per dot policy.
template <class D>
struct Q4_0Rows8;

// Unsigned codes, s16 sums: a row's 32 products sum to < 2^16 in magnitude but may pass
// 2^15, so the chains and the reduction run modulo 2^16 (u16 lanes, wrapping); minus
// 8 sum(x) the row sum is |.| <= 32 * 8 * 127 < 2^15, which the low 16 bits then give exactly.
template <>
struct Q4_0Rows8<DotNeon> {
  static void sums(const uint8_t* const* w, size_t wo, const Xq8_0& xv, int32x4_t* isum0, int32x4_t* isum1) {
    int16x8_t p[8];
    for (int i = 0; i < 8; ++i) {
      const Q4_0::Wv u = Q4_0::unpack_unsigned(w[i] + wo);
      int16x8_t q = vmull_s8(vget_low_s8(u.lo), vget_low_s8(xv.lo));
      q = vmlal_high_s8(q, u.lo, xv.lo);
      q = vmlal_s8(q, vget_low_s8(u.hi), vget_low_s8(xv.hi));
      p[i] = vmlal_high_s8(q, u.hi, xv.hi);
    }
    const int16_t xsum = static_cast<int16_t>(vaddlvq_s8(xv.lo) + vaddlvq_s8(xv.hi));
    const uint16x8_t off = vdupq_n_u16(static_cast<uint16_t>(8 * xsum));
    const int16x8_t a = vpaddq_s16(vpaddq_s16(p[0], p[1]), vpaddq_s16(p[2], p[3]));
    const int16x8_t b = vpaddq_s16(vpaddq_s16(p[4], p[5]), vpaddq_s16(p[6], p[7]));
    const int16x8_t r = vreinterpretq_s16_u16(vsubq_u16(vreinterpretq_u16_s16(vpaddq_s16(a, b)), off));
    *isum0 = vmovl_s16(vget_low_s16(r));
    *isum1 = vmovl_high_s16(r);
  }
};

#if defined(__ARM_FEATURE_DOTPROD)
// SDOT: every chain starts at -8 sum(x) (lanes summing to it), which costs nothing more
// than starting at 0.
template <>
struct Q4_0Rows8<DotSdot> {
  static void sums(const uint8_t* const* w, size_t wo, const Xq8_0& xv, int32x4_t* isum0, int32x4_t* isum1) {
    const int8x16_t m8 = vdupq_n_s8(-8);
    const int32x4_t init = vdotq_s32(vdotq_s32(vdupq_n_s32(0), m8, xv.lo), m8, xv.hi);
    int32x4_t v[8];
    for (int i = 0; i < 8; ++i) {
      const Q4_0::Wv u = Q4_0::unpack_unsigned(w[i] + wo);
      v[i] = vdotq_s32(vdotq_s32(init, u.lo, xv.lo), u.hi, xv.hi);
    }
    *isum0 = reduce4(v[0], v[1], v[2], v[3]);
    *isum1 = reduce4(v[4], v[5], v[6], v[7]);
  }
};
#endif

// Q5_1: Q4_1's numerics on 5-bit codes (0..31, still "small"), Q5_0's fifth bits at
// byte 4, nibbles at byte 8.
struct Q5_1 : Q4_1 {
  static constexpr size_t kWBytes = sizeof(BlockQ5_1);
  static Wv unpack(const uint8_t* p) {
    uint32_t qh;
    std::memcpy(&qh, p + 4, 4);
    const uint8x16_t raw = vld1q_u8(p + 8);
    const uint8x16_t lo = vorrq_u8(vandq_u8(raw, vdupq_n_u8(0x0F)), Q5_0::fifth16(qh & 0xFFFF));
    const uint8x16_t hi = vorrq_u8(vshrq_n_u8(raw, 4), Q5_0::fifth16(qh >> 16));
    return {vreinterpretq_s8_u8(lo), vreinterpretq_s8_u8(hi)};
  }
};

// GEMV: 8 rows (w[0..8)) x one token. The next 8 rows (`ahead` bytes on) are
// prefetched at the offset read now: rows are short streams (1152 bytes for Q4_0 x
// 2048) that hardware prefetchers learn too late.
template <class Ty, class D>
void gemv8(const uint8_t* const* w, size_t ahead, const uint8_t* x, size_t nb, float* Y,
           size_t valid_rows) {
  float32x4_t acc0 = vdupq_n_f32(0.0f), acc1 = vdupq_n_f32(0.0f);
  for (size_t b = 0; b < nb; ++b) {
    const size_t wo = b * Ty::kWBytes;
    for (int i = 0; i < 8; ++i) __builtin_prefetch(w[i] + ahead + wo);
    const Xq8_0 xv = load_x(x + b * Ty::kXBytes);
    int32x4_t isum0, isum1;
    if constexpr (std::is_same_v<Ty, Q4_0>) {
      Q4_0Rows8<D>::sums(w, wo, xv, &isum0, &isum1);
    } else {
      int32x4_t v[8];
      for (int i = 0; i < 8; ++i) v[i] = Ty::template dot<D>(Ty::unpack(w[i] + wo), xv);
      isum0 = reduce4(v[0], v[1], v[2], v[3]);
      isum1 = reduce4(v[4], v[5], v[6], v[7]);
    }
    const float32x4_t dx = vdupq_n_f32(xv.d);
    acc0 = step(acc0, f16x4(w, wo), dx, isum0);
    acc1 = step(acc1, f16x4(w + 4, wo), dx, isum1);
    if constexpr (Ty::kHasMin) {
      const float32x4_t xs = Ty::xsum(xv);
      acc0 = min_step(acc0, f16x4(w, wo + Ty::kMinOffset), dx, xs);
      acc1 = min_step(acc1, f16x4(w + 4, wo + Ty::kMinOffset), dx, xs);
    }
  }
  float out[8];
  vst1q_f32(out, acc0);
  vst1q_f32(out + 4, acc1);
  for (size_t i = 0; i < 8 && i < valid_rows; ++i) Y[i] = out[i];
}

// GEMM: 4 rows (w[0..4)) x 4 tokens (x[0..4)); each weight block unpacked once.
template <class Ty, class D>
void gemm4x4(const uint8_t* const* w, const uint8_t* const* x, size_t nb, float* Y, size_t ldy,
             size_t valid_rows, size_t valid_tokens) {
  float32x4_t acc[4];
  for (int t = 0; t < 4; ++t) acc[t] = vdupq_n_f32(0.0f);
  for (size_t b = 0; b < nb; ++b) {
    const size_t wo = b * Ty::kWBytes, xo = b * Ty::kXBytes;
    typename Ty::Wv wv[4];
    for (int i = 0; i < 4; ++i) wv[i] = Ty::unpack(w[i] + wo);
    const float32x4_t dw = f16x4(w, wo);
    for (int t = 0; t < 4; ++t) {
      const Xq8_0 xv = load_x(x[t] + xo);
      int32x4_t isum;
      if constexpr (std::is_same_v<Ty, Q4_0> && std::is_same_v<D, DotNeon>) {
        // Signed codes: a row's 32 products sum to <= 32 * 8 * 127 < 2^15, so they are
        // reduced in s16.
        int16x8_t p[4];
        for (int i = 0; i < 4; ++i) {
          int16x8_t q = vmull_s8(vget_low_s8(wv[i].lo), vget_low_s8(xv.lo));
          q = vmlal_high_s8(q, wv[i].lo, xv.lo);
          q = vmlal_s8(q, vget_low_s8(wv[i].hi), vget_low_s8(xv.hi));
          p[i] = vmlal_high_s8(q, wv[i].hi, xv.hi);
        }
        isum = reduce4_i16(p[0], p[1], p[2], p[3]);
      } else {
        isum = reduce4(Ty::template dot<D>(wv[0], xv), Ty::template dot<D>(wv[1], xv),
                       Ty::template dot<D>(wv[2], xv), Ty::template dot<D>(wv[3], xv));
      }
      acc[t] = step(acc[t], dw, vdupq_n_f32(xv.d), isum);
      if constexpr (Ty::kHasMin)
        acc[t] = min_step(acc[t], f16x4(w, wo + Ty::kMinOffset), vdupq_n_f32(xv.d), Ty::xsum(xv));
    }
  }
  for (size_t t = 0; t < 4 && t < valid_tokens; ++t) {
    float out[4];
    vst1q_f32(out, acc[t]);
    for (size_t i = 0; i < 4 && i < valid_rows; ++i) Y[t * ldy + i] = out[i];
  }
}

// ---- 256-weight super-blocks: Q4_K, Q5_K, IQ4_XS, Q6_K (activations Q8_K) -------------

// A super-block unpacked for the dot: codes in weight order, sub-block scales as s32.
struct alignas(16) KUnpacked {
  int8_t q[kQKK];    // Q4_K: 0..15; Q5_K: 0..31; Q6_K: 0..63 (the -32 comes from the
                     // bsums); IQ4_XS: grid levels; Q2_K: 0..3; Q3_K: -4..3
  int32_t sc[16];    // Q4_K, Q5_K, IQ4_XS: 8 used
  int16_t sc16[16];  // Q6_K: the scales again, against bsums; Q2_K: the mins
  int16_t m[8];      // Q4_K mins
  float d, dmin;
};

// The 16 s32 lanes of v[0..8) (sub-block s's dot in v[s]) scaled by sc[s] (sc_lo: s < 4,
// sc_hi: s >= 4) and summed, in the order Q4_K's rows have always used.
int32x4_t scaled_sum8(const int32x4_t* v, int32x4_t sc_lo, int32x4_t sc_hi) {
  int32x4_t acc0 = vmulq_laneq_s32(v[0], sc_lo, 0), acc1 = vmulq_laneq_s32(v[1], sc_lo, 1);
  acc0 = vmlaq_laneq_s32(acc0, v[2], sc_lo, 2);
  acc1 = vmlaq_laneq_s32(acc1, v[3], sc_lo, 3);
  acc0 = vmlaq_laneq_s32(acc0, v[4], sc_hi, 0);
  acc1 = vmlaq_laneq_s32(acc1, v[5], sc_hi, 1);
  acc0 = vmlaq_laneq_s32(acc0, v[6], sc_hi, 2);
  acc1 = vmlaq_laneq_s32(acc1, v[7], sc_hi, 3);
  return vaddq_s32(acc0, acc1);
}

// sum_s sc[s] (u's codes of sub-block s . x), in lanes: the dots "small" (|code| <= 32,
// Q4_K, Q5_K) or full-range (IQ4_XS's levels).
template <class D, bool kSmall>
int32x4_t scaled_dots(const KUnpacked& u, const uint8_t* xb) {
  const int8_t* xq = reinterpret_cast<const int8_t*>(xb + 4);
  auto dot = [&](int o) {
    const int8x16_t a0 = vld1q_s8(u.q + o), b0 = vld1q_s8(xq + o);
    const int8x16_t a1 = vld1q_s8(u.q + o + 16), b1 = vld1q_s8(xq + o + 16);
    return kSmall ? D::dot32_small(a0, b0, a1, b1) : D::dot32(a0, b0, a1, b1);
  };
  int32x4_t acc0 = vdupq_n_s32(0), acc1 = vdupq_n_s32(0);
  for (int s = 0; s < 8; s += 2) {
    acc0 = vmlaq_n_s32(acc0, dot(32 * s), u.sc[s]);
    acc1 = vmlaq_n_s32(acc1, dot(32 * s + 32), u.sc[s + 1]);
  }
  return vaddq_s32(acc0, acc1);
}

// Q4_K, and Q5_K through its Codes hook: chunk(p, c2, out) gives the codes of sub-blocks
// 2 c2 (out[0], out[1]: weights 0..15, 16..31) and 2 c2 + 1 (out[2], out[3]).
// 16 sub-block values (bytes, sub-block s in byte s) as s32: s = 4i .. 4i+3 in v[i].
void widen16_u8(uint8x16_t b, int32x4_t* v) {
  const uint16x8_t lo = vmovl_u8(vget_low_u8(b)), hi = vmovl_high_u8(b);
  v[0] = vreinterpretq_s32_u32(vmovl_u16(vget_low_u16(lo)));
  v[1] = vreinterpretq_s32_u32(vmovl_high_u16(lo));
  v[2] = vreinterpretq_s32_u32(vmovl_u16(vget_low_u16(hi)));
  v[3] = vreinterpretq_s32_u32(vmovl_high_u16(hi));
}

// sum_s a[s] bsums[s] over the 16 sub-blocks of a Q8_K block, a[0..8) in a0, a[8..16) in
// a1, in lanes (|a| <= 128: |lane| <= 4 * 128 * 2032).
int32x4_t bsums_dot16(int16x8_t a0, int16x8_t a1, const uint8_t* xb) {
  int16_t bs[16];
  std::memcpy(bs, xb + 4 + kQKK, sizeof bs);
  const int16x8_t b0 = vld1q_s16(bs), b1 = vld1q_s16(bs + 8);
  int32x4_t o = vmull_s16(vget_low_s16(a0), vget_low_s16(b0));
  o = vmlal_high_s16(o, a0, b0);
  o = vmlal_s16(o, vget_low_s16(a1), vget_low_s16(b1));
  return vmlal_high_s16(o, a1, b1);
}

// The four 2-bit fields of 16 qs bytes: bits 2j .. 2j+1 in q[j].
void two_bit_fields(uint8x16_t v, uint8x16_t* q) {
  const uint8x16_t three = vdupq_n_u8(3);
  q[0] = vandq_u8(v, three);
  q[1] = vandq_u8(vshrq_n_u8(v, 2), three);
  q[2] = vandq_u8(vshrq_n_u8(v, 4), three);
  q[3] = vshrq_n_u8(v, 6);
}

// sum_s sc[s] (q_s . x_s) over the 16 sub-blocks of 16 of a Q6_K / Q2_K / Q3_K
// super-block straight from its bytes: `codes(h, k, q)` gives the codes of sub-blocks
// 8h + 2j + k (weights 128h + 32j + 16k .., j = 0..3) in q[j]; sc[i] holds the scales of
// sub-blocks 4i .. 4i+3. Four accumulators: the MLA chains (latency 4) would otherwise
// bound the loop.
template <class D, class Codes>
int32x4_t scaled_dots16x16(const int8_t* xq, const int32x4_t* sc, const Codes& codes) {
  int32x4_t acc[4] = {vdupq_n_s32(0), vdupq_n_s32(0), vdupq_n_s32(0), vdupq_n_s32(0)};
#pragma GCC unroll 2
  for (int h = 0; h < 2; ++h) {
#pragma GCC unroll 2
    for (int k = 0; k < 2; ++k) {
      int8x16_t q[4];
      codes(h, k, q);
#pragma GCC unroll 4
      for (int j = 0; j < 4; ++j) {
        const int sub = 8 * h + 2 * j + k;
        const int32x4_t v = D::dot16(q[j], vld1q_s8(xq + 16 * sub));
        const int32x4_t scv = sc[sub / 4];
        switch (sub % 4) {  // MLA by element needs a constant lane
          case 0: acc[j] = vmlaq_laneq_s32(acc[j], v, scv, 0); break;
          case 1: acc[j] = vmlaq_laneq_s32(acc[j], v, scv, 1); break;
          case 2: acc[j] = vmlaq_laneq_s32(acc[j], v, scv, 2); break;
          default: acc[j] = vmlaq_laneq_s32(acc[j], v, scv, 3); break;
        }
      }
    }
  }
  return vaddq_s32(vaddq_s32(acc[0], acc[1]), vaddq_s32(acc[2], acc[3]));
}

struct Q4_K {
  static constexpr size_t kWBytes = sizeof(BlockQ4_K), kXBytes = sizeof(BlockQ8_K);
  static constexpr bool kHasMin = true;
  struct Nibbles {
    static void chunk(const uint8_t* p, int c2, uint8x16_t* out) {
      const uint8x16_t v0 = vld1q_u8(p + 16 + 32 * c2), v1 = vld1q_u8(p + 32 + 32 * c2);
      const uint8x16_t low = vdupq_n_u8(0x0F);
      out[0] = vandq_u8(v0, low);
      out[1] = vandq_u8(v1, low);
      out[2] = vshrq_n_u8(v0, 4);
      out[3] = vshrq_n_u8(v1, 4);
    }
  };
  static void unpack(const uint8_t* p, KUnpacked& u) { unpack_codes<Nibbles>(p, u); }
  template <class Codes>
  static void unpack_codes(const uint8_t* p, KUnpacked& u) {
    u.d = f16(p);
    u.dmin = f16(p + 2);
    uint64_t sc, m;  // the 6-bit scales and mins, a byte each
    q4_K_scales_mins_bytes(p + 4, &sc, &m);
    uint8_t scb[8], mb[8];
    std::memcpy(scb, &sc, 8);
    std::memcpy(mb, &m, 8);
    const uint16x8_t sc16 = vmovl_u8(vld1_u8(scb));
    vst1q_s32(u.sc, vreinterpretq_s32_u32(vmovl_u16(vget_low_u16(sc16))));
    vst1q_s32(u.sc + 4, vreinterpretq_s32_u32(vmovl_high_u16(sc16)));
    vst1q_s16(u.m, vreinterpretq_s16_u16(vmovl_u8(vld1_u8(mb))));
    for (int c2 = 0; c2 < 4; ++c2) {  // 64 weights: sub-block 2 c2, then 2 c2 + 1
      uint8x16_t q[4];
      Codes::chunk(p, c2, q);
      for (int i = 0; i < 4; ++i) vst1q_u8(reinterpret_cast<uint8_t*>(u.q) + 64 * c2 + 16 * i, q[i]);
    }
  }
  // sum_s m[s] (bsum pair s), in lanes.
  static int32x4_t min_sum(int16x8_t m, const uint8_t* xb) {
    int16_t bs[16];
    std::memcpy(bs, xb + 4 + kQKK, sizeof bs);
    const int16x8_t pairs = vpaddq_s16(vld1q_s16(bs), vld1q_s16(bs + 8));  // |.| <= 2 * 2032
    return vmlal_high_s16(vmull_s16(vget_low_s16(m), vget_low_s16(pairs)), m, pairs);
  }
  // isum = sum_s sc[s] (codes . x); msum = sum_s m[s] (bsum pair s), in lanes.
  template <class D>
  static void dot(const KUnpacked& u, const uint8_t* xb, int32x4_t& isum, int32x4_t& msum) {
    isum = scaled_dots<D, true>(u, xb);
    msum = min_sum(vld1q_s16(u.m), xb);
  }
  // GEMV: the same sums straight from the block (nothing stored), scales applied by
  // lane (MLA by element).
  template <class D>
  static void dot_direct(const uint8_t* p, const uint8_t* xb, int32x4_t& isum, int32x4_t& msum,
                         float& d, float& dmin) {
    dot_direct_codes<D, Nibbles>(p, xb, isum, msum, d, dmin);
  }
  template <class D, class Codes>
  static void dot_direct_codes(const uint8_t* p, const uint8_t* xb, int32x4_t& isum, int32x4_t& msum,
                               float& d, float& dmin) {
    d = f16(p);
    dmin = f16(p + 2);
    uint64_t sc, mm;
    q4_K_scales_mins_bytes(p + 4, &sc, &mm);
    const uint16x8_t sc16 = vmovl_u8(vcreate_u8(sc));
    const int8_t* xq = reinterpret_cast<const int8_t*>(xb + 4);
    int32x4_t v[8];
    for (int c2 = 0; c2 < 4; ++c2) {  // sub-blocks 2 c2 (low nibbles) and 2 c2 + 1 (high)
      uint8x16_t q[4];
      Codes::chunk(p, c2, q);
      const int8_t* x0 = xq + 64 * c2;
      v[2 * c2] = D::dot32_small(vreinterpretq_s8_u8(q[0]), vld1q_s8(x0), vreinterpretq_s8_u8(q[1]), vld1q_s8(x0 + 16));
      v[2 * c2 + 1] =
          D::dot32_small(vreinterpretq_s8_u8(q[2]), vld1q_s8(x0 + 32), vreinterpretq_s8_u8(q[3]), vld1q_s8(x0 + 48));
    }
    isum = scaled_sum8(v, vreinterpretq_s32_u32(vmovl_u16(vget_low_u16(sc16))),
                       vreinterpretq_s32_u32(vmovl_high_u16(sc16)));
    msum = min_sum(vreinterpretq_s16_u16(vmovl_u8(vcreate_u8(mm))), xb);
  }
};

// Q5_K: Q4_K's header and numerics; codes 0..31 (still "small"), the fifth bit of
// weight l of sub-block s being bit s of qh[l] (qh at byte 16, nibbles at 48).
struct Q5_K : Q4_K {
  static constexpr size_t kWBytes = sizeof(BlockQ5_K);
  struct Codes {
    // Bit s of each byte of h as 0x10 (USHL by 4 - s: left, or right when negative).
    static uint8x16_t fifth(uint8x16_t h, int s) {
      return vandq_u8(vshlq_u8(h, vdupq_n_s8(static_cast<int8_t>(4 - s))), vdupq_n_u8(0x10));
    }
    static void chunk(const uint8_t* p, int c2, uint8x16_t* out) {
      const uint8x16_t v0 = vld1q_u8(p + 48 + 32 * c2), v1 = vld1q_u8(p + 64 + 32 * c2);
      const uint8x16_t h0 = vld1q_u8(p + 16), h1 = vld1q_u8(p + 32);
      const uint8x16_t low = vdupq_n_u8(0x0F);
      out[0] = vorrq_u8(vandq_u8(v0, low), fifth(h0, 2 * c2));
      out[1] = vorrq_u8(vandq_u8(v1, low), fifth(h1, 2 * c2));
      out[2] = vorrq_u8(vshrq_n_u8(v0, 4), fifth(h0, 2 * c2 + 1));
      out[3] = vorrq_u8(vshrq_n_u8(v1, 4), fifth(h1, 2 * c2 + 1));
    }
  };
  static void unpack(const uint8_t* p, KUnpacked& u) { unpack_codes<Codes>(p, u); }
  template <class D>
  static void dot_direct(const uint8_t* p, const uint8_t* xb, int32x4_t& isum, int32x4_t& msum,
                         float& d, float& dmin) {
    dot_direct_codes<D, Codes>(p, xb, isum, msum, d, dmin);
  }
};

// IQ4_XS: per sub-block of 32, IQ4_NL's nibbles (16 bytes at 8 + 16s) looked up in the
// grid (TBL; |level| <= 127: the full-range dots), times the signed scale ls - 32.
struct IQ4_XS {
  static constexpr size_t kWBytes = sizeof(BlockIQ4_XS), kXBytes = sizeof(BlockQ8_K);
  static constexpr bool kHasMin = false;
  // Sub-block s's levels: weights 0..15 (low nibbles), 16..31 (high).
  static void levels(const uint8_t* p, int s, int8x16_t* lo, int8x16_t* hi) {
    const int8x16_t grid = vld1q_s8(kIq4nlValues);
    const uint8x16_t raw = vld1q_u8(p + 8 + 16 * s);
    *lo = vqtbl1q_s8(grid, vandq_u8(raw, vdupq_n_u8(0x0F)));
    *hi = vqtbl1q_s8(grid, vshrq_n_u8(raw, 4));
  }
  static void scales(const uint8_t* p, int32_t* sc) {
    uint16_t sh;
    std::memcpy(&sh, p + 2, 2);
    for (int s = 0; s < 8; ++s) sc[s] = (((p[4 + s / 2] >> (4 * (s % 2))) & 0xF) | (((sh >> (2 * s)) & 3) << 4)) - 32;
  }
  static void unpack(const uint8_t* p, KUnpacked& u) {
    u.d = f16(p);
    u.dmin = 0.0f;
    scales(p, u.sc);
    for (int s = 0; s < 8; ++s) {
      int8x16_t lo, hi;
      levels(p, s, &lo, &hi);
      vst1q_s8(u.q + 32 * s, lo);
      vst1q_s8(u.q + 32 * s + 16, hi);
    }
  }
  template <class D>
  static void dot(const KUnpacked& u, const uint8_t* xb, int32x4_t& isum, int32x4_t& msum) {
    isum = scaled_dots<D, false>(u, xb);
    msum = vdupq_n_s32(0);
  }
  template <class D>
  static void dot_direct(const uint8_t* p, const uint8_t* xb, int32x4_t& isum, int32x4_t& msum,
                         float& d, float& dmin) {
    d = f16(p);
    dmin = 0.0f;
    int32_t sc[8];
    scales(p, sc);
    const int8_t* xq = reinterpret_cast<const int8_t*>(xb + 4);
    int32x4_t v[8];
    for (int s = 0; s < 8; ++s) {
      int8x16_t lo, hi;
      levels(p, s, &lo, &hi);
      v[s] = D::dot32(lo, vld1q_s8(xq + 32 * s), hi, vld1q_s8(xq + 32 * s + 16));
    }
    isum = scaled_sum8(v, vld1q_s32(sc), vld1q_s32(sc + 4));
    msum = vdupq_n_s32(0);
  }
};

struct Q6_K {
  static constexpr size_t kWBytes = sizeof(BlockQ6_K), kXBytes = sizeof(BlockQ8_K);
  static constexpr bool kHasMin = false;
  static void unpack(const uint8_t* p, KUnpacked& u) {
    const uint8_t* ql = p;
    const uint8_t* qh = p + kQKK / 2;
    const int8_t* scales = reinterpret_cast<const int8_t*>(p + kQKK / 2 + kQKK / 4);
    u.d = f16(p + kQKK / 2 + kQKK / 4 + kQKK / 16);
    u.dmin = 0.0f;
    const uint8x16_t three = vdupq_n_u8(3);
    for (int h = 0; h < 2; ++h) {
      for (int k = 0; k < 2; ++k) {  // weights l = 16k .. 16k+15 of each quarter
        const uint8x16_t l0 = vld1q_u8(ql + 64 * h + 16 * k);
        const uint8x16_t l1 = vld1q_u8(ql + 64 * h + 32 + 16 * k);
        const uint8x16_t hb = vld1q_u8(qh + 32 * h + 16 * k);
        // SLI: (high bits << 4) | (low nibble of the first operand).
        const uint8x16_t q0 = vsliq_n_u8(l0, vandq_u8(hb, three), 4);
        const uint8x16_t q1 = vsliq_n_u8(l1, vandq_u8(vshrq_n_u8(hb, 2), three), 4);
        const uint8x16_t q2 = vsliq_n_u8(vshrq_n_u8(l0, 4), vandq_u8(vshrq_n_u8(hb, 4), three), 4);
        const uint8x16_t q3 = vsliq_n_u8(vshrq_n_u8(l1, 4), vshrq_n_u8(hb, 6), 4);
        int8_t* o = u.q + 128 * h + 16 * k;
        vst1q_s8(o, vreinterpretq_s8_u8(q0));
        vst1q_s8(o + 32, vreinterpretq_s8_u8(q1));
        vst1q_s8(o + 64, vreinterpretq_s8_u8(q2));
        vst1q_s8(o + 96, vreinterpretq_s8_u8(q3));
      }
    }
    const int16x8_t s16 = vmovl_s8(vld1_s8(scales)), s16b = vmovl_s8(vld1_s8(scales + 8));
    vst1q_s32(u.sc, vmovl_s16(vget_low_s16(s16)));
    vst1q_s32(u.sc + 4, vmovl_high_s16(s16));
    vst1q_s32(u.sc + 8, vmovl_s16(vget_low_s16(s16b)));
    vst1q_s32(u.sc + 12, vmovl_high_s16(s16b));
    vst1q_s16(u.sc16, s16);
    vst1q_s16(u.sc16 + 8, s16b);
  }
  // 32 sum_s sc[s] bsum[s], in lanes: the codes' -32 (|lane| <= 32 * 4 * 128 * 2032).
  static int32x4_t offset(int16x8_t sa, int16x8_t sb, const uint8_t* xb) {
    return vshlq_n_s32(bsums_dot16(sa, sb, xb), 5);
  }
  // isum = sum_s sc[s] ((q - 32) . x) = sum_s sc[s] (q . x) - 32 sum_s sc[s] bsum[s].
  template <class D>
  static void dot(const KUnpacked& u, const uint8_t* xb, int32x4_t& isum, int32x4_t& msum) {
    const int8_t* xq = reinterpret_cast<const int8_t*>(xb + 4);
    int32x4_t acc0 = vdupq_n_s32(0), acc1 = vdupq_n_s32(0);
    for (int s = 0; s < 16; s += 2) {
      const int32x4_t v0 = D::dot16(vld1q_s8(u.q + 16 * s), vld1q_s8(xq + 16 * s));
      const int32x4_t v1 = D::dot16(vld1q_s8(u.q + 16 * s + 16), vld1q_s8(xq + 16 * s + 16));
      acc0 = vmlaq_n_s32(acc0, v0, u.sc[s]);
      acc1 = vmlaq_n_s32(acc1, v1, u.sc[s + 1]);
    }
    isum = vsubq_s32(vaddq_s32(acc0, acc1), offset(vld1q_s16(u.sc16), vld1q_s16(u.sc16 + 8), xb));
    msum = vdupq_n_s32(0);
  }
  template <class D>
  static void dot_direct(const uint8_t* p, const uint8_t* xb, int32x4_t& isum, int32x4_t& msum,
                         float& d, float& dmin) {
    const uint8_t* ql = p;
    const uint8_t* qh = p + kQKK / 2;
    const int8_t* scales = reinterpret_cast<const int8_t*>(p + kQKK / 2 + kQKK / 4);
    d = f16(p + kQKK / 2 + kQKK / 4 + kQKK / 16);
    dmin = 0.0f;
    const int16x8_t s16a = vmovl_s8(vld1_s8(scales)), s16b = vmovl_s8(vld1_s8(scales + 8));
    const int32x4_t sc[4] = {vmovl_s16(vget_low_s16(s16a)), vmovl_high_s16(s16a),
                             vmovl_s16(vget_low_s16(s16b)), vmovl_high_s16(s16b)};
    const uint8x16_t three = vdupq_n_u8(3);
    const auto codes = [&](int h, int k, int8x16_t* q) {  // q[j]: sub-block 8h + 2j + k
      const uint8x16_t l0 = vld1q_u8(ql + 64 * h + 16 * k);
      const uint8x16_t l1 = vld1q_u8(ql + 64 * h + 32 + 16 * k);
      const uint8x16_t hb = vld1q_u8(qh + 32 * h + 16 * k);
      q[0] = vreinterpretq_s8_u8(vsliq_n_u8(l0, vandq_u8(hb, three), 4));
      q[1] = vreinterpretq_s8_u8(vsliq_n_u8(l1, vandq_u8(vshrq_n_u8(hb, 2), three), 4));
      q[2] = vreinterpretq_s8_u8(vsliq_n_u8(vshrq_n_u8(l0, 4), vandq_u8(vshrq_n_u8(hb, 4), three), 4));
      q[3] = vreinterpretq_s8_u8(vsliq_n_u8(vshrq_n_u8(l1, 4), vshrq_n_u8(hb, 6), 4));
    };
    isum = vsubq_s32(scaled_dots16x16<D>(reinterpret_cast<const int8_t*>(xb + 4), sc, codes),
                     offset(s16a, s16b, xb));
    msum = vdupq_n_s32(0);
  }
};

// ---- Q2_K, Q3_K: 16 sub-blocks of 16, 2-bit codes (|q| <= 4: the "small" dots) -------

// GEMM: sum_s sc[s] (q_s . x_s) from an unpacked super-block of 16 sub-blocks.
template <class D>
int32x4_t scaled_dots16x16(const KUnpacked& u, const int8_t* xq) {
  int32x4_t acc0 = vdupq_n_s32(0), acc1 = vdupq_n_s32(0);
  for (int s = 0; s < 16; s += 2) {
    acc0 = vmlaq_n_s32(acc0, D::dot16_small(vld1q_s8(u.q + 16 * s), vld1q_s8(xq + 16 * s)), u.sc[s]);
    acc1 = vmlaq_n_s32(acc1, D::dot16_small(vld1q_s8(u.q + 16 * s + 16), vld1q_s8(xq + 16 * s + 16)), u.sc[s + 1]);
  }
  return vaddq_s32(acc0, acc1);
}

// Q2_K: codes 0..3, scales the low nibbles of scales[16], mins the high nibbles
// (against the bsums, kernels.h). GEMM keeps the mins in KUnpacked::sc16.
struct Q2_K {
  static constexpr size_t kWBytes = sizeof(BlockQ2_K), kXBytes = sizeof(BlockQ8_K);
  static constexpr bool kHasMin = true;
  static constexpr size_t kQs = offsetof(BlockQ2_K, qs);
  static void codes(const uint8_t* p, int h, int k, int8x16_t* q) {
    uint8x16_t f[4];
    two_bit_fields(vld1q_u8(p + kQs + 32 * h + 16 * k), f);
    for (int j = 0; j < 4; ++j) q[j] = vreinterpretq_s8_u8(f[j]);
  }
  static void unpack(const uint8_t* p, KUnpacked& u) {
    u.d = f16(p + offsetof(BlockQ2_K, d));
    u.dmin = f16(p + offsetof(BlockQ2_K, dmin));
    for (int h = 0; h < 2; ++h)
      for (int k = 0; k < 2; ++k) {
        int8x16_t q[4];
        codes(p, h, k, q);
        for (int j = 0; j < 4; ++j) vst1q_s8(u.q + 128 * h + 32 * j + 16 * k, q[j]);
      }
    const uint8x16_t raw = vld1q_u8(p);
    int32x4_t sc[4];
    widen16_u8(vandq_u8(raw, vdupq_n_u8(0x0F)), sc);
    for (int i = 0; i < 4; ++i) vst1q_s32(u.sc + 4 * i, sc[i]);
    const uint8x16_t m = vshrq_n_u8(raw, 4);
    vst1q_s16(u.sc16, vreinterpretq_s16_u16(vmovl_u8(vget_low_u8(m))));
    vst1q_s16(u.sc16 + 8, vreinterpretq_s16_u16(vmovl_high_u8(m)));
  }
  template <class D>
  static void dot(const KUnpacked& u, const uint8_t* xb, int32x4_t& isum, int32x4_t& msum) {
    isum = scaled_dots16x16<D>(u, reinterpret_cast<const int8_t*>(xb + 4));
    msum = bsums_dot16(vld1q_s16(u.sc16), vld1q_s16(u.sc16 + 8), xb);
  }
  template <class D>
  static void dot_direct(const uint8_t* p, const uint8_t* xb, int32x4_t& isum, int32x4_t& msum,
                         float& d, float& dmin) {
    d = f16(p + offsetof(BlockQ2_K, d));
    dmin = f16(p + offsetof(BlockQ2_K, dmin));
    const uint8x16_t raw = vld1q_u8(p);
    int32x4_t sc[4];
    widen16_u8(vandq_u8(raw, vdupq_n_u8(0x0F)), sc);
    isum = scaled_dots16x16<D>(reinterpret_cast<const int8_t*>(xb + 4), sc,
                               [p](int h, int k, int8x16_t* q) { codes(p, h, k, q); });
    const uint8x16_t m = vshrq_n_u8(raw, 4);
    msum = bsums_dot16(vreinterpretq_s16_u16(vmovl_u8(vget_low_u8(m))), vreinterpretq_s16_u16(vmovl_high_u8(m)), xb);
  }
};

// Q3_K: signed codes (2 low bits | high bit << 2) - 4 in [-4, 3], scales - 32 in
// [-32, 31].
struct Q3_K {
  static constexpr size_t kWBytes = sizeof(BlockQ3_K), kXBytes = sizeof(BlockQ8_K);
  static constexpr bool kHasMin = false;
  static constexpr size_t kQs = offsetof(BlockQ3_K, qs);
  // sc - 32 as s32, sub-blocks 4i .. 4i+3 in sc[i]. The 6-bit values (quant/blocks.h):
  // low nibbles from scale bytes 0..7 (low halves for s < 8, high for s >= 8), top two
  // bits from bits 2 (s / 4) of byte 8 + s % 4 (one USHL per group of four).
  static void scales(const uint8_t* p, int32x4_t* sc) {
    const uint8_t* b = p + offsetof(BlockQ3_K, scales);
    uint32_t top4;
    std::memcpy(&top4, b + 8, 4);
    const uint8x8_t a = vld1_u8(b);
    const uint8x16_t low = vcombine_u8(vand_u8(a, vdup_n_u8(0x0F)), vshr_n_u8(a, 4));
    const int32x4_t shifts = {0, -2, -4, -6};
    const uint8x16_t top = vandq_u8(vreinterpretq_u8_u32(vshlq_u32(vdupq_n_u32(top4), shifts)), vdupq_n_u8(3));
    const int8x16_t s = vsubq_s8(vreinterpretq_s8_u8(vsliq_n_u8(low, top, 4)), vdupq_n_s8(32));
    const int16x8_t lo16 = vmovl_s8(vget_low_s8(s)), hi16 = vmovl_high_s8(s);
    sc[0] = vmovl_s16(vget_low_s16(lo16));
    sc[1] = vmovl_high_s16(lo16);
    sc[2] = vmovl_s16(vget_low_s16(hi16));
    sc[3] = vmovl_high_s16(hi16);
  }
  // Chunk c = 4h + j's high bit is bit c of hmask[16k ..]: moved to bit 2 (USHL by 2 - c).
  static void codes(const uint8_t* p, int h, int k, int8x16_t* q) {
    uint8x16_t f[4];
    two_bit_fields(vld1q_u8(p + kQs + 32 * h + 16 * k), f);
    const uint8x16_t hm = vld1q_u8(p + 16 * k), four = vdupq_n_u8(4);
    for (int j = 0; j < 4; ++j) {
      const uint8x16_t hb = vandq_u8(vshlq_u8(hm, vdupq_n_s8(static_cast<int8_t>(2 - 4 * h - j))), four);
      q[j] = vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(f[j], hb)), vreinterpretq_s8_u8(four));
    }
  }
  static void unpack(const uint8_t* p, KUnpacked& u) {
    u.d = f16(p + offsetof(BlockQ3_K, d));
    u.dmin = 0.0f;
    for (int h = 0; h < 2; ++h)
      for (int k = 0; k < 2; ++k) {
        int8x16_t q[4];
        codes(p, h, k, q);
        for (int j = 0; j < 4; ++j) vst1q_s8(u.q + 128 * h + 32 * j + 16 * k, q[j]);
      }
    int32x4_t sc[4];
    scales(p, sc);
    for (int i = 0; i < 4; ++i) vst1q_s32(u.sc + 4 * i, sc[i]);
  }
  template <class D>
  static void dot(const KUnpacked& u, const uint8_t* xb, int32x4_t& isum, int32x4_t& msum) {
    isum = scaled_dots16x16<D>(u, reinterpret_cast<const int8_t*>(xb + 4));
    msum = vdupq_n_s32(0);
  }
  template <class D>
  static void dot_direct(const uint8_t* p, const uint8_t* xb, int32x4_t& isum, int32x4_t& msum,
                         float& d, float& dmin) {
    d = f16(p + offsetof(BlockQ3_K, d));
    dmin = 0.0f;
    int32x4_t sc[4];
    scales(p, sc);
    isum = scaled_dots16x16<D>(reinterpret_cast<const int8_t*>(xb + 4), sc,
                               [p](int h, int k, int8x16_t* q) { codes(p, h, k, q); });
    msum = vdupq_n_s32(0);
  }
};

// GEMV: 4 rows x one token, straight from the blocks; the next 4 rows (`ahead` bytes
// on) prefetched at the offset read now.
template <class Ty, class D>
void gemv_k(const uint8_t* const* w, size_t ahead, const uint8_t* x, size_t nb, float* Y,
            size_t valid_rows) {
  float32x4_t acc = vdupq_n_f32(0.0f);
  for (size_t b = 0; b < nb; ++b) {
    const size_t wo = b * Ty::kWBytes;
    const uint8_t* xb = x + b * Ty::kXBytes;
    for (int i = 0; i < 4; ++i)
      for (size_t l = 0; l < Ty::kWBytes; l += 64) __builtin_prefetch(w[i] + ahead + wo + l);
    int32x4_t is[4], ms[4];
    float d[4], dmin[4];
    for (int i = 0; i < 4; ++i)
      Ty::template dot_direct<D>(w[i] + wo, xb, is[i], ms[i], d[i], dmin[i]);
    const float32x4_t dx = vdupq_n_f32(f32(xb));
    acc = step(acc, vld1q_f32(d), dx, reduce4(is[0], is[1], is[2], is[3]));
    if constexpr (Ty::kHasMin)
      acc = step_sub(acc, vld1q_f32(dmin), dx, reduce4(ms[0], ms[1], ms[2], ms[3]));
  }
  float out[4];
  vst1q_f32(out, acc);
  for (size_t i = 0; i < 4 && i < valid_rows; ++i) Y[i] = out[i];
}

// 4 rows (w[0..4)) x T tokens (x[0..T)) over nb super-blocks.
template <class Ty, class D, int T>
void gemm_k(const uint8_t* const* w, const uint8_t* const* x, size_t nb, float* Y, size_t ldy,
            size_t valid_rows, size_t valid_tokens) {
  float32x4_t acc[T];
  for (int t = 0; t < T; ++t) acc[t] = vdupq_n_f32(0.0f);
  KUnpacked u[4];
  for (size_t b = 0; b < nb; ++b) {
    const size_t wo = b * Ty::kWBytes, xo = b * Ty::kXBytes;
    for (int i = 0; i < 4; ++i) Ty::unpack(w[i] + wo, u[i]);
    const float32x4_t d = {u[0].d, u[1].d, u[2].d, u[3].d};
    const float32x4_t dmin = {u[0].dmin, u[1].dmin, u[2].dmin, u[3].dmin};
    for (int t = 0; t < T; ++t) {
      const uint8_t* xb = x[t] + xo;
      const float32x4_t dx = vdupq_n_f32(f32(xb));
      int32x4_t is[4], ms[4];
      for (int i = 0; i < 4; ++i) Ty::template dot<D>(u[i], xb, is[i], ms[i]);
      acc[t] = step(acc[t], d, dx, reduce4(is[0], is[1], is[2], is[3]));
      if constexpr (Ty::kHasMin)
        acc[t] = step_sub(acc[t], dmin, dx, reduce4(ms[0], ms[1], ms[2], ms[3]));
    }
  }
  for (size_t t = 0; t < size_t(T) && t < valid_tokens; ++t) {
    float out[4];
    vst1q_f32(out, acc[t]);
    for (size_t i = 0; i < 4 && i < valid_rows; ++i) Y[t * ldy + i] = out[i];
  }
}

// ---- the microkernels as qmatmul_driver.h takes them ------------------------------------

// Q4_0 / Q8_0 with integer dots D: GEMV 8 rows, GEMM 4 rows x 4 tokens with the
// microkernel Gemm (gemm4x4, or i8mm's SMMLA tiles).
template <class Ty, class D,
          void (*Gemm)(const uint8_t* const*, const uint8_t* const*, size_t, float*, size_t, size_t,
                       size_t) = gemm4x4<Ty, D>>
struct Kern32 {
  static constexpr size_t kBlockElems = kQK;
  static constexpr int kGemvRows = 8, kGemmRows = 4, kGemmTokens = 4;
  static void gemv(const uint8_t* w, size_t w_stride, size_t rows, const uint8_t* x, size_t nb, float* y) {
    const uint8_t* p[8];
    row_pointers<8>(w, w_stride, 0, rows, p);
    gemv8<Ty, D>(p, 8 * w_stride, x, nb, y, rows);
  }
  static void gemm(const uint8_t* const* w, const uint8_t* const* x, size_t nb, float* y, size_t ldy,
                   size_t rows, size_t tokens) {
    Gemm(w, x, nb, y, ldy, rows, tokens);
  }
};

// The K-quants: GEMV 4 rows straight from the blocks; GEMM 4 rows x 1..4 tokens.
// K-quants: GEMV 4 rows straight from the blocks; GEMM 4 rows x 1..4 tokens.
template <class Ty, class D>
struct KernK {
  static constexpr size_t kBlockElems = kQKK;
  static constexpr int kGemvRows = 4, kGemmRows = 4, kGemmTokens = 4;
  static void gemv(const uint8_t* w, size_t w_stride, size_t rows, const uint8_t* x, size_t nb, float* y) {
    const uint8_t* p[4];
    row_pointers<4>(w, w_stride, 0, rows, p);
    gemv_k<Ty, D>(p, 4 * w_stride, x, nb, y, rows);
  }
  static void gemm(const uint8_t* const* w, const uint8_t* const* x, size_t nb, float* y, size_t ldy,
                   size_t rows, size_t tokens) {
    switch (tokens) {
      case 1: return gemm_k<Ty, D, 1>(w, x, nb, y, ldy, rows, 1);
      case 2: return gemm_k<Ty, D, 2>(w, x, nb, y, ldy, rows, 2);
      case 3: return gemm_k<Ty, D, 3>(w, x, nb, y, ldy, rows, 3);
      default: return gemm_k<Ty, D, 4>(w, x, nb, y, ldy, rows, 4);
    }
  }
};

// The table entries every NEON level fills the same way, with its dot policy.
template <class D>
void add_quant_common(Table& t) {
  t.of(DType::Q8_0).quantize_row = quantize_row_q8_0<QuantOps>;
  t.of(DType::Q8_K).quantize_row = quantize_row_q8_k<QuantOps>;
  t.of(DType::Q8_0).qmatmul = qmatmul<Kern32<Q8_0, D>>;
  t.of(DType::Q4_0).qmatmul = qmatmul<Kern32<Q4_0, D>>;
  t.of(DType::Q4_1).qmatmul = qmatmul<Kern32<Q4_1, D>>;
  t.of(DType::Q5_0).qmatmul = qmatmul<Kern32<Q5_0, D>>;
  t.of(DType::IQ4_NL).qmatmul = qmatmul<Kern32<IQ4_NL, D>>;
  t.of(DType::Q5_1).qmatmul = qmatmul<Kern32<Q5_1, D>>;
  t.of(DType::Q4_K).qmatmul = qmatmul<KernK<Q4_K, D>>;
  t.of(DType::Q6_K).qmatmul = qmatmul<KernK<Q6_K, D>>;
  t.of(DType::Q5_K).qmatmul = qmatmul<KernK<Q5_K, D>>;
  t.of(DType::IQ4_XS).qmatmul = qmatmul<KernK<IQ4_XS, D>>;
  t.of(DType::Q2_K).qmatmul = qmatmul<KernK<Q2_K, D>>;
  t.of(DType::Q3_K).qmatmul = qmatmul<KernK<Q3_K, D>>;
}

}  // namespace
}  // namespace ember::kernels
