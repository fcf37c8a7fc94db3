// The quantized-matmul reference: plain integer loops that mirror the formulas of
// quant/blocks.h and the numerics spelled out in kernels.h. Every SIMD table must
// give these results bit for bit (tests/test_kernels_quant.cpp).
#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/tables.h"
#include "quant/blocks.h"
#include "quant/fp16.h"

namespace ember::kernels {
namespace {

// Blocks are read by memcpy: rows and strides carry no alignment promise.
template <class Block>
Block load(const uint8_t* p) {
  Block b;
  std::memcpy(&b, p, sizeof b);
  return b;
}

// ---- activation quantizers -----------------------------------------------------------

// Q8_0: d = amax / 127, q = round(x / d) computed as round(x * (1 / d)), ties away
// from zero (ggml's quantize_row_q8_0_ref). Writes n codes; returns d.
float quantize_block(const float* x, int8_t* q, int n) {
  float amax = 0.0f;
  for (int i = 0; i < n; ++i) amax = std::max(amax, std::fabs(x[i]));
  const float d = amax / 127.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  for (int i = 0; i < n; ++i) q[i] = static_cast<int8_t>(std::round(x[i] * id));
  return d;
}

void quantize_row_q8_0(const float* x, void* y, size_t K) {
  auto* out = static_cast<uint8_t*>(y);
  for (size_t b = 0; b < K / kQK; ++b) {
    BlockQ8_0 blk;
    blk.d = fp32_to_fp16(quantize_block(x + b * kQK, blk.qs, kQK));
    std::memcpy(out + b * sizeof blk, &blk, sizeof blk);
  }
}

// Q8_K as ggml (and quant/quantize.h's reference) define it: the value of largest
// magnitude (the first one) maps to -127, the rest round half to even.
int nearest_even(float v) {  // |v| < 2^22: adding 1.5 * 2^23 rounds to an integer
  const float t = v + 12582912.0f;
  int32_t bits;
  std::memcpy(&bits, &t, sizeof bits);
  return (bits & 0x007fffff) - 0x00400000;
}

void quantize_row_q8_k(const float* x, void* y, size_t K) {
  auto* out = static_cast<uint8_t*>(y);
  for (size_t b = 0; b < K / kQKK; ++b, x += kQKK) {
    BlockQ8_K blk;
    float amax = 0.0f, max = 0.0f;
    for (int i = 0; i < kQKK; ++i) {
      if (std::fabs(x[i]) > amax) {
        amax = std::fabs(x[i]);
        max = x[i];
      }
    }
    if (amax == 0.0f) {
      std::memset(&blk, 0, sizeof blk);
    } else {
      const float iscale = -127.0f / max;
      for (int i = 0; i < kQKK; ++i)
        blk.qs[i] = static_cast<int8_t>(std::min(127, nearest_even(iscale * x[i])));
      blk.d = 1.0f / iscale;
      for (int j = 0; j < kQKK / 16; ++j) {
        int s = 0;
        for (int i = 0; i < 16; ++i) s += blk.qs[16 * j + i];
        blk.bsums[j] = static_cast<int16_t>(s);
      }
    }
    std::memcpy(out + b * sizeof blk, &blk, sizeof blk);
  }
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

// The 6-bit sub-block scale and min of a Q4_K block (quant/blocks.h).
void q4_k_scale_min(const uint8_t* scales, int s, int* sc, int* m) {
  if (s < 4) {
    *sc = scales[s] & 63;
    *m = scales[s + 4] & 63;
  } else {
    *sc = (scales[s + 4] & 0x0F) | ((scales[s - 4] >> 6) << 4);
    *m = (scales[s + 4] >> 4) | ((scales[s] >> 6) << 4);
  }
}

float step_q4_k(float acc, const uint8_t* wp, const uint8_t* xp) {
  const auto w = load<BlockQ4_K>(wp);
  const auto x = load<BlockQ8_K>(xp);
  int32_t isum = 0, msum = 0;
  for (int s = 0; s < 8; ++s) {
    int sc, m;
    q4_k_scale_min(w.scales, s, &sc, &m);
    // Sub-block s: nibbles (low for even s, high for odd) of qs[32 (s/2) ..].
    const uint8_t* qs = w.qs + 32 * (s / 2);
    int32_t dot = 0;
    for (int i = 0; i < 32; ++i) {
      const int q = s % 2 == 0 ? (qs[i] & 0x0F) : (qs[i] >> 4);
      dot += q * x.qs[32 * s + i];
    }
    isum += sc * dot;
    msum += m * (x.bsums[2 * s] + x.bsums[2 * s + 1]);
  }
  acc = acc + (fp16_to_fp32(w.d) * x.d) * static_cast<float>(isum);
  return acc - (fp16_to_fp32(w.dmin) * x.d) * static_cast<float>(msum);
}

// The 6-bit code of weight i (0..255) of a Q6_K block (quant/blocks.h).
int q6_k_code(const BlockQ6_K& w, int i) {
  const int half = i / 128, j = i % 128, l = j % 32, quarter = j / 32;
  const uint8_t* ql = w.ql + 64 * half;
  const uint8_t* qh = w.qh + 32 * half;
  const int low = quarter == 0   ? ql[l] & 0x0F
                  : quarter == 1 ? ql[l + 32] & 0x0F
                  : quarter == 2 ? ql[l] >> 4
                                 : ql[l + 32] >> 4;
  return low | (((qh[l] >> (2 * quarter)) & 3) << 4);
}

float step_q6_k(float acc, const uint8_t* wp, const uint8_t* xp) {
  const auto w = load<BlockQ6_K>(wp);
  const auto x = load<BlockQ8_K>(xp);
  int32_t isum = 0;
  for (int s = 0; s < 16; ++s) {
    int32_t dot = 0;
    for (int i = 16 * s; i < 16 * s + 16; ++i) dot += (q6_k_code(w, i) - 32) * x.qs[i];
    isum += w.scales[s] * dot;
  }
  return acc + (fp16_to_fp32(w.d) * x.d) * static_cast<float>(isum);
}

// One output per (token, row): blocks in order through `step`.
template <float (*step)(float, const uint8_t*, const uint8_t*), size_t kWBytes, size_t kXBytes,
          size_t kElems>
void qmatmul(const void* W, size_t w_stride, const void* Xq, size_t xq_stride, size_t n, size_t K,
             float* Y, size_t ldy, size_t r0, size_t r1) {
  const auto* w = static_cast<const uint8_t*>(W);
  const auto* xq = static_cast<const uint8_t*>(Xq);
  const size_t nb = K / kElems;
  for (size_t t = 0; t < n; ++t) {
    for (size_t r = r0; r < r1; ++r) {
      float acc = 0.0f;
      for (size_t b = 0; b < nb; ++b)
        acc = step(acc, w + r * w_stride + b * kWBytes, xq + t * xq_stride + b * kXBytes);
      Y[t * ldy + r] = acc;
    }
  }
}

}  // namespace

void add_quant_scalar(Table& t) {
  t.quantize_row_q8_0 = quantize_row_q8_0;
  t.quantize_row_q8_k = quantize_row_q8_k;
  t.matmul_q8_0 = qmatmul<step_q8_0, sizeof(BlockQ8_0), sizeof(BlockQ8_0), kQK>;
  t.matmul_q4_0 = qmatmul<step_q4_0, sizeof(BlockQ4_0), sizeof(BlockQ8_0), kQK>;
  t.matmul_q4_k = qmatmul<step_q4_k, sizeof(BlockQ4_K), sizeof(BlockQ8_K), kQKK>;
  t.matmul_q6_k = qmatmul<step_q6_k, sizeof(BlockQ6_K), sizeof(BlockQ8_K), kQKK>;
}

}  // namespace ember::kernels
