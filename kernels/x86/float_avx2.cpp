// x86-64 AVX2 + FMA + F16C float kernels: the xsimd code of float_simd.h on
// xsimd::fma3<xsimd::avx2> (8 floats), plus what xsimd lacks: half conversions
// (F16C) and the interleaved rope. Compiled with -mavx2 -mfma -mf16c; reached only
// through dispatch.cpp after the CPU check.
#include <immintrin.h>

#include "kernels/float_simd.h"
#include "kernels/isa_tables.h"

namespace ember::kernels {
namespace {

struct Avx2Ops {
  using arch = xsimd::fma3<xsimd::avx2>;
  using B = xsimd::batch<float, arch>;
  // GEMV: 8 rows (8 accumulators, 8 weight streams); GEMM: 4 rows x 3 tokens =
  // 12 accumulators + 4 weight vectors = all 16 ymm registers.
  static constexpr int kGemvRows = 8;
  static constexpr int kGemmRows = 4;
  static constexpr int kGemmTokens = 3;

  static B load_f16(const uint16_t* p) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  }
  static B load_bf16(const uint16_t* p) {
    const __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
  }

  // 8 halves -> floats. F16C is exact for every number; NaNs are rebuilt from the
  // bits (payload kept, signalling ones not quieted) to match quant/fp16.h.
  static __m256 f16x8_to_f32(__m128i h) {
    const __m256 f = _mm256_cvtph_ps(h);
    const __m256i u = _mm256_cvtepu16_epi32(h);
    const __m256i mag = _mm256_and_si256(u, _mm256_set1_epi32(0x7fff));
    const __m256i is_nan = _mm256_cmpgt_epi32(mag, _mm256_set1_epi32(0x7c00));
    const __m256i nan = _mm256_or_si256(
        _mm256_or_si256(_mm256_slli_epi32(_mm256_and_si256(u, _mm256_set1_epi32(0x8000)), 16),
                        _mm256_slli_epi32(mag, 13)),
        _mm256_set1_epi32(0x7f800000));
    return _mm256_blendv_ps(f, _mm256_castsi256_ps(nan), _mm256_castsi256_ps(is_nan));
  }
  static void f16_to_f32(const uint16_t* x, float* y, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
      _mm256_storeu_ps(y + i,
                       f16x8_to_f32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x + i))));
    if (i < n) {
      uint16_t buf[8] = {};
      std::memcpy(buf, x + i, (n - i) * sizeof(uint16_t));
      alignas(32) float out[8];
      _mm256_store_ps(out, f16x8_to_f32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(buf))));
      std::memcpy(y + i, out, (n - i) * sizeof(float));
    }
  }

  static void bf16_to_f32(const uint16_t* x, float* y, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, load_bf16(x + i));
    for (; i < n; ++i) {
      const uint32_t b = static_cast<uint32_t>(x[i]) << 16;
      std::memcpy(y + i, &b, 4);
    }
  }

  // 8 floats -> halves, round to nearest even (subnormals, overflow to inf as IEEE);
  // NaN lanes become the quiet NaN quant/fp16.h produces: sign | 0x7e00.
  static __m128i f32x8_to_f16(__m256 f) {
    const __m128i h = _mm256_cvtps_ph(f, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m128i mag = _mm_and_si128(h, _mm_set1_epi16(0x7fff));
    const __m128i is_nan = _mm_cmpgt_epi16(mag, _mm_set1_epi16(0x7c00));
    const __m128i nan = _mm_or_si128(_mm_and_si128(h, _mm_set1_epi16(static_cast<short>(0x8000))),
                                     _mm_set1_epi16(0x7e00));
    return _mm_blendv_epi8(h, nan, is_nan);
  }
  static void f32_to_f16(const float* x, uint16_t* y, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
      _mm_storeu_si128(reinterpret_cast<__m128i*>(y + i), f32x8_to_f16(_mm256_loadu_ps(x + i)));
    if (i < n) {
      alignas(32) float buf[8] = {};
      std::memcpy(buf, x + i, (n - i) * sizeof(float));
      alignas(16) uint16_t out[8];
      _mm_store_si128(reinterpret_cast<__m128i*>(out), f32x8_to_f16(_mm256_load_ps(buf)));
      std::memcpy(y + i, out, (n - i) * sizeof(uint16_t));
    }
  }

  // Interleaved pairs, 4 per vector: with c = (c0 c0 c1 c1 ..), s likewise and
  // x' = (x1 x0 x3 x2 ..), addsub(x*c, x'*s) = (x0c0 - x1s0, x1c0 + x0s0, ..):
  // the reference's operations exactly (mul, mul, add/sub; nothing fused).
  static void rope_norm(float* x, size_t n_heads, size_t head_dim, size_t rot_dim, const float* cos,
                        const float* sin) {
    const size_t pairs = rot_dim / 2;
    for (size_t h = 0; h < n_heads; ++h) {
      float* v = x + h * head_dim;
      size_t i = 0;
      for (; i + 4 <= pairs; i += 4) {
        const __m128 c4 = _mm_loadu_ps(cos + i), s4 = _mm_loadu_ps(sin + i);
        const __m256 c = _mm256_set_m128(_mm_unpackhi_ps(c4, c4), _mm_unpacklo_ps(c4, c4));
        const __m256 s = _mm256_set_m128(_mm_unpackhi_ps(s4, s4), _mm_unpacklo_ps(s4, s4));
        const __m256 xv = _mm256_loadu_ps(v + 2 * i);
        const __m256 xs = _mm256_permute_ps(xv, 0xb1);  // swap within pairs
        _mm256_storeu_ps(v + 2 * i, _mm256_addsub_ps(_mm256_mul_ps(xv, c), _mm256_mul_ps(xs, s)));
      }
      for (; i < pairs; ++i) {
        const float x0 = v[2 * i], x1 = v[2 * i + 1];
        v[2 * i] = x0 * cos[i] - x1 * sin[i];
        v[2 * i + 1] = x0 * sin[i] + x1 * cos[i];
      }
    }
  }
};

}  // namespace

const Table* table_avx2() {
  static const Table t = FloatKernels<Avx2Ops>::table(Isa::kAvx2, "avx2");
  return &t;
}

}  // namespace ember::kernels
