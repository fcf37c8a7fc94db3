// Kernel microbenchmarks, one per (kernel, ISA): the ISA is in the name, e.g.
//   matmul_f16/avx2/5632x2048/n:1/threads:1
// Counters: bytes/s (SetBytesProcessed: everything the kernel must read and write
// once) and FLOP/s. An ISA compiled in but missing on this CPU is listed and skipped.
//   ember_bench_kernels --benchmark_filter='matmul_f32/.*/n:1/'
#include <benchmark/benchmark.h>

#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "kernels/kernels.h"
#include "quant/fp16.h"

namespace ember::kernels {
namespace {

std::vector<float> random_floats(size_t n, float lo, float hi, uint32_t seed) {
  std::mt19937 g(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = d(g);
  return v;
}

void counters(benchmark::State& state, double bytes, double flops) {
  state.SetBytesProcessed(static_cast<int64_t>(bytes * static_cast<double>(state.iterations())));
  state.counters["FLOP/s"] =
      benchmark::Counter(flops, benchmark::Counter::kIsIterationInvariantRate);
}

void bench_dot(benchmark::State& state, const Table* t, size_t n) {
  auto a = random_floats(n, -1, 1, 1), b = random_floats(n, -1, 1, 2);
  for (auto _ : state) benchmark::DoNotOptimize(t->dot(a.data(), b.data(), n));
  counters(state, 2.0 * n * sizeof(float), 2.0 * n);
}

void bench_rmsnorm(benchmark::State& state, const Table* t, size_t n) {
  auto x = random_floats(n, -2, 2, 1), w = random_floats(n, 0.5f, 1.5f, 2);
  std::vector<float> out(n);
  for (auto _ : state) {
    t->rmsnorm(out.data(), x.data(), w.data(), n, 1e-5f);
    benchmark::ClobberMemory();
  }
  counters(state, 3.0 * n * sizeof(float), 4.0 * n);
}

void bench_softmax(benchmark::State& state, const Table* t, size_t n) {
  const auto x0 = random_floats(n, -10, 10, 1);
  std::vector<float> x = x0;
  for (auto _ : state) {
    t->softmax(x.data(), n);  // in place: values stay in (0, 1], a fine input again
    benchmark::ClobberMemory();
  }
  counters(state, 2.0 * n * sizeof(float), 4.0 * n);  // sub, exp (counted 1), add, mul
}

void bench_silu_mul(benchmark::State& state, const Table* t, size_t n) {
  const auto g0 = random_floats(n, -6, 6, 1), u = random_floats(n, -1, 1, 2);
  std::vector<float> g = g0;
  for (auto _ : state) {
    state.PauseTiming();  // silu_mul is in place; restart from the same input
    g = g0;
    state.ResumeTiming();
    t->silu_mul(g.data(), u.data(), n);
    benchmark::ClobberMemory();
  }
  counters(state, 3.0 * n * sizeof(float), 5.0 * n);
}

// W [rows][cols] of `type`, X [n][cols], Y [n][rows].
void bench_matmul(benchmark::State& state, const Table* t, DType type, size_t rows, size_t cols,
                  size_t n, int threads) {
  const auto wf = random_floats(rows * cols, -1, 1, 1);
  std::vector<uint8_t> w(row_bytes(type, cols) * rows);
  if (type == DType::F32) {
    std::memcpy(w.data(), wf.data(), w.size());
  } else {
    auto* h = reinterpret_cast<uint16_t*>(w.data());
    for (size_t i = 0; i < wf.size(); ++i)
      h[i] = type == DType::F16 ? fp32_to_fp16(wf[i]) : fp32_to_bf16(wf[i]);
  }
  const auto x = random_floats(n * cols, -1, 1, 2);
  std::vector<float> y(n * rows);
  const MatView view{type, w.data(), rows, cols, row_bytes(type, cols)};
  for (auto _ : state) {
    matmul(*t, view, x.data(), n, y.data(), threads);
    benchmark::ClobberMemory();
  }
  counters(state, double(w.size()) + double(x.size() + y.size()) * sizeof(float),
           2.0 * double(rows) * double(cols) * double(n));
}

// ISAs of this build's architecture, so a CPU lacking one shows it skipped.
std::vector<Isa> compiled_isas() {
  std::vector<Isa> v = {Isa::kScalar};
#if defined(EMBER_HAVE_AVX2)
  v.push_back(Isa::kAvx2);
#endif
#if defined(EMBER_HAVE_NEON)
  v.push_back(Isa::kNeon);
#endif
#if defined(EMBER_HAVE_DOTPROD)
  v.push_back(Isa::kNeonDotprod);
#endif
#if defined(EMBER_HAVE_I8MM)
  v.push_back(Isa::kNeonI8mm);
#endif
  return v;
}

template <class F>
void add(const std::string& name, Isa isa, F body) {
  const Table* t = table_for(isa);
  auto* b = benchmark::RegisterBenchmark(name.c_str(), [t, isa, body](benchmark::State& state) {
    if (!t) {
      state.SkipWithError((std::string("cpu lacks ") + isa_name(isa)).c_str());
      for (auto _ : state) {
      }
      return;
    }
    body(state, t);
  });
  b->Unit(benchmark::kMicrosecond);
  if (name.rfind("matmul", 0) == 0) b->UseRealTime();  // threads: wall time matters
}

void register_all() {
  const int hw = static_cast<int>(std::thread::hardware_concurrency());
  for (Isa isa : compiled_isas()) {
    const std::string is = std::string("/") + isa_name(isa);
    add("dot" + is + "/4096", isa, [](auto& s, const Table* t) { bench_dot(s, t, 4096); });
    add("rmsnorm" + is + "/2048", isa, [](auto& s, const Table* t) { bench_rmsnorm(s, t, 2048); });
    add("softmax" + is + "/2048", isa, [](auto& s, const Table* t) { bench_softmax(s, t, 2048); });
    add("silu_mul" + is + "/5632", isa,
        [](auto& s, const Table* t) { bench_silu_mul(s, t, 5632); });
    for (DType type : {DType::F32, DType::F16}) {
      for (auto [rows, cols] : {std::pair<size_t, size_t>{2048, 2048}, {5632, 2048}}) {
        for (size_t n : {1, 32}) {
          for (int threads : {1, hw}) {
            const std::string name = std::string("matmul_") + dtype_name(type) + is + "/" +
                                     std::to_string(rows) + "x" + std::to_string(cols) +
                                     "/n:" + std::to_string(n) +
                                     "/threads:" + std::to_string(threads);
            add(name, isa,
                [=](auto& s, const Table* t) { bench_matmul(s, t, type, rows, cols, n, threads); });
            if (hw <= 1) break;  // one thread only: no second variant
          }
        }
      }
    }
  }
}

}  // namespace
}  // namespace ember::kernels

int main(int argc, char** argv) {
  ember::kernels::register_all();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
