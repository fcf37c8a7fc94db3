// The reference table: plain loops that are the specification of every kernel.
// Float accumulation in index order, one IEEE operation per written operator
// (the build uses -ffp-contract=off, so nothing here is fused). SIMD tables are
// tested against these functions with tolerances derived in tests/test_kernels.cpp.
#include <cmath>

#include "kernels/isa_tables.h"
#include "quant/blocks.h"
#include "quant/fp16.h"
#include "quant/quantize.h"

namespace ember::kernels {
namespace {

float dot(const float* a, const float* b, size_t n) {
  float s = 0.0f;
  for (size_t i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}

void axpy(float a, const float* x, float* y, size_t n) {
  for (size_t i = 0; i < n; ++i) y[i] += a * x[i];
}

void scale(float* x, float s, size_t n) {
  for (size_t i = 0; i < n; ++i) x[i] *= s;
}

void add(float* y, const float* x, size_t n) {
  for (size_t i = 0; i < n; ++i) y[i] += x[i];
}

// out = x / sqrt(mean(x^2) + eps) * w
void rmsnorm(float* out, const float* x, const float* w, size_t n, float eps) {
  if (n == 0) return;
  float ss = 0.0f;
  for (size_t i = 0; i < n; ++i) ss += x[i] * x[i];
  const float inv = 1.0f / std::sqrt(ss / static_cast<float>(n) + eps);
  if (w) {
    for (size_t i = 0; i < n; ++i) out[i] = x[i] * inv * w[i];
  } else {
    for (size_t i = 0; i < n; ++i) out[i] = x[i] * inv;
  }
}

// x = exp(x - mx), returning the sum (in index order).
float exp_sum(float* x, float mx, size_t n) {
  float sum = 0.0f;
  for (size_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - mx);
    sum += x[i];
  }
  return sum;
}

// x = exp(x - max) / sum exp(x - max). Masked entries may be -inf (they become 0);
// all -inf gives NaN, as the formula does.
void softmax(float* x, size_t n) {
  if (n == 0) return;
  float mx = x[0];
  for (size_t i = 1; i < n; ++i) mx = x[i] > mx ? x[i] : mx;
  const float inv = 1.0f / exp_sum(x, mx, n);
  for (size_t i = 0; i < n; ++i) x[i] *= inv;
}

// silu(g) = g / (1 + exp(-g))
void silu_mul(float* g, const float* u, size_t n) {
  for (size_t i = 0; i < n; ++i) g[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
}

// gelu_tanh(g) = 0.5 g (1 + tanh(sqrt(2/pi) (g + 0.044715 g^3)))
void gelu_mul(float* g, const float* u, size_t n) {
  const float kSqrt2OverPi = 0.7978845608028654f;
  for (size_t i = 0; i < n; ++i) {
    const float x = g[i];
    const float inner = kSqrt2OverPi * (x + 0.044715f * x * x * x);
    g[i] = 0.5f * x * (1.0f + std::tanh(inner)) * u[i];
  }
}

void softcap(float* x, float cap, size_t n) {
  for (size_t i = 0; i < n; ++i) x[i] = cap * std::tanh(x[i] / cap);
}

// Pair (x0, x1) rotated by angle i: (x0 c - x1 s, x0 s + x1 c).
void rope_norm(float* x, size_t n_heads, size_t head_dim, size_t rot_dim, const float* cos,
               const float* sin) {
  for (size_t h = 0; h < n_heads; ++h) {
    float* v = x + h * head_dim;
    for (size_t i = 0; i < rot_dim / 2; ++i) {
      const float x0 = v[2 * i], x1 = v[2 * i + 1];
      v[2 * i] = x0 * cos[i] - x1 * sin[i];
      v[2 * i + 1] = x0 * sin[i] + x1 * cos[i];
    }
  }
}

void rope_neox(float* x, size_t n_heads, size_t head_dim, size_t rot_dim, const float* cos,
               const float* sin) {
  const size_t half = rot_dim / 2;
  for (size_t h = 0; h < n_heads; ++h) {
    float* v = x + h * head_dim;
    for (size_t i = 0; i < half; ++i) {
      const float x0 = v[i], x1 = v[i + half];
      v[i] = x0 * cos[i] - x1 * sin[i];
      v[i + half] = x0 * sin[i] + x1 * cos[i];
    }
  }
}

void f16_to_f32(const uint16_t* x, float* y, size_t n) {
  for (size_t i = 0; i < n; ++i) y[i] = fp16_to_fp32(x[i]);
}

void bf16_to_f32(const uint16_t* x, float* y, size_t n) {
  for (size_t i = 0; i < n; ++i) y[i] = bf16_to_fp32(x[i]);
}

void f32_to_f16(const float* x, uint16_t* y, size_t n) {
  for (size_t i = 0; i < n; ++i) y[i] = fp32_to_fp16(x[i]);
}

// One plain dot per output: row r of W (converted by `load`) against token t of X.
// (No row buffer: the conversion is exact, a buffer would give the same values.)
template <float (*load)(const uint8_t* row, size_t k)>
void matmul(const void* W, size_t w_stride, const float* X, size_t ldx, size_t n, size_t K,
            float* Y, size_t ldy, size_t r0, size_t r1, float* /*rows_scratch*/) {
  const uint8_t* w = static_cast<const uint8_t*>(W);
  for (size_t t = 0; t < n; ++t) {
    for (size_t r = r0; r < r1; ++r) {
      const uint8_t* row = w + r * w_stride;
      const float* x = X + t * ldx;
      float s = 0.0f;
      for (size_t k = 0; k < K; ++k) s += load(row, k) * x[k];
      Y[t * ldy + r] = s;
    }
  }
}

float load_f32(const uint8_t* row, size_t k) { return reinterpret_cast<const float*>(row)[k]; }
float load_f16(const uint8_t* row, size_t k) {
  return fp16_to_fp32(reinterpret_cast<const uint16_t*>(row)[k]);
}
float load_bf16(const uint8_t* row, size_t k) {
  return bf16_to_fp32(reinterpret_cast<const uint16_t*>(row)[k]);
}

Table make_table() {
  Table t;
  t.isa = Isa::kScalar;
  t.name = "scalar";
  t.dot = dot;
  t.axpy = axpy;
  t.scale = scale;
  t.add = add;
  t.rmsnorm = rmsnorm;
  t.softmax = softmax;
  t.exp_sum = exp_sum;
  t.silu_mul = silu_mul;
  t.gelu_mul = gelu_mul;
  t.softcap = softcap;
  t.rope_norm = rope_norm;
  t.rope_neox = rope_neox;
  t.f16_to_f32 = f16_to_f32;
  t.bf16_to_f32 = bf16_to_f32;
  t.f32_to_f16 = f32_to_f16;
  t.q8_0_to_f32 = [](const void* x, float* y, size_t n) {
    dequantize_row_q8_0(static_cast<const BlockQ8_0*>(x), y, static_cast<int64_t>(n));
  };
  t.of(DType::F32).matmul = matmul<load_f32>;
  t.of(DType::F16).matmul = matmul<load_f16>;
  t.of(DType::BF16).matmul = matmul<load_bf16>;
  return t;
}

}  // namespace

const Table& table_scalar() {
  static const Table t = make_table();
  return t;
}

}  // namespace ember::kernels
