// Models, contexts and recording generation parameters for the tests of evaluation and
// generation (test_generate_continue, test_prefix_cache*).
#pragma once
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "engine/generate/generator.h"
#include "engine/model/context.h"
#include "engine/model/model.h"
#include "support/fixtures.h"

namespace ember::testing {

// A fixture model (path under the fixtures folder); null and a test failure when it fails.
inline std::unique_ptr<Model> load_model(const std::string& rel) {
  std::unique_ptr<Model> m;
  Status s = Model::Load(fixture(rel), ModelParams{}, &m);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return m;
}

// A model under models/ with its cache type (keys and values) and batch (0: the default).
struct KvCase {
  const char* model;  // "tiny-gemma2-f32.gguf"
  DType cache;
  int32_t n_batch;
};

inline std::unique_ptr<Context> kv_context(const Model& m, const KvCase& k, int32_t n_ctx = 128) {
  ContextParams cp;
  cp.n_ctx = n_ctx;
  cp.n_batch = k.n_batch;
  cp.n_threads = 2;
  cp.type_k = cp.type_v = k.cache;
  std::unique_ptr<Context> c;
  Status st = Context::Create(m, cp, &c);
  EXPECT_TRUE(st.ok()) << st.ToString();
  return c;
}

// Golden case 3 of a model under models/: 60 tokens, longer than every sliding window.
inline std::vector<int32_t> case3_ids(const std::string& model_file) {
  const std::string name = model_file.substr(0, model_file.size() - 5);  // less ".gguf"
  return read_ids(fixture("models/" + name + ".case-3.tokens.txt"));
}

// "tiny_gemma2_f32_f16_b4": a test-name suffix for a KvCase.
inline std::string kv_case_name(const KvCase& k) {
  std::string n = k.model;
  n = n.substr(0, n.find('.'));
  for (char& ch : n)
    if (ch == '-') ch = '_';
  return n + "_" + dtype_name(k.cache) + "_b" + std::to_string(k.n_batch);
}

// Greedy parameters that also record every step's logits (through the filter hook, which
// sees them before sampling and changes nothing).
inline GenerateParams greedy_recording(int32_t max_tokens, std::vector<std::vector<float>>* steps,
                                       bool reuse_prefix = true) {
  GenerateParams gp;
  gp.sampling.temperature = 0;
  gp.max_tokens = max_tokens;
  gp.stop_at_eos = false;
  gp.reuse_prefix = reuse_prefix;
  gp.logits_filter = [steps](float* logits, int32_t n_vocab, const int32_t*, size_t) {
    steps->emplace_back(logits, logits + n_vocab);
  };
  return gp;
}

}  // namespace ember::testing
