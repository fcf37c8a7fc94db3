// Private to kernels/x86: the x86-64 quantized matmul kernels, written once for the
// AVX2, AVX-VNNI and AVX512-VNNI tables. Each qmatmul_<isa>.cpp includes this header
// (compiled with its own target flags; everything here is in an anonymous namespace)
// and the flags choose the integer dot primitive, `Dot` (below):
//   AVX2:         VPMADDUBSW (u8 x s8 -> pairs of s16) then VPMADDWD by 1 (-> s32);
//   AVX-VNNI:     VPDPBUSD (VEX): four u8 x s8 products added to an s32 lane, one uop;
//   AVX512-VNNI:  VPDPBUSD (EVEX, ymm with AVX512VL: 32 vector registers);
//   tests only:   the AVX-VNNI form on an exact AVX2 emulation of VPDPBUSD / VPDPWSSD
//                 (EMBER_EMULATE_VNNI, vnni_emulated_x86.h): test_kernels runs the VNNI
//                 code paths against the reference on machines without VNNI.
// Both give the same exact s32 sums of four adjacent products (the AVX2 pairs never
// saturate, see below), so the layouts, reductions and float steps are shared.
// Sub-block sums times a 6-bit scale (Q4_K, Q5_K, Q6_K): AVX2 multiplies s16 pair sums
// by the scale in every s16 lane (VPMADDWD); VNNI takes VPDPBUSD's s32 sums, which
// stay below 2^15 for those codes, and VPDPWSSD against the scale in the low s16 half
// of each s32 lane (the high half, the sum's sign extension, meets a zero).
// Q2_K, Q3_K and IQ4_XS (whose four-product sums can pass 2^15) keep the AVX2 sequence
// in every table. VNNI also folds offsets into the accumulator VPDPBUSD starts from:
// Q4_0's -8 and Q5_0's -16 as -8 / -16 (sums of four x), and Q8_0 (IQ4_NL) goes as
// (w + 128) x onto -128 (sums of four x), one instruction per row and token.
//
// Integer dots, AVX2 view: the weight operand of VPMADDUBSW must be unsigned: Q4_0
// nibbles stay 0..15 and the -8 is subtracted as 8 * (pair sums of x) in s16 (GEMV:
// 8 sum(x) from each block sum); Q8_0 uses |w| and sign(x, w); Q4_K, Q5_K, Q6_K, Q2_K and Q3_K codes are unsigned already (Q6_K's -32
// and Q3_K's -4 come from the activation bsums); IQ4_XS's signed grid levels, and IQ4_NL's
// in the GEMV, go as |x| (once per activation block) times the level signed like x. No step
// saturates: |x| <= 127 (kernels.h), so pair sums stay below 2 * 128 * 127 < 2^15.
//
// Float side: lanes are output rows (GEMM: 4 rows x 2 tokens). Per block, each
// (row, token)'s integer vector is reduced to its exact sum (eight at a time: VPHADDW
// for the Q4_0 GEMM, whose block sums fit in s16; VPMADDWD / VPACKSSDW levels for the
// Q4_0 GEMV; unpack-and-add or VPHADDD otherwise), and the accumulators
// advance by acc + (dw * dx) * float(isum): the reference's operations in the
// reference's order, so the results equal the scalar ones bit for bit.
//
// Blocking: 32-weight types GEMV 16 rows x 1 token (the token's block loaded once for
// 16 weight streams; Q4_0, Q4_1, Q5_0, Q5_1 and, on AVX2, IQ4_NL two rows per vector;
// rows left over 8 at a time), GEMM 4 rows x 4 tokens (each weight block unpacked once
// for 4 tokens).
// K-quant GEMV 8 rows x 1 token straight from the blocks (Q4_K, Q5_K and IQ4_XS two
// rows per vector, Q6_K, Q2_K and Q3_K one; each super-block's activations serve 8 rows);
// K-quant GEMM unpacks each row's super-block to an L1 buffer (codes as bytes plus
// ready-made scale vectors) once for up to 4 tokens. GEMV prefetches the next row group
// (rows are short streams).
// Row and token counts that do not fill a block reuse a valid row or token pointer
// and drop the duplicate results (each output's computation is lane-independent).
#pragma once
#include <immintrin.h>

#include <cmath>
#include <cstddef>
#include <cstring>

#include "kernels/isa_tables.h"
#include "kernels/qmatmul_driver.h"
#include "quant/blocks.h"
#include "quant/unpack.h"
#if defined(EMBER_EMULATE_VNNI)
#include "kernels/x86/vnni_emulated_x86.h"
#endif

namespace ember::kernels {
namespace {

float f16(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return _cvtsh_ss(h);  // exact
}
float f32(const uint8_t* p) {
  float f;
  std::memcpy(&f, p, 4);
  return f;
}
__m256i load256(const uint8_t* p) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
}
__m128i load128(const uint8_t* p) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)); }

// ---- activation quantizers' vector steps (qmatmul_driver.h; bitwise the reference's) ----

// x * s rounded half away from zero, as roundf: trunc, then +-1 where |fraction| >= 0.5.
// v - trunc(v) is exact for |v| < 2^23.
__m256i round_away8(__m256 v) {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  const __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
  const __m256 frac = _mm256_andnot_ps(sign, _mm256_sub_ps(v, t));
  const __m256 up = _mm256_cmp_ps(frac, _mm256_set1_ps(0.5f), _CMP_GE_OQ);
  const __m256 one = _mm256_or_ps(_mm256_and_ps(v, sign), _mm256_set1_ps(1.0f));
  return _mm256_cvtps_epi32(_mm256_add_ps(t, _mm256_and_ps(up, one)));
}

// 32 int32 codes (|.| <= 127) -> 32 bytes in order: the saturating packs are exact;
// they interleave 128-bit lanes, which the dword permute undoes.
void store_codes32(const __m256i* c, int8_t* q) {
  const __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(c[0], c[1]), _mm256_packs_epi32(c[2], c[3]));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(q),
                      _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
}

struct QuantOps {
  static float absmax(const float* x, int n) {  // n a multiple of 8
    const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    __m256 mx = _mm256_setzero_ps();
    for (int i = 0; i < n; i += 8) mx = _mm256_max_ps(mx, _mm256_and_ps(_mm256_loadu_ps(x + i), abs_mask));
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(mx), _mm256_extractf128_ps(mx, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
    return _mm_cvtss_f32(m4);
  }
  static void round_away(const float* x, float s, int8_t* q, int n) {  // n a multiple of 32
    const __m256 vs = _mm256_set1_ps(s);
    for (int i = 0; i < n; i += 32) {
      __m256i c[4];
      for (int j = 0; j < 4; ++j) c[j] = round_away8(_mm256_mul_ps(_mm256_loadu_ps(x + i + 8 * j), vs));
      store_codes32(c, q + i);
    }
  }
  // VCVTPS2DQ under the default MXCSR rounds half to even, as the reference's 1.5 * 2^23.
  static void round_even_capped(const float* x, float s, int8_t* q, int n) {
    const __m256 vs = _mm256_set1_ps(s);
    const __m256i cap = _mm256_set1_epi32(127);
    for (int i = 0; i < n; i += 32) {
      __m256i c[4];
      for (int j = 0; j < 4; ++j)
        c[j] = _mm256_min_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + i + 8 * j), vs)), cap);
      store_codes32(c, q + i);
    }
  }
  // SAD of (q + 128) against 0 sums 8 bytes per 64-bit lane.
  static void sums16(const int8_t* q, int16_t* sums, int n_groups) {  // n_groups even
    const __m256i bias = _mm256_set1_epi8(static_cast<char>(0x80));
    for (int j = 0; j < n_groups / 2; ++j) {
      const __m256i s = _mm256_sad_epu8(
          _mm256_xor_si256(load256(reinterpret_cast<const uint8_t*>(q) + 32 * j), bias), _mm256_setzero_si256());
      alignas(32) int64_t v[4];
      _mm256_store_si256(reinterpret_cast<__m256i*>(v), s);
      sums[2 * j] = static_cast<int16_t>(v[0] + v[1] - 16 * 128);
      sums[2 * j + 1] = static_cast<int16_t>(v[2] + v[3] - 16 * 128);
    }
  }
};

// ---- integer helpers ------------------------------------------------------------------

// The four exact sums of a, b, c, d's eight int32 lanes, in lanes 0..3.
__m128i reduce4(__m256i a, __m256i b, __m256i c, __m256i d) {
  const __m256i abcd = _mm256_hadd_epi32(_mm256_hadd_epi32(a, b), _mm256_hadd_epi32(c, d));
  return _mm_add_epi32(_mm256_castsi256_si128(abcd), _mm256_extracti128_si256(abcd, 1));
}

// The eight exact sums of v[0..7]'s eight int32 lanes, in lanes 0..7. Unpack-and-add
// levels rather than VPHADDD (3 uops, slower on the Zen cores measured here):
// rows 2j, 2j+1 interleaved, then 4 rows per 128-bit lane, then the lanes added.
// Forced inline: called out of line (GCC's choice at five call sites), v[] goes
// through memory and the GEMV loses ~25%.
[[gnu::always_inline]] inline __m256i reduce8(const __m256i* v) {
  __m256i t[4], u[2];
  for (int j = 0; j < 4; ++j)
    t[j] = _mm256_add_epi32(_mm256_unpacklo_epi32(v[2 * j], v[2 * j + 1]),
                            _mm256_unpackhi_epi32(v[2 * j], v[2 * j + 1]));
  for (int j = 0; j < 2; ++j)
    u[j] = _mm256_add_epi32(_mm256_unpacklo_epi64(t[2 * j], t[2 * j + 1]),
                            _mm256_unpackhi_epi64(t[2 * j], t[2 * j + 1]));
  return _mm256_add_epi32(_mm256_permute2x128_si256(u[0], u[1], 0x20),
                          _mm256_permute2x128_si256(u[0], u[1], 0x31));
}

// The eight exact sums of v[0..4)'s 128-bit lanes, each four int32 partial sums:
// lanes 0..3 the low lanes of v[0..4), lanes 4..7 the high ones.
[[gnu::always_inline]] inline __m256i reduce_pairs4(const __m256i* v) {
  __m256i t[2];
  for (int j = 0; j < 2; ++j)
    t[j] = _mm256_add_epi32(_mm256_unpacklo_epi32(v[2 * j], v[2 * j + 1]),
                            _mm256_unpackhi_epi32(v[2 * j], v[2 * j + 1]));
  return _mm256_add_epi32(_mm256_unpacklo_epi64(t[0], t[1]), _mm256_unpackhi_epi64(t[0], t[1]));
}

// The same for sixteen int16 lanes whose absolute values sum to < 2^15 (so every
// partial sum fits), widened to int32: three VPHADDW levels instead of VPMADDWD each.
__m256i reduce8_i16(const __m256i* v) {
  const __m256i a = _mm256_hadd_epi16(_mm256_hadd_epi16(v[0], v[1]), _mm256_hadd_epi16(v[2], v[3]));
  const __m256i b = _mm256_hadd_epi16(_mm256_hadd_epi16(v[4], v[5]), _mm256_hadd_epi16(v[6], v[7]));
  const __m256i c = _mm256_hadd_epi16(a, b);  // per 128-bit lane: v0 .. v7 partial sums
  return _mm256_cvtepi16_epi32(
      _mm_add_epi16(_mm256_castsi256_si128(c), _mm256_extracti128_si256(c, 1)));
}

// acc + (scale * dx) * float(isum), lane-wise, unfused (-ffp-contract=off).
__m128 step(__m128 acc, __m128 scale, __m128 dx, __m128i isum) {
  return _mm_add_ps(acc, _mm_mul_ps(_mm_mul_ps(scale, dx), _mm_cvtepi32_ps(isum)));
}
__m128 step_sub(__m128 acc, __m128 scale, __m128 dx, __m128i isum) {
  return _mm_sub_ps(acc, _mm_mul_ps(_mm_mul_ps(scale, dx), _mm_cvtepi32_ps(isum)));
}
__m256 step8(__m256 acc, __m256 scale, __m256 dx, __m256i isum) {
  return _mm256_add_ps(acc, _mm256_mul_ps(_mm256_mul_ps(scale, dx), _mm256_cvtepi32_ps(isum)));
}
__m256 step8_sub(__m256 acc, __m256 scale, __m256 dx, __m256i isum) {
  return _mm256_sub_ps(acc, _mm256_mul_ps(_mm256_mul_ps(scale, dx), _mm256_cvtepi32_ps(isum)));
}

// The fp16 scales at byte `off` of rows w[idx[0..7]], as eight floats. Packed in
// general-purpose registers (idle in these loops) rather than with 8 vector inserts.
uint64_t f16x4_bits(const uint8_t* const* w, const int* idx, size_t off) {
  uint16_t h[4];
  for (int i = 0; i < 4; ++i) std::memcpy(&h[i], w[idx[i]] + off, 2);
  return uint64_t{h[0]} | uint64_t{h[1]} << 16 | uint64_t{h[2]} << 32 | uint64_t{h[3]} << 48;
}
__m256 f16x8(const uint8_t* const* w, const int* idx, size_t off) {
  const __m128i h = _mm_set_epi64x(static_cast<int64_t>(f16x4_bits(w, idx + 4, off)),
                                   static_cast<int64_t>(f16x4_bits(w, idx, off)));
  return _mm256_cvtph_ps(h);
}

// The fp16 values at byte `off` of rows w[0..8), as eight floats; packed in
// general-purpose registers as scales16 (below) does.
__m256 f16x8_rows(const uint8_t* const* w, size_t off) {
  uint64_t lo4 = 0, hi4 = 0;
  for (int j = 0; j < 4; ++j) {
    uint16_t a, c;
    std::memcpy(&a, w[j] + off, 2);
    std::memcpy(&c, w[4 + j] + off, 2);
    lo4 |= uint64_t{a} << (16 * j);
    hi4 |= uint64_t{c} << (16 * j);
    asm("" : "+r"(lo4), "+r"(hi4));
  }
  return _mm256_cvtph_ps(
      _mm_insert_epi64(_mm_cvtsi64_si128(static_cast<int64_t>(lo4)), static_cast<int64_t>(hi4), 1));
}

// (No vector constants at namespace scope: their initialisers would run AVX2 code at
// program start on any CPU.)
__m256i ones16() { return _mm256_set1_epi16(1); }

// Sums of adjacent s16 pairs as s32 (VPMADDWD by 1): exact.
__m256i pair_sums(__m256i v) { return _mm256_madd_epi16(v, ones16()); }

// ---- the integer dot primitive, per instruction set ------------------------------------
// dp(acc, u, s):        acc + (sum of the four u8 x s8 products in each s32 lane); the
//                       caller guarantees every adjacent pair's sum fits s16 (AVX2).
// dp2(u0, s0, u1, s1):  the same for two operand pairs (eight products per lane), whose
//                       per-lane s16 sums of four products fit s16 (AVX2).
// wdot(acc, a, b):      acc + a0 b0 + a1 b1 per s32 lane (s16 pairs; VPMADDWD + VPADDD
//                       or VPDPWSSD), for sums that do not reach 2^31.
// Scaled sub-block sums (Q4_K, Q5_K, Q6_K): a scale vector in the primitive's layout,
// made by VPSHUFB with scale_sel(word): the s16 word `word` selects (two byte indices,
// 0xFF = zero); scaled(acc, u, s, sc) = acc + sum of the products times the scale,
// scaled2 for two operand pairs, when every lane's sum of four (scaled2: eight)
// products fits s16; kScaleBothHalves: whether the scale fills both s16 halves of an
// s32 lane (AVX2) or only the low one (VNNI).
struct DotMaddubs {
  static constexpr bool kVnni = false;
  static constexpr bool kScaleBothHalves = true;
  static __m256i dp(__m256i acc, __m256i u, __m256i s) {
    return _mm256_add_epi32(acc, pair_sums(_mm256_maddubs_epi16(u, s)));
  }
  static __m256i dp2(__m256i u0, __m256i s0, __m256i u1, __m256i s1) {
    return pair_sums(_mm256_add_epi16(_mm256_maddubs_epi16(u0, s0), _mm256_maddubs_epi16(u1, s1)));
  }
  static __m256i wdot(__m256i acc, __m256i a, __m256i b) { return _mm256_add_epi32(acc, _mm256_madd_epi16(a, b)); }
  static __m256i scale_sel(uint16_t word) { return _mm256_set1_epi16(static_cast<int16_t>(word)); }
  static __m256i scaled(__m256i acc, __m256i u, __m256i s, __m256i sc) {
    return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), sc));
  }
  static __m256i scaled2(__m256i acc, __m256i u0, __m256i s0, __m256i u1, __m256i s1, __m256i sc) {
    const __m256i p = _mm256_add_epi16(_mm256_maddubs_epi16(u0, s0), _mm256_maddubs_epi16(u1, s1));
    return _mm256_add_epi32(acc, _mm256_madd_epi16(p, sc));
  }
};

// VPDPBUSD / VPDPWSSD: the VEX forms (AVX-VNNI), the EVEX ones (AVX512-VNNI + VL), or
// (EMBER_EMULATE_VNNI, tests only) their exact AVX2 emulation (vnni_emulated_x86.h),
// which builds the AVX-VNNI table's code for a machine without VNNI.
#if defined(EMBER_EMULATE_VNNI)
#define EMBER_DOT_VNNI 1
#elif defined(__AVX512VNNI__) && defined(__AVX512VL__)
#define EMBER_DOT_VNNI 1
inline __m256i dpbusd(__m256i acc, __m256i u, __m256i s) { return _mm256_dpbusd_epi32(acc, u, s); }
inline __m256i dpwssd(__m256i acc, __m256i a, __m256i b) { return _mm256_dpwssd_epi32(acc, a, b); }
#elif defined(__AVXVNNI__)
#define EMBER_DOT_VNNI 1
inline __m256i dpbusd(__m256i acc, __m256i u, __m256i s) { return _mm256_dpbusd_avx_epi32(acc, u, s); }
inline __m256i dpwssd(__m256i acc, __m256i a, __m256i b) { return _mm256_dpwssd_avx_epi32(acc, a, b); }
#endif
#if defined(EMBER_DOT_VNNI)
struct DotVnni {
  static constexpr bool kVnni = true;
  static constexpr bool kScaleBothHalves = false;
  static __m256i dp(__m256i acc, __m256i u, __m256i s) { return dpbusd(acc, u, s); }
  static __m256i dp2(__m256i u0, __m256i s0, __m256i u1, __m256i s1) {
    return dpbusd(dpbusd(_mm256_setzero_si256(), u0, s0), u1, s1);
  }
  static __m256i wdot(__m256i acc, __m256i a, __m256i b) { return dpwssd(acc, a, b); }
  // (word, zero) in every s32 lane.
  static __m256i scale_sel(uint16_t word) { return _mm256_set1_epi32(static_cast<int>(0xFFFF0000u | word)); }
  // The s32 sum (|.| < 2^15) against (scale, 0): sum * scale + sign extension * 0.
  static __m256i scaled(__m256i acc, __m256i u, __m256i s, __m256i sc) {
    return dpwssd(acc, dpbusd(_mm256_setzero_si256(), u, s), sc);
  }
  static __m256i scaled2(__m256i acc, __m256i u0, __m256i s0, __m256i u1, __m256i s1, __m256i sc) {
    return dpwssd(acc, dp2(u0, s0, u1, s1), sc);
  }
};
using Dot = DotVnni;
#else
using Dot = DotMaddubs;
#endif

// ---- 32-weight blocks: Q4_0, Q8_0 (activations Q8_0) -------------------------------

// GEMV row groups (gemv16): rows k and k + 8 (k < 8) at w[k] and w[k] + off8; the exact
// block sums come back as two vectors whose lanes are rows kRows16[0] and kRows16[1]
// (the order Q4_0's reduction produces; Q8_0 follows it).
constexpr int kRows16[2][8] = {{0, 1, 2, 3, 8, 9, 10, 11}, {4, 5, 6, 7, 12, 13, 14, 15}};

// The 32 codes of a 4-bit block whose 16 code bytes start at qs (Q4_0, Q4_1): weights
// 0..15 (low nibbles) in the low 128-bit lane, 16..31 (high nibbles) in the high one.
__m256i nibbles32(const uint8_t* qs) {
  const __m256i raw = _mm256_broadcastsi128_si256(load128(qs));
  return _mm256_and_si256(_mm256_srlv_epi32(raw, _mm256_setr_epi32(0, 0, 0, 0, 4, 4, 4, 4)),
                          _mm256_set1_epi8(0x0F));
}

// GEMV block of 16 rows (see kRows16) for types whose block sums need s32 lanes: one row
// per vector, reduced eight at a time (the exact sums, in kRows16's order).
template <class Ty>
[[gnu::always_inline]] inline void dot16_row_per_vector(const uint8_t* const* w, size_t off8,
                                                        const uint8_t* xb, __m256i* isum) {
  const typename Ty::Xv x = Ty::load_x(xb);
  for (int i = 0; i < 2; ++i) {
    __m256i v[8];
    for (int j = 0; j < 4; ++j) {
      v[j] = Ty::dot(Ty::unpack(w[4 * i + j]), x);
      v[4 + j] = Ty::dot(Ty::unpack(w[4 * i + j] + off8), x);
    }
    isum[i] = reduce8(v);
  }
}

// GEMV block of 16 rows (see kRows16) for unsigned codes 0..kMaxCode, two rows per vector:
// codes(k, &lo, &hi) gives rows k | k + 8 (low | high 128-bit lane), weights 0..15 in lo
// and 16..31 in hi, so one pair of VPMADDUBSW (lo against x[0..16) in both lanes, hi
// against x[16..32)) serves both rows and 16 rows enter the reduction as 8 vectors. The
// reduction alternates VPMADDWD by 1 and VPACKSSDW (1 uop each, where VPHADDW is 3 and
// measured slower):
//   s[k]      row k | row k+8: 4 s32 each (8 terms w x each)
//   pack      rows 2j, 2j+1 | 2j+8, 2j+9: 4 s16 each; pair_sums: 2 s32 each (16 terms)
//   pack      rows 4i..4i+3 | 4i+8..4i+11: 2 s16 each; pair_sums: rows kRows16[i] (32 terms)
// A value of n terms is at most n * kMaxCode * 127, so the packs are exact while that is
// below 2^15: both for 4-bit codes (16 * 15 * 127); for 5-bit codes only the first
// (8 * 31 * 127), so the last level adds s32 pairs with VPHADDD instead (same lane order).
template <int kMaxCode, class Codes>
[[gnu::always_inline]] inline void dot16_two_rows(const uint8_t* xb, const Codes& codes, __m256i* isum) {
  static_assert(8 * kMaxCode * 127 < 32768, "the first pack must be exact");
  const __m256i xlo = _mm256_broadcastsi128_si256(load128(xb + 2));   // x[0..16) twice
  const __m256i xhi = _mm256_broadcastsi128_si256(load128(xb + 18));  // x[16..32) twice
  __m256i s[8];
  for (int k = 0; k < 8; ++k) {
    __m256i lo, hi;
    codes(k, &lo, &hi);
    s[k] = Dot::dp2(lo, xlo, hi, xhi);
  }
  __m256i p[4];
  for (int j = 0; j < 4; ++j) p[j] = pair_sums(_mm256_packs_epi32(s[2 * j], s[2 * j + 1]));
  for (int i = 0; i < 2; ++i) {
    if constexpr (16 * kMaxCode * 127 < 32768)
      isum[i] = pair_sums(_mm256_packs_epi32(p[2 * i], p[2 * i + 1]));
    else
      isum[i] = _mm256_hadd_epi32(p[2 * i], p[2 * i + 1]);
  }
}

// The 16 code bytes of a 4-bit block of rows k and k + 8 (at byte `at` of w[k] and
// w[k] + off8) as low nibbles (weights 0..15) and high nibbles (16..31).
[[gnu::always_inline]] inline void nibble_pair(const uint8_t* const* w, size_t off8, size_t at, int k,
                                               __m256i* lo, __m256i* hi) {
  const __m256i low4 = _mm256_set1_epi8(0x0F);
  const __m256i raw =
      _mm256_inserti128_si256(_mm256_castsi128_si256(load128(w[k] + at)), load128(w[k] + off8 + at), 1);
  *lo = _mm256_and_si256(raw, low4);
  *hi = _mm256_and_si256(_mm256_srli_epi16(raw, 4), low4);
}

// m * (sum of the activation block's 32 codes) in every s32 lane (the codes' offset m,
// subtracted once per block rather than per row).
__m256i offset_sum(const uint8_t* xb, int8_t m) {
  const __m256i s = Dot::dp(_mm256_setzero_si256(), _mm256_set1_epi8(m), load256(xb + 2));
  __m256i t = _mm256_add_epi32(s, _mm256_permute2x128_si256(s, s, 0x01));
  t = _mm256_add_epi32(t, _mm256_shuffle_epi32(t, 0x4E));
  return _mm256_add_epi32(t, _mm256_shuffle_epi32(t, 0xB1));
}

struct Q4_0 {
  static constexpr size_t kWBytes = sizeof(BlockQ4_0), kXBytes = sizeof(BlockQ8_0);
  static constexpr bool kHasMin = false;
  using Wv = __m256i;  // codes 0..15: weights 0..15 in the low lane, 16..31 in the high
  struct Xv {
    __m256i q;   // codes
    __m256i m8;  // AVX2: 8 * (pair sums of the codes) as s16; VNNI: -8 * (sums of 4) as s32
  };
  static Wv unpack(const uint8_t* p) { return nibbles32(p + 2); }
  static Xv load_x(const uint8_t* p) {
    const __m256i q = load256(p + 2), eight = _mm256_set1_epi8(8), zero = _mm256_setzero_si256();
    if constexpr (Dot::kVnni) return {q, _mm256_sub_epi32(zero, Dot::dp(zero, eight, q))};
    return {q, _mm256_maddubs_epi16(eight, q)};
  }
  // AVX2: (w - 8) x in s16 pairs: |.| <= 2 * 8 * 127 each and 32 * 8 * 127 < 2^15 in
  // all, so the s16 reduction is exact. VNNI: one VPDPBUSD onto the offset term, s32.
  static __m256i dot(const Wv& w, const Xv& x) {
    if constexpr (Dot::kVnni) return Dot::dp(x.m8, w, x.q);
    return _mm256_sub_epi16(_mm256_maddubs_epi16(w, x.q), x.m8);
  }
  static __m256i reduce(const __m256i* v) {
    if constexpr (Dot::kVnni) return reduce8(v);
    return reduce8_i16(v);
  }

  // GEMV, 16 rows (see kRows16) against activation block xb: two rows per vector on
  // codes 0..15, then minus 8 sum(x) (the codes' offset).
  [[gnu::always_inline]] static void dot16(const uint8_t* const* w, size_t off8, const uint8_t* xb,
                                           __m256i* isum) {
    dot16_two_rows<15>(xb, [&](int k, __m256i* lo, __m256i* hi) { nibble_pair(w, off8, 2, k, lo, hi); }, isum);
    const __m256i m8 = offset_sum(xb, 8);
    for (int i = 0; i < 2; ++i) isum[i] = _mm256_sub_epi32(isum[i], m8);
  }
};

struct Q8_0 {
  static constexpr size_t kWBytes = sizeof(BlockQ8_0), kXBytes = sizeof(BlockQ8_0);
  static constexpr bool kHasMin = false;
  // AVX2: |w| (|-128| = 128 as an unsigned byte: still exact) and w; VNNI: w + 128
  // as an unsigned byte (w ^ 0x80), its offset taken out by the activations' term.
  struct Wv {
    __m256i u, q;
  };
  struct Xv {
    __m256i q;
    __m256i neg_offset;  // VNNI: -128 (sums of four codes) as s32; AVX2: unused
  };
  static Wv from_codes(__m256i q) {
    if constexpr (Dot::kVnni) return {_mm256_xor_si256(q, _mm256_set1_epi8(static_cast<char>(0x80))), q};
    return {_mm256_abs_epi8(q), q};
  }
  static Wv unpack(const uint8_t* p) { return from_codes(load256(p + 2)); }
  static Xv load_x(const uint8_t* p) {
    const __m256i q = load256(p + 2), zero = _mm256_setzero_si256();
    if constexpr (Dot::kVnni)
      return {q, _mm256_sub_epi32(zero, Dot::dp(zero, _mm256_set1_epi8(static_cast<char>(0x80)), q))};
    return {q, zero};
  }
  // AVX2: w x = |w| * (x signed like w), pairs to s16 (<= 2 * 128 * 127), then to s32.
  // VNNI: (w + 128) x onto -128 x: one VPDPBUSD per row and token.
  static __m256i dot(const Wv& w, const Xv& x) {
    if constexpr (Dot::kVnni) return Dot::dp(x.neg_offset, w.u, x.q);
    return Dot::dp(_mm256_setzero_si256(), w.u, _mm256_sign_epi8(x.q, w.q));
  }
  static __m256i reduce(const __m256i* v) { return reduce8(v); }

  // GEMV, 16 rows (see kRows16): one row per vector as in gemv8 (pairs of 32 products
  // do not fit s16, so two rows could not share the reduction); the gain is gemv16's.
  [[gnu::always_inline]] static void dot16(const uint8_t* const* w, size_t off8, const uint8_t* xb,
                                           __m256i* isum) {
    dot16_row_per_vector<Q8_0>(w, off8, xb, isum);
  }
};

// Q5_0's fifth bits (u32 at p, bit j = weight j) as 0x10 or 0 in byte j: each byte takes
// the qh byte holding its bit, then the bit is tested against a per-byte mask.
__m256i fifth_bits32(const uint8_t* p) {
  uint32_t qh;
  std::memcpy(&qh, p, 4);
  const __m256i spread = _mm256_shuffle_epi8(
      _mm256_set1_epi32(static_cast<int>(qh)),
      _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3));
  const __m256i bit = _mm256_set1_epi64x(static_cast<int64_t>(0x8040201008040201ull));
  const __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit);
  return _mm256_and_si256(set, _mm256_set1_epi8(0x10));
}

// Q5_0/Q5_1's fifth bits of rows k and k + 8 (u32 at byte `at` of w[k] and w[k] + off8)
// as 0x10 or 0 per byte, in nibble_pair's layout: lo for weights 0..15, hi for 16..31.
[[gnu::always_inline]] inline void fifth_bit_pair(const uint8_t* const* w, size_t off8, size_t at, int k,
                                                  __m256i* lo, __m256i* hi) {
  uint32_t a, b;
  std::memcpy(&a, w[k] + at, 4);
  std::memcpy(&b, w[k] + off8 + at, 4);
  const __m256i qh = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_cvtsi32_si128(static_cast<int>(a))),
                                             _mm_cvtsi32_si128(static_cast<int>(b)), 1);
  const __m256i bit = _mm256_set1_epi64x(static_cast<int64_t>(0x8040201008040201ull));
  const __m256i sixteen = _mm256_set1_epi8(0x10);
  auto test = [&](__m256i spread) {
    return _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit), sixteen);
  };
  *lo = test(_mm256_shuffle_epi8(qh, _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,
                                                       0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1)));
  *hi = test(_mm256_shuffle_epi8(qh, _mm256_setr_epi8(2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3,
                                                       2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3)));
}

// The 5-bit codes of rows k | k + 8 (nibbles at byte `at_qs`, fifth bits at `at_qh`).
[[gnu::always_inline]] inline void five_bit_pair(const uint8_t* const* w, size_t off8, size_t at_qh,
                                                 size_t at_qs, int k, __m256i* lo, __m256i* hi) {
  __m256i flo, fhi;
  nibble_pair(w, off8, at_qs, k, lo, hi);
  fifth_bit_pair(w, off8, at_qh, k, &flo, &fhi);
  *lo = _mm256_or_si256(*lo, flo);
  *hi = _mm256_or_si256(*hi, fhi);
}

// Q5_0: unsigned codes 0..31 (nibbles | fifth bit << 4) against x, minus 16 x in s32 lanes
// (computed once per activation block); 32 products reach 32 * 31 * 127 > 2^15, so sums
// are reduced in s32, as Q8_0's.
struct Q5_0 {
  static constexpr size_t kWBytes = sizeof(BlockQ5_0), kXBytes = sizeof(BlockQ8_0);
  static constexpr bool kHasMin = false;
  using Wv = __m256i;
  struct Xv {
    __m256i q, m16;  // codes; -16 * (sums of 4 codes) as s32
  };
  static Wv unpack(const uint8_t* p) { return _mm256_or_si256(nibbles32(p + 6), fifth_bits32(p + 2)); }
  static Xv load_x(const uint8_t* p) {
    const __m256i q = load256(p + 2);
    const __m256i zero = _mm256_setzero_si256();
    return {q, _mm256_sub_epi32(zero, Dot::dp(zero, _mm256_set1_epi8(16), q))};  // (u8 operand: 16, then negated)
  }
  static __m256i dot(const Wv& w, const Xv& x) { return Dot::dp(x.m16, w, x.q); }
  static __m256i reduce(const __m256i* v) { return reduce8(v); }
  [[gnu::always_inline]] static void dot16(const uint8_t* const* w, size_t off8, const uint8_t* xb,
                                           __m256i* isum) {
    dot16_two_rows<31>(xb, [&](int k, __m256i* lo, __m256i* hi) { five_bit_pair(w, off8, 2, 6, k, lo, hi); },
                       isum);
    const __m256i m16 = offset_sum(xb, 16);
    for (int i = 0; i < 2; ++i) isum[i] = _mm256_sub_epi32(isum[i], m16);
  }
};

// IQ4_NL: the nibbles looked up in the 16-level int8 grid (VPSHUFB), then the dot as
// Q8_0's (AVX2: |w| <= 127, |w| times x signed like w, pairs fit s16).
struct IQ4_NL : Q8_0 {
  static constexpr size_t kWBytes = sizeof(BlockIQ4_NL);
  static Wv unpack(const uint8_t* p) {
    const __m256i grid = _mm256_broadcastsi128_si256(load128(reinterpret_cast<const uint8_t*>(kIq4nlValues)));
    return from_codes(_mm256_shuffle_epi8(grid, nibbles32(p + 2)));
  }
  // GEMV, 16 rows (see kRows16). AVX2: two rows per vector as Q4_0's (nibble_pair: rows
  // k | k + 8), |x| times the level signed like x (|x| once per activation block for the
  // 16 rows, where Q8_0's form takes |w| per row); the pairs (<= 2 * 127 * 127) do not
  // fit s16 twice, so each half goes to s32 (VPMADDWD by 1) before the halves add, and
  // 16 rows reduce as 8 vectors (reduce_pairs4: lanes kRows16[i]). VNNI: Q8_0's (w + 128) x.
  [[gnu::always_inline]] static void dot16(const uint8_t* const* w, size_t off8, const uint8_t* xb,
                                           __m256i* isum) {
    if constexpr (Dot::kVnni) {
      dot16_row_per_vector<IQ4_NL>(w, off8, xb, isum);
    } else {
      const __m256i grid = _mm256_broadcastsi128_si256(load128(reinterpret_cast<const uint8_t*>(kIq4nlValues)));
      const __m256i xlo = _mm256_broadcastsi128_si256(load128(xb + 2));   // x[0..16) twice
      const __m256i xhi = _mm256_broadcastsi128_si256(load128(xb + 18));  // x[16..32) twice
      const __m256i axlo = _mm256_abs_epi8(xlo), axhi = _mm256_abs_epi8(xhi);
      __m256i s[8];
      for (int k = 0; k < 8; ++k) {
        __m256i lo, hi;
        nibble_pair(w, off8, 2, k, &lo, &hi);
        const __m256i plo = _mm256_maddubs_epi16(axlo, _mm256_sign_epi8(_mm256_shuffle_epi8(grid, lo), xlo));
        const __m256i phi = _mm256_maddubs_epi16(axhi, _mm256_sign_epi8(_mm256_shuffle_epi8(grid, hi), xhi));
        s[k] = _mm256_add_epi32(pair_sums(plo), pair_sums(phi));
      }
      for (int i = 0; i < 2; ++i) isum[i] = reduce_pairs4(s + 4 * i);
    }
  }
};

// Q4_1: unsigned codes 0..15 (no offset) and a min term, mw * dx * sum(x), added after
// the scale term (kernels.h); the min sits at byte 2, the codes at byte 4. A block's 32
// products reach 32 * 15 * 127 > 2^15, so sums are reduced in s32, as Q8_0's.
struct Q4_1 {
  static constexpr size_t kWBytes = sizeof(BlockQ4_1), kXBytes = sizeof(BlockQ8_0);
  static constexpr bool kHasMin = true;
  static constexpr size_t kMinOffset = 2;
  using Wv = __m256i;  // codes: weights 0..15 in the low lane, 16..31 in the high
  using Xv = __m256i;
  static Wv unpack(const uint8_t* p) { return nibbles32(p + 4); }
  static Xv load_x(const uint8_t* p) { return load256(p + 2); }
  static __m256i dot(const Wv& w, const Xv& x) { return Dot::dp(_mm256_setzero_si256(), w, x); }
  static __m256i reduce(const __m256i* v) { return reduce8(v); }
  // GEMV, 16 rows (see kRows16), two rows per vector.
  [[gnu::always_inline]] static void dot16(const uint8_t* const* w, size_t off8, const uint8_t* xb,
                                           __m256i* isum) {
    dot16_two_rows<15>(xb, [&](int k, __m256i* lo, __m256i* hi) { nibble_pair(w, off8, 4, k, lo, hi); }, isum);
  }
  // float(sum of the activation block's 32 codes), in every lane.
  static __m256 xsum(const uint8_t* xb) {
    const __m256i s = Dot::dp(_mm256_setzero_si256(), _mm256_set1_epi8(1), load256(xb + 2));
    __m128i t = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
    t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 0x4E));
    t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 0xB1));
    return _mm256_cvtepi32_ps(_mm256_broadcastd_epi32(t));
  }
};

// Q5_1: Q4_1's numerics on 5-bit codes (Q5_0's layout after the min: qh at byte 4,
// nibbles at byte 8).
struct Q5_1 : Q4_1 {
  static constexpr size_t kWBytes = sizeof(BlockQ5_1);
  static Wv unpack(const uint8_t* p) { return _mm256_or_si256(nibbles32(p + 8), fifth_bits32(p + 4)); }
  [[gnu::always_inline]] static void dot16(const uint8_t* const* w, size_t off8, const uint8_t* xb,
                                           __m256i* isum) {
    dot16_two_rows<31>(xb, [&](int k, __m256i* lo, __m256i* hi) { five_bit_pair(w, off8, 4, 8, k, lo, hi); },
                       isum);
  }
};

// acc + (mw * dx) * xsum for types with a min (Q4_1): the second step of kernels.h's
// numerics; `mw` the rows' fp16 mins as floats, xsum already a float (exact: |.| < 2^13).
__m256 min_step8(__m256 acc, __m256 mw, __m256 dx, __m256 xsum) {
  return _mm256_add_ps(acc, _mm256_mul_ps(_mm256_mul_ps(mw, dx), xsum));
}

// GEMV: 8 rows (pointers w[0..8)) x one token; lane i = row i. The rows that gemv16's
// whole groups of 16 leave over.
// Rows are short streams (1152 bytes for Q4_0 x 2048) that the hardware prefetchers
// barely learn before they end, so the next 8 rows (`ahead` bytes further on) are
// prefetched at the offset being read now: one group ahead, ~9 KiB, into L2 (as every
// GEMV here: see prefetch_share in qmatmul_packed_x86.h for why not L1).
template <class Ty>
void gemv8(const uint8_t* const* w, size_t ahead, const uint8_t* x, size_t nb, float* Y,
           size_t valid_rows) {
  static constexpr int kIdx[8] = {0, 1, 2, 3, 4, 5, 6, 7};
  __m256 acc = _mm256_setzero_ps();
  for (size_t b = 0; b < nb; ++b) {
    const size_t wo = b * Ty::kWBytes;
    for (int i = 0; i < 8; ++i)
      _mm_prefetch(reinterpret_cast<const char*>(reinterpret_cast<uintptr_t>(w[i]) + ahead + wo),
                   _MM_HINT_T1);
    const uint8_t* xb = x + b * Ty::kXBytes;
    const typename Ty::Xv xv = Ty::load_x(xb);
    __m256i v[8];
    for (int i = 0; i < 8; ++i) v[i] = Ty::dot(Ty::unpack(w[i] + wo), xv);
    const __m256 dx = _mm256_set1_ps(f16(xb));
    acc = step8(acc, f16x8(w, kIdx, wo), dx, Ty::reduce(v));
    if constexpr (Ty::kHasMin) acc = min_step8(acc, f16x8(w, kIdx, wo + Ty::kMinOffset), dx, Ty::xsum(xb));
  }
  alignas(32) float out[8];
  _mm256_store_ps(out, acc);
  for (size_t i = 0; i < 8 && i < valid_rows; ++i) Y[i] = out[i];
}

// The fp16 scales at w[k] and w[k] + off8 (k = 4i .. 4i + 3): rows kRows16[i], as
// floats. Gathered in general-purpose registers (2-byte loads, shifts, ORs), whose
// ports are idle here; only the two 64-bit moves and the conversion use vector uops.
// (The empty asm keeps GCC from turning the ORs into vector shuffles.)
template <size_t kAt = 0>  // byte offset of the fp16 field: a constant, folded into the loads
__m256 scales16(const uint8_t* const* w, size_t off8, int i) {
  uint64_t lo4 = 0, hi4 = 0;
  for (int j = 0; j < 4; ++j) {
    uint16_t a, c;
    std::memcpy(&a, w[4 * i + j] + kAt, 2);
    std::memcpy(&c, w[4 * i + j] + off8 + kAt, 2);
    lo4 |= uint64_t{a} << (16 * j);
    hi4 |= uint64_t{c} << (16 * j);
    asm("" : "+r"(lo4), "+r"(hi4));
  }
  return _mm256_cvtph_ps(
      _mm_insert_epi64(_mm_cvtsi64_si128(static_cast<int64_t>(lo4)), static_cast<int64_t>(hi4), 1));
}

// GEMV: 16 rows w0 + r * stride (r < 16, all of them valid) x one token.
// Why 16 rows and not gemv8's 8: the activation block and its scale serve twice as
// many rows, Q4_0 puts two rows in a vector (Ty::dot16), and the row pointers are
// 8 registers plus one offset (row k + 8 = row k + off8), advanced per block, where
// gemv8 reloads spilled pointers. Lanes of acc[i] are rows kRows16[i]; each lane
// takes the reference's float steps in the reference's order.
// Prefetch: the next 16 rows (the next group; w0 + 16 stride on) as one linear sweep
// spread over the blocks, 16 * kWBytes bytes per block (whole lines, so 5 for Q4_0,
// 9 for Q8_0, against gemv8's one per row and block); exact for packed rows, and only
// a hint otherwise. (With several threads the next chunk is often another thread's;
// prefetching each row's own data a few lines ahead instead measured about 2x slower
// on one thread, the whole-matrix call that decode makes.) Into L2, not L1: 16 rows of
// Q8_0 x 2048 are 34 KiB, more than L1 beside the rows being read; TinyLlama decode
// with --no-repack, Zen 4, 1 thread: Q8_0 10.4 -> 19.5 tok/s, Q4_0 20.0 -> 32.3,
// Q4_K_M (gemv8_k) 15.8 -> 31.8.
template <class Ty>
void gemv16(const uint8_t* w0, size_t stride, const uint8_t* x, size_t nb, float* Y) {
  constexpr size_t kStep = 16 * Ty::kWBytes, kLines = (kStep + 63) / 64;
  const uint8_t* w[8];
  for (int k = 0; k < 8; ++k) w[k] = w0 + k * stride;
  const size_t off8 = 8 * stride;
  uintptr_t pf = reinterpret_cast<uintptr_t>(w0) + 16 * stride;  // may pass the matrix end
  __m256 acc[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
  for (size_t b = 0; b < nb; ++b, pf += kStep, x += Ty::kXBytes) {
    for (size_t l = 0; l < kLines; ++l)
      _mm_prefetch(reinterpret_cast<const char*>(pf + 64 * l), _MM_HINT_T1);
    __m256i isum[2];
    Ty::dot16(w, off8, x, isum);
    const __m256 dx = _mm256_set1_ps(f16(x));
    for (int i = 0; i < 2; ++i) acc[i] = step8(acc[i], scales16(w, off8, i), dx, isum[i]);
    if constexpr (Ty::kHasMin) {
      const __m256 xs = Ty::xsum(x);
      for (int i = 0; i < 2; ++i) acc[i] = min_step8(acc[i], scales16<Ty::kMinOffset>(w, off8, i), dx, xs);
    }
    for (int k = 0; k < 8; ++k) w[k] += Ty::kWBytes;
  }
  for (int i = 0; i < 2; ++i) {
    alignas(32) float out[8];
    _mm256_store_ps(out, acc[i]);
    for (int j = 0; j < 8; ++j) Y[kRows16[i][j]] = out[j];
  }
}

// GEMM: 4 rows x 2P tokens (pointers x[0..2P)); each weight block unpacked once for
// all 2P tokens. acc[p] lanes: rows 0..3 of token 2p, then rows 0..3 of token 2p+1.
template <class Ty, int P>
void gemm4(const uint8_t* const* w, const uint8_t* const* x, size_t nb, float* Y, size_t ldy,
           size_t valid_rows, size_t valid_tokens) {
  static constexpr int kIdx[8] = {0, 1, 2, 3, 0, 1, 2, 3};
  __m256 acc[P];
  for (int p = 0; p < P; ++p) acc[p] = _mm256_setzero_ps();
  for (size_t b = 0; b < nb; ++b) {
    const size_t wo = b * Ty::kWBytes, xo = b * Ty::kXBytes;
    typename Ty::Wv wv[4];
    for (int i = 0; i < 4; ++i) wv[i] = Ty::unpack(w[i] + wo);
    const __m256 dw = f16x8(w, kIdx, wo);
    for (int p = 0; p < P; ++p) {
      const uint8_t* x0 = x[2 * p] + xo;
      const uint8_t* x1 = x[2 * p + 1] + xo;
      const typename Ty::Xv xv0 = Ty::load_x(x0), xv1 = Ty::load_x(x1);
      __m256i v[8];
      for (int i = 0; i < 4; ++i) v[i] = Ty::dot(wv[i], xv0);
      for (int i = 0; i < 4; ++i) v[4 + i] = Ty::dot(wv[i], xv1);
      const __m256 dx = _mm256_set_m128(_mm_set1_ps(f16(x1)), _mm_set1_ps(f16(x0)));
      acc[p] = step8(acc[p], dw, dx, Ty::reduce(v));
      if constexpr (Ty::kHasMin) {
        const __m256 xs = _mm256_set_m128(_mm256_castps256_ps128(Ty::xsum(x1)), _mm256_castps256_ps128(Ty::xsum(x0)));
        acc[p] = min_step8(acc[p], f16x8(w, kIdx, wo + Ty::kMinOffset), dx, xs);
      }
    }
  }
  for (int p = 0; p < P; ++p) {
    alignas(32) float out[8];
    _mm256_store_ps(out, acc[p]);
    for (size_t h = 0; h < 2 && size_t(2 * p) + h < valid_tokens; ++h)
      for (size_t i = 0; i < 4 && i < valid_rows; ++i) Y[(2 * p + h) * ldy + i] = out[4 * h + i];
  }
}

// ---- 256-weight super-blocks: Q4_K, Q5_K, IQ4_XS, Q6_K (activations Q8_K) -------------

// K-quant GEMM: sum over the 8 groups of 32 codes of sc[g] * (codes[g] . x[g]) as 8
// int32 lanes (codes unsigned, x the Q8_K codes from xq; each group's scale in D's
// layout); two accumulators so consecutive groups do not wait on one add.
template <class D>
[[gnu::always_inline]] inline __m256i scaled_dots8(const __m256i* q, const __m256i* sc, const uint8_t* xq) {
  __m256i acc0 = _mm256_setzero_si256(), acc1 = _mm256_setzero_si256();
  for (int g = 0; g < 8; g += 2) {
    acc0 = D::scaled(acc0, q[g], load256(xq + 32 * g), sc[g]);
    acc1 = D::scaled(acc1, q[g + 1], load256(xq + 32 * g + 32), sc[g + 1]);
  }
  return _mm256_add_epi32(acc0, acc1);
}

// Chunk j's nibbles (codes 0..15) of rows a (low lane) and b (high lane) whose qs
// start at byte `qs`: c[0], c[1] sub-block 2j (weights 0..15, 16..31: the low nibbles
// of qs[32j ..]), c[2], c[3] sub-block 2j + 1 (the high nibbles). Q4_K, Q5_K.
[[gnu::always_inline]] inline void nibble_pairs(const uint8_t* a, const uint8_t* b, size_t qs, int j, __m256i* c) {
  const __m256i low4 = _mm256_set1_epi8(0x0F);
  const __m256i r0 = _mm256_set_m128i(load128(b + qs + 32 * j), load128(a + qs + 32 * j));
  const __m256i r1 = _mm256_set_m128i(load128(b + qs + 16 + 32 * j), load128(a + qs + 16 + 32 * j));
  c[0] = _mm256_and_si256(r0, low4);
  c[1] = _mm256_and_si256(r1, low4);
  c[2] = _mm256_and_si256(_mm256_srli_epi16(r0, 4), low4);
  c[3] = _mm256_and_si256(_mm256_srli_epi16(r1, 4), low4);
}

struct Q4_K {
  static constexpr size_t kWBytes = sizeof(BlockQ4_K), kXBytes = sizeof(BlockQ8_K);
  static constexpr bool kHasMin = true;
  struct Scales {
    __m256i sc;  // int32 lane s: sc[s] in both s16 halves (Dot::kScaleBothHalves) or the low one
    __m256i m;   // s16 lanes (m0, m0, m1, m1, ..., m7, m7), against bsums
    float d, dmin;
  };
  static Scales scales(const uint8_t* p) {
    Scales r;
    r.d = f16(p);
    r.dmin = f16(p + 2);
    uint64_t sc, m;  // the 6-bit scales and mins, a byte each
    q4_K_scales_mins_bytes(p + 4, &sc, &m);
    const __m256i sc32 = _mm256_cvtepu8_epi32(_mm_cvtsi64_si128(static_cast<int64_t>(sc)));
    r.sc = Dot::kScaleBothHalves ? _mm256_or_si256(sc32, _mm256_slli_epi32(sc32, 16)) : sc32;
    const __m128i m16 = _mm_cvtepu8_epi16(_mm_cvtsi64_si128(static_cast<int64_t>(m)));
    r.m = _mm256_set_m128i(_mm_unpackhi_epi16(m16, m16), _mm_unpacklo_epi16(m16, m16));
    return r;
  }
  // Sub-block s's scale in every s32 lane, in Dot's layout.
  static __m256i scale_of(const Scales& r, int s) {
    return _mm256_permutevar8x32_epi32(r.sc, _mm256_set1_epi32(s));
  }
  // Codes of sub-block s (0..15 as bytes): nibbles of qs[32 (s/2) ..], low for even s.
  static __m256i codes(const uint8_t* p, int s) {
    const __m256i v = load256(p + 16 + 32 * (s / 2));
    return _mm256_and_si256(s % 2 ? _mm256_srli_epi16(v, 4) : v, _mm256_set1_epi8(0x0F));
  }
  static __m256i min_sum(const Scales& r, const uint8_t* xb) {
    return _mm256_madd_epi16(load256(xb + 4 + kQKK), r.m);  // m[s] * bsum pair s
  }

  // GEMM: the super-block unpacked once for several tokens.
  struct Unpacked {
    __m256i q[8];   // sub-block s: codes
    __m256i sc[8];  // sub-block s: scale in every s16 lane
    Scales r;
  };
  static void unpack(const uint8_t* p, Unpacked& u) {
    u.r = scales(p);
    for (int s = 0; s < 8; ++s) {
      u.q[s] = codes(p, s);
      u.sc[s] = scale_of(u.r, s);
    }
  }
  // isum: sum_s sc[s] * (codes . x) (|.| < 2^25); msum: sum_s m[s] * bsum pair.
  static void dot(const Unpacked& u, const uint8_t* xb, __m256i& isum, __m256i& msum) {
    isum = scaled_dots8<Dot>(u.q, u.sc, xb + 4);
    msum = min_sum(u.r, xb);
  }
  // GEMV: 8 rows (pointers w[0..8)) against activation super-block xb; acc lanes are the
  // rows. Two rows per vector, as Q4_0's gemv16: pair k has row k in the low 128-bit
  // lane and row k + 4 in the high one, so
  //  - one 16-byte load per row brings d, dmin and the 12 scale bytes, and the 6-bit
  //    scales and mins of both rows are decoded at once (VPSHUFB / shifts / masks) to
  //    bytes (sc0..sc7, m0..m7) per lane; sub-block s's scale vector is then one
  //    VPSHUFB, the mins against the bsum pairs one VPSHUFB and one VPMADDWD;
  //  - each 32-weight sub-block is two 16-byte halves against the activations'
  //    halves broadcast to both lanes, and the halves' VPMADDUBSW pairs add in s16
  //    (at most 2 * 2 * 15 * 127 < 2^15; Q5_K's codes: 2 * 2 * 31 * 127) before the
  //    one VPMADDWD by the scale;
  //  - the partial sums reduce by one unpack-and-add tree for all 8 rows.
  // Codes(w).chunk(k, j, c) gives the codes of chunk j (sub-blocks 2j, 2j+1) of rows k
  // and k + 4 in the lanes: Q4_K's nibbles, or Q5_K's with their fifth bits.
  struct Nibbles {
    const uint8_t* const* w;
    explicit Nibbles(const uint8_t* const* rows) : w(rows) {}
    [[gnu::always_inline]] void chunk(int k, int j, __m256i* c) const { nibble_pairs(w[k], w[k + 4], 16, j, c); }
  };
  [[gnu::always_inline]] static __m256 gemv8_step(const uint8_t* const* w, const uint8_t* xb,
                                                  __m256 acc) {
    return gemv8_step_codes<Nibbles>(w, xb, acc);
  }
  template <class Codes>
  [[gnu::always_inline]] static __m256 gemv8_step_codes(const uint8_t* const* w, const uint8_t* xb,
                                                        __m256 acc) {
    const uint8_t* xq = xb + 4;
    // bp[s] = bsums[2s] + bsums[2s + 1] (|.| <= 32 * 127) as s16, in both 128-bit lanes.
    const __m256i bp32 = pair_sums(load256(xq + kQKK));
    const __m256i bp = _mm256_permute4x64_epi64(_mm256_packs_epi32(bp32, bp32), 0x88);
    // Header bytes per lane: d 0..1, dmin 2..3, then a = 4..7, b = 8..11, c = 12..15
    // (quant/blocks.h): sc0..3 = a & 63, sc4..7 = (c & 15) | (a >> 6) << 4,
    // m0..3 = b & 63, m4..7 = (c >> 4) | (b >> 6) << 4.
    const __m256i acbc = _mm256_setr_epi8(4, 5, 6, 7, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15,  //
                                          4, 5, 6, 7, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m256i zaza = _mm256_setr_epi8(-1, -1, -1, -1, 4, 5, 6, 7, -1, -1, -1, -1, 8, 9, 10, 11,  //
                                          -1, -1, -1, -1, 4, 5, 6, 7, -1, -1, -1, -1, 8, 9, 10, 11);
    const __m256i keep_lo = _mm256_setr_epi32(0x3f3f3f3f, 0x0f0f0f0f, 0x3f3f3f3f, 0, 0x3f3f3f3f,
                                              0x0f0f0f0f, 0x3f3f3f3f, 0);
    const __m256i keep_hi = _mm256_setr_epi32(0, 0, 0, 0x0f0f0f0f, 0, 0, 0, 0x0f0f0f0f);
    const __m256i keep_top = _mm256_setr_epi32(0, 0x30303030, 0, 0x30303030, 0, 0x30303030, 0,
                                               0x30303030);
    __m256i hdr[4], sm[4];
    for (int k = 0; k < 4; ++k) {
      hdr[k] = _mm256_set_m128i(load128(w[k + 4]), load128(w[k]));
      const __m256i x = _mm256_shuffle_epi8(hdr[k], acbc), y = _mm256_shuffle_epi8(hdr[k], zaza);
      const __m256i l = _mm256_or_si256(_mm256_and_si256(x, keep_lo),
                                        _mm256_and_si256(_mm256_srli_epi16(x, 4), keep_hi));
      sm[k] = _mm256_or_si256(l, _mm256_and_si256(_mm256_srli_epi16(y, 2), keep_top));
    }
    // d and dmin of rows 0..7: dword 0 of each lane, gathered, then split.
    const __m256i dd = _mm256_unpacklo_epi64(_mm256_unpacklo_epi32(hdr[0], hdr[1]),
                                             _mm256_unpacklo_epi32(hdr[2], hdr[3]));
    const __m256i dsplit = _mm256_setr_epi8(0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15,  //
                                            0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15);
    const __m256i dh = _mm256_permute4x64_epi64(_mm256_shuffle_epi8(dd, dsplit), 0xD8);
    __m256i is[4], mv[4];
    for (int k = 0; k < 4; ++k) is[k] = _mm256_setzero_si256();
    const Codes codes(w);
#pragma GCC unroll 4
    for (int j = 0; j < 4; ++j) {
      const __m256i xl0 = _mm256_broadcastsi128_si256(load128(xq + 64 * j));
      const __m256i xl1 = _mm256_broadcastsi128_si256(load128(xq + 64 * j + 16));
      const __m256i xh0 = _mm256_broadcastsi128_si256(load128(xq + 64 * j + 32));
      const __m256i xh1 = _mm256_broadcastsi128_si256(load128(xq + 64 * j + 48));
      // Byte s of each lane as s16 (sub-block s's scale): indices (s, -1) in Dot's layout.
      const __m256i sel0 = Dot::scale_sel(static_cast<uint16_t>(0xFF00 | (2 * j)));
      const __m256i sel1 = Dot::scale_sel(static_cast<uint16_t>(0xFF00 | (2 * j + 1)));
      for (int k = 0; k < 4; ++k) {
        __m256i c[4];
        codes.chunk(k, j, c);
        is[k] = Dot::scaled2(is[k], c[0], xl0, c[1], xl1, _mm256_shuffle_epi8(sm[k], sel0));
        is[k] = Dot::scaled2(is[k], c[2], xh0, c[3], xh1, _mm256_shuffle_epi8(sm[k], sel1));
      }
    }
    const __m256i msel = _mm256_setr_epi8(8, -1, 9, -1, 10, -1, 11, -1, 12, -1, 13, -1, 14, -1, 15, -1,  //
                                          8, -1, 9, -1, 10, -1, 11, -1, 12, -1, 13, -1, 14, -1, 15, -1);
    for (int k = 0; k < 4; ++k) mv[k] = _mm256_madd_epi16(_mm256_shuffle_epi8(sm[k], msel), bp);
    const __m256 dx = _mm256_set1_ps(f32(xb));
    acc = step8(acc, _mm256_cvtph_ps(_mm256_castsi256_si128(dh)), dx, reduce_pairs4(is));
    return step8_sub(acc, _mm256_cvtph_ps(_mm256_extracti128_si256(dh, 1)), dx, reduce_pairs4(mv));
  }
};

// A 16-bit lane shift by a constant: left for n > 0, right for n < 0 (n in -7..7).
[[gnu::always_inline]] inline __m256i shift16(__m256i v, int n) {
  return n >= 0 ? _mm256_slli_epi16(v, n) : _mm256_srli_epi16(v, -n);
}

// Q5_K: Q4_K's header (d, dmin, the 12 scale bytes) and numerics; the fifth bit of weight l
// of sub-block s is bit s of qh[l] (qh at byte 16, the nibbles at 48). Codes 0..31.
struct Q5_K : Q4_K {
  static constexpr size_t kWBytes = sizeof(BlockQ5_K);
  // Bit s of each byte of v as 0x10: shifted to bit 4 in 16-bit lanes (a shift by at
  // most 4 moves no bit of another byte onto bit 4), then masked.
  [[gnu::always_inline]] static __m256i fifth(__m256i v, int s) {
    return _mm256_and_si256(shift16(v, 4 - s), _mm256_set1_epi8(0x10));
  }
  static void unpack(const uint8_t* p, Unpacked& u) {
    u.r = scales(p);
    const __m256i qh = load256(p + 16), low4 = _mm256_set1_epi8(0x0F);
    for (int s = 0; s < 8; ++s) {
      const __m256i v = load256(p + 48 + 32 * (s / 2));
      u.q[s] = _mm256_or_si256(_mm256_and_si256(s % 2 ? _mm256_srli_epi16(v, 4) : v, low4), fifth(qh, s));
      u.sc[s] = scale_of(u.r, s);
    }
  }
  // GEMV codes: the nibbles as Q4_K's, the fifth bits looked up (VPSHUFB, a shuffle
  // port) rather than shifted and masked (the ports VPMADDUBSW needs): each qh byte's
  // two nibbles are split once per super-block (hn), and bit b of a nibble is table
  // bit_b's entry, 0x10 or 0.
  struct Codes {
    const uint8_t* const* w;
    __m256i hn[4][4];  // pair k: low nibbles of qh[0..16), high nibbles, then of qh[16..32)
    explicit Codes(const uint8_t* const* rows) : w(rows) {
      const __m256i low4 = _mm256_set1_epi8(0x0F);
      for (int k = 0; k < 4; ++k)
        for (int i = 0; i < 2; ++i) {
          const __m256i h = _mm256_set_m128i(load128(w[k + 4] + 16 + 16 * i), load128(w[k] + 16 + 16 * i));
          hn[k][2 * i] = _mm256_and_si256(h, low4);
          hn[k][2 * i + 1] = _mm256_and_si256(_mm256_srli_epi16(h, 4), low4);
        }
    }
    static __m256i bit_table(int b) {  // entry n: 0x10 if bit b of n is set
      alignas(16) static constexpr uint8_t kTables[4][16] = {
          {0, 16, 0, 16, 0, 16, 0, 16, 0, 16, 0, 16, 0, 16, 0, 16},
          {0, 0, 16, 16, 0, 0, 16, 16, 0, 0, 16, 16, 0, 0, 16, 16},
          {0, 0, 0, 0, 16, 16, 16, 16, 0, 0, 0, 0, 16, 16, 16, 16},
          {0, 0, 0, 0, 0, 0, 0, 0, 16, 16, 16, 16, 16, 16, 16, 16}};
      return _mm256_broadcastsi128_si256(load128(kTables[b]));
    }
    [[gnu::always_inline]] void chunk(int k, int j, __m256i* c) const {
      nibble_pairs(w[k], w[k + 4], 48, j, c);
      // Bits 2j (sub-block 2j) and 2j + 1 of qh: in the low nibble for j < 2, else the high.
      const __m256i t_lo = bit_table((2 * j) % 4), t_hi = bit_table((2 * j + 1) % 4);
      const __m256i& h0 = hn[k][j / 2];
      const __m256i& h1 = hn[k][2 + j / 2];
      c[0] = _mm256_or_si256(c[0], _mm256_shuffle_epi8(t_lo, h0));
      c[1] = _mm256_or_si256(c[1], _mm256_shuffle_epi8(t_lo, h1));
      c[2] = _mm256_or_si256(c[2], _mm256_shuffle_epi8(t_hi, h0));
      c[3] = _mm256_or_si256(c[3], _mm256_shuffle_epi8(t_hi, h1));
    }
  };
  [[gnu::always_inline]] static __m256 gemv8_step(const uint8_t* const* w, const uint8_t* xb,
                                                  __m256 acc) {
    return gemv8_step_codes<Codes>(w, xb, acc);
  }
};

// IQ4_XS: per sub-block of 32, IQ4_NL's nibbles (16 bytes at 8 + 16s) looked up in the
// int8 grid (VPSHUFB) and a signed 6-bit scale ls - 32; header d (fp16), scales_h (u16),
// scales_l[4]. Signed grid levels times signed x: VPMADDUBSW takes |x| (unsigned) and
// the level signed like x (|level| <= 127, so pairs reach 2 * 127 * 127 < 2^15; the two
// 16-weight halves of a sub-block then no longer fit s16 together and go through
// VPMADDWD by the scale separately).
struct IQ4_XS {
  static constexpr size_t kWBytes = sizeof(BlockIQ4_XS), kXBytes = sizeof(BlockQ8_K);
  static constexpr bool kHasMin = false;
  static __m256i grid() {
    return _mm256_broadcastsi128_si256(load128(reinterpret_cast<const uint8_t*>(kIq4nlValues)));
  }
  struct Unpacked {
    __m256i q[8];   // sub-block s: grid levels, weights 0..15 in the low lane, 16..31 high
    __m256i qa[8];  // their absolute values
    __m256i sc[8];  // sub-block s: ls - 32 in every s16 lane
    struct {
      float d, dmin;
    } r;
  };
  static void unpack(const uint8_t* p, Unpacked& u) {
    u.r.d = f16(p);
    u.r.dmin = 0.0f;
    uint16_t sh;
    std::memcpy(&sh, p + 2, 2);
    const __m256i g = grid();
    for (int s = 0; s < 8; ++s) {
      const int ls = ((p[4 + s / 2] >> (4 * (s % 2))) & 0xF) | (((sh >> (2 * s)) & 3) << 4);
      u.q[s] = _mm256_shuffle_epi8(g, nibbles32(p + 8 + 16 * s));
      u.qa[s] = _mm256_abs_epi8(u.q[s]);
      u.sc[s] = _mm256_set1_epi16(static_cast<int16_t>(ls - 32));
    }
  }
  // isum: sum_s (ls[s] - 32) * (levels . x) (|.| < 2^28).
  static void dot(const Unpacked& u, const uint8_t* xb, __m256i& isum, __m256i& msum) {
    const uint8_t* xq = xb + 4;
    __m256i acc0 = _mm256_setzero_si256(), acc1 = _mm256_setzero_si256();
    for (int s = 0; s < 8; s += 2) {
      const __m256i x0 = load256(xq + 32 * s), x1 = load256(xq + 32 * s + 32);
      acc0 = _mm256_add_epi32(
          acc0, _mm256_madd_epi16(_mm256_maddubs_epi16(u.qa[s], _mm256_sign_epi8(x0, u.q[s])), u.sc[s]));
      acc1 = _mm256_add_epi32(acc1, _mm256_madd_epi16(_mm256_maddubs_epi16(u.qa[s + 1], _mm256_sign_epi8(x1, u.q[s + 1])),
                                                      u.sc[s + 1]));
    }
    isum = _mm256_add_epi32(acc0, acc1);
    msum = _mm256_setzero_si256();
  }
  // The eight scales ls - 32 of rows a (low lane) and b (high lane) as s16, from the
  // headers' bytes 2..7: word s takes scales_l[s/2] and scales_h; per-word shifts are
  // VPMULLW by powers of two (AVX2 has no variable 16-bit shift).
  [[gnu::always_inline]] static __m256i scales2(const uint8_t* a, const uint8_t* b) {
    const __m256i hdr = _mm256_set_m128i(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(b)),
                                         _mm_loadl_epi64(reinterpret_cast<const __m128i*>(a)));
    const __m256i sl = _mm256_shuffle_epi8(hdr, _mm256_setr_epi8(4, -1, 4, -1, 5, -1, 5, -1, 6, -1, 6, -1, 7, -1, 7, -1,  //
                                                                 4, -1, 4, -1, 5, -1, 5, -1, 6, -1, 6, -1, 7, -1, 7, -1));
    const __m256i sh = _mm256_shuffle_epi8(hdr, _mm256_setr_epi8(2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3,  //
                                                                 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3));
    // Even s: the low nibble (x 16, then >> 4); odd s: the high one.
    const __m256i low = _mm256_and_si256(
        _mm256_srli_epi16(_mm256_mullo_epi16(sl, _mm256_setr_epi16(16, 1, 16, 1, 16, 1, 16, 1, 16, 1, 16, 1, 16, 1, 16, 1)), 4),
        _mm256_set1_epi16(0x0F));
    // Bits 2s, 2s + 1 of scales_h to bits 14, 15, then to 4, 5.
    const __m256i high = _mm256_and_si256(
        _mm256_srli_epi16(_mm256_mullo_epi16(sh, _mm256_setr_epi16(1 << 14, 1 << 12, 1 << 10, 1 << 8, 1 << 6, 1 << 4, 1 << 2, 1,
                                                                   1 << 14, 1 << 12, 1 << 10, 1 << 8, 1 << 6, 1 << 4, 1 << 2, 1)),
                          10),
        _mm256_set1_epi16(0x30));
    return _mm256_sub_epi16(_mm256_or_si256(low, high), _mm256_set1_epi16(32));
  }
  // GEMV: 8 rows (pointers w[0..8)) against activation super-block xb; acc lanes are the
  // rows. Two rows per vector as Q4_K's (pair k: row k low, row k + 4 high): one load
  // per sub-block and pair, the activations' halves and their absolute values once
  // for the 4 pairs; each pair's scale vector one VPSHUFB per sub-block.
  [[gnu::always_inline]] static __m256 gemv8_step(const uint8_t* const* w, const uint8_t* xb, __m256 acc) {
    const uint8_t* xq = xb + 4;
    const __m256i g = grid(), low4 = _mm256_set1_epi8(0x0F);
    __m256i sc[4], is[4];
    for (int k = 0; k < 4; ++k) {
      sc[k] = scales2(w[k], w[k + 4]);
      is[k] = _mm256_setzero_si256();
    }
#pragma GCC unroll 8
    for (int s = 0; s < 8; ++s) {
      const __m256i xl = _mm256_broadcastsi128_si256(load128(xq + 32 * s));
      const __m256i xh = _mm256_broadcastsi128_si256(load128(xq + 32 * s + 16));
      const __m256i axl = _mm256_abs_epi8(xl), axh = _mm256_abs_epi8(xh);
      const __m256i sel = _mm256_set1_epi16(static_cast<int16_t>(0x0100 * (2 * s + 1) + 2 * s));
      for (int k = 0; k < 4; ++k) {
        const __m256i raw = _mm256_set_m128i(load128(w[k + 4] + 8 + 16 * s), load128(w[k] + 8 + 16 * s));
        const __m256i lo = _mm256_shuffle_epi8(g, _mm256_and_si256(raw, low4));
        const __m256i hi = _mm256_shuffle_epi8(g, _mm256_and_si256(_mm256_srli_epi16(raw, 4), low4));
        const __m256i scs = _mm256_shuffle_epi8(sc[k], sel);
        is[k] = _mm256_add_epi32(
            is[k], _mm256_add_epi32(_mm256_madd_epi16(_mm256_maddubs_epi16(axl, _mm256_sign_epi8(lo, xl)), scs),
                                    _mm256_madd_epi16(_mm256_maddubs_epi16(axh, _mm256_sign_epi8(hi, xh)), scs)));
      }
    }
    return step8(acc, f16x8_rows(w, 0), _mm256_set1_ps(f32(xb)), reduce_pairs4(is));
  }
};

struct Q6_K {
  static constexpr size_t kWBytes = sizeof(BlockQ6_K), kXBytes = sizeof(BlockQ8_K);
  static constexpr bool kHasMin = false;
  struct Scales {
    __m256i sc16;  // the 16 scales as s16, against bsums (the -32 term)
    float d, dmin;
  };
  static Scales scales(const uint8_t* p) {
    const uint8_t* sc = p + kQKK / 2 + kQKK / 4;
    return {_mm256_cvtepi8_epi16(load128(sc)), f16(sc + kQKK / 16), 0.0f};
  }
  // Chunk c (weights 32c .. 32c+31): the low 128-bit lane the scale of sub-block 2c,
  // the high lane that of 2c+1, in Dot's layout. Dword c of sc16 holds both: broadcast
  // it, then spread the low half over the low lane and the high half over the high one.
  static __m256i scale_of(const Scales& r, int c) {
    const __m256i spread = Dot::kScaleBothHalves
                               ? _mm256_setr_epi8(0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1,  //
                                                  2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3)
                               : _mm256_setr_epi8(0, 1, -1, -1, 0, 1, -1, -1, 0, 1, -1, -1, 0, 1, -1, -1,  //
                                                  2, 3, -1, -1, 2, 3, -1, -1, 2, 3, -1, -1, 2, 3, -1, -1);
    return _mm256_shuffle_epi8(_mm256_permutevar8x32_epi32(r.sc16, _mm256_set1_epi32(c)), spread);
  }
  // The codes (0..63 as bytes) of the four chunks of half h (weights 128h ..).
  static void codes(const uint8_t* p, int h, __m256i* q) {
    const uint8_t* ql = p + 64 * h;
    const uint8_t* qh = p + kQKK / 2 + 32 * h;
    const __m256i low = _mm256_set1_epi8(0x0F), high = _mm256_set1_epi8(0x30);
    const __m256i l0 = load256(ql), l1 = load256(ql + 32), hb = load256(qh);
    // 16-bit shifts move bits across bytes; the masks keep only each byte's own.
    q[0] = _mm256_or_si256(_mm256_and_si256(l0, low),
                           _mm256_and_si256(_mm256_slli_epi16(hb, 4), high));
    q[1] = _mm256_or_si256(_mm256_and_si256(l1, low),
                           _mm256_and_si256(_mm256_slli_epi16(hb, 2), high));
    q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), low),
                           _mm256_and_si256(hb, high));
    q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), low),
                           _mm256_and_si256(_mm256_srli_epi16(hb, 2), high));
  }
  // -32 sum_s sc[s] bsum[s]: the codes' offset, from the activation bsums.
  static __m256i offset(const Scales& r, const uint8_t* xb) {
    return _mm256_slli_epi32(_mm256_madd_epi16(load256(xb + 4 + kQKK), r.sc16), 5);
  }

  struct Unpacked {
    __m256i q[8];   // chunk c: codes
    __m256i sc[8];  // chunk c: scales
    Scales r;
  };
  static void unpack(const uint8_t* p, Unpacked& u) {
    u.r = scales(p);
    codes(p, 0, u.q);
    codes(p, 1, u.q + 4);
    for (int c = 0; c < 8; ++c) u.sc[c] = scale_of(u.r, c);
  }
  // sum_s sc[s] (codes . x - 32 bsum[s]) (|.| < 2^28).
  static void dot(const Unpacked& u, const uint8_t* xb, __m256i& isum, __m256i&) {
    isum = _mm256_sub_epi32(scaled_dots8<Dot>(u.q, u.sc, xb + 4), offset(u.r, xb));
  }
  // GEMV: 8 rows (pointers w[0..8)) against activation super-block xb; acc lanes are the
  // rows. The scales go to VPSHUFB ordered (sc0, sc2, .., sc14 | sc1, sc3, .., sc15) as
  // s16, so chunk c's scale vector (sc[2c] in the low lane, sc[2c + 1] in the high) is
  // one in-lane word broadcast rather than VPERMD plus VPSHUFB. The -32 offset,
  // -32 sum_s sc[s] bsum[s], starts the accumulator: (32 sc) against -bsum in the same
  // order (|32 sc| <= 4096 and |bsum| <= 16 * 127 fit s16).
  [[gnu::always_inline]] static __m256 gemv8_step(const uint8_t* const* w, const uint8_t* xb,
                                                  __m256 acc) {
    const uint8_t* xq = xb + 4;
    // Even-then-odd within each 8: bytes (0, 1), (4, 5), .. then (2, 3), (6, 7), ..
    const __m256i evod16 = _mm256_setr_epi8(0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15,  //
                                            0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15);
    const __m128i evod8 = _mm_setr_epi8(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15);
    const __m256i nbs = _mm256_sub_epi16(
        _mm256_setzero_si256(),
        _mm256_permute4x64_epi64(_mm256_shuffle_epi8(load256(xq + kQKK), evod16), 0xD8));
    __m256i is[8];
    for (int i = 0; i < 8; ++i) {  // (left rolled: unrolled, GCC spills and it ran 10% slower)
      const uint8_t* p = w[i];
      const __m256i sc =
          _mm256_cvtepi8_epi16(_mm_shuffle_epi8(load128(p + kQKK / 2 + kQKK / 4), evod8));
      __m256i acc0 = _mm256_madd_epi16(_mm256_slli_epi16(sc, 5), nbs), acc1 = _mm256_setzero_si256();
      for (int h = 0; h < 2; ++h) {
        __m256i q[4];
        codes(p, h, q);
        for (int j = 0; j < 4; j += 2) {
          const int c = 4 * h + j;
          acc0 = Dot::scaled(acc0, q[j], load256(xq + 32 * c), chunk_scale<Dot>(sc, c));
          acc1 = Dot::scaled(acc1, q[j + 1], load256(xq + 32 * c + 32), chunk_scale<Dot>(sc, c + 1));
        }
      }
      is[i] = _mm256_add_epi32(acc0, acc1);
    }
    return step8(acc, f16x8_rows(w, kQKK / 2 + kQKK / 4 + kQKK / 16), _mm256_set1_ps(f32(xb)), reduce8(is));
  }
  // Word c of each 128-bit lane of sc in every s32 lane of that lane, in D's layout.
  template <class D>
  static __m256i chunk_scale(__m256i sc, int c) {
    return _mm256_shuffle_epi8(sc, D::scale_sel(static_cast<uint16_t>(0x0100 * (2 * c + 1) + 2 * c)));
  }
};

// ---- Q2_K, Q3_K: 16 sub-blocks of 16, 2-bit fields (activations Q8_K) -------------------
//
// Chunk c = 4h + j (weights 32c .. 32c+31) is the 2-bit field j of the 32 qs bytes of half
// h and holds sub-block 2c in its low 128-bit lane, 2c + 1 in the high one, so one
// VPMADDUBSW (codes unsigned) and one VPMADDWD by the chunk's scale vector (sc[2c] in the
// low lane, sc[2c + 1] in the high one) give its scaled sums. The fields are taken where
// they lie, to spare shifts: j = 0, 1, 2 masked in place (codes times 1, 4, 16), j = 3
// shifted to bits 4..5 (times 16); the scales are multiplied by 16, 4, 1, 1 to match, and
// the exact sum (every term a multiple of 16) is divided by 16 at the end (an exact
// arithmetic shift). Q2_K's VPMADDUBSW pairs stay below 2 * 48 * 127, Q3_K's (codes
// 0..7) below 2 * 112 * 127 < 2^15: nothing saturates.

// Chunk c's scale vector from s16 scales ordered (sc0, sc2, .., sc14 | sc1, sc3, .., sc15)
// times 16, 4 and 1 (scale[0..3)): word c of each lane (Q6_K::chunk_scale) of the copy
// chunk c's field needs.
__m256i field_scale(const __m256i* scale, int c) {
  return Q6_K::chunk_scale<DotMaddubs>(scale[c % 4 == 0 ? 0 : c % 4 == 1 ? 1 : 2], c);
}
// The three copies from s16 scales in that order (|sc| <= 32: 16 sc fits s16).
void field_scales(__m256i sc, __m256i* scale) {
  scale[0] = _mm256_slli_epi16(sc, 4);
  scale[1] = _mm256_slli_epi16(sc, 2);
  scale[2] = sc;
}
// 16 scale bytes (sub-block s in byte s) as s16 in field_scale's order.
__m256i scales16_evod(__m128i bytes, bool is_signed) {
  const __m128i evod8 = _mm_setr_epi8(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15);
  const __m128i b = _mm_shuffle_epi8(bytes, evod8);
  return is_signed ? _mm256_cvtepi8_epi16(b) : _mm256_cvtepu8_epi16(b);
}
// Q8_K bsums in field_scale's order, negated and times `mul` (|.| <= mul * 2032 must fit s16).
__m256i bsums_evod(const uint8_t* xb, int mul) {
  const __m256i evod16 = _mm256_setr_epi8(0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15,  //
                                          0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15);
  const __m256i b = _mm256_permute4x64_epi64(_mm256_shuffle_epi8(load256(xb + 4 + kQKK), evod16), 0xD8);
  return _mm256_mullo_epi16(b, _mm256_set1_epi16(static_cast<int16_t>(-mul)));
}

// The 8 chunks' scale vectors.
void field_scales8(const __m256i* scale, __m256i* sc) {
  for (int c = 0; c < 8; ++c) sc[c] = field_scale(scale, c);
}
// 16 sum_s sc[s] (codes_s . x_s) as 8 int32 lanes: the chunks' codes q and scales (above).
[[gnu::always_inline]] inline __m256i field_dots16(const __m256i* q, const __m256i* scale, const uint8_t* xq) {
  __m256i sc[8];
  field_scales8(scale, sc);
  return scaled_dots8<DotMaddubs>(q, sc, xq);
}

// A super-block unpacked for the GEMM: the chunks' codes and scale vectors, and one more
// vector against the bsums (Q2_K: the mins; Q3_K: 16 (sc - 32)).
struct FieldUnpacked {
  __m256i q[8], sc[8], v;
  struct {
    float d, dmin;
  } r;
};

// Q2_K: codes 0..3, scales the low nibbles of scales[16], mins the high nibbles (m[s]
// against bsums[s], one VPMADDWD: |.| <= 15 * 2032 * 2).
struct Q2_K {
  static constexpr size_t kWBytes = sizeof(BlockQ2_K), kXBytes = sizeof(BlockQ8_K);
  static constexpr bool kHasMin = true;
  static constexpr size_t kD = offsetof(BlockQ2_K, d), kDmin = offsetof(BlockQ2_K, dmin);
  // The codes of the 8 chunks times 1, 4, 16, 16 (see above).
  static void codes(const uint8_t* p, __m256i* q) {
    for (int h = 0; h < 2; ++h) {
      const __m256i v = load256(p + offsetof(BlockQ2_K, qs) + 32 * h);
      q[4 * h] = _mm256_and_si256(v, _mm256_set1_epi8(0x03));
      q[4 * h + 1] = _mm256_and_si256(v, _mm256_set1_epi8(0x0C));
      q[4 * h + 2] = _mm256_and_si256(v, _mm256_set1_epi8(0x30));
      q[4 * h + 3] = _mm256_and_si256(_mm256_srli_epi16(v, 2), _mm256_set1_epi8(0x30));
    }
  }
  // The scales (field_scales) and the mins as s16 in sub-block order.
  static void scales(const uint8_t* p, __m256i* scale, __m256i* m) {
    const __m128i raw = load128(p), low4 = _mm_set1_epi8(0x0F);
    field_scales(scales16_evod(_mm_and_si128(raw, low4), false), scale);
    *m = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(raw, 4), low4));
  }
  static __m256i min_sum(__m256i m, const uint8_t* xb) { return _mm256_madd_epi16(m, load256(xb + 4 + kQKK)); }

  using Unpacked = FieldUnpacked;  // v: the mins
  static void unpack(const uint8_t* p, Unpacked& u) {
    __m256i scale[3];
    codes(p, u.q);
    scales(p, scale, &u.v);
    field_scales8(scale, u.sc);
    u.r = {f16(p + kD), f16(p + kDmin)};
  }
  static void dot(const Unpacked& u, const uint8_t* xb, __m256i& isum, __m256i& msum) {
    isum = _mm256_srai_epi32(scaled_dots8<DotMaddubs>(u.q, u.sc, xb + 4), 4);
    msum = min_sum(u.v, xb);
  }
  // GEMV: 8 rows (pointers w[0..8)) against activation super-block xb, one row per vector.
  [[gnu::always_inline]] static __m256 gemv8_step(const uint8_t* const* w, const uint8_t* xb,
                                                  __m256 acc) {
    __m256i is[8], ms[8];
#pragma GCC unroll 8
    for (int i = 0; i < 8; ++i) {
      __m256i q[8], scale[3], m;
      codes(w[i], q);
      scales(w[i], scale, &m);
      is[i] = field_dots16(q, scale, xb + 4);
      ms[i] = min_sum(m, xb);
    }
    const __m256 dx = _mm256_set1_ps(f32(xb));
    acc = step8(acc, f16x8_rows(w, kD), dx, _mm256_srai_epi32(reduce8(is), 4));
    return step8_sub(acc, f16x8_rows(w, kDmin), dx, reduce8(ms));
  }
};

// Q3_K: codes u = low 2 bits | high bit << 2 in 0..7 (unsigned, for VPMADDUBSW) against
// the signed codes q = u - 4 of kernels.h: sum_s sc[s] (q . x)_s =
// sum_s sc[s] (u . x)_s - 4 sum_s sc[s] bsums[s], the second sum from the bsums as
// Q6_K's -32; the scales are sc - 32 in [-32, 31].
struct Q3_K {
  static constexpr size_t kWBytes = sizeof(BlockQ3_K), kXBytes = sizeof(BlockQ8_K);
  static constexpr bool kHasMin = false;
  static constexpr size_t kD = offsetof(BlockQ3_K, d);
  // The codes u of the 8 chunks times 1, 4, 16, 16 (see above): the low field where it
  // lies (j = 3: moved to bits 4..5) and high bit c = 4h + j of the hmask bytes moved
  // next to it (16-bit shifts: each mask keeps only bits from the byte's own).
  static void codes(const uint8_t* p, __m256i* q) {
    const __m256i hm = load256(p);
    const __m256i v0 = load256(p + offsetof(BlockQ3_K, qs)), v1 = load256(p + offsetof(BlockQ3_K, qs) + 32);
    const __m256i hl3 = _mm256_slli_epi16(hm, 3), hr1 = _mm256_srli_epi16(hm, 1);
    const __m256i low[8] = {v0, v0, v0, _mm256_srli_epi16(v0, 2), v1, v1, v1, _mm256_srli_epi16(v1, 2)};
    const __m256i high[8] = {_mm256_slli_epi16(hm, 2), hl3, _mm256_slli_epi16(hm, 4), hl3,  // bits 0..3
                             _mm256_srli_epi16(hm, 2), hr1, hm, hr1};                       // bits 4..7
    for (int c = 0; c < 8; ++c) {
      const int j = c % 4;
      const char low_mask = j == 0 ? 0x03 : j == 1 ? 0x0C : 0x30, high_bit = j == 0 ? 0x04 : j == 1 ? 0x10 : 0x40;
      q[c] = _mm256_or_si256(_mm256_and_si256(low[c], _mm256_set1_epi8(low_mask)),
                             _mm256_and_si256(high[c], _mm256_set1_epi8(high_bit)));
    }
  }
  // sc - 32 as s16 in field_scale's order. The 6-bit values (quant/blocks.h): low nibbles
  // from scale bytes 0..7 (low halves for s < 8, high for s >= 8), top two bits from
  // bits 2 (s / 4) of byte 8 + s % 4, one VPSRLVD shift per group of four. The load
  // starts 2 bytes early so as to end at the block's end (scales, then d).
  static __m256i scales(const uint8_t* p) {
    const __m128i raw = load128(p + offsetof(BlockQ3_K, scales) - 2), low4 = _mm_set1_epi8(0x0F);
    const __m128i a = _mm_shuffle_epi8(raw, _mm_setr_epi8(2, 3, 4, 5, 6, 7, 8, 9, 2, 3, 4, 5, 6, 7, 8, 9));
    const __m128i low = _mm_blend_epi32(_mm_and_si128(a, low4), _mm_and_si128(_mm_srli_epi16(a, 4), low4), 0xC);
    const __m128i c = _mm_shuffle_epi8(raw, _mm_setr_epi8(10, 11, 12, 13, 10, 11, 12, 13, 10, 11, 12, 13, 10, 11, 12, 13));
    const __m128i top = _mm_and_si128(_mm_srlv_epi32(c, _mm_setr_epi32(0, 2, 4, 6)), _mm_set1_epi8(3));
    const __m128i sc = _mm_or_si128(low, _mm_slli_epi16(top, 4));  // (top <= 3: no bit crosses a byte)
    return scales16_evod(_mm_sub_epi8(sc, _mm_set1_epi8(32)), true);
  }

  using Unpacked = FieldUnpacked;  // v: 16 (sc - 32) in field_scale's order
  static void unpack(const uint8_t* p, Unpacked& u) {
    __m256i scale[3];
    codes(p, u.q);
    field_scales(scales(p), scale);
    field_scales8(scale, u.sc);
    u.v = scale[0];
    u.r = {f16(p + kD), 0.0f};
  }
  // 16 sc against -4 bsums (|16 sc| <= 512, |4 bsum| <= 8128): 16 times the codes' -4.
  static __m256i offset16(__m256i sc16, __m256i nbs4) { return _mm256_madd_epi16(sc16, nbs4); }
  static void dot(const Unpacked& u, const uint8_t* xb, __m256i& isum, __m256i&) {
    const __m256i sum16 = _mm256_add_epi32(offset16(u.v, bsums_evod(xb, 4)), scaled_dots8<DotMaddubs>(u.q, u.sc, xb + 4));
    isum = _mm256_srai_epi32(sum16, 4);
  }
  // GEMV: 8 rows, one row per vector.
  [[gnu::always_inline]] static __m256 gemv8_step(const uint8_t* const* w, const uint8_t* xb,
                                                  __m256 acc) {
    const __m256i nbs4 = bsums_evod(xb, 4);
    __m256i is[8];
#pragma GCC unroll 8
    for (int i = 0; i < 8; ++i) {
      __m256i q[8], scale[3];
      codes(w[i], q);
      field_scales(scales(w[i]), scale);
      is[i] = _mm256_add_epi32(offset16(scale[0], nbs4), field_dots16(q, scale, xb + 4));
    }
    return step8(acc, f16x8_rows(w, kD), _mm256_set1_ps(f32(xb)), _mm256_srai_epi32(reduce8(is), 4));
  }
};

// GEMV: 8 rows w0 + k stride (k < rows <= 8; missing rows repeat the last) x one token.
// Lanes of acc are rows; each takes the reference's float steps in its order.
// Prefetch: the next 8 rows (w0 + 8 stride on) as one linear sweep spread over the
// super-blocks, 8 * kWBytes bytes per block, into L2, as gemv16 (exact for packed rows).
template <class Ty>
void gemv8_k(const uint8_t* w0, size_t stride, size_t rows, const uint8_t* x, size_t nb, float* Y) {
  constexpr size_t kStep = 8 * Ty::kWBytes, kLines = (kStep + 63) / 64;
  const uint8_t* w[8];
  for (size_t k = 0; k < 8; ++k) w[k] = w0 + (k < rows ? k : rows - 1) * stride;
  uintptr_t pf = reinterpret_cast<uintptr_t>(w0) + 8 * stride;  // may pass the matrix end
  __m256 acc = _mm256_setzero_ps();
  for (size_t b = 0; b < nb; ++b, pf += kStep, x += Ty::kXBytes) {
#pragma GCC unroll 32
    for (size_t l = 0; l < kLines; ++l)
      _mm_prefetch(reinterpret_cast<const char*>(pf + 64 * l), _MM_HINT_T1);
    acc = Ty::gemv8_step(w, x, acc);
    for (int k = 0; k < 8; ++k) w[k] += Ty::kWBytes;
  }
  alignas(32) float out[8];
  _mm256_store_ps(out, acc);
  for (size_t i = 0; i < 8 && i < rows; ++i) Y[i] = out[i];
}

// 4 rows x T tokens over nb super-blocks; each row's super-block unpacked once.
template <class Ty, int T>
void micro_k(const uint8_t* const* w, const uint8_t* const* x, size_t nb, float* Y, size_t ldy,
             size_t valid_rows) {
  __m128 acc[T];
  for (int t = 0; t < T; ++t) acc[t] = _mm_setzero_ps();
  typename Ty::Unpacked u[4];
  for (size_t b = 0; b < nb; ++b) {
    const size_t wo = b * Ty::kWBytes, xo = b * Ty::kXBytes;
    for (int i = 0; i < 4; ++i) Ty::unpack(w[i] + wo, u[i]);
    const __m128 d = _mm_setr_ps(u[0].r.d, u[1].r.d, u[2].r.d, u[3].r.d);
    const __m128 dmin = _mm_setr_ps(u[0].r.dmin, u[1].r.dmin, u[2].r.dmin, u[3].r.dmin);
    for (int t = 0; t < T; ++t) {
      const uint8_t* xb = x[t] + xo;
      const __m128 dx = _mm_set1_ps(f32(xb));
      __m256i is[4], ms[4];
      for (int i = 0; i < 4; ++i) Ty::dot(u[i], xb, is[i], ms[i]);
      acc[t] = step(acc[t], d, dx, reduce4(is[0], is[1], is[2], is[3]));
      if constexpr (Ty::kHasMin)
        acc[t] = step_sub(acc[t], dmin, dx, reduce4(ms[0], ms[1], ms[2], ms[3]));
    }
  }
  for (int t = 0; t < T; ++t) {
    alignas(16) float out[4];
    _mm_store_ps(out, acc[t]);
    for (size_t i = 0; i < 4 && i < valid_rows; ++i) Y[t * ldy + i] = out[i];
  }
}

// ---- the microkernels as qmatmul_driver.h takes them ------------------------------------

// Q4_0 / Q8_0: GEMV 16 rows per call (gemv16), the last 1..15 rows 8 at a time (gemv8);
// GEMM 4 rows x 4 tokens as two token pairs, or one pair when at most 2 tokens are left.
template <class Ty>
struct Kern32 {
  static constexpr size_t kBlockElems = kQK;
  static constexpr int kGemvRows = 16, kGemmRows = 4, kGemmTokens = 4;
  static void gemv(const uint8_t* w, size_t w_stride, size_t rows, const uint8_t* x, size_t nb, float* y) {
    if (rows == 16) return gemv16<Ty>(w, w_stride, x, nb, y);
    for (size_t r = 0; r < rows; r += 8) {
      const uint8_t* p[8];
      row_pointers<8>(w, w_stride, r, rows, p);
      gemv8<Ty>(p, 8 * w_stride, x, nb, y + r, rows - r);
    }
  }
  static void gemm(const uint8_t* const* w, const uint8_t* const* x, size_t nb, float* y, size_t ldy,
                   size_t rows, size_t tokens) {
    if (tokens > 2) return gemm4<Ty, 2>(w, x, nb, y, ldy, rows, tokens);
    gemm4<Ty, 1>(w, x, nb, y, ldy, rows, tokens);
  }
};

// The K-quants: GEMV 8 rows straight from the blocks; GEMM 4 rows x 1..4 tokens from
// super-blocks unpacked once per row.
template <class Ty>
struct KernK {
  static constexpr size_t kBlockElems = kQKK;
  static constexpr int kGemvRows = 8, kGemmRows = 4, kGemmTokens = 4;
  static void gemv(const uint8_t* w, size_t w_stride, size_t rows, const uint8_t* x, size_t nb, float* y) {
    gemv8_k<Ty>(w, w_stride, rows, x, nb, y);
  }
  static void gemm(const uint8_t* const* w, const uint8_t* const* x, size_t nb, float* y, size_t ldy,
                   size_t rows, size_t tokens) {
    switch (tokens) {
      case 1: return micro_k<Ty, 1>(w, x, nb, y, ldy, rows);
      case 2: return micro_k<Ty, 2>(w, x, nb, y, ldy, rows);
      case 3: return micro_k<Ty, 3>(w, x, nb, y, ldy, rows);
      default: return micro_k<Ty, 4>(w, x, nb, y, ldy, rows);
    }
  }
};

// The quantized kernels of every type, built with Dot: the whole of an x86 table's
// quantized part (an ISA file may then replace some of them).
void add_quant_x86(Table& t) {
  t.of(DType::Q8_0).quantize_row = quantize_row_q8_0<QuantOps>;
  t.of(DType::Q8_K).quantize_row = quantize_row_q8_k<QuantOps>;
  t.of(DType::Q8_0).qmatmul = qmatmul<Kern32<Q8_0>>;
  t.of(DType::Q4_0).qmatmul = qmatmul<Kern32<Q4_0>>;
  t.of(DType::Q4_1).qmatmul = qmatmul<Kern32<Q4_1>>;
  t.of(DType::Q5_0).qmatmul = qmatmul<Kern32<Q5_0>>;
  t.of(DType::IQ4_NL).qmatmul = qmatmul<Kern32<IQ4_NL>>;
  t.of(DType::Q5_1).qmatmul = qmatmul<Kern32<Q5_1>>;
  t.of(DType::Q4_K).qmatmul = qmatmul<KernK<Q4_K>>;
  t.of(DType::Q6_K).qmatmul = qmatmul<KernK<Q6_K>>;
  t.of(DType::Q5_K).qmatmul = qmatmul<KernK<Q5_K>>;
  t.of(DType::IQ4_XS).qmatmul = qmatmul<KernK<IQ4_XS>>;
  t.of(DType::Q2_K).qmatmul = qmatmul<KernK<Q2_K>>;
  t.of(DType::Q3_K).qmatmul = qmatmul<KernK<Q3_K>>;
}

}  // namespace
}  // namespace ember::kernels
