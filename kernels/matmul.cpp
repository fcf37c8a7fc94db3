// matmul(): W's rows cut into chunks, chunks handed to the threads of the caller's
// pool (core/thread_pool.h) one at a time. The table's kernels compute each output
// identically for any row range (kernels.h), so the result is bitwise the same for 1
// thread or 64 and whatever the chunk size. Quantized weights: the activations are
// quantized first (rows in parallel for a batch, on the caller for a few tokens; the
// quantizers are deterministic per row), then the chunks run as for float weights.
// Every kernel is looked up in the table by the weight type's row (quant/types.h).
#include <cassert>
#include <cstring>

#include "core/thread_pool.h"
#include "kernels/kernels.h"
#include "quant/blocks.h"
#include "quant/fp16.h"

namespace ember::kernels {
namespace {

// Chunks are multiples of 16 rows (every kernel's row blocking: 16 or 8 GEMV, 4 GEMM),
// about kChunksPerThread per thread: enough to rebalance when one core is slower (a
// little core, another process), few enough that each thread streams long runs of
// consecutive rows, which the GEMV kernels prefetch one row group ahead.
constexpr size_t kRowAlign = 16;
constexpr size_t kChunksPerThread = 4;
// Below this many multiply-adds a parallel region costs more than it saves.
constexpr size_t kMinParallelMacs = size_t{1} << 16;
// Fewer activation rows than this are quantized on the calling thread.
constexpr size_t kMinParallelRows = 8;
// Scratch regions start on a cache line.
constexpr size_t kAlign = 64;

size_t round_up(size_t v, size_t a) { return (v + a - 1) / a * a; }

// The pool to split a matmul over, or nullptr for the calling thread alone.
ThreadPool* pool_for(ThreadPool* pool, size_t rows, size_t macs) {
  if (!pool || pool->n_threads() <= 1 || rows <= kRowAlign || macs < kMinParallelMacs) return nullptr;
  return pool;
}

size_t chunk_rows(size_t rows, int n_threads) {
  const size_t want = rows / (static_cast<size_t>(n_threads) * kChunksPerThread);
  return want <= kRowAlign ? kRowAlign : round_up(want, kRowAlign);
}

// fn(r0, r1, tid) over W's rows: in chunks on the pool, or all on the caller (tid 0).
template <class F>
void over_rows(ThreadPool* pool, size_t rows, F&& fn) {
  if (!pool) return fn(size_t{0}, rows, 0);
  const size_t chunk = chunk_rows(rows, pool->n_threads());
  const size_t n_chunks = (rows + chunk - 1) / chunk;
  pool->ParallelFor(n_chunks, [&](size_t c, int tid) {
    const size_t r0 = c * chunk;
    fn(r0, r0 + chunk < rows ? r0 + chunk : rows, tid);
  });
}

// Bytes of one thread's converted-rows buffer for a float GEMM with K columns.
size_t float_rows_bytes(size_t K) { return round_up(kFloatGemmRows * K * sizeof(float), kAlign); }

void float_matmul(MatmulFn fn, const MatView& W, size_t stride, const float* X, size_t n, float* Y,
                  ThreadPool* pool, void* scratch) {
  const size_t K = W.cols;
  // Half weights batched: each thread converts its row blocks into its own region.
  const bool rows_buf = scratch && n > 1 && W.type != DType::F32;
  auto* base = static_cast<uint8_t*>(scratch);
  over_rows(pool, W.rows, [&](size_t r0, size_t r1, int tid) {
    float* buf = rows_buf ? reinterpret_cast<float*>(base + static_cast<size_t>(tid) * float_rows_bytes(K))
                          : nullptr;
    fn(W.data, stride, X, K, n, K, Y, W.rows, r0, r1, buf);
  });
}

// Bytes after the quantized activations for the packed kernels' per-block scales and
// code sums (Q8_0 activations), from a cache-line boundary.
size_t packed_side_bytes(DType act, size_t n, size_t K) {
  if (act != DType::Q8_0) return 0;
  return kAlign + n * (K / kQK) * (sizeof(float) + sizeof(int32_t));
}

// Each Q8_0 activation block's scale as a float and the sum of its codes, stored after
// the n quantized rows (exact: both are what the kernels would compute per block).
// Q8_K blocks carry their float d and bsums already: the rows alone.
PackedActs packed_acts(DType act, uint8_t* xq, size_t xq_stride, size_t n, size_t K, ThreadPool* pool) {
  PackedActs a;
  a.q = xq;
  a.stride = xq_stride;
  if (act != DType::Q8_0) {
    a.nb = K / dtype_info(act).block_size;
    return a;
  }
  a.nb = K / kQK;
  auto* side = reinterpret_cast<uint8_t*>(round_up(reinterpret_cast<uintptr_t>(xq + n * xq_stride), kAlign));
  auto* d = reinterpret_cast<float*>(side);
  auto* sums = reinterpret_cast<int32_t*>(side + n * a.nb * sizeof(float));
  auto row = [&](size_t t, int) {
    for (size_t b = 0; b < a.nb; ++b) {
      BlockQ8_0 blk;
      std::memcpy(&blk, xq + t * xq_stride + b * sizeof blk, sizeof blk);
      int32_t s = 0;
      for (int i = 0; i < kQK; ++i) s += blk.qs[i];
      d[t * a.nb + b] = fp16_to_fp32(blk.d);
      sums[t * a.nb + b] = s;
    }
  };
  if (!pool || n < kMinParallelRows) {
    for (size_t t = 0; t < n; ++t) row(t, 0);
  } else {
    pool->ParallelFor(n, row);
  }
  a.d = d;
  a.sums = sums;
  return a;
}

void quantized_matmul(const Table& t, const MatView& W, size_t stride, const float* X, size_t n,
                      float* Y, ThreadPool* pool, void* scratch) {
  const size_t K = W.cols;
  const DType act = activation_type(W.type);
  const QMatmulFn qfn = qmatmul_fn(t, W.type);
  const QuantizeRowFn quantize = quantize_row_fn(t, act);
  const size_t xq_stride = row_bytes(act, K);
  assert(scratch && xq_stride != 0 && "matmul: quantized weights need scratch and whole blocks");
  if (!qfn || !quantize || !scratch || xq_stride == 0) return;
  uint8_t* xq = static_cast<uint8_t*>(scratch);
  // A few rows (decode) are quicker to quantize here than to hand out.
  if (!pool || n < kMinParallelRows) {
    for (size_t i = 0; i < n; ++i) quantize(X + i * K, xq + i * xq_stride, K);
  } else {
    pool->ParallelFor(n, [&](size_t i, int) { quantize(X + i * K, xq + i * xq_stride, K); });
  }
  if (W.packing.plain()) {
    over_rows(pool, W.rows, [&](size_t r0, size_t r1, int) {
      qfn(W.data, stride, xq, xq_stride, n, K, Y, W.rows, r0, r1);
    });
    return;
  }
  const PackedActs acts = packed_acts(act, xq, xq_stride, n, K, pool);
  const PackedQMatmulFn pfn = packed_fn(t, W);
  over_rows(pool, W.rows, [&](size_t r0, size_t r1, int) { pfn(W.data, W.packing, acts, n, K, Y, W.rows, r0, r1); });
}

}  // namespace

DType activation_type(DType weight) { return dtype_info(weight).vec_dot_type; }

MatmulFn matmul_fn(const Table& t, DType weight) {
  return activation_type(weight) == DType::F32 ? t.of(weight).matmul : nullptr;
}

QMatmulFn qmatmul_fn(const Table& t, DType weight) {
  return activation_type(weight) != DType::F32 ? t.of(weight).qmatmul : nullptr;
}

QuantizeRowFn quantize_row_fn(const Table& t, DType activation) { return t.of(activation).quantize_row; }

PackedQMatmulFn packed_fn(const Table& t, const MatView& W) {
  const TypeKernels& k = t.of(W.type);
  return k.qmatmul_packed && k.packing == W.packing ? k.qmatmul_packed : reference().of(W.type).qmatmul_packed;
}

bool supports(const Table& t, DType type) {
  if (!dtype_info(type).is_weight) return false;
  if (matmul_fn(t, type)) return true;
  return qmatmul_fn(t, type) && quantize_row_fn(t, activation_type(type));
}

size_t matmul_scratch_bytes(DType w, size_t n, size_t K, int n_threads) {
  const DType a = activation_type(w);
  if (a != DType::F32) return n * row_bytes(a, K) + packed_side_bytes(a, n, K);
  if (w == DType::F32 || n <= 1) return 0;
  return static_cast<size_t>(n_threads > 1 ? n_threads : 1) * float_rows_bytes(K) + kAlign;
}

void matmul(const Table& t, const MatView& W, const float* X, size_t n, float* Y, ThreadPool* pool,
            void* scratch) {
  assert(supports(t, W.type) && "matmul: weight type not supported by this table");
  if (n == 0 || W.rows == 0) return;
  const size_t stride = W.row_stride ? W.row_stride : row_bytes(W.type, W.cols);
  pool = pool_for(pool, W.rows, W.rows * W.cols * n);
  if (const MatmulFn fn = matmul_fn(t, W.type)) {
    // The converted-rows regions start on a cache line: align the base.
    const uintptr_t p = reinterpret_cast<uintptr_t>(scratch);
    void* aligned = scratch ? reinterpret_cast<void*>(round_up(p, kAlign)) : nullptr;
    return float_matmul(fn, W, stride, X, n, Y, pool, aligned);
  }
  quantized_matmul(t, W, stride, X, n, Y, pool, scratch);
}

}  // namespace ember::kernels
