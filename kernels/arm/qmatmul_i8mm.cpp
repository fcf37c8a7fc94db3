// AArch64 NEON + int8 matrix multiply (-march=armv8.6-a+dotprod+i8mm: Cortex-A510/
// A710/X2 and later phone cores). Decode (GEMV) and the K-quants use SDOT as in
// qmatmul_dotprod.cpp; the Q4_0/Q5_0/IQ4_NL/Q8_0 prefill GEMM uses SMMLA, which multiplies a 2x8
// int8 tile by an 8x2 one into 2x2 s32: 2 weight rows x 2 tokens per instruction, so
// the integer sums come out already laid out as (row, token) lanes and need no
// horizontal reduction. Same numerics as everywhere (kernels.h): bitwise the reference.
// Q4_0 and Q8_0 weights are repacked at load into 4 rows x 8 bytes, SMMLA's operand
// layout (qmatmul_packed_neon.h), for both the GEMM (SMMLA) and the GEMV (SDOT). Q4_K,
// Q5_K, Q6_K, Q2_K, Q3_K, IQ4_XS, Q5_0, Q4_1, Q5_1 and IQ4_NL are repacked as on dotprod
// cores, 4 rows x 4 bytes, and run the same SDOT kernels (qmatmul_packed_k_neon.h,
// qmatmul_packed_q2_q3_k_neon.h, qmatmul_packed_iq4_xs_neon.h, qmatmul_packed_neon.h;
// but the GEMMs of Q4_K, Q5_K and Q6_K: SMMLA on that packing, qmatmul_packed_k_mmla_neon.h):
// for Q5_0 the packed SDOT GEMM (llvm-mca N2: 1.73 cycles per block x row x token) is
// cheaper than the plain SMMLA one (Q4_0's alone 2.69, Q5_0's adds the fifth bits), and
// its GEMV than the plain one (4.13 against 12.9); IQ4_NL's likewise (1.69 against the
// plain SMMLA's 2.84, GEMV 3.75 against 5.06); Q4_1 / Q5_1 have no SMMLA GEMM. The plain
// SMMLA GEMMs stay for --no-repack.
#include "kernels/arm/qmatmul_neon.h"
#include "kernels/arm/qmatmul_packed_neon.h"
#include "kernels/arm/qmatmul_packed_iq4_xs_neon.h"
#include "kernels/arm/qmatmul_packed_k_neon.h"
#include "kernels/arm/qmatmul_packed_k_mmla_neon.h"
#include "kernels/arm/qmatmul_packed_q2_q3_k_neon.h"

namespace ember::kernels {
namespace {

// 8-byte interleave of two rows: (a[0..8), b[0..8)) and (a[8..16), b[8..16)).
int8x16_t zip_lo(int8x16_t a, int8x16_t b) {
  return vreinterpretq_s8_s64(vzip1q_s64(vreinterpretq_s64_s8(a), vreinterpretq_s64_s8(b)));
}
int8x16_t zip_hi(int8x16_t a, int8x16_t b) {
  return vreinterpretq_s8_s64(vzip2q_s64(vreinterpretq_s64_s8(a), vreinterpretq_s64_s8(b)));
}

// 4 rows x 4 tokens as 2 x 2 tiles; acc[p][q] lanes: (row 2p, token 2q), (2p, 2q+1),
// (2p+1, 2q), (2p+1, 2q+1).
template <class Ty>
void gemm_mmla(const uint8_t* const* w, const uint8_t* const* x, size_t nb, float* Y, size_t ldy,
               size_t valid_rows, size_t valid_tokens) {
  float32x4_t acc[2][2];
  for (auto& a : acc) a[0] = a[1] = vdupq_n_f32(0.0f);
  for (size_t b = 0; b < nb; ++b) {
    const size_t wo = b * Ty::kWBytes, xo = b * Ty::kXBytes;
    int8x16_t a[2][4];  // row pair p, weights 8k .. 8k+7 of both rows
    for (int p = 0; p < 2; ++p) {
      const typename Ty::Wv w0 = Ty::unpack(w[2 * p] + wo), w1 = Ty::unpack(w[2 * p + 1] + wo);
      a[p][0] = zip_lo(w0.lo, w1.lo);
      a[p][1] = zip_hi(w0.lo, w1.lo);
      a[p][2] = zip_lo(w0.hi, w1.hi);
      a[p][3] = zip_hi(w0.hi, w1.hi);
    }
    const float32x4_t dw = f16x4(w, wo);
    const float32x4_t dwp[2] = {vzip1q_f32(dw, dw), vzip2q_f32(dw, dw)};  // (d0 d0 d1 d1) ..
    for (int q = 0; q < 2; ++q) {
      const Xq8_0 x0 = load_x(x[2 * q] + xo), x1 = load_x(x[2 * q + 1] + xo);
      const int8x16_t bx[4] = {zip_lo(x0.lo, x1.lo), zip_hi(x0.lo, x1.lo), zip_lo(x0.hi, x1.hi),
                               zip_hi(x0.hi, x1.hi)};
      const float32x4_t dx = {x0.d, x1.d, x0.d, x1.d};
      for (int p = 0; p < 2; ++p) {
        int32x4_t isum = vmmlaq_s32(vdupq_n_s32(0), a[p][0], bx[0]);
        isum = vmmlaq_s32(isum, a[p][1], bx[1]);
        isum = vmmlaq_s32(isum, a[p][2], bx[2]);
        isum = vmmlaq_s32(isum, a[p][3], bx[3]);
        acc[p][q] = step(acc[p][q], dwp[p], dx, isum);
      }
    }
  }
  for (size_t p = 0; p < 2; ++p)
    for (size_t q = 0; q < 2; ++q) {
      float out[4];
      vst1q_f32(out, acc[p][q]);
      for (size_t i = 0; i < 2; ++i)
        for (size_t j = 0; j < 2; ++j)
          if (2 * p + i < valid_rows && 2 * q + j < valid_tokens)
            Y[(2 * q + j) * ldy + 2 * p + i] = out[2 * i + j];
    }
}

}  // namespace

void add_quant_neon_i8mm(Table& t) {
  add_quant_common<DotSdot>(t);
  t.of(DType::Q8_0).qmatmul = qmatmul<Kern32<Q8_0, DotSdot, gemm_mmla<Q8_0>>>;
  t.of(DType::Q4_0).qmatmul = qmatmul<Kern32<Q4_0, DotSdot, gemm_mmla<Q4_0>>>;
  t.of(DType::Q5_0).qmatmul = qmatmul<Kern32<Q5_0, DotSdot, gemm_mmla<Q5_0>>>;
  t.of(DType::IQ4_NL).qmatmul = qmatmul<Kern32<IQ4_NL, DotSdot, gemm_mmla<IQ4_NL>>>;
  t.of(DType::Q4_0).packing = Packing{4, 8, false};
  t.of(DType::Q4_0).qmatmul_packed = qmatmul_packed_mmla<PackedNeonQ4_0>;
  t.of(DType::Q8_0).packing = Packing{4, 8, false};
  t.of(DType::Q8_0).qmatmul_packed = qmatmul_packed_mmla<PackedNeonQ8_0>;
  add_packed_sdot_4x4(t);
  t.of(DType::Q4_K).qmatmul_packed = qmatmul_packed_mmla_q4_k;  // the GEMMs by SMMLA, on the same packing
  t.of(DType::Q5_K).qmatmul_packed = qmatmul_packed_mmla_q5_k;
  t.of(DType::Q6_K).qmatmul_packed = qmatmul_packed_mmla_q6_k;
}

}  // namespace ember::kernels
