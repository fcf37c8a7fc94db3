// Reference dequantizers and unpackers of the super-block types added with llama.cpp's
// file types: Q2_K, Q3_K, Q5_K, IQ4_XS (layouts in quant/blocks.h; their quantizers are
// in quant/quantize_k.cpp). They follow ggml's dequantize_row_* operation for operation (float
// products in the same order, -ffp-contract=off), so a file dequantizes to exactly the
// floats llama.cpp computes with; the golden logits of ../shared/models were made on
// those floats.
#include <cassert>

#include "quant/fp16.h"
#include "quant/quantize.h"

namespace ember {

// ---- Q2_K ---------------------------------------------------------------------------

void unpack_q2_K(const uint8_t qs[kQKK / 4], uint8_t q[kQKK]) {
  for (int h = 0; h < 2; ++h)
    for (int j = 0; j < 4; ++j)
      for (int l = 0; l < 32; ++l) q[128 * h + 32 * j + l] = (qs[32 * h + l] >> (2 * j)) & 3;
}

void dequantize_row_q2_K(const BlockQ2_K* x, float* y, int64_t k) {
  assert(k % kQKK == 0);
  for (int64_t b = 0; b < k / kQKK; ++b, y += kQKK) {
    const float d = fp16_to_fp32(x[b].d), dmin = fp16_to_fp32(x[b].dmin);
    uint8_t q[kQKK];
    unpack_q2_K(x[b].qs, q);
    for (int s = 0; s < kQKK / 16; ++s) {
      const float dl = d * (x[b].scales[s] & 0xF), ml = dmin * (x[b].scales[s] >> 4);
      for (int l = 0; l < 16; ++l) y[16 * s + l] = dl * q[16 * s + l] - ml;
    }
  }
}

// ---- Q3_K ---------------------------------------------------------------------------

void unpack_scales_q3_K(const uint8_t scales[12], int8_t sc[16]) {
  for (int s = 0; s < 16; ++s) {
    const int low = s < 8 ? scales[s] & 0xF : scales[s - 8] >> 4;
    const int high = (scales[8 + s % 4] >> (2 * (s / 4))) & 3;
    sc[s] = static_cast<int8_t>((low | (high << 4)) - 32);
  }
}

// Signed codes in [-4, 3]: the two low bits minus 4 unless the high bit is set.
void unpack_q3_K(const BlockQ3_K& b, int8_t q[kQKK]) {
  uint8_t low[kQKK];
  unpack_q2_K(b.qs, low);
  for (int i = 0; i < kQKK; ++i) {
    const bool hbit = (b.hmask[i % 32] >> (i / 32)) & 1;
    q[i] = static_cast<int8_t>(low[i] - (hbit ? 0 : 4));
  }
}

void dequantize_row_q3_K(const BlockQ3_K* x, float* y, int64_t k) {
  assert(k % kQKK == 0);
  for (int64_t b = 0; b < k / kQKK; ++b, y += kQKK) {
    const float d = fp16_to_fp32(x[b].d);
    int8_t sc[16], q[kQKK];
    unpack_scales_q3_K(x[b].scales, sc);
    unpack_q3_K(x[b], q);
    for (int s = 0; s < 16; ++s) {
      const float dl = d * sc[s];
      for (int l = 0; l < 16; ++l) y[16 * s + l] = dl * q[16 * s + l];
    }
  }
}

// ---- Q5_K ---------------------------------------------------------------------------

void unpack_q5_K(const BlockQ5_K& b, uint8_t q[kQKK]) {
  for (int c = 0; c < kQKK / 64; ++c)
    for (int l = 0; l < 32; ++l) {
      const uint8_t v = b.qs[32 * c + l], h = b.qh[l];
      q[64 * c + l] = static_cast<uint8_t>((v & 0xF) | (((h >> (2 * c)) & 1) << 4));
      q[64 * c + 32 + l] = static_cast<uint8_t>((v >> 4) | (((h >> (2 * c + 1)) & 1) << 4));
    }
}

void dequantize_row_q5_K(const BlockQ5_K* x, float* y, int64_t k) {
  assert(k % kQKK == 0);
  for (int64_t b = 0; b < k / kQKK; ++b, y += kQKK) {
    const float d = fp16_to_fp32(x[b].d), dmin = fp16_to_fp32(x[b].dmin);
    uint8_t q[kQKK];
    unpack_q5_K(x[b], q);
    for (int s = 0; s < 8; ++s) {
      uint8_t sc, m;
      unpack_scale_min_q4_K(s, x[b].scales, &sc, &m);
      const float d1 = d * sc, m1 = dmin * m;
      for (int l = 0; l < 32; ++l) y[32 * s + l] = d1 * q[32 * s + l] - m1;
    }
  }
}

// ---- IQ4_XS -------------------------------------------------------------------------

int iq4_xs_scale(const BlockIQ4_XS& b, int s) {
  const int low = (b.scales_l[s / 2] >> (4 * (s % 2))) & 0xF;
  const int high = (b.scales_h >> (2 * s)) & 3;
  return (low | (high << 4)) - 32;
}

void dequantize_row_iq4_xs(const BlockIQ4_XS* x, float* y, int64_t k) {
  assert(k % kQKK == 0);
  for (int64_t b = 0; b < k / kQKK; ++b) {
    const float d = fp16_to_fp32(x[b].d);
    for (int s = 0; s < kQKK / 32; ++s, y += 32) {
      const float dl = d * iq4_xs_scale(x[b], s);
      const uint8_t* qs = x[b].qs + 16 * s;
      for (int j = 0; j < 16; ++j) {
        y[j] = dl * kIq4nlValues[qs[j] & 0xF];
        y[j + 16] = dl * kIq4nlValues[qs[j] >> 4];
      }
    }
  }
}

}  // namespace ember
