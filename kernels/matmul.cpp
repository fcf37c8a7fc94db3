// matmul(): W's rows cut into chunks, chunks handed to the threads of the caller's
// pool (core/thread_pool.h) one at a time. The table's kernels compute each output
// identically for any row range (kernels.h), so the result is bitwise the same for 1
// thread or 64 and whatever the chunk size. Quantized weights: the activations are
// quantized first (rows in parallel for a batch, on the caller for a few tokens; the
// quantizers are deterministic per row), then the chunks run as for float weights.
// Every kernel is looked up in the table by the weight type's row (quant/types.h).
#include <algorithm>
#include <array>
#include <cassert>
#include <cstddef>
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

// The sum of a Q8_0 block's 32 int8 codes, exact, eight at a time in a 64-bit word:
// as unsigned bytes (pairs added into 16-bit lanes, the four lanes by one multiply),
// less 256 per negative code (its top bit set).
int32_t code_sum(const uint8_t* qs) {
  constexpr uint64_t kLow = 0x00ff00ff00ff00ffull, kOnes16 = 0x0001000100010001ull;
  constexpr uint64_t kTop = 0x0101010101010101ull;
  uint64_t pairs = 0, neg = 0;
  for (int w = 0; w < kQK / 8; ++w) {
    uint64_t v;
    std::memcpy(&v, qs + 8 * w, sizeof v);
    pairs += (v & kLow) + ((v >> 8) & kLow);  // 16-bit lanes: at most 4 * 510 < 2^16
    neg += (v >> 7) & kTop;                   // byte lanes: at most 4
  }
  const auto unsigned_sum = static_cast<int32_t>((pairs * kOnes16) >> 48);  // <= 32 * 255
  const auto negatives = static_cast<int32_t>((neg * kTop) >> 56);          // <= 32
  return unsigned_sum - 256 * negatives;
}

// The activations as the plain kernels read them: the quantized rows, nothing beside.
PackedActs plain_acts(DType act, uint8_t* xq, size_t xq_stride, size_t K) {
  return PackedActs{xq, xq_stride, nullptr, nullptr, K / dtype_info(act).block_size};
}

// Each Q8_0 activation block's scale as a float and the sum of its codes, stored after
// the n quantized rows (exact: both are what the kernels would compute per block).
// Q8_K blocks carry their float d and bsums already: the rows alone.
PackedActs packed_acts(DType act, uint8_t* xq, size_t xq_stride, size_t n, size_t K, ThreadPool* pool) {
  PackedActs a = plain_acts(act, xq, xq_stride, K);
  if (act != DType::Q8_0) return a;
  auto* side = reinterpret_cast<uint8_t*>(round_up(reinterpret_cast<uintptr_t>(xq + n * xq_stride), kAlign));
  auto* d = reinterpret_cast<float*>(side);
  auto* sums = reinterpret_cast<int32_t*>(side + n * a.nb * sizeof(float));
  auto row = [&](size_t t, int) {
    const uint8_t* blk = xq + t * xq_stride;
    for (size_t b = 0; b < a.nb; ++b, blk += sizeof(BlockQ8_0)) {
      uint16_t h;
      std::memcpy(&h, blk + offsetof(BlockQ8_0, d), sizeof h);
      d[t * a.nb + b] = fp16_to_fp32(h);
      sums[t * a.nb + b] = code_sum(blk + offsetof(BlockQ8_0, qs));
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

// X's n rows quantized to `act` into xq (row_bytes(act, K) apart); false when the
// table has no quantizer for it.
bool quantize_rows(const Table& t, DType act, const float* X, size_t n, size_t K, uint8_t* xq,
                   ThreadPool* pool) {
  const QuantizeRowFn quantize = quantize_row_fn(t, act);
  const size_t xq_stride = row_bytes(act, K);
  assert(xq && xq_stride != 0 && "matmul: quantized weights need scratch and whole blocks");
  if (!quantize || !xq || xq_stride == 0) return false;
  // A few rows (decode) are quicker to quantize here than to hand out.
  if (!pool || n < kMinParallelRows) {
    for (size_t i = 0; i < n; ++i) quantize(X + i * K, xq + i * xq_stride, K);
  } else {
    pool->ParallelFor(n, [&](size_t i, int) { quantize(X + i * K, xq + i * xq_stride, K); });
  }
  return true;
}

// Rows [r0, r1) of Y = Xq . W^T, X already quantized (and its packed side data made
// when W is packed).
void quantized_rows(const Table& t, const MatView& W, size_t stride, const PackedActs& acts, size_t n,
                    float* Y, size_t r0, size_t r1) {
  if (W.packing.plain()) {
    qmatmul_fn(t, W.type)(W.data, stride, acts.q, acts.stride, n, W.cols, Y, W.rows, r0, r1);
  } else {
    packed_fn(t, W)(W.data, W.packing, acts, n, W.cols, Y, W.rows, r0, r1);
  }
}

void quantized_matmul(const Table& t, const MatView& W, size_t stride, const float* X, size_t n,
                      float* Y, ThreadPool* pool, void* scratch) {
  const size_t K = W.cols;
  const DType act = activation_type(W.type);
  if (!qmatmul_fn(t, W.type)) return;
  uint8_t* xq = static_cast<uint8_t*>(scratch);
  if (!quantize_rows(t, act, X, n, K, xq, pool)) return;
  const size_t xq_stride = row_bytes(act, K);
  const PackedActs acts = W.packing.plain() ? plain_acts(act, xq, xq_stride, K)
                                            : packed_acts(act, xq, xq_stride, n, K, pool);
  over_rows(pool, W.rows, [&](size_t r0, size_t r1, int) { quantized_rows(t, W, stride, acts, n, Y, r0, r1); });
}

size_t stride_of(const MatView& W) { return W.row_stride ? W.row_stride : row_bytes(W.type, W.cols); }

// Whether matmul_shared() can run Ws from one quantization of X: all quantized, one
// activation type, one K.
bool shareable(const Table& t, std::span<const MatView> Ws) {
  if (Ws.size() < 2) return false;
  const DType act = activation_type(Ws[0].type);
  for (const MatView& W : Ws)
    if (activation_type(W.type) != act || act == DType::F32 || W.cols != Ws[0].cols || !qmatmul_fn(t, W.type) ||
        W.rows == 0)
      return false;
  return true;
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
  const size_t stride = stride_of(W);
  pool = pool_for(pool, W.rows, W.rows * W.cols * n);
  if (const MatmulFn fn = matmul_fn(t, W.type)) {
    // The converted-rows regions start on a cache line: align the base.
    const uintptr_t p = reinterpret_cast<uintptr_t>(scratch);
    void* aligned = scratch ? reinterpret_cast<void*>(round_up(p, kAlign)) : nullptr;
    return float_matmul(fn, W, stride, X, n, Y, pool, aligned);
  }
  quantized_matmul(t, W, stride, X, n, Y, pool, scratch);
}

// One quantization of X (and one packed side data), then every matrix's rows in one
// parallel loop: chunks as matmul() would cut each matrix, handed out together.
void matmul_shared(const Table& t, std::span<const MatView> Ws, const float* X, size_t n, std::span<float* const> Ys,
                   ThreadPool* pool, void* scratch) {
  assert(Ws.size() == Ys.size());
  if (!shareable(t, Ws) || n == 0) {
    for (size_t i = 0; i < Ws.size(); ++i) matmul(t, Ws[i], X, n, Ys[i], pool, scratch);
    return;
  }
  const size_t K = Ws[0].cols;
  size_t rows = 0;
  for (const MatView& W : Ws) rows += W.rows;
  pool = pool_for(pool, rows, rows * K * n);
  const DType act = activation_type(Ws[0].type);
  uint8_t* xq = static_cast<uint8_t*>(scratch);
  if (!quantize_rows(t, act, X, n, K, xq, pool)) return;
  const size_t xq_stride = row_bytes(act, K);
  bool packed = false;
  for (const MatView& W : Ws) packed = packed || !W.packing.plain();
  const PackedActs acts = packed ? packed_acts(act, xq, xq_stride, n, K, pool) : plain_acts(act, xq, xq_stride, K);
  if (!pool) {
    for (size_t i = 0; i < Ws.size(); ++i) quantized_rows(t, Ws[i], stride_of(Ws[i]), acts, n, Ys[i], 0, Ws[i].rows);
    return;
  }
  // Chunk c of the joint loop: matrix first[i] <= c < first[i + 1], its rows from
  // (c - first[i]) * chunk.
  constexpr size_t kMaxShared = 8;
  assert(Ws.size() <= kMaxShared);
  if (Ws.size() > kMaxShared) return;
  std::array<size_t, kMaxShared + 1> first{};
  std::array<size_t, kMaxShared> chunk{};
  for (size_t i = 0; i < Ws.size(); ++i) {
    chunk[i] = chunk_rows(Ws[i].rows, pool->n_threads());
    first[i + 1] = first[i] + (Ws[i].rows + chunk[i] - 1) / chunk[i];
  }
  pool->ParallelFor(first[Ws.size()], [&](size_t c, int) {
    size_t i = 0;
    while (c >= first[i + 1]) ++i;
    const MatView& W = Ws[i];
    const size_t r0 = (c - first[i]) * chunk[i];
    quantized_rows(t, W, stride_of(W), acts, n, Ys[i], r0, std::min(r0 + chunk[i], W.rows));
  });
}

}  // namespace ember::kernels
