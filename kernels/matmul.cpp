// matmul(): W's rows cut into fixed chunks of kChunkRows, chunks handed to OpenMP
// threads. The chunking does not depend on the thread count, and the table's
// kernels compute each output identically for any row range (kernels.h), so the
// result is bitwise the same for 1 thread or 64.
#include <cassert>

#include "kernels/kernels.h"

namespace ember::kernels {
namespace {

// 16 rows: a multiple of every kernel's row blocking (8 GEMV, 4 GEMM), and small
// enough that a 2048-row matrix gives 128 chunks to balance over big and little cores.
constexpr size_t kChunkRows = 16;
// Below this many multiply-adds a parallel region costs more than it saves.
constexpr size_t kMinParallelMacs = size_t{1} << 16;

}  // namespace

MatmulFn matmul_fn(const Table& t, DType type) {
  switch (type) {
    case DType::F32: return t.matmul_f32;
    case DType::F16: return t.matmul_f16;
    case DType::BF16: return t.matmul_bf16;
    default: return nullptr;
  }
}

void matmul(const Table& t, const MatView& W, const float* X, size_t n, float* Y, int n_threads) {
  const MatmulFn fn = matmul_fn(t, W.type);
  assert(fn && "matmul: weight type not supported by this table");
  if (!fn || n == 0 || W.rows == 0) return;
  const size_t rows = W.rows, K = W.cols;
  const size_t stride = W.row_stride ? W.row_stride : row_bytes(W.type, K);
  const size_t n_chunks = (rows + kChunkRows - 1) / kChunkRows;
  size_t threads = n_threads > 1 ? static_cast<size_t>(n_threads) : 1;
  if (threads > n_chunks) threads = n_chunks;
  if (rows * K * n < kMinParallelMacs) threads = 1;
  if (threads <= 1) {
    fn(W.data, stride, X, K, n, K, Y, rows, 0, rows);
    return;
  }
  // dynamic: chunks go to whichever core is free (big.LITTLE phones).
  const int nt = static_cast<int>(threads);
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
  for (size_t c = 0; c < n_chunks; ++c) {
    const size_t r0 = c * kChunkRows;
    const size_t r1 = r0 + kChunkRows < rows ? r0 + kChunkRows : rows;
    fn(W.data, stride, X, K, n, K, Y, rows, r0, r1);
  }
}

}  // namespace ember::kernels
