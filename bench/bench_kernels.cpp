// Kernel microbenchmarks: main(), and the vector families of kernels::Table (float ops,
// rope, conversions, activation quantizers), one benchmark per (kernel, ISA), sized as
// TinyLlama-1.1B uses them (n_embd 2048, n_ff 5632, 32 heads of 64, vocab 32000):
//   BM_dot/avx2/64   BM_rmsnorm/neon/2048   BM_rope_norm/avx2/32x64
//   BM_quantize_row_q8_k/neon-dotprod/2048
// The matmul families are in bench_matmul.cpp; naming and counters in common.h.
// Flops count one per add, multiply, compare or transcendental call (exp, tanh).
//   ember_bench_kernels --benchmark_filter='^BM_(dot|softmax)/' --benchmark_min_time=0.05
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "bench/common.h"
#include "quant/fp16.h"
#include "quant/types.h"

namespace ember::bench {
namespace {

constexpr double kF = sizeof(float);

// dot: 2n flops (mul, add); reads a and b.
void bench_dot(benchmark::State& state, const Table& t, size_t n) {
  const auto a = random_normal(n, 1, 1), b = random_normal(n, 1, 2);
  for (auto _ : state) benchmark::DoNotOptimize(t.dot(a.data(), b.data(), n));
  set_counters(state, 2 * n * kF, 2.0 * n);
}

// axpy y += a x: 2n flops; reads x and y, writes y. a alternates +-0.5 so y stays
// bounded over millions of iterations.
void bench_axpy(benchmark::State& state, const Table& t, size_t n) {
  const auto x = random_normal(n, 1, 1);
  auto y = random_normal(n, 1, 2);
  float a = 0.5f;
  for (auto _ : state) {
    t.axpy(a, x.data(), y.data(), n);
    a = -a;
    benchmark::ClobberMemory();
  }
  set_counters(state, 3 * n * kF, 2.0 * n);
}

// scale x *= s: n flops; reads and writes x. s alternates 2 and 0.5: exact, bounded.
void bench_scale(benchmark::State& state, const Table& t, size_t n) {
  auto x = random_normal(n, 1, 1);
  float s = 2.0f;
  for (auto _ : state) {
    t.scale(x.data(), s, n);
    s = 1.0f / s;
    benchmark::ClobberMemory();
  }
  set_counters(state, 2 * n * kF, 1.0 * n);
}

// add y += x: n flops; reads x and y, writes y. x alternates with -x: y stays bounded.
void bench_add(benchmark::State& state, const Table& t, size_t n) {
  const auto x = random_normal(n, 1, 1);
  std::vector<float> neg(n);
  for (size_t i = 0; i < n; ++i) neg[i] = -x[i];
  auto y = random_normal(n, 1, 2);
  bool plus = true;
  for (auto _ : state) {
    t.add(y.data(), plus ? x.data() : neg.data(), n);
    plus = !plus;
    benchmark::ClobberMemory();
  }
  set_counters(state, 3 * n * kF, 1.0 * n);
}

// rmsnorm: 4n flops (square-add, then x * inv * w); reads x and w, writes out.
void bench_rmsnorm(benchmark::State& state, const Table& t, size_t n) {
  const auto x = random_normal(n, 1, 1), w = random_normal(n, 0.2f, 2);
  std::vector<float> out(n);
  for (auto _ : state) {
    t.rmsnorm(out.data(), x.data(), w.data(), n, 1e-5f);
    benchmark::ClobberMemory();
  }
  set_counters(state, 3 * n * kF, 4.0 * n);
}

// softmax in place: 5n flops (max, subtract, exp, sum, scale); reads and writes x.
// Its output (values in (0, 1]) is a valid input again, so no refresh is needed.
void bench_softmax(benchmark::State& state, const Table& t, size_t n) {
  auto x = random_normal(n, 3, 1);
  for (auto _ : state) {
    t.softmax(x.data(), n);
    benchmark::ClobberMemory();
  }
  set_counters(state, 2 * n * kF, 5.0 * n);
}

// The GLUs work in place on g and shrink it (|silu(g) u| < |g| for |u| <= 1), so g is
// restored from g0 every kRefresh iterations, before its values approach the
// subnormal range; the copy (n floats from L1/L2 every 16 calls) is timed but costs
// well under 1% of the calls it serves, and is not counted in bytes.
constexpr int kRefresh = 16;
// silu_mul g = g sigmoid(g) u: 5n flops (exp, add, divide, 2 mul); reads g, u, writes g.
// gelu_mul g = 0.5 g (1 + tanh(c (g + 0.044715 g^3))) u: 9n flops (7 mul/add, tanh, mul u).
void bench_glu(benchmark::State& state, const Table& t, bool gelu, size_t n) {
  const auto g0 = random_normal(n, 2, 1), u = random_normal(n, 1, 2);
  auto g = g0;
  auto fn = gelu ? t.gelu_mul : t.silu_mul;
  int i = 0;
  for (auto _ : state) {
    if (++i == kRefresh) {
      std::memcpy(g.data(), g0.data(), n * sizeof(float));
      i = 0;
    }
    fn(g.data(), u.data(), n);
    benchmark::ClobberMemory();
  }
  set_counters(state, 3 * n * kF, (gelu ? 9.0 : 5.0) * n);
}

// softcap x = cap tanh(x / cap): 3n flops; reads and writes x. Repeated application
// shrinks x only slowly (x - x^3 / (3 cap^2)): the inputs stay in tanh's normal range.
void bench_softcap(benchmark::State& state, const Table& t, size_t n) {
  auto x = random_normal(n, 10, 1);
  for (auto _ : state) {
    t.softcap(x.data(), 30.0f, n);
    benchmark::ClobberMemory();
  }
  set_counters(state, 2 * n * kF, 3.0 * n);
}

// rope over heads x head_dim (all dims rotated): 6 flops per rotated pair (4 mul,
// 2 add); reads and writes x, reads cos and sin (head_dim / 2 each). A rotation
// preserves norms, so repeated application keeps x bounded.
void bench_rope(benchmark::State& state, const Table& t, bool neox, size_t heads, size_t head_dim) {
  auto x = random_normal(heads * head_dim, 1, 1);
  std::vector<float> cs(head_dim / 2), sn(head_dim / 2);
  for (size_t i = 0; i < head_dim / 2; ++i) {
    const double angle = 100.0 * std::pow(10000.0, -2.0 * double(i) / double(head_dim));  // position 100
    cs[i] = static_cast<float>(std::cos(angle));
    sn[i] = static_cast<float>(std::sin(angle));
  }
  auto fn = neox ? t.rope_neox : t.rope_norm;
  for (auto _ : state) {
    fn(x.data(), heads, head_dim, head_dim, cs.data(), sn.data());
    benchmark::ClobberMemory();
  }
  set_counters(state, (2.0 * heads * head_dim + head_dim) * kF, 3.0 * heads * head_dim);
}

// Conversions: no flops; reads n 16-bit values and writes n floats, or the reverse.
enum class Conv { kF16ToF32, kBf16ToF32, kF32ToF16 };
void bench_convert(benchmark::State& state, const Table& t, Conv conv, size_t n) {
  const auto f = random_normal(n, 1, 1);
  std::vector<uint16_t> h(n);
  for (size_t i = 0; i < n; ++i) h[i] = conv == Conv::kBf16ToF32 ? fp32_to_bf16(f[i]) : fp32_to_fp16(f[i]);
  std::vector<float> out(n);
  for (auto _ : state) {
    switch (conv) {
      case Conv::kF16ToF32: t.f16_to_f32(h.data(), out.data(), n); break;
      case Conv::kBf16ToF32: t.bf16_to_f32(h.data(), out.data(), n); break;
      case Conv::kF32ToF16: t.f32_to_f16(f.data(), h.data(), n); break;
    }
    benchmark::ClobberMemory();
  }
  set_counters(state, n * (kF + 2), 0);
}

// Activation quantizers: reads K floats, writes row_bytes(type, K); flops not counted
// (a max, a multiply and a rounding per value, plus Q8_K's block sums).
void bench_quantize_row(benchmark::State& state, const Table& t, DType type, size_t K) {
  const kernels::QuantizeRowFn fn = kernels::quantize_row_fn(t, type);
  if (!fn) return skip_missing(state, t, type == DType::Q8_0 ? "quantize_row_q8_0" : "quantize_row_q8_k");
  const auto x = random_normal(K, 1, 1);
  std::vector<uint8_t> q(row_bytes(type, K));
  for (auto _ : state) {
    fn(x.data(), q.data(), K);
    benchmark::ClobberMemory();
  }
  set_counters(state, K * kF + double(q.size()), 0);
}

}  // namespace

void register_vector_benchmarks() {
  for (Isa isa : compiled_isas()) {
    const std::string is = isa_part(isa);
    auto reg = [&](const std::string& kernel, const std::string& size, auto body) {
      register_isa("BM_" + kernel + is + "/" + size, isa, body);
    };
    if (has_own_float_kernels(isa)) {
      // dot and axpy at head_dim (attention: one call per cached position) and n_embd.
      for (size_t n : {size_t{64}, size_t{2048}}) {
        reg("dot", std::to_string(n), [n](auto& s, const Table& t) { bench_dot(s, t, n); });
        reg("axpy", std::to_string(n), [n](auto& s, const Table& t) { bench_axpy(s, t, n); });
      }
      reg("scale", "2048", [](auto& s, const Table& t) { bench_scale(s, t, 2048); });
      reg("add", "2048", [](auto& s, const Table& t) { bench_add(s, t, 2048); });
      reg("rmsnorm", "2048", [](auto& s, const Table& t) { bench_rmsnorm(s, t, 2048); });
      reg("softmax", "1024", [](auto& s, const Table& t) { bench_softmax(s, t, 1024); });  // 1024-token context
      reg("silu_mul", "5632", [](auto& s, const Table& t) { bench_glu(s, t, false, 5632); });
      reg("gelu_mul", "5632", [](auto& s, const Table& t) { bench_glu(s, t, true, 5632); });
      reg("softcap", "32000", [](auto& s, const Table& t) { bench_softcap(s, t, 32000); });  // logits
      reg("rope_norm", "32x64", [](auto& s, const Table& t) { bench_rope(s, t, false, 32, 64); });
      reg("rope_neox", "32x64", [](auto& s, const Table& t) { bench_rope(s, t, true, 32, 64); });
      reg("f16_to_f32", "2048", [](auto& s, const Table& t) { bench_convert(s, t, Conv::kF16ToF32, 2048); });
      reg("bf16_to_f32", "2048", [](auto& s, const Table& t) { bench_convert(s, t, Conv::kBf16ToF32, 2048); });
      reg("f32_to_f16", "2048", [](auto& s, const Table& t) { bench_convert(s, t, Conv::kF32ToF16, 2048); });
    }
    // The activation inputs of the matmuls: n_embd (q/k/v/o, gate/up) and n_ff (down).
    for (size_t K : {size_t{2048}, size_t{5632}}) {
      reg("quantize_row_q8_0", std::to_string(K),
          [K](auto& s, const Table& t) { bench_quantize_row(s, t, DType::Q8_0, K); });
      reg("quantize_row_q8_k", std::to_string(K),
          [K](auto& s, const Table& t) { bench_quantize_row(s, t, DType::Q8_K, K); });
    }
  }
}

}  // namespace ember::bench

int main(int argc, char** argv) {
  // Matmuls first: they are what the suite is mostly run for.
  ember::bench::register_matmul_benchmarks();
  ember::bench::register_vector_benchmarks();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
