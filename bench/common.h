// Helpers shared by the kernel microbenchmarks (bench_*.cpp): which ISAs this build
// has, registration with the ISA check, counters and random data.
//
// Naming: BM_<kernel>/<isa>/<size>[/n:<tokens>][/threads:<t>], <kernel> the field of
// kernels::Table (or `matmul` for the kernels::matmul driver), <isa> isa_name().
// Every ISA compiled into the build is registered; one the CPU lacks runs as
// state.SkipWithError("cpu lacks <isa>") so it is listed, visibly skipped.
// Counters (per iteration, turned into rates by Google Benchmark):
//   bytes_per_second  SetBytesProcessed: the bytes the kernel must read and write, each
//                     operand counted once (weights at their packed size), whatever
//                     the caches do with repeated passes.
//   FLOP/s            floating-point (or integer multiply-add) operations, counted per
//                     family in its comment; 2*rows*cols*n for every matmul.
#pragma once
#include <benchmark/benchmark.h>

#include <cstddef>
#include <cstdint>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "kernels/kernels.h"

namespace ember::bench {

using kernels::Isa;
using kernels::Table;

// Every ISA this build compiled a table for, scalar first.
inline std::vector<Isa> compiled_isas() {
  std::vector<Isa> v = {Isa::kScalar};
#if defined(EMBER_HAVE_AVX2)
  v.push_back(Isa::kAvx2);
#endif
#if defined(EMBER_HAVE_AVXVNNI)
  v.push_back(Isa::kAvxVnni);
#endif
#if defined(EMBER_HAVE_AVX512VNNI)
  v.push_back(Isa::kAvx512Vnni);
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

// Whether the ISA's table has float kernels of its own. The dotprod and i8mm tables
// reuse the NEON table's float kernels, the AVX-VNNI and AVX512-VNNI tables the AVX2
// table's (kernels/isa_tables.h), so benchmarking them there would only repeat those
// numbers: float families are not registered for them.
inline bool has_own_float_kernels(Isa isa) {
  return isa != Isa::kNeonDotprod && isa != Isa::kNeonI8mm && isa != Isa::kAvxVnni && isa != Isa::kAvx512Vnni;
}

// Registers `body(state, table)` as benchmark `name` for `isa`: a CPU without the ISA
// gets a skip naming it. real_time: time in wall clock (multi-threaded runs; the
// default, CPU time of the calling thread, is steadier on a shared machine).
template <class F>
void register_isa(const std::string& name, Isa isa, F body, bool real_time = false) {
  auto* b = benchmark::RegisterBenchmark(name.c_str(), [isa, body](benchmark::State& state) {
    const Table* t = kernels::table_for(isa);
    if (!t) {
      state.SkipWithError((std::string("cpu lacks ") + kernels::isa_name(isa)).c_str());
      return;
    }
    body(state, *t);
  });
  b->Unit(benchmark::kMicrosecond);
  if (real_time) b->UseRealTime();
}

// The table lacks this kernel (a nullptr field): skipped, saying which.
inline void skip_missing(benchmark::State& state, const Table& t, const char* kernel) {
  state.SkipWithError((std::string(t.name) + " table has no " + kernel).c_str());
}

// bytes and flops are per iteration; flops == 0: no FLOP/s counter (conversions).
inline void set_counters(benchmark::State& state, double bytes, double flops) {
  state.SetBytesProcessed(static_cast<int64_t>(bytes * static_cast<double>(state.iterations())));
  if (flops > 0)
    state.counters["FLOP/s"] = benchmark::Counter(flops, benchmark::Counter::kIsIterationInvariantRate);
}

// n normally distributed floats (mean 0, standard deviation sigma), reproducible.
inline std::vector<float> random_normal(size_t n, float sigma, uint32_t seed) {
  std::mt19937 g(seed);
  std::normal_distribution<float> d(0.0f, sigma);
  std::vector<float> v(n);
  for (auto& x : v) x = d(g);
  return v;
}

inline std::string isa_part(Isa isa) { return std::string("/") + kernels::isa_name(isa); }

// Defined in bench_kernels.cpp (vector ops, conversions, activation quantizers) and
// bench_matmul.cpp (matmul kernels, the matmul driver, the bandwidth ceiling).
void register_vector_benchmarks();
void register_matmul_benchmarks();

}  // namespace ember::bench
