// AArch64 Advanced SIMD float kernels: the xsimd code of float_simd.h on
// xsimd::neon64 (4 floats), plus half conversions (FCVTL/FCVTN, base ARMv8) and the
// interleaved rope (LD2/ST2). Compiled with -march=armv8-a: runs on every AArch64
// CPU (Cortex-A53/A72 and up).
#include <arm_neon.h>

#include "kernels/float_simd.h"
#include "kernels/isa_tables.h"

namespace ember::kernels {
namespace {

struct NeonOps {
  using arch = xsimd::neon64;
  using B = xsimd::batch<float, arch>;
  // 32 vector registers: GEMV 8 rows; GEMM 4 rows x 4 tokens = 16 accumulators
  // + 4 weight + 4 token vectors.
  static constexpr int kGemvRows = 8;
  static constexpr int kGemmRows = 4;
  static constexpr int kGemmTokens = 4;

  static B load_f16(const uint16_t* p) { return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p))); }
  static B load_bf16(const uint16_t* p) {
    return vreinterpretq_f32_u32(vshll_n_u16(vld1_u16(p), 16));
  }

  // 4 halves -> floats; exact for numbers, NaNs rebuilt from the bits (FCVTL
  // quiets signalling NaNs; quant/fp16.h keeps them).
  static float32x4_t f16x4_to_f32(uint16x4_t h) {
    const float32x4_t f = vcvt_f32_f16(vreinterpret_f16_u16(h));
    const uint32x4_t u = vmovl_u16(h);
    const uint32x4_t mag = vandq_u32(u, vdupq_n_u32(0x7fff));
    const uint32x4_t is_nan = vcgtq_u32(mag, vdupq_n_u32(0x7c00));
    const uint32x4_t nan = vorrq_u32(
        vorrq_u32(vshlq_n_u32(vandq_u32(u, vdupq_n_u32(0x8000)), 16), vshlq_n_u32(mag, 13)),
        vdupq_n_u32(0x7f800000));
    return vbslq_f32(is_nan, vreinterpretq_f32_u32(nan), f);
  }
  static void f16_to_f32(const uint16_t* x, float* y, size_t n) {
    size_t i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(y + i, f16x4_to_f32(vld1_u16(x + i)));
    if (i < n) {
      uint16_t buf[4] = {};
      std::memcpy(buf, x + i, (n - i) * sizeof(uint16_t));
      float out[4];
      vst1q_f32(out, f16x4_to_f32(vld1_u16(buf)));
      std::memcpy(y + i, out, (n - i) * sizeof(float));
    }
  }

  static void bf16_to_f32(const uint16_t* x, float* y, size_t n) {
    size_t i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(y + i, load_bf16(x + i));
    for (; i < n; ++i) {
      const uint32_t b = static_cast<uint32_t>(x[i]) << 16;
      std::memcpy(y + i, &b, 4);
    }
  }

  // 4 floats -> halves, round to nearest even (FPCR default); NaN lanes become the
  // quiet NaN quant/fp16.h produces: sign | 0x7e00.
  static uint16x4_t f32x4_to_f16(float32x4_t f) {
    const uint16x4_t h = vreinterpret_u16_f16(vcvt_f16_f32(f));
    const uint16x4_t mag = vand_u16(h, vdup_n_u16(0x7fff));
    const uint16x4_t is_nan = vcgt_u16(mag, vdup_n_u16(0x7c00));
    const uint16x4_t nan = vorr_u16(vand_u16(h, vdup_n_u16(0x8000)), vdup_n_u16(0x7e00));
    return vbsl_u16(is_nan, nan, h);
  }
  static void f32_to_f16(const float* x, uint16_t* y, size_t n) {
    size_t i = 0;
    for (; i + 4 <= n; i += 4) vst1_u16(y + i, f32x4_to_f16(vld1q_f32(x + i)));
    if (i < n) {
      float buf[4] = {};
      std::memcpy(buf, x + i, (n - i) * sizeof(float));
      uint16_t out[4];
      vst1_u16(out, f32x4_to_f16(vld1q_f32(buf)));
      std::memcpy(y + i, out, (n - i) * sizeof(uint16_t));
    }
  }

  // Interleaved pairs, 4 per step: LD2 splits even (x0) and odd (x1) elements.
  // Plain multiplies and adds (vfma would fuse): bitwise equal to the reference.
  static void rope_norm(float* x, size_t n_heads, size_t head_dim, size_t rot_dim, const float* cos,
                        const float* sin) {
    const size_t pairs = rot_dim / 2;
    for (size_t h = 0; h < n_heads; ++h) {
      float* v = x + h * head_dim;
      size_t i = 0;
      for (; i + 4 <= pairs; i += 4) {
        const float32x4x2_t p = vld2q_f32(v + 2 * i);
        const float32x4_t c = vld1q_f32(cos + i), s = vld1q_f32(sin + i);
        float32x4x2_t o;
        o.val[0] = vsubq_f32(vmulq_f32(p.val[0], c), vmulq_f32(p.val[1], s));
        o.val[1] = vaddq_f32(vmulq_f32(p.val[0], s), vmulq_f32(p.val[1], c));
        vst2q_f32(v + 2 * i, o);
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

const Table* table_neon() {
  static const Table t = FloatKernels<NeonOps>::table(Isa::kNeon, "neon");
  return &t;
}

}  // namespace ember::kernels
