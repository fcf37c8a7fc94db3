// Quantized matmul benchmarks, one per (weight type, ISA, shape, tokens, threads):
//   qmatmul_q4_0/avx2/2048x2048/n:1/threads:1
// TinyLlama-1.1B shapes: 2048x2048 (attention), 5632x2048 (gate/up), 2048x5632 (down),
// 32000x2048 (output head). n:1 is decode (GEMV), n:32 / n:128 prefill (GEMM).
// bytes/s counts the WEIGHT bytes (what decode streams); FLOP/s = 2 rows cols n.
// The timing includes quantizing the activations (matmul() with a workspace).
// stream_read/<bytes> reads a buffer of the same size with wide loads: the bandwidth
// ceiling a GEMV of those bytes can reach (L3-resident below 32 MiB on the dev box).
//   ember_bench_kernels --benchmark_filter='qmatmul_q4_0/.*/n:1/threads:1|stream_read'
#include <benchmark/benchmark.h>

#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#if defined(__x86_64__)
#include <immintrin.h>
#elif defined(__aarch64__)
#include <arm_neon.h>
#endif

#include "kernels/kernels.h"
#include "quant/blocks.h"
#include "quant/fp16.h"

namespace ember::kernels {
namespace {

// Random code bytes (xorshift: 50 MB in well under a second), then each block's scales
// set to small fp16 values so the float side sees realistic magnitudes.
std::vector<uint8_t> random_weights(DType type, size_t rows, size_t cols) {
  const size_t bytes = row_bytes(type, cols) * rows;
  std::vector<uint8_t> w(bytes);
  uint64_t s = 0x9E3779B97F4A7C15ull;
  for (size_t i = 0; i + 8 <= bytes; i += 8) {
    s ^= s << 13, s ^= s >> 7, s ^= s << 17;
    std::memcpy(&w[i], &s, 8);
  }
  const DTypeInfo info = dtype_info(type);
  const uint16_t d = fp32_to_fp16(0.01f);
  size_t d_off = 0;
  if (type == DType::Q6_K) d_off = offsetof(BlockQ6_K, d);
  for (size_t b = 0; b < bytes / info.type_size; ++b) {
    uint8_t* blk = w.data() + b * info.type_size;
    std::memcpy(blk + d_off, &d, 2);
    if (type == DType::Q4_K) std::memcpy(blk + 2, &d, 2);  // dmin
  }
  return w;
}

std::vector<float> random_floats(size_t n, uint32_t seed) {
  std::mt19937 g(seed);
  std::uniform_real_distribution<float> d(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = d(g);
  return v;
}

void bench_qmatmul(benchmark::State& state, const Table* t, DType type, size_t rows, size_t cols,
                   size_t n, int threads) {
  const auto w = random_weights(type, rows, cols);
  const auto x = random_floats(n * cols, 2);
  std::vector<float> y(n * rows);
  std::vector<uint8_t> ws(matmul_workspace_bytes(type, n, cols));
  const MatView view{type, w.data(), rows, cols, 0};
  for (auto _ : state) {
    matmul(*t, view, x.data(), n, y.data(), threads, ws.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(double(w.size()) * double(state.iterations())));
  state.counters["FLOP/s"] = benchmark::Counter(2.0 * double(rows) * double(cols) * double(n),
                                                benchmark::Counter::kIsIterationInvariantRate);
}

void bench_quantize(benchmark::State& state, const Table* t, DType act, size_t K) {
  const auto x = random_floats(K, 3);
  std::vector<uint8_t> q(row_bytes(act, K));
  const QuantizeRowFn fn = quantize_row_fn(*t, act);
  for (auto _ : state) {
    fn(x.data(), q.data(), K);
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(double(K) * 4 * double(state.iterations())));
}

// The read-bandwidth ceiling: sum 64-bit words with the widest loads of the machine,
// four independent accumulators.
#if defined(__x86_64__)
__attribute__((target("avx2"))) uint64_t read_all_avx2(const uint8_t* p, size_t bytes) {
  __m256i a = _mm256_setzero_si256(), b = a, c = a, d = a;
  for (size_t i = 0; i + 128 <= bytes; i += 128) {
    a = _mm256_add_epi64(a, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i)));
    b = _mm256_add_epi64(b, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i + 32)));
    c = _mm256_add_epi64(c, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i + 64)));
    d = _mm256_add_epi64(d, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i + 96)));
  }
  const __m256i s = _mm256_add_epi64(_mm256_add_epi64(a, b), _mm256_add_epi64(c, d));
  alignas(32) uint64_t v[4];
  _mm256_store_si256(reinterpret_cast<__m256i*>(v), s);
  return v[0] + v[1] + v[2] + v[3];
}
#endif
uint64_t read_all(const uint8_t* p, size_t bytes) {
#if defined(__x86_64__)
  if (__builtin_cpu_supports("avx2")) return read_all_avx2(p, bytes);
#endif
#if defined(__aarch64__)
  uint64x2_t a = vdupq_n_u64(0), b = a, c = a, d = a;
  for (size_t i = 0; i + 64 <= bytes; i += 64) {
    a = vaddq_u64(a, vreinterpretq_u64_u8(vld1q_u8(p + i)));
    b = vaddq_u64(b, vreinterpretq_u64_u8(vld1q_u8(p + i + 16)));
    c = vaddq_u64(c, vreinterpretq_u64_u8(vld1q_u8(p + i + 32)));
    d = vaddq_u64(d, vreinterpretq_u64_u8(vld1q_u8(p + i + 48)));
  }
  const uint64x2_t s = vaddq_u64(vaddq_u64(a, b), vaddq_u64(c, d));
  return vgetq_lane_u64(s, 0) + vgetq_lane_u64(s, 1);
#else
  uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  for (size_t i = 0; i + 32 <= bytes; i += 32) {
    uint64_t v[4];
    std::memcpy(v, p + i, 32);
    s0 += v[0], s1 += v[1], s2 += v[2], s3 += v[3];
  }
  return s0 + s1 + s2 + s3;
#endif
}

void bench_stream_read(benchmark::State& state, size_t bytes) {
  std::vector<uint8_t> buf(bytes, 1);
  for (auto _ : state) benchmark::DoNotOptimize(read_all(buf.data(), bytes));
  state.SetBytesProcessed(static_cast<int64_t>(double(bytes) * double(state.iterations())));
}

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

// Single-threaded runs are timed in CPU time (robust on a shared machine); runs with
// threads in wall time.
template <class F>
void add(const std::string& name, Isa isa, F body, bool real_time = false) {
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
  if (real_time) b->UseRealTime();
}

bool register_quant() {
  const int hw = static_cast<int>(std::thread::hardware_concurrency());
  const std::pair<size_t, size_t> shapes[] = {
      {2048, 2048}, {5632, 2048}, {2048, 5632}, {32000, 2048}};
  for (Isa isa : compiled_isas()) {
    const std::string is = std::string("/") + isa_name(isa);
    for (DType act : {DType::Q8_0, DType::Q8_K})
      add(std::string("quantize_row_") + dtype_name(act) + is + "/2048", isa,
          [act](auto& s, const Table* t) { bench_quantize(s, t, act, 2048); });
    for (DType type : {DType::Q4_0, DType::Q8_0, DType::Q4_K, DType::Q6_K}) {
      for (auto [rows, cols] : shapes) {
        for (size_t n : {1, 32, 128}) {
          // The scalar reference is the spec, not a contender: decode shapes and one GEMM.
          if (isa == Isa::kScalar && n > 1 && !(rows == 2048 && cols == 2048 && n == 32)) continue;
          for (int threads : {1, hw}) {
            const std::string name = std::string("qmatmul_") + dtype_name(type) + is + "/" +
                                     std::to_string(rows) + "x" + std::to_string(cols) +
                                     "/n:" + std::to_string(n) +
                                     "/threads:" + std::to_string(threads);
            add(
                name, isa,
                [=](auto& s, const Table* t) { bench_qmatmul(s, t, type, rows, cols, n, threads); },
                threads > 1);
            if (hw <= 1) break;
          }
        }
      }
    }
  }
  // Bandwidth ceilings for the GEMV shapes: Q4_0 and Q8_0 byte counts.
  for (DType type : {DType::Q4_0, DType::Q8_0})
    for (auto [rows, cols] : shapes) {
      const size_t bytes = row_bytes(type, cols) * rows;
      auto* b = benchmark::RegisterBenchmark(
          ("stream_read/" + std::string(dtype_name(type)) + "/" + std::to_string(rows) + "x" +
           std::to_string(cols))
              .c_str(),
          [bytes](benchmark::State& s) { bench_stream_read(s, bytes); });
      b->Unit(benchmark::kMicrosecond);
    }
  return true;
}

// Registered before main() (bench_kernels.cpp's) runs the suite.
[[maybe_unused]] const bool registered = register_quant();

}  // namespace
}  // namespace ember::kernels
