// The quantized-matmul reference: plain integer loops that mirror the numerics spelled
// out in kernels.h, on the formats' own scalar specification in quant/ (the activation
// quantizers are quant/quantize.h's reference quantizers, the Q4_K scale/min, the Q5_K,
// Q6_K, Q2_K and Q3_K code and the IQ4_XS scale unpackers are quant's). Every SIMD table
// must give these results bit for bit
// (tests/test_kernels_quant.cpp).
#include <cstring>

#include "kernels/isa_tables.h"
#include "quant/blocks.h"
#include "quant/fp16.h"
#include "quant/quantize.h"

namespace ember::kernels {
namespace {

// Blocks are read by memcpy: rows and strides carry no alignment promise.
template <class Block>
Block load(const uint8_t* p) {
  Block b;
  std::memcpy(&b, p, sizeof b);
  return b;
}

// The type table's reference quantizer of an activation type, as a QuantizeRowFn.
template <DType kAct>
void quantize_row(const float* x, void* y, size_t K) {
  dtype_info(kAct).from_float(x, y, static_cast<int64_t>(K));
}

// ---- one block of one row against one activation block: acc updated -------------

float step_q8_0(float acc, const uint8_t* wp, const uint8_t* xp) {
  const auto w = load<BlockQ8_0>(wp);
  const auto x = load<BlockQ8_0>(xp);
  int32_t isum = 0;
  for (int i = 0; i < kQK; ++i) isum += w.qs[i] * x.qs[i];
  return acc + (fp16_to_fp32(w.d) * fp16_to_fp32(x.d)) * static_cast<float>(isum);
}

float step_q4_0(float acc, const uint8_t* wp, const uint8_t* xp) {
  const auto w = load<BlockQ4_0>(wp);
  const auto x = load<BlockQ8_0>(xp);
  int32_t isum = 0;
  for (int j = 0; j < kQK / 2; ++j) {
    isum += ((w.qs[j] & 0x0F) - 8) * x.qs[j];
    isum += ((w.qs[j] >> 4) - 8) * x.qs[j + kQK / 2];
  }
  return acc + (fp16_to_fp32(w.d) * fp16_to_fp32(x.d)) * static_cast<float>(isum);
}

float step_q5_0(float acc, const uint8_t* wp, const uint8_t* xp) {
  const auto w = load<BlockQ5_0>(wp);
  const auto x = load<BlockQ8_0>(xp);
  uint8_t q[kQK];
  unpack_q5_codes(w.qs, w.qh, q);
  int32_t isum = 0;
  for (int i = 0; i < kQK; ++i) isum += (q[i] - 16) * x.qs[i];
  return acc + (fp16_to_fp32(w.d) * fp16_to_fp32(x.d)) * static_cast<float>(isum);
}

float step_q5_1(float acc, const uint8_t* wp, const uint8_t* xp) {
  const auto w = load<BlockQ5_1>(wp);
  const auto x = load<BlockQ8_0>(xp);
  uint8_t q[kQK];
  unpack_q5_codes(w.qs, w.qh, q);
  int32_t isum = 0, xsum = 0;
  for (int i = 0; i < kQK; ++i) isum += q[i] * x.qs[i];
  for (int i = 0; i < kQK; ++i) xsum += x.qs[i];
  const float dx = fp16_to_fp32(x.d);
  acc = acc + (fp16_to_fp32(w.d) * dx) * static_cast<float>(isum);
  return acc + (fp16_to_fp32(w.m) * dx) * static_cast<float>(xsum);
}

float step_iq4_nl(float acc, const uint8_t* wp, const uint8_t* xp) {
  const auto w = load<BlockIQ4_NL>(wp);
  const auto x = load<BlockQ8_0>(xp);
  int32_t isum = 0;
  for (int j = 0; j < kQK / 2; ++j) {
    isum += kIq4nlValues[w.qs[j] & 0x0F] * x.qs[j];
    isum += kIq4nlValues[w.qs[j] >> 4] * x.qs[j + kQK / 2];
  }
  return acc + (fp16_to_fp32(w.d) * fp16_to_fp32(x.d)) * static_cast<float>(isum);
}

// Q4_1 against Q8_0 activations: the min term from the activation block's exact code sum.
float step_q4_1(float acc, const uint8_t* wp, const uint8_t* xp) {
  const auto w = load<BlockQ4_1>(wp);
  const auto x = load<BlockQ8_0>(xp);
  int32_t isum = 0, xsum = 0;
  for (int j = 0; j < kQK / 2; ++j) {
    isum += (w.qs[j] & 0x0F) * x.qs[j];
    isum += (w.qs[j] >> 4) * x.qs[j + kQK / 2];
  }
  for (int i = 0; i < kQK; ++i) xsum += x.qs[i];
  const float dx = fp16_to_fp32(x.d);
  acc = acc + (fp16_to_fp32(w.d) * dx) * static_cast<float>(isum);
  return acc + (fp16_to_fp32(w.m) * dx) * static_cast<float>(xsum);
}

// Q4_K and Q5_K: codes q (weight order) of sub-blocks s of 32 with the 6-bit scales and
// mins of `scales` (quant/blocks.h), the mins against the activations' bsum pairs.
float step_scale_min(float acc, uint16_t d, uint16_t dmin, const uint8_t scales[12], const uint8_t* q,
                     const BlockQ8_K& x) {
  int32_t isum = 0, msum = 0;
  for (int s = 0; s < 8; ++s) {
    uint8_t sc, m;
    unpack_scale_min_q4_K(s, scales, &sc, &m);
    int32_t dot = 0;
    for (int i = 32 * s; i < 32 * s + 32; ++i) dot += q[i] * x.qs[i];
    isum += sc * dot;
    msum += m * (x.bsums[2 * s] + x.bsums[2 * s + 1]);
  }
  acc = acc + (fp16_to_fp32(d) * x.d) * static_cast<float>(isum);
  return acc - (fp16_to_fp32(dmin) * x.d) * static_cast<float>(msum);
}

float step_q4_k(float acc, const uint8_t* wp, const uint8_t* xp) {
  const auto w = load<BlockQ4_K>(wp);
  // Sub-block s: nibbles (low for even s, high for odd) of qs[32 (s/2) ..].
  uint8_t q[kQKK];
  for (int s = 0; s < 8; ++s)
    for (int i = 0; i < 32; ++i) {
      const uint8_t byte = w.qs[32 * (s / 2) + i];
      q[32 * s + i] = s % 2 == 0 ? byte & 0x0F : byte >> 4;
    }
  return step_scale_min(acc, w.d, w.dmin, w.scales, q, load<BlockQ8_K>(xp));
}

// Q5_K: Q4_K's numerics on five-bit codes (quant's unpacker gives them in weight order).
float step_q5_k(float acc, const uint8_t* wp, const uint8_t* xp) {
  const auto w = load<BlockQ5_K>(wp);
  uint8_t q[kQKK];
  unpack_q5_K(w, q);
  return step_scale_min(acc, w.d, w.dmin, w.scales, q, load<BlockQ8_K>(xp));
}

// IQ4_XS: per sub-block of 32, IQ4_NL's grid levels against the codes, times the signed
// 6-bit scale, summed in integers (as ggml's SIMD dots); one float step per super-block.
float step_iq4_xs(float acc, const uint8_t* wp, const uint8_t* xp) {
  const auto w = load<BlockIQ4_XS>(wp);
  const auto x = load<BlockQ8_K>(xp);
  int32_t isum = 0;
  for (int s = 0; s < 8; ++s) {
    const uint8_t* qs = w.qs + 16 * s;  // laid out as one IQ4_NL block
    const int8_t* xs = x.qs + 32 * s;
    int32_t dot = 0;
    for (int j = 0; j < 16; ++j) {
      dot += kIq4nlValues[qs[j] & 0x0F] * xs[j];
      dot += kIq4nlValues[qs[j] >> 4] * xs[j + 16];
    }
    isum += iq4_xs_scale(w, s) * dot;
  }
  return acc + (fp16_to_fp32(w.d) * x.d) * static_cast<float>(isum);
}

float step_q6_k(float acc, const uint8_t* wp, const uint8_t* xp) {
  const auto w = load<BlockQ6_K>(wp);
  const auto x = load<BlockQ8_K>(xp);
  uint8_t q[kQKK];
  unpack_q6_K(w, q);
  int32_t isum = 0;
  for (int s = 0; s < 16; ++s) {
    int32_t dot = 0;
    for (int i = 16 * s; i < 16 * s + 16; ++i) dot += (q[i] - 32) * x.qs[i];
    isum += w.scales[s] * dot;
  }
  return acc + (fp16_to_fp32(w.d) * x.d) * static_cast<float>(isum);
}

// Q2_K: 16 sub-blocks of 16, scale in the low nibble of scales[s], min in the high one;
// the min term from the activation bsums (one per sub-block), as Q4_K's.
float step_q2_k(float acc, const uint8_t* wp, const uint8_t* xp) {
  const auto w = load<BlockQ2_K>(wp);
  const auto x = load<BlockQ8_K>(xp);
  uint8_t q[kQKK];
  unpack_q2_K(w.qs, q);
  int32_t isum = 0, msum = 0;
  for (int s = 0; s < 16; ++s) {
    int32_t dot = 0;
    for (int i = 16 * s; i < 16 * s + 16; ++i) dot += q[i] * x.qs[i];
    isum += (w.scales[s] & 0xF) * dot;
    msum += (w.scales[s] >> 4) * x.bsums[s];
  }
  acc = acc + (fp16_to_fp32(w.d) * x.d) * static_cast<float>(isum);
  return acc - (fp16_to_fp32(w.dmin) * x.d) * static_cast<float>(msum);
}

// Q3_K: signed codes in [-4, 3] and signed scales in [-32, 31], both from quant's unpackers.
float step_q3_k(float acc, const uint8_t* wp, const uint8_t* xp) {
  const auto w = load<BlockQ3_K>(wp);
  const auto x = load<BlockQ8_K>(xp);
  int8_t sc[16], q[kQKK];
  unpack_scales_q3_K(w.scales, sc);
  unpack_q3_K(w, q);
  int32_t isum = 0;
  for (int s = 0; s < 16; ++s) {
    int32_t dot = 0;
    for (int i = 16 * s; i < 16 * s + 16; ++i) dot += q[i] * x.qs[i];
    isum += sc[s] * dot;
  }
  return acc + (fp16_to_fp32(w.d) * x.d) * static_cast<float>(isum);
}

// One output per (token, row): blocks in order through `step`.
template <float (*step)(float, const uint8_t*, const uint8_t*), DType kW>
void qmatmul(const void* W, size_t w_stride, const void* Xq, size_t xq_stride, size_t n, size_t K,
             float* Y, size_t ldy, size_t r0, size_t r1) {
  const TypeTraits& wt = dtype_info(kW);
  const TypeTraits& xt = dtype_info(wt.vec_dot_type);
  const auto* w = static_cast<const uint8_t*>(W);
  const auto* xq = static_cast<const uint8_t*>(Xq);
  const size_t nb = K / wt.block_size;
  for (size_t t = 0; t < n; ++t) {
    for (size_t r = r0; r < r1; ++r) {
      float acc = 0.0f;
      for (size_t b = 0; b < nb; ++b)
        acc = step(acc, w + r * w_stride + b * wt.type_size, xq + t * xq_stride + b * xt.type_size);
      Y[t * ldy + r] = acc;
    }
  }
}

// Weights in any row-interleaved layout (quant/repack.h): each row's blocks gathered
// back to plain blocks a slab at a time, then the same steps. The running sums live in
// Y, so the blocks still go through `step` in order (the specification is unchanged).
template <float (*step)(float, const uint8_t*, const uint8_t*), DType kW>
void qmatmul_packed(const void* W, Packing packing, const PackedActs& X, size_t n, size_t K, float* Y,
                    size_t ldy, size_t r0, size_t r1) {
  constexpr size_t kSlab = 32;  // blocks gathered at once (on the stack)
  const TypeTraits& wt = dtype_info(kW);
  const size_t xb = dtype_info(wt.vec_dot_type).type_size, nb = K / wt.block_size;
  constexpr size_t kMaxBlock = 256;  // bytes of the largest packable block (Q6_K: 210)
  static_assert(sizeof(BlockQ4_K) <= kMaxBlock && sizeof(BlockQ6_K) <= kMaxBlock, "a packable block fits");
  uint8_t slab[kSlab * kMaxBlock];
  for (size_t r = r0; r < r1; ++r) {
    for (size_t t = 0; t < n; ++t) Y[t * ldy + r] = 0.0f;
    for (size_t b0 = 0; b0 < nb; b0 += kSlab) {
      const size_t b1 = b0 + kSlab < nb ? b0 + kSlab : nb;
      for (size_t b = b0; b < b1; ++b)
        packed_block(kW, packing, static_cast<const uint8_t*>(W), K, r, b, slab + (b - b0) * wt.type_size);
      for (size_t t = 0; t < n; ++t) {
        float acc = Y[t * ldy + r];
        for (size_t b = b0; b < b1; ++b) acc = step(acc, slab + (b - b0) * wt.type_size, X.q + t * X.stride + b * xb);
        Y[t * ldy + r] = acc;
      }
    }
  }
}

}  // namespace

void add_quant_scalar(Table& t) {
  t.of(DType::Q8_0).qmatmul_packed = qmatmul_packed<step_q8_0, DType::Q8_0>;
  t.of(DType::Q4_0).qmatmul_packed = qmatmul_packed<step_q4_0, DType::Q4_0>;
  t.of(DType::Q5_0).qmatmul_packed = qmatmul_packed<step_q5_0, DType::Q5_0>;
  t.of(DType::IQ4_NL).qmatmul_packed = qmatmul_packed<step_iq4_nl, DType::IQ4_NL>;
  t.of(DType::Q4_1).qmatmul_packed = qmatmul_packed<step_q4_1, DType::Q4_1>;
  t.of(DType::Q5_1).qmatmul_packed = qmatmul_packed<step_q5_1, DType::Q5_1>;
  t.of(DType::Q4_K).qmatmul_packed = qmatmul_packed<step_q4_k, DType::Q4_K>;
  t.of(DType::Q5_K).qmatmul_packed = qmatmul_packed<step_q5_k, DType::Q5_K>;
  t.of(DType::Q6_K).qmatmul_packed = qmatmul_packed<step_q6_k, DType::Q6_K>;
  t.of(DType::Q2_K).qmatmul_packed = qmatmul_packed<step_q2_k, DType::Q2_K>;
  t.of(DType::Q3_K).qmatmul_packed = qmatmul_packed<step_q3_k, DType::Q3_K>;
  t.of(DType::IQ4_XS).qmatmul_packed = qmatmul_packed<step_iq4_xs, DType::IQ4_XS>;
  t.of(DType::Q8_0).quantize_row = quantize_row<DType::Q8_0>;
  t.of(DType::Q8_K).quantize_row = quantize_row<DType::Q8_K>;
  t.of(DType::Q8_0).qmatmul = qmatmul<step_q8_0, DType::Q8_0>;
  t.of(DType::Q4_0).qmatmul = qmatmul<step_q4_0, DType::Q4_0>;
  t.of(DType::Q4_1).qmatmul = qmatmul<step_q4_1, DType::Q4_1>;
  t.of(DType::Q5_0).qmatmul = qmatmul<step_q5_0, DType::Q5_0>;
  t.of(DType::IQ4_NL).qmatmul = qmatmul<step_iq4_nl, DType::IQ4_NL>;
  t.of(DType::Q5_1).qmatmul = qmatmul<step_q5_1, DType::Q5_1>;
  t.of(DType::Q4_K).qmatmul = qmatmul<step_q4_k, DType::Q4_K>;
  t.of(DType::Q6_K).qmatmul = qmatmul<step_q6_k, DType::Q6_K>;
  t.of(DType::Q5_K).qmatmul = qmatmul<step_q5_k, DType::Q5_K>;
  t.of(DType::IQ4_XS).qmatmul = qmatmul<step_iq4_xs, DType::IQ4_XS>;
  t.of(DType::Q2_K).qmatmul = qmatmul<step_q2_k, DType::Q2_K>;
  t.of(DType::Q3_K).qmatmul = qmatmul<step_q3_k, DType::Q3_K>;
}

}  // namespace ember::kernels
