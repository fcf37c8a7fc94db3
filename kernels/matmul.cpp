// matmul(): W's rows cut into chunks, chunks handed to the threads of the calling
// thread's pool (core/thread_pool.h) one at a time. The table's kernels compute each
// output identically for any row range (kernels.h), so the result is bitwise the same
// for 1 thread or 64 and whatever the chunk size. Quantized weights: the activations are quantized first (rows in
// parallel for a batch, on the caller for a few tokens; the quantizers are
// deterministic per row), then the chunks run as for float weights.
#include <cassert>
#include <cstdlib>

#include "core/thread_pool.h"
#include "kernels/kernels.h"

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

// Workspace for callers that pass none: one per calling thread, grown, never shrunk.
struct Workspace {
  void* p = nullptr;
  size_t cap = 0;
  ~Workspace() { std::free(p); }
  void* get(size_t bytes) {
    if (bytes > cap) {
      std::free(p);
      p = std::malloc(bytes);
      cap = p ? bytes : 0;
    }
    return p;
  }
};
thread_local Workspace t_workspace;

// The pool to split a matmul over, or nullptr for the calling thread alone.
ThreadPool* pool_for(int n_threads, size_t rows, size_t macs) {
  if (n_threads <= 1 || rows <= kRowAlign || macs < kMinParallelMacs) return nullptr;
  return ThreadPool::ForThisThread(n_threads);
}

size_t chunk_rows(size_t rows, int n_threads) {
  const size_t want = rows / (static_cast<size_t>(n_threads) * kChunksPerThread);
  return want <= kRowAlign ? kRowAlign : (want + kRowAlign - 1) / kRowAlign * kRowAlign;
}

}  // namespace

MatmulFn matmul_fn(const Table& t, DType type) {
  switch (type) {
    case DType::F32: return t.matmul_f32;
    case DType::F16: return t.matmul_f16;
    case DType::BF16: return t.matmul_bf16;
    default: return nullptr;
  }
}

DType activation_type(DType weight) {
  switch (weight) {
    case DType::Q8_0:
    case DType::Q4_0: return DType::Q8_0;
    case DType::Q4_K:
    case DType::Q6_K: return DType::Q8_K;
    default: return DType::F32;
  }
}

QuantizeRowFn quantize_row_fn(const Table& t, DType activation) {
  switch (activation) {
    case DType::Q8_0: return t.quantize_row_q8_0;
    case DType::Q8_K: return t.quantize_row_q8_k;
    default: return nullptr;
  }
}

QMatmulFn qmatmul_fn(const Table& t, DType weight) {
  switch (weight) {
    case DType::Q8_0: return t.matmul_q8_0;
    case DType::Q4_0: return t.matmul_q4_0;
    case DType::Q4_K: return t.matmul_q4_k;
    case DType::Q6_K: return t.matmul_q6_k;
    default: return nullptr;
  }
}

bool supports(const Table& t, DType type) {
  if (matmul_fn(t, type)) return true;
  return qmatmul_fn(t, type) && quantize_row_fn(t, activation_type(type));
}

size_t matmul_workspace_bytes(DType w, size_t n, size_t K) {
  const DType a = activation_type(w);
  return a == DType::F32 ? 0 : n * row_bytes(a, K);
}

void matmul(const Table& t, const MatView& W, const float* X, size_t n, float* Y, int n_threads,
            void* workspace) {
  assert(supports(t, W.type) && "matmul: weight type not supported by this table");
  if (n == 0 || W.rows == 0) return;
  const size_t rows = W.rows, K = W.cols;
  const size_t stride = W.row_stride ? W.row_stride : row_bytes(W.type, K);
  ThreadPool* pool = pool_for(n_threads, rows, rows * K * n);
  const size_t chunk = pool ? chunk_rows(rows, pool->n_threads()) : rows;
  const size_t n_chunks = (rows + chunk - 1) / chunk;
  // Chunk c covers rows [c*chunk, min(rows, (c+1)*chunk)).
  auto chunk_end = [&](size_t r0) { return r0 + chunk < rows ? r0 + chunk : rows; };

  if (const MatmulFn fn = matmul_fn(t, W.type)) {
    if (!pool) return fn(W.data, stride, X, K, n, K, Y, rows, 0, rows);
    pool->ParallelFor(n_chunks, [&](size_t c, int) {
      const size_t r0 = c * chunk;
      fn(W.data, stride, X, K, n, K, Y, rows, r0, chunk_end(r0));
    });
    return;
  }

  const QMatmulFn qfn = qmatmul_fn(t, W.type);
  const QuantizeRowFn quantize = quantize_row_fn(t, activation_type(W.type));
  if (!qfn || !quantize) return;
  const size_t xq_stride = row_bytes(activation_type(W.type), K);
  assert(xq_stride != 0 && "matmul: W.cols is not a whole number of blocks");
  if (xq_stride == 0) return;
  if (!workspace) workspace = t_workspace.get(n * xq_stride);
  if (!workspace) return;
  uint8_t* xq = static_cast<uint8_t*>(workspace);
  // A few rows (decode) are quicker to quantize here than to hand out.
  if (!pool || n < kMinParallelRows) {
    for (size_t i = 0; i < n; ++i) quantize(X + i * K, xq + i * xq_stride, K);
  } else {
    pool->ParallelFor(n, [&](size_t i, int) { quantize(X + i * K, xq + i * xq_stride, K); });
  }
  if (!pool) return qfn(W.data, stride, xq, xq_stride, n, K, Y, rows, 0, rows);
  pool->ParallelFor(n_chunks, [&](size_t c, int) {
    const size_t r0 = c * chunk;
    qfn(W.data, stride, xq, xq_stride, n, K, Y, rows, r0, chunk_end(r0));
  });
}

}  // namespace ember::kernels
