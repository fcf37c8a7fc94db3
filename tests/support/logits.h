// Whole-model evaluation for tests: the logits of every position of a token list.
// Header-only: only test executables that link the runtime library (ember) include it.
#pragma once
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <vector>

#include "engine/model/context.h"
#include "engine/model/model.h"

namespace ember::testing {

// Logits [ids.size()][n_vocab] of every position of `ids` evaluated in one batch (or in
// chunks of n_batch > 0) from an empty cache of n_ctx positions (0: ids.size() + 8), with
// keys and values cached as `cache` (F32 by default: the math itself, at the goldens'
// float32 tolerance; the cache types' envelopes are tests/test_kv_cache.cpp's).
inline std::vector<float> all_logits(const Model& m, const std::vector<int32_t>& ids, int threads = 1,
                                     bool reference = false, int n_batch = 0, int n_ctx = 0,
                                     DType cache = DType::F32) {
  ContextParams cp;
  cp.type_k = cp.type_v = cache;
  cp.n_ctx = n_ctx > 0 ? n_ctx : static_cast<int32_t>(ids.size()) + 8;
  cp.n_batch = n_batch > 0 ? n_batch : static_cast<int32_t>(ids.size());
  cp.n_threads = threads;
  cp.logits_all = true;
  cp.reference_kernels = reference;
  std::unique_ptr<Context> c;
  Status s = Context::Create(m, cp, &c);
  EXPECT_TRUE(s.ok()) << s.ToString();
  if (!s.ok()) return {};
  s = c->Eval(ids.data(), ids.size());
  EXPECT_TRUE(s.ok()) << s.ToString();
  if (!s.ok()) return {};
  const size_t nv = m.config().n_vocab;
  std::vector<float> out(ids.size() * nv);
  for (size_t i = 0; i < ids.size(); ++i) std::copy_n(c->logits(static_cast<int32_t>(i)), nv, out.data() + i * nv);
  return out;
}

}  // namespace ember::testing
