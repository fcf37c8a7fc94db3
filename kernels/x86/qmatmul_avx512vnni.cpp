// x86-64 AVX512-VNNI quantized matmul (compiled with -mavx512f -mavx512bw -mavx512vl
// -mavx512vnni; Ice Lake, Zen 4 and later; reached only through dispatch.cpp after the
// CPU check): qmatmul_x86.h's kernels with the EVEX VPDPBUSD / VPDPWSSD dot primitive
// (ymm, with 32 vector registers), and for Q8_0 and Q4_0 a 512-bit GEMM; the kernels on
// repacked weights (qmatmul_packed_x86.h, qmatmul_packed_k_x86.h) on the same ymm
// primitive and layouts as the AVX-VNNI table's (tested through its emulated build,
// tests/support/vnni_emulated.cpp; the zmm code here runs on an AVX512 machine only).
//
// The 512-bit GEMM: one zmm holds the same 32-weight block of two rows (row 2p in the
// low 256 bits, 2p + 1 in the high), each token's activation block is broadcast to
// both halves, and one VPDPBUSD per row pair and token gives both rows' sums of four
// products (16 s32 lanes). The unsigned operand: Q4_0's codes 0..15, with the -8
// offset as -8 (sums of four x) starting the accumulator (once per token and block);
// Q8_0's activations plus 128 (x ^ 0x80, 1..255) against the signed weights, with
// -128 (sums of four w) starting it (once per row pair and block). Both exact in s32.
// A tile of 2P rows x 4 tokens reduces its 2P * 4 vectors to one zmm of 16 exact
// block sums per 4 rows (lane 4i + t: row i, token t), and each lane takes
// acc + (dw * dx) * float(isum): kernels.h's steps in its order, bit for bit.
#include "kernels/x86/qmatmul_x86.h"
#include "kernels/x86/qmatmul_packed_x86.h"
#include "kernels/x86/qmatmul_packed_k_x86.h"

// GCC 12's avx512fintrin.h trips -Wmaybe-uninitialized on its own _mm512_undefined_*
// pass-through operands (GCC bug 105593, fixed in 13).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace ember::kernels {
namespace {

__m512i pair_of(const uint8_t* a, const uint8_t* b) {  // 32 bytes at a | 32 at b
  return _mm512_inserti64x4(_mm512_castsi256_si512(load256(a)), load256(b), 1);
}
__m512i broadcast256(const uint8_t* p) { return _mm512_broadcast_i64x4(load256(p)); }

struct Q8_0z {
  static constexpr size_t kWBytes = sizeof(BlockQ8_0), kXBytes = sizeof(BlockQ8_0);
  struct W {
    __m512i q, neg_offset;  // codes of two rows; -128 (sums of four codes)
  };
  using X = __m512i;        // codes + 128, as unsigned bytes
  static W load_w(const uint8_t* a, const uint8_t* b) {
    const __m512i q = pair_of(a + 2, b + 2), zero = _mm512_setzero_si512();
    return {q, _mm512_sub_epi32(zero, _mm512_dpbusd_epi32(zero, _mm512_set1_epi8(static_cast<char>(0x80)), q))};
  }
  static X load_x(const uint8_t* p) {
    return _mm512_xor_si512(broadcast256(p + 2), _mm512_set1_epi8(static_cast<char>(0x80)));
  }
  static __m512i dot(const W& w, const X& x) { return _mm512_dpbusd_epi32(w.neg_offset, x, w.q); }
};

struct Q4_0z {
  static constexpr size_t kWBytes = sizeof(BlockQ4_0), kXBytes = sizeof(BlockQ8_0);
  using W = __m512i;  // codes 0..15 of two rows: per row weights 0..15, then 16..31
  struct X {
    __m512i q, neg_offset;  // codes; -8 (sums of four codes)
  };
  static W load_w(const uint8_t* a, const uint8_t* b) {
    const __m512i raw = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_broadcastsi128_si256(load128(a + 2))),
                                           _mm256_broadcastsi128_si256(load128(b + 2)), 1);
    const __m512i shift = _mm512_setr_epi64(0, 0, 4, 4, 0, 0, 4, 4);  // high nibbles: 16..31
    return _mm512_and_si512(_mm512_srlv_epi64(raw, shift), _mm512_set1_epi8(0x0F));
  }
  static X load_x(const uint8_t* p) {
    const __m512i q = broadcast256(p + 2), zero = _mm512_setzero_si512();
    return {q, _mm512_sub_epi32(zero, _mm512_dpbusd_epi32(zero, _mm512_set1_epi8(8), q))};
  }
  static __m512i dot(const W& w, const X& x) { return _mm512_dpbusd_epi32(x.neg_offset, w, x.q); }
};

// v[t] (t < 4): rows a | b against token t, 8 s32 partial sums per row. The 16 exact
// row sums as lanes 4t' + ... : lanes 0..3 row a tokens 0..3, lanes 4..7 row b.
// (unpack-and-add levels as reduce8; the two rows stay in their 256-bit halves.)
[[gnu::always_inline]] inline __m512i reduce_pair4(const __m512i* v) {
  const __m512i t0 = _mm512_add_epi32(_mm512_unpacklo_epi32(v[0], v[1]), _mm512_unpackhi_epi32(v[0], v[1]));
  const __m512i t1 = _mm512_add_epi32(_mm512_unpacklo_epi32(v[2], v[3]), _mm512_unpackhi_epi32(v[2], v[3]));
  // Per 128-bit lane: tokens 0..3's partial sums over that lane.
  return _mm512_add_epi32(_mm512_unpacklo_epi64(t0, t1), _mm512_unpackhi_epi64(t0, t1));
}
// Row pairs (0|1) and (2|3) reduced as above into lanes 4i + t (row i, token t).
[[gnu::always_inline]] inline __m512i reduce_rows4(__m512i u0, __m512i u1) {
  return _mm512_add_epi32(_mm512_shuffle_i64x2(u0, u1, 0x88), _mm512_shuffle_i64x2(u0, u1, 0xDD));
}

// The fp16 scales of four blocks (pointers p[0..4)) as floats in lanes 4i + t: by row
// (row_major: lane -> i) or by token (lane -> t).
__m512 scales16(const uint8_t* const* p, size_t off, bool by_row) {
  uint64_t h = 0;
  for (int i = 0; i < 4; ++i) {
    uint16_t v;
    std::memcpy(&v, p[i] + off, 2);
    h |= uint64_t{v} << (16 * i);
  }
  const __m512 f = _mm512_castps128_ps512(_mm_cvtph_ps(_mm_cvtsi64_si128(static_cast<int64_t>(h))));
  const __m512i idx = by_row ? _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3)
                             : _mm512_setr_epi32(0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3);
  return _mm512_permutexvar_ps(idx, f);
}

// GEMM: 4P rows (pointers w[0..4P)) x 4 tokens (x[0..4)); each weight block loaded
// once for the 4 tokens, each activation block once for the 4P rows.
template <class Ty, int P>
void gemm_zmm(const uint8_t* const* w, const uint8_t* const* x, size_t nb, float* Y, size_t ldy,
              size_t valid_rows, size_t valid_tokens) {
  __m512 acc[P];
  for (int g = 0; g < P; ++g) acc[g] = _mm512_setzero_ps();
  for (size_t b = 0; b < nb; ++b) {
    const size_t wo = b * Ty::kWBytes, xo = b * Ty::kXBytes;
    const uint8_t* xb[4] = {x[0] + xo, x[1] + xo, x[2] + xo, x[3] + xo};
    typename Ty::X xv[4];
    for (int t = 0; t < 4; ++t) xv[t] = Ty::load_x(xb[t]);
    const __m512 dx = scales16(xb, 0, false);
    for (int g = 0; g < P; ++g) {  // rows 4g .. 4g + 3
      const uint8_t* wb[4] = {w[4 * g] + wo, w[4 * g + 1] + wo, w[4 * g + 2] + wo, w[4 * g + 3] + wo};
      __m512i u[2];
      for (int h = 0; h < 2; ++h) {
        const typename Ty::W wv = Ty::load_w(wb[2 * h], wb[2 * h + 1]);
        __m512i v[4];
        for (int t = 0; t < 4; ++t) v[t] = Ty::dot(wv, xv[t]);
        u[h] = reduce_pair4(v);
      }
      const __m512i isum = reduce_rows4(u[0], u[1]);
      acc[g] = _mm512_add_ps(acc[g], _mm512_mul_ps(_mm512_mul_ps(scales16(wb, 0, true), dx), _mm512_cvtepi32_ps(isum)));
    }
  }
  for (int g = 0; g < P; ++g) {
    alignas(64) float out[16];
    _mm512_store_ps(out, acc[g]);
    for (size_t i = 0; i < 4 && 4 * g + i < valid_rows; ++i)
      for (size_t t = 0; t < valid_tokens; ++t) Y[t * ldy + 4 * g + i] = out[4 * i + t];
  }
}

// Kern32's GEMV (ymm, EVEX VPDPBUSD) with the zmm GEMM.
template <class Ty, class Tz>
struct Kern32z : Kern32<Ty> {
  static constexpr int kGemmRows = 8, kGemmTokens = 4;
  static void gemm(const uint8_t* const* w, const uint8_t* const* x, size_t nb, float* y, size_t ldy,
                   size_t rows, size_t tokens) {
    gemm_zmm<Tz, 2>(w, x, nb, y, ldy, rows, tokens);
  }
};

// ---- K-quants: Q4_K, Q5_K, Q6_K ----------------------------------------------------------
// A super-block's codes as four zmm of 64 weights (k = 0..3: weights 64k .. 64k + 63,
// against the activations' 64 bytes there, one load), each lane's sum of four products
// (VPDPBUSD, |.| < 2^15: codes below 64) times its sub-block's scale (VPDPWSSD against
// (scale, 0) per s32 lane) accumulated in one zmm per row and token, then folded to
// ymm and reduced eight at a time. The term against the bsums (Q4_K, Q5_K: the mins,
// a second float step; Q6_K: the -32 offset, subtracted in integers) as the ymm kernels.

// 16 s32 lanes: the scales (s32 lanes of `sc`, (scale, 0) each) of sub-blocks
// first + lane / per_sub: per_sub = 8 (32-weight sub-blocks) or 4 (16-weight ones).
__m512i spread_scales(__m512i sc, int first, int per_sub) {
  const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const __m512i idx = _mm512_add_epi32(_mm512_set1_epi32(first),
                                       per_sub == 8 ? _mm512_srli_epi32(lane, 3) : _mm512_srli_epi32(lane, 2));
  return _mm512_permutexvar_epi32(idx, sc);
}
__m512i join(__m256i lo, __m256i hi) { return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1); }

struct UnpackedZ {
  __m512i q[4], sc[4];
  __m256i side;  // against the bsums: Q4_K/Q5_K the mins (m0, m0, m1, m1, ..) as s16; Q6_K the scales
  float d, dmin;
};

struct Q4_Kz {
  static constexpr size_t kWBytes = sizeof(BlockQ4_K), kXBytes = sizeof(BlockQ8_K);
  static constexpr bool kHasMin = true;
  static void scales(const uint8_t* p, UnpackedZ& u) {
    const Q4_K::Scales r = Q4_K::scales(p);  // r.sc: (sc, 0) per s32 lane (VNNI layout)
    for (int k = 0; k < 4; ++k) u.sc[k] = spread_scales(_mm512_castsi256_si512(r.sc), 2 * k, 8);
    u.side = r.m;
    u.d = r.d;
    u.dmin = r.dmin;
  }
  static void unpack(const uint8_t* p, UnpackedZ& u) {
    scales(p, u);
    const __m256i low4 = _mm256_set1_epi8(0x0F);
    for (int k = 0; k < 4; ++k) {
      const __m256i v = load256(p + 16 + 32 * k);
      u.q[k] = join(_mm256_and_si256(v, low4), _mm256_and_si256(_mm256_srli_epi16(v, 4), low4));
    }
  }
  // sum_s m[s] * (bsums[2s] + bsums[2s + 1]), 8 s32 partial sums.
  static __m256i side(const UnpackedZ& u, const uint8_t* xb) { return _mm256_madd_epi16(load256(xb + 4 + kQKK), u.side); }
};

struct Q5_Kz : Q4_Kz {
  static constexpr size_t kWBytes = sizeof(BlockQ5_K);
  static void unpack(const uint8_t* p, UnpackedZ& u) {
    scales(p, u);
    const __m256i qh = load256(p + 16), low4 = _mm256_set1_epi8(0x0F);
    for (int k = 0; k < 4; ++k) {
      const __m256i v = load256(p + 48 + 32 * k);
      u.q[k] = join(_mm256_or_si256(_mm256_and_si256(v, low4), Q5_K::fifth(qh, 2 * k)),
                    _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(v, 4), low4), Q5_K::fifth(qh, 2 * k + 1)));
    }
  }
};

struct Q6_Kz {
  static constexpr size_t kWBytes = sizeof(BlockQ6_K), kXBytes = sizeof(BlockQ8_K);
  static constexpr bool kHasMin = false;
  static void unpack(const uint8_t* p, UnpackedZ& u) {
    const Q6_K::Scales r = Q6_K::scales(p);
    // (sc, 0) per s32 lane: the s16 scales zero-extended (the low half keeps the sign).
    const __m512i sc32 = _mm512_cvtepu16_epi32(r.sc16);
    for (int k = 0; k < 4; ++k) u.sc[k] = spread_scales(sc32, 4 * k, 4);
    for (int h = 0; h < 2; ++h) {
      __m256i c[4];
      Q6_K::codes(p, h, c);
      u.q[2 * h] = join(c[0], c[1]);
      u.q[2 * h + 1] = join(c[2], c[3]);
    }
    u.side = r.sc16;
    u.d = r.d;
    u.dmin = 0.0f;
  }
  // 32 sum_s sc[s] bsums[s]: the codes' -32, subtracted from the sums.
  static __m256i side(const UnpackedZ& u, const uint8_t* xb) {
    return _mm256_slli_epi32(_mm256_madd_epi16(load256(xb + 4 + kQKK), u.side), 5);
  }
};

// One row's super-block against one token's: 8 s32 partial sums of sum_s sc[s] (codes . x)_s.
[[gnu::always_inline]] inline __m256i scaled_dots_z(const UnpackedZ& u, const uint8_t* xq) {
  __m512i acc = _mm512_setzero_si512();
  for (int k = 0; k < 4; ++k) {
    const __m512i x = _mm512_loadu_si512(xq + 64 * k);
    acc = _mm512_dpwssd_epi32(acc, _mm512_dpbusd_epi32(_mm512_setzero_si512(), u.q[k], x), u.sc[k]);
  }
  return _mm256_add_epi32(_mm512_castsi512_si256(acc), _mm512_extracti64x4_epi64(acc, 1));
}

// 4 rows x 4 tokens; lanes 4i + t (row i, token t) of the float accumulator.
template <class Ty>
void gemm_k_zmm(const uint8_t* const* w, const uint8_t* const* x, size_t nb, float* Y, size_t ldy,
                size_t valid_rows, size_t valid_tokens) {
  __m512 acc = _mm512_setzero_ps();
  UnpackedZ u;
  for (size_t b = 0; b < nb; ++b) {
    const size_t wo = b * Ty::kWBytes, xo = b * Ty::kXBytes;
    __m256i is[16], ms[16];
    alignas(16) float d[4], dmin[4], dx[4];
    for (int t = 0; t < 4; ++t) dx[t] = f32(x[t] + xo);
    for (int i = 0; i < 4; ++i) {
      Ty::unpack(w[i] + wo, u);
      d[i] = u.d;
      dmin[i] = u.dmin;
      for (int t = 0; t < 4; ++t) {
        const uint8_t* xb = x[t] + xo;
        is[4 * i + t] = scaled_dots_z(u, xb + 4);
        if constexpr (Ty::kHasMin)
          ms[4 * i + t] = Ty::side(u, xb);
        else
          is[4 * i + t] = _mm256_sub_epi32(is[4 * i + t], Ty::side(u, xb));
      }
    }
    const __m512i by_row = _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
    const __m512i by_token = _mm512_setr_epi32(0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3);
    const __m512 vdx = _mm512_permutexvar_ps(by_token, _mm512_castps128_ps512(_mm_load_ps(dx)));
    const __m512 vd = _mm512_permutexvar_ps(by_row, _mm512_castps128_ps512(_mm_load_ps(d)));
    const __m512i isum = join(reduce8(is), reduce8(is + 8));
    acc = _mm512_add_ps(acc, _mm512_mul_ps(_mm512_mul_ps(vd, vdx), _mm512_cvtepi32_ps(isum)));
    if constexpr (Ty::kHasMin) {
      const __m512 vm = _mm512_permutexvar_ps(by_row, _mm512_castps128_ps512(_mm_load_ps(dmin)));
      const __m512i msum = join(reduce8(ms), reduce8(ms + 8));
      acc = _mm512_sub_ps(acc, _mm512_mul_ps(_mm512_mul_ps(vm, vdx), _mm512_cvtepi32_ps(msum)));
    }
  }
  alignas(64) float out[16];
  _mm512_store_ps(out, acc);
  for (size_t i = 0; i < valid_rows; ++i)
    for (size_t t = 0; t < valid_tokens; ++t) Y[t * ldy + i] = out[4 * i + t];
}

// KernK's GEMV (ymm, EVEX VPDPBUSD) with the zmm GEMM.
template <class Ty, class Tz>
struct KernKz : KernK<Ty> {
  static constexpr int kGemmRows = 4, kGemmTokens = 4;
  static void gemm(const uint8_t* const* w, const uint8_t* const* x, size_t nb, float* y, size_t ldy,
                   size_t rows, size_t tokens) {
    gemm_k_zmm<Tz>(w, x, nb, y, ldy, rows, tokens);
  }
};

}  // namespace

static_assert(Dot::kVnni, "qmatmul_avx512vnni.cpp must be compiled with -mavx512vnni -mavx512vl");
void add_quant_avx512vnni(Table& t) {
  add_quant_x86(t);
  t.of(DType::Q8_0).qmatmul = qmatmul<Kern32z<Q8_0, Q8_0z>>;
  t.of(DType::Q4_0).qmatmul = qmatmul<Kern32z<Q4_0, Q4_0z>>;
  t.of(DType::Q4_K).qmatmul = qmatmul<KernKz<Q4_K, Q4_Kz>>;
  t.of(DType::Q5_K).qmatmul = qmatmul<KernKz<Q5_K, Q5_Kz>>;
  t.of(DType::Q6_K).qmatmul = qmatmul<KernKz<Q6_K, Q6_Kz>>;
  add_packed_x86(t);  // ymm, EVEX VPDPBUSD / VPDPWSSD, 8 rows per vector
}

}  // namespace ember::kernels
