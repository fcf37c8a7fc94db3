// Private to kernels/: the float kernels written once with xsimd, instantiated by
// each ISA file (float_avx2.cpp, float_neon.cpp) with that file's target flags.
//
// `Ops` is the ISA file's small struct of what xsimd does not give portably:
//   using arch = xsimd::<arch>;                       the xsimd architecture
//   static B load_f16(const uint16_t*), load_bf16(...) W weights -> floats (exact)
//   f16_to_f32 / bf16_to_f32 / f32_to_f16 / rope_norm  table functions
//   kGemvRows, kGemmRows, kGemmTokens                  matmul register blocking
//
// Everything is in an anonymous namespace: this header is compiled with different
// target flags in each ISA file, so no inline symbol may be shared (and merged by
// the linker) between them or with the baseline files.
#pragma once
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <type_traits>
#include <xsimd/xsimd.hpp>

#include "kernels/kernels.h"
#include "quant/blocks.h"
#include "quant/fp16.h"

namespace ember::kernels {
namespace {

template <class Ops>
struct FloatKernels {
  using A = typename Ops::arch;
  using B = xsimd::batch<float, A>;
  static constexpr size_t W = B::size;

  static B load(const float* p) { return B::load_unaligned(p); }
  static void store(float* p, const B& v) { v.store_unaligned(p); }
  // The first m (< W) floats of p, the other lanes set to `fill`.
  static B load_part(const float* p, size_t m, float fill = 0.0f) {
    alignas(64) float buf[W];
    for (size_t i = 0; i < W; ++i) buf[i] = i < m ? p[i] : fill;
    return B::load_aligned(buf);
  }
  static void store_part(float* p, const B& v, size_t m) {
    alignas(64) float buf[W];
    v.store_aligned(buf);
    for (size_t i = 0; i < m; ++i) p[i] = buf[i];
  }
  static float hmax(const B& v) {
    alignas(64) float buf[W];
    v.store_aligned(buf);
    float m = buf[0];
    for (size_t i = 1; i < W; ++i) m = buf[i] > m ? buf[i] : m;
    return m;
  }

  // ---- vectors ----------------------------------------------------------------
  // Four independent accumulators (latency hiding), then one, then a zero-padded
  // tail; the padding adds fma(0, 0, acc) = acc.
  static float dot(const float* a, const float* b, size_t n) {
    B s0(0.0f), s1(0.0f), s2(0.0f), s3(0.0f);
    size_t i = 0;
    for (; i + 4 * W <= n; i += 4 * W) {
      s0 = xsimd::fma(load(a + i), load(b + i), s0);
      s1 = xsimd::fma(load(a + i + W), load(b + i + W), s1);
      s2 = xsimd::fma(load(a + i + 2 * W), load(b + i + 2 * W), s2);
      s3 = xsimd::fma(load(a + i + 3 * W), load(b + i + 3 * W), s3);
    }
    for (; i + W <= n; i += W) s0 = xsimd::fma(load(a + i), load(b + i), s0);
    if (i < n) s0 = xsimd::fma(load_part(a + i, n - i), load_part(b + i, n - i), s0);
    return xsimd::hadd((s0 + s1) + (s2 + s3));
  }

  // mul then add (no fma): bitwise equal to the reference.
  static void axpy(float a, const float* x, float* y, size_t n) {
    const B va(a);
    size_t i = 0;
    for (; i + W <= n; i += W) store(y + i, load(y + i) + va * load(x + i));
    for (; i < n; ++i) y[i] += a * x[i];
  }

  static void scale(float* x, float s, size_t n) {
    const B vs(s);
    size_t i = 0;
    for (; i + W <= n; i += W) store(x + i, load(x + i) * vs);
    for (; i < n; ++i) x[i] *= s;
  }

  static void add(float* y, const float* x, size_t n) {
    size_t i = 0;
    for (; i + W <= n; i += W) store(y + i, load(y + i) + load(x + i));
    for (; i < n; ++i) y[i] += x[i];
  }

  static void rmsnorm(float* out, const float* x, const float* w, size_t n, float eps) {
    if (n == 0) return;
    const float ss = dot(x, x, n);
    const float inv = 1.0f / std::sqrt(ss / static_cast<float>(n) + eps);
    const B vinv(inv);
    size_t i = 0;
    if (w) {
      for (; i + W <= n; i += W) store(out + i, load(x + i) * vinv * load(w + i));
      for (; i < n; ++i) out[i] = x[i] * inv * w[i];
    } else {
      for (; i + W <= n; i += W) store(out + i, load(x + i) * vinv);
      for (; i < n; ++i) out[i] = x[i] * inv;
    }
  }

  static float max_of(const float* x, size_t n) {
    B vmax(-std::numeric_limits<float>::infinity());
    size_t i = 0;
    for (; i + W <= n; i += W) vmax = xsimd::max(vmax, load(x + i));
    float mx = hmax(vmax);
    for (; i < n; ++i) mx = x[i] > mx ? x[i] : mx;
    return mx;
  }

  static float exp_sum(float* x, float mx, size_t n) {
    const float kNegInf = -std::numeric_limits<float>::infinity();
    const B vm(mx);
    B s0(0.0f), s1(0.0f);
    size_t i = 0;
    for (; i + 2 * W <= n; i += 2 * W) {
      const B e0 = xsimd::exp(load(x + i) - vm), e1 = xsimd::exp(load(x + i + W) - vm);
      store(x + i, e0);
      store(x + i + W, e1);
      s0 += e0;
      s1 += e1;
    }
    for (; i + W <= n; i += W) {
      const B e = xsimd::exp(load(x + i) - vm);
      store(x + i, e);
      s0 += e;
    }
    if (i < n) {  // padding is -inf: exp(-inf) = 0 adds nothing
      const B e = xsimd::exp(load_part(x + i, n - i, kNegInf) - vm);
      store_part(x + i, e, n - i);
      s0 += e;
    }
    return xsimd::hadd(s0 + s1);
  }

  // The reference's formula per element (an exact conversion, one multiply): the compiler
  // vectorizes the inner loop with the ISA's flags.
  static void q8_0_to_f32(const void* x, float* y, size_t n) {
    const auto* b = static_cast<const BlockQ8_0*>(x);
    for (size_t i = 0; i < n / kQK; ++i, y += kQK) {
      const float d = fp16_to_fp32(b[i].d);
      const int8_t* q = b[i].qs;
      for (int j = 0; j < kQK; ++j) y[j] = static_cast<float>(q[j]) * d;
    }
  }

  static void softmax(float* x, size_t n) {
    if (n == 0) return;
    const float inv = 1.0f / exp_sum(x, max_of(x, n), n);
    scale(x, inv, n);
  }

  static B silu(const B& g) { return g / (B(1.0f) + xsimd::exp(-g)); }
  // 0.5 x (1 + tanh(z)) = x / (1 + exp(-2z)): one exp, cheaper than xsimd::tanh, the
  // same z as the reference's (tests/test_kernels.cpp's GeluMul bounds the difference).
  // z << 0: exp overflows to inf and x / inf gives the reference's signed zero.
  static B gelu(const B& x) {
    const B inner = B(0.7978845608028654f) * (x + B(0.044715f) * x * x * x);
    return x / (B(1.0f) + xsimd::exp(B(-2.0f) * inner));
  }

  static void silu_mul(float* g, const float* u, size_t n) {
    size_t i = 0;
    for (; i + W <= n; i += W) store(g + i, silu(load(g + i)) * load(u + i));
    if (i < n) store_part(g + i, silu(load_part(g + i, n - i)) * load_part(u + i, n - i), n - i);
  }

  static void gelu_mul(float* g, const float* u, size_t n) {
    size_t i = 0;
    for (; i + W <= n; i += W) store(g + i, gelu(load(g + i)) * load(u + i));
    if (i < n) store_part(g + i, gelu(load_part(g + i, n - i)) * load_part(u + i, n - i), n - i);
  }

  static void softcap(float* x, float cap, size_t n) {
    const B c(cap);
    size_t i = 0;
    for (; i + W <= n; i += W) store(x + i, c * xsimd::tanh(load(x + i) / c));
    if (i < n) store_part(x + i, c * xsimd::tanh(load_part(x + i, n - i) / c), n - i);
  }

  static void rope_neox(float* x, size_t n_heads, size_t head_dim, size_t rot_dim, const float* cos,
                        const float* sin) {
    const size_t half = rot_dim / 2;
    for (size_t h = 0; h < n_heads; ++h) {
      float* v0 = x + h * head_dim;
      float* v1 = v0 + half;
      size_t i = 0;
      for (; i + W <= half; i += W) {
        const B a = load(v0 + i), b = load(v1 + i), c = load(cos + i), s = load(sin + i);
        store(v0 + i, a * c - b * s);
        store(v1 + i, a * s + b * c);
      }
      for (; i < half; ++i) {
        const float a = v0[i], b = v1[i];
        v0[i] = a * cos[i] - b * sin[i];
        v1[i] = a * sin[i] + b * cos[i];
      }
    }
  }

  // ---- matmul -------------------------------------------------------------------
  // Weight row loaders: W consecutive weights from element k of a row, as floats.
  struct F32 {
    static B load(const uint8_t* row, size_t k) {
      return B::load_unaligned(reinterpret_cast<const float*>(row) + k);
    }
    static B load_part(const uint8_t* row, size_t k, size_t m) {
      return FloatKernels::load_part(reinterpret_cast<const float*>(row) + k, m);
    }
  };
  template <B (*convert)(const uint16_t*)>
  struct Half {
    static B load(const uint8_t* row, size_t k) {
      return convert(reinterpret_cast<const uint16_t*>(row) + k);
    }
    static B load_part(const uint8_t* row, size_t k, size_t m) {
      uint16_t buf[W] = {};  // zero half/bfloat16 is +0.0f
      std::memcpy(buf, reinterpret_cast<const uint16_t*>(row) + k, m * sizeof(uint16_t));
      return convert(buf);
    }
  };

  // The microkernel: R rows x T tokens, one vector accumulator per output.
  // Every output element, whatever R and T, is computed as
  //   acc = 0; acc = fma(w[k:k+W], x[k:k+W], acc) for k = 0, W, 2W, ...;
  //   acc = fma(w_tail, x_tail, acc) with zero padding; y = haddp's sum of acc (store_sums)
  // so the result never depends on the blocking (the header's contract).
  template <class L, int R, int T>
  static void micro(const uint8_t* w, size_t w_stride, const float* X, size_t ldx, size_t K,
                    float* Y, size_t ldy) {
    B acc[R][T];
#pragma GCC unroll 16
    for (int i = 0; i < R; ++i)
#pragma GCC unroll 16
      for (int j = 0; j < T; ++j) acc[i][j] = B(0.0f);
    size_t k = 0;
    for (; k + W <= K; k += W) {
      B wv[R];
#pragma GCC unroll 16
      for (int i = 0; i < R; ++i) wv[i] = L::load(w + i * w_stride, k);
#pragma GCC unroll 16
      for (int j = 0; j < T; ++j) {
        const B xv = load(X + j * ldx + k);
#pragma GCC unroll 16
        for (int i = 0; i < R; ++i) acc[i][j] = xsimd::fma(wv[i], xv, acc[i][j]);
      }
    }
    // Every loop over acc fully unrolled, so the array lives in registers only.
    if (k < K) {
      const size_t m = K - k;
#pragma GCC unroll 16
      for (int i = 0; i < R; ++i) {
        const B wv = L::load_part(w + i * w_stride, k, m);
#pragma GCC unroll 16
        for (int j = 0; j < T; ++j)
          acc[i][j] = xsimd::fma(wv, load_part(X + j * ldx + k, m), acc[i][j]);
      }
    }
    store_sums<R, T>(acc, Y, ldy);
  }

  // The R x T accumulators' sums to Y (token j's row i at Y[j * ldy + i]), W at a time
  // by xsimd::haddp: lane s of its result is the sum of batch s, by an addition tree that
  // is the same for every lane (AVX: ((x0 + x1) + (x2 + x3)) + ((x4 + x5) + (x6 + x7));
  // NEON: (x0 + x1) + (x2 + x3)), so an output does not depend on the slot it gets (the
  // GEMV and GEMM tiles agree bit for bit), and W sums cost one reduction, not W (for
  // K = 192, W separate horizontal adds cost about a quarter of the tile's FMA time).
  // Slots go token-major: when W divides R, a group is W adjacent rows of one token.
  template <int R, int T>
  static void store_sums(const B (&acc)[R][T], float* Y, size_t ldy) {
    constexpr int N = R * T, kW = static_cast<int>(W);
#pragma GCC unroll 16
    for (int g = 0; g < N; g += kW) {
      B rows[W];
#pragma GCC unroll 16
      for (int s = 0; s < kW; ++s) rows[s] = g + s < N ? acc[(g + s) % R][(g + s) / R] : B(0.0f);
      const B sums = xsimd::haddp(rows);
      if constexpr (R % kW == 0) {
        store(Y + (g / R) * ldy + g % R, sums);
      } else {
        alignas(64) float buf[W];
        sums.store_aligned(buf);
#pragma GCC unroll 16
        for (int s = 0; s < kW; ++s)
          if (g + s < N) Y[((g + s) / R) * ldy + (g + s) % R] = buf[s];
      }
    }
  }

  // Rows [r, r + R) of W against all n tokens, T at a time, then the 0..T-1 left.
  template <class L, int R>
  static void rows_block(const uint8_t* w, size_t w_stride, const float* X, size_t ldx, size_t n,
                         size_t K, float* Y, size_t ldy) {
    constexpr int T = Ops::kGemmTokens;
    static_assert(T >= 1 && T <= 4, "token blocking of 1..4");
    size_t t = 0;
    for (; t + T <= n; t += T) micro<L, R, T>(w, w_stride, X + t * ldx, ldx, K, Y + t * ldy, ldy);
    const float* x = X + t * ldx;
    float* y = Y + t * ldy;
    const size_t rest = n - t;
    if constexpr (T > 3) {
      if (rest == 3) return micro<L, R, 3>(w, w_stride, x, ldx, K, y, ldy);
    }
    if constexpr (T > 2) {
      if (rest == 2) return micro<L, R, 2>(w, w_stride, x, ldx, K, y, ldy);
    }
    if (rest == 1) micro<L, R, 1>(w, w_stride, x, ldx, K, y, ldy);
  }

  template <class L>
  static void matmul(const void* Wv, size_t w_stride, const float* X, size_t ldx, size_t n,
                     size_t K, float* Y, size_t ldy, size_t r0, size_t r1, float* rows_scratch) {
    const uint8_t* w = static_cast<const uint8_t*>(Wv);
    size_t r = r0;
    if (n == 1) {  // GEMV: many rows in flight, one token
      constexpr int R = Ops::kGemvRows;
      for (; r + R <= r1; r += R) micro<L, R, 1>(w + r * w_stride, w_stride, X, ldx, K, Y + r, ldy);
      for (; r < r1; ++r) micro<L, 1, 1>(w + r * w_stride, w_stride, X, ldx, K, Y + r, ldy);
      return;
    }
    // GEMM: a block of R weight rows (in L1/L2) reused by every token. Half rows are
    // converted once per block into the caller's buffer (the same conversion, exact, so
    // the outputs are the on-the-fly ones bit for bit) instead of once per token group.
    constexpr int R = Ops::kGemmRows;
    static_assert(R <= static_cast<int>(kFloatGemmRows), "rows_scratch holds kFloatGemmRows rows");
    float* buf = std::is_same_v<L, F32> ? nullptr : rows_scratch;
    const size_t buf_stride = K * sizeof(float);
    auto block = [&]<int Rb>(size_t r) {
      if constexpr (std::is_same_v<L, F32>) {
        rows_block<F32, Rb>(w + r * w_stride, w_stride, X, ldx, n, K, Y + r, ldy);
      } else {
        if (!buf) return rows_block<L, Rb>(w + r * w_stride, w_stride, X, ldx, n, K, Y + r, ldy);
        for (int i = 0; i < Rb; ++i) {
          const uint8_t* row = w + (r + i) * w_stride;
          float* out = buf + i * K;
          size_t k = 0;
          for (; k + W <= K; k += W) store(out + k, L::load(row, k));
          if (k < K) store_part(out + k, L::load_part(row, k, K - k), K - k);
        }
        rows_block<F32, Rb>(reinterpret_cast<const uint8_t*>(buf), buf_stride, X, ldx, n, K, Y + r,
                            ldy);
      }
    };
    for (; r + R <= r1; r += R) block.template operator()<R>(r);
    for (; r < r1; ++r) block.template operator()<1>(r);
  }

  static Table table(Isa isa, const char* name) {
    Table t;
    t.isa = isa;
    t.name = name;
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
    t.rope_norm = Ops::rope_norm;
    t.rope_neox = rope_neox;
    t.f16_to_f32 = Ops::f16_to_f32;
    t.bf16_to_f32 = Ops::bf16_to_f32;
    t.f32_to_f16 = Ops::f32_to_f16;
    t.q8_0_to_f32 = q8_0_to_f32;
    t.of(DType::F32).matmul = matmul<F32>;
    t.of(DType::F16).matmul = matmul<Half<Ops::load_f16>>;
    t.of(DType::BF16).matmul = matmul<Half<Ops::load_bf16>>;
    return t;
  }
};

}  // namespace
}  // namespace ember::kernels
