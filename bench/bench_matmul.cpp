// Matmul microbenchmarks for TinyLlama-1.1B's weight shapes (rows x cols = outputs x
// inputs): 2048x2048 (attn q/o), 5632x2048 (ffn gate/up), 2048x5632 (ffn down),
// 32000x2048 (output head); n:1 is decode (GEMV), n:32 and n:128 prefill (GEMM);
// and BM_matmul_f32/<isa>/{768x192,192x768}/n:38, the bundled octopus-tiny's ffn GEMMs
// at a 38-token prompt (`ember call`'s time to first token).
//
//   BM_matmul_<type>/<isa>/<rows>x<cols>/n:<n>            the table's kernel alone
//       (matmul_f32/f16/bf16; matmul_q8_0/q4_0/q4_k/q6_k on activations quantized
//       beforehand), one thread, all rows: Table::matmul_* (W, .., 0, rows).
//   BM_matmul/<type>/<isa>/<rows>x<cols>/n:<n>/threads:<t>  the kernels::matmul driver:
//       quantizes the activations (quantized types), splits rows over t pool
//       threads. threads:1 is timed in the thread's CPU time like the kernels (steadier
//       on a shared machine), threads > 1 in wall clock (name suffix /real_time).
//   BM_matmul_packed/<type>/<isa>/<rows>x<cols>/n:<n>  the driver on one thread (as
//       BM_matmul/../threads:1) with the weights repacked into the table's own layout
//       (quant/repack.h; every quantized type the table packs); n:1/threads:<hw>, the
//       GEMV on every hardware thread in wall-clock time (decode's memory-bound case).
//   BM_stream_read/<type>/<rows>x<cols>  reads a buffer of that matrix's packed size
//       with wide loads: the memory-bandwidth ceiling of a GEMV over it.
// Counters, per iteration (common.h):
//   bytes  kernel: W packed + X (n*cols floats, or n quantized rows) + Y (n*rows floats)
//          driver: W packed + X (n*cols floats) + Y (n*rows floats)
//   FLOP   2 * rows * cols * n (one multiply and one add per weight and token; for the
//          quantized types, integer multiply-adds counted the same way)
// The scalar reference is the specification, not a contender: it runs the GEMV shapes
// and one GEMM only. Float types run on the ISAs with float kernels of their own.
//   ember_bench_kernels --benchmark_filter='^BM_matmul_q4_0/.*/n:1$' --benchmark_min_time=0.05
//   ember_bench_kernels --benchmark_filter='^BM_(matmul/q4_k|stream_read/q4_0)/.*2048x2048'
#include <algorithm>
#include <memory>
#include <random>
#include <cstring>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#if defined(__x86_64__)
#include <immintrin.h>
#elif defined(__aarch64__)
#include <arm_neon.h>
#endif

#include "bench/common.h"
#include "core/thread_pool.h"
#include "quant/blocks.h"
#include "quant/quantize.h"
#include "quant/repack.h"
#include "quant/types.h"

namespace ember::bench {
namespace {

struct Shape {
  size_t rows, cols;
};
constexpr Shape kShapes[] = {{2048, 2048}, {5632, 2048}, {2048, 5632}, {32000, 2048}};
constexpr Shape kPromptShapes[] = {{768, 192}, {192, 768}};
constexpr DType kTypes[] = {DType::F32, DType::F16, DType::BF16, DType::Q8_0,
                            DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::IQ4_NL, DType::Q4_K, DType::Q6_K,
                            DType::Q5_K, DType::IQ4_XS, DType::Q2_K, DType::Q3_K};

bool is_float(DType type) { return type == DType::F32 || type == DType::F16 || type == DType::BF16; }

std::string shape_part(Shape s) {
  std::string r = "/";  // appended, not "/" + ...: GCC 12 warns falsely (-Wrestrict) on that
  r += std::to_string(s.rows);
  r += 'x';
  r += std::to_string(s.cols);
  return r;
}

// Weights as a trained model has them: normal with sigma 0.02, converted or quantized
// with the reference quantizers (quantize_tensor). kDistinctRows rows are generated
// and repeated to fill the matrix: quantizing all 65M values of the output head for
// each type would dominate the suite's run time, and the kernels' speed does not depend
// on which values repeat (every row is still a separate stretch of memory to stream).
// Types Ember has no quantizer for (IQ4_NL, IQ4_XS, Q5_K for now) stay zero blocks:
// no kernel's speed depends on the values.
constexpr size_t kDistinctRows = 256;

// Blocks of a type Ember reads but cannot write yet (no reference quantizer: Q2_K,
// Q3_K): random bytes, each 16-bit word given the fp16 exponent of 2^-7 so every fp16
// scale (blocks hold them at even offsets and have even sizes) is a normal number. The
// kernels' speed does not depend on the values.
void random_blocks(uint8_t* w, size_t bytes) {
  std::mt19937 g(7);
  for (size_t i = 0; i + 1 < bytes; i += 2) {
    const auto v = static_cast<uint16_t>((g() & 0x83FF) | 0x2000);
    std::memcpy(w + i, &v, 2);
  }
}

// The packed weights of one (type, shape). Google Benchmark calls a benchmark function
// several times while it sizes the iteration count, so the matrix is kept between
// calls; registration keeps every user of one matrix together, so one cached matrix
// suffices (the output head in f32 alone is 262 MB).
const std::vector<uint8_t>& weights(DType type, Shape s) {
  static DType c_type = DType::F32;
  static Shape c_shape = {0, 0};
  static std::vector<uint8_t> c_w;
  if (type == c_type && s.rows == c_shape.rows && s.cols == c_shape.cols && !c_w.empty()) return c_w;
  c_w.clear();
  c_w.shrink_to_fit();  // free the previous matrix before allocating the next
  const size_t rb = row_bytes(type, s.cols), distinct = std::min(s.rows, kDistinctRows);
  c_w.resize(rb * s.rows);
  if (is_quantize_target(type)) {
    const auto src = random_normal(distinct * s.cols, 0.02f, 7);
    quantize_tensor(type, src.data(), c_w.data(), static_cast<int64_t>(distinct), static_cast<int64_t>(s.cols));
  } else {
    random_blocks(c_w.data(), distinct * rb);
  }
  for (size_t r = distinct; r < s.rows; ++r) std::memcpy(&c_w[r * rb], &c_w[(r % distinct) * rb], rb);
  c_type = type, c_shape = s;
  return c_w;
}

// Activations of n tokens: normal, sigma 1 (the scale rmsnorm gives them).
std::vector<float> activations(size_t n, size_t cols) { return random_normal(n * cols, 1.0f, 11); }

// n activation rows quantized to the weight type's activation type with the
// reference quantizers (every table's quantizer gives the same bytes, kernels.h).
std::vector<uint8_t> quantize_activations(DType weight, const std::vector<float>& x, size_t n, size_t cols) {
  const DType act = kernels::activation_type(weight);
  const size_t rb = row_bytes(act, cols);
  std::vector<uint8_t> q(n * rb);
  for (size_t t = 0; t < n; ++t) {
    const float* row = x.data() + t * cols;
    if (act == DType::Q8_0)
      quantize_row_q8_0_ref(row, reinterpret_cast<BlockQ8_0*>(&q[t * rb]), static_cast<int64_t>(cols));
    else
      quantize_row_q8_K_ref(row, reinterpret_cast<BlockQ8_K*>(&q[t * rb]), static_cast<int64_t>(cols));
  }
  return q;
}

double matmul_flops(Shape s, size_t n) { return 2.0 * double(s.rows) * double(s.cols) * double(n); }

// The table's kernel alone, one thread, every row.
void bench_kernel(benchmark::State& state, const Table& t, DType type, Shape s, size_t n) {
  const std::string kernel = std::string("matmul_") + dtype_name(type);
  const auto x = activations(n, s.cols);
  std::vector<float> y(n * s.rows);
  if (is_float(type)) {
    const kernels::MatmulFn fn = kernels::matmul_fn(t, type);
    if (!fn) return skip_missing(state, t, kernel.c_str());
    const auto& w = weights(type, s);
    const size_t rb = row_bytes(type, s.cols);
    std::vector<float> rows_buf(kernels::kFloatGemmRows * s.cols);
    for (auto _ : state) {
      fn(w.data(), rb, x.data(), s.cols, n, s.cols, y.data(), s.rows, 0, s.rows, rows_buf.data());
      benchmark::ClobberMemory();
    }
    set_counters(state, double(w.size() + (x.size() + y.size()) * sizeof(float)), matmul_flops(s, n));
    return;
  }
  const kernels::QMatmulFn fn = kernels::qmatmul_fn(t, type);
  if (!fn) return skip_missing(state, t, kernel.c_str());
  const auto& w = weights(type, s);
  const size_t rb = row_bytes(type, s.cols);
  const auto xq = quantize_activations(type, x, n, s.cols);
  const size_t xq_stride = xq.size() / n;
  for (auto _ : state) {
    fn(w.data(), rb, xq.data(), xq_stride, n, s.cols, y.data(), s.rows, 0, s.rows);
    benchmark::ClobberMemory();
  }
  set_counters(state, double(w.size() + xq.size() + y.size() * sizeof(float)), matmul_flops(s, n));
}

// kernels::matmul on a pool of `threads` threads with planned scratch, as the engine calls it.
void bench_driver(benchmark::State& state, const Table& t, DType type, Shape s, size_t n, int threads) {
  if (!kernels::supports(t, type)) {
    return skip_missing(state, t, (std::string("kernel for ") + dtype_name(type)).c_str());
  }
  const auto& w = weights(type, s);
  const auto x = activations(n, s.cols);
  std::vector<float> y(n * s.rows);
  std::vector<uint8_t> ws(kernels::matmul_scratch_bytes(type, n, s.cols, threads));
  std::unique_ptr<ThreadPool> pool;
  if (threads > 1) pool = std::make_unique<ThreadPool>(threads);
  const kernels::MatView view{type, w.data(), s.rows, s.cols, 0};
  for (auto _ : state) {
    kernels::matmul(t, view, x.data(), n, y.data(), pool.get(), ws.data());
    benchmark::ClobberMemory();
  }
  set_counters(state, double(w.size() + (x.size() + y.size()) * sizeof(float)), matmul_flops(s, n));
}

// The driver with the weights repacked into t's layout for the type, on `threads` pool
// threads (decode's GEMV at 2 threads is where a type's kernel meets memory bandwidth).
void bench_driver_packed(benchmark::State& state, const Table& t, DType type, Shape s, size_t n, int threads) {
  const Packing p = t.of(type).packing;
  if (p.plain() || !can_pack(type, p, s.rows, s.cols)) {
    return skip_missing(state, t, (std::string("packed kernel for ") + dtype_name(type)).c_str());
  }
  const auto& w = weights(type, s);
  std::vector<uint8_t> packed(packed_bytes(type, p, s.rows, s.cols));
  pack_rows(type, p, w.data(), row_bytes(type, s.cols), s.rows, s.cols, packed.data());
  const auto x = activations(n, s.cols);
  std::vector<float> y(n * s.rows);
  std::vector<uint8_t> ws(kernels::matmul_scratch_bytes(type, n, s.cols, threads));
  std::unique_ptr<ThreadPool> pool;
  if (threads > 1) pool = std::make_unique<ThreadPool>(threads);
  const kernels::MatView view{type, packed.data(), s.rows, s.cols, 0, p};
  for (auto _ : state) {
    kernels::matmul(t, view, x.data(), n, y.data(), pool.get(), ws.data());
    benchmark::ClobberMemory();
  }
  set_counters(state, double(packed.size() + (x.size() + y.size()) * sizeof(float)), matmul_flops(s, n));
}

// The read-bandwidth ceiling: sums 64-bit words with the widest loads of the machine,
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
  set_counters(state, double(bytes), 0);
}

}  // namespace

void register_matmul_benchmarks() {
  const int hw = static_cast<int>(std::thread::hardware_concurrency());
  // Shape and type outermost: every benchmark of one matrix runs before the next is
  // made (weights() keeps one).
  for (Shape s : kShapes) {
    for (DType type : kTypes) {
      const std::string ts = dtype_name(type), sh = shape_part(s);
      for (Isa isa : compiled_isas()) {
        if (is_float(type) && !has_own_float_kernels(isa)) continue;
        const std::string is = isa_part(isa);
        for (size_t n : {size_t{1}, size_t{32}, size_t{128}}) {
          if (isa == Isa::kScalar && n > 1 && !(s.rows == 2048 && s.cols == 2048 && n == 32)) continue;
          register_isa("BM_matmul_" + ts + is + sh + "/n:" + std::to_string(n), isa,
                       [=](auto& st, const Table& t) { bench_kernel(st, t, type, s, n); });
        }
        if (isa == Isa::kScalar) continue;
        if (can_pack(type, Packing{4, 4, false}, 4, 256)) {  // the type has a packed layout
          const std::string packed = "BM_matmul_packed/" + ts + is + sh + "/n:";
          for (size_t n : {size_t{1}, size_t{32}, size_t{128}, size_t{512}})
            register_isa(packed + std::to_string(n), isa,
                         [=](auto& st, const Table& t) { bench_driver_packed(st, t, type, s, n, 1); });
          if (hw > 1)  // decode on every hardware thread, in wall-clock time
            register_isa(packed + "1/threads:" + std::to_string(hw), isa,
                         [=](auto& st, const Table& t) { bench_driver_packed(st, t, type, s, 1, hw); },
                         /*real_time=*/true);
        }
        for (size_t n : {size_t{1}, size_t{32}}) {
          for (int threads : {1, hw}) {
            register_isa("BM_matmul/" + ts + is + sh + "/n:" + std::to_string(n) + "/threads:" +
                             std::to_string(threads),
                         isa, [=](auto& st, const Table& t) { bench_driver(st, t, type, s, n, threads); },
                         /*real_time=*/threads > 1);
            if (hw <= 1) break;  // one hardware thread: no second variant
          }
        }
      }
    }
  }
  // The bundled octopus-tiny (F32, 192 wide, ffn 768) at a 38-token prompt: `ember call`'s
  // time to first token is these GEMMs (q/k/v/o and gate/up at K = 192, down at K = 768).
  for (Shape s : kPromptShapes)
    for (Isa isa : compiled_isas())
      if (isa == Isa::kScalar || has_own_float_kernels(isa))
        register_isa("BM_matmul_f32" + isa_part(isa) + shape_part(s) + "/n:38", isa,
                     [=](auto& st, const Table& t) { bench_kernel(st, t, DType::F32, s, 38); });
  for (DType type : {DType::Q4_0, DType::Q8_0, DType::F16}) {
    for (Shape s : kShapes) {
      const size_t bytes = row_bytes(type, s.cols) * s.rows;
      benchmark::RegisterBenchmark(("BM_stream_read/" + std::string(dtype_name(type)) + shape_part(s)).c_str(),
                                   [bytes](benchmark::State& st) { bench_stream_read(st, bytes); })
          ->Unit(benchmark::kMicrosecond);
    }
  }
}

}  // namespace ember::bench
