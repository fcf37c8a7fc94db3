// Tests call kernels::matmul() the way the engine does: a pool of the given size
// (none for one thread) and scratch of matmul_scratch_bytes(), made per call.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "core/thread_pool.h"
#include "kernels/kernels.h"

namespace ember::test {

inline void run_matmul(const kernels::Table& t, const kernels::MatView& W, const float* X, size_t n,
                       float* Y, int threads) {
  std::unique_ptr<ThreadPool> pool;
  if (threads > 1) pool = std::make_unique<ThreadPool>(threads);
  std::vector<uint8_t> scratch(kernels::matmul_scratch_bytes(W.type, n, W.cols, threads));
  kernels::matmul(t, W, X, n, Y, pool.get(), scratch.data());
}

}  // namespace ember::test
