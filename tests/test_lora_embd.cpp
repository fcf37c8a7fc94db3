// Embedding (token_embd) LoRA adapters at run time (LoraSet::ApplyEmbedding, called by
// Context::Embed before the embedding scale): a synthetic adapter written with the GGUF
// writer gives the logits of the model with the delta merged into its weights
// (lora_merge), on a llama fixture (untied output, F16 adapter) and a gemma fixture
// (output tied to token_embd, sqrt(n_embd) input scale, F32 adapter, with and without
// an output.weight adapter); batched prefill equals token by token; the C API accepts it.
//
// Tolerance (run time vs merged). Merged rows are E + fl(s·ΔE) rounded once; at run time
// the delta is a float dot product of length r added to E: the inputs differ by a few
// float32 roundings of |E + ΔE|, and the projections (ΔW of an output adapter at run time
// vs merged) by float32 rounding of dot products of length K. As in test_lora.cpp, the
// logits then differ by at most c · K · eps_f32 · max|logit| with K the widest inner
// dimension of the model (n_ff) and c = 1/4 (random rounding errors add like sqrt(K),
// far below K); measured values are printed.
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <ostream>
#include <string>
#include <vector>

#include "ember/ember.h"
#include "engine/model/context.h"
#include "engine/lora/lora.h"
#include "loader/gguf_writer.h"
#include "offline/lora_tools.h"
#include "engine/model/model.h"
#include "quant/fp16.h"
#include "support/fixtures.h"

namespace ember {
namespace {

using testing::fixture;

std::unique_ptr<Model> load(const std::string& file) {
  std::unique_ptr<Model> m;
  Status s = Model::Load(fixture("models/" + file), {}, &m);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return m;
}

// Deterministic values in [-1, 1) (a 64-bit LCG; no platform-dependent distributions).
struct Lcg {
  uint64_t x;
  float next() {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<float>(static_cast<double>(x >> 11) / 9007199254740992.0 * 2 - 1);
  }
};

// n values of magnitude `scale`, as F32 or F16 bytes.
std::vector<uint8_t> random_bytes(Lcg* g, size_t n, float scale, DType type) {
  std::vector<uint8_t> out(n * (type == DType::F16 ? 2 : 4));
  for (size_t i = 0; i < n; ++i) {
    const float v = g->next() * scale;
    if (type == DType::F16) {
      const uint16_t h = fp32_to_fp16(v);
      std::memcpy(&out[2 * i], &h, 2);
    } else {
      std::memcpy(&out[4 * i], &v, 4);
    }
  }
  return out;
}

double rms(const kernels::MatView& m) {
  EXPECT_EQ(m.type, DType::F32);
  const float* p = static_cast<const float*>(m.data);
  double s = 0;
  const size_t n = static_cast<size_t>(m.rows) * m.cols;
  for (size_t i = 0; i < n; ++i) s += double(p[i]) * p[i];
  return std::sqrt(s / n);
}

struct Case {
  const char* model;
  DType type;        // of the adapter's A and B
  bool with_output;  // also adapt output.weight
};

void PrintTo(const Case& c, std::ostream* os) {
  *os << c.model << " " << dtype_name(c.type) << (c.with_output ? " + output" : "");
}

// A rank-4 adapter on token_embd (and output.weight) whose delta has about half the rms of
// the weight it adapts: uniform[-a, a] x uniform[-a, a] summed over r gives rms r^½ a² / 3.
std::vector<uint8_t> synthetic_adapter(const Model& m, const Case& c) {
  const int64_t r = 4, nv = m.config().n_vocab, ne = m.config().n_embd;
  const float a = static_cast<float>(std::sqrt(0.5 * rms(m.weights().token_embd) * 3 / std::sqrt(double(r))));
  Lcg g{12345};
  GgufWriter w;
  w.SetString("general.architecture", m.config().arch);
  w.SetString("general.type", "adapter");
  w.SetString("adapter.type", "lora");
  w.SetF32("adapter.lora.alpha", 8);  // factor 8 / 4 = 2: a factor other than 1 is exercised
  const float k = a / std::sqrt(2.0f);
  std::vector<uint8_t> A = random_bytes(&g, nv * r, k, c.type), B = random_bytes(&g, ne * r, k, c.type);
  EXPECT_TRUE(w.AddTensor("token_embd.weight.lora_a", c.type, {r, nv}, A.data(), A.size()).ok());
  EXPECT_TRUE(w.AddTensor("token_embd.weight.lora_b", c.type, {r, ne}, B.data(), B.size()).ok());
  if (c.with_output) {
    std::vector<uint8_t> oa = random_bytes(&g, ne * r, k, c.type), ob = random_bytes(&g, nv * r, k, c.type);
    EXPECT_TRUE(w.AddTensor("output.weight.lora_a", c.type, {ne, r}, oa.data(), oa.size()).ok());
    EXPECT_TRUE(w.AddTensor("output.weight.lora_b", c.type, {r, nv}, ob.data(), ob.size()).ok());
  }
  return w.Serialize();
}

std::unique_ptr<LoraAdapter> parse_adapter(const Model& m, const std::vector<uint8_t>& bytes) {
  std::unique_ptr<GgufFile> g;
  Status s = GgufFile::FromMemory(bytes.data(), bytes.size(), "embd.gguf", &g);
  EXPECT_TRUE(s.ok()) << s.ToString();
  std::unique_ptr<LoraAdapter> a;
  if (s.ok()) s = LoraAdapter::FromGguf(m, *g, &a);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return a;
}

// Logits of every position of ids, in one batch of n_batch (or token by token when 1).
std::vector<float> logits(const Model& m, const std::vector<int32_t>& ids, const ProjectionDelta* d,
                          int32_t n_batch) {
  ContextParams cp;
  cp.type_k = cp.type_v = DType::F32;  // float32 cache: the goldens' tolerance
  cp.n_ctx = static_cast<int32_t>(ids.size());
  cp.n_batch = n_batch;
  cp.n_threads = 2;
  cp.logits_all = n_batch > 1;
  std::unique_ptr<Context> c;
  EXPECT_TRUE(Context::Create(m, cp, &c).ok());
  c->SetProjectionDelta(d);
  const size_t nv = m.config().n_vocab;
  std::vector<float> out(ids.size() * nv);
  if (n_batch > 1) {
    EXPECT_TRUE(c->Eval(ids.data(), ids.size()).ok());
    for (size_t i = 0; i < ids.size(); ++i) std::copy_n(c->logits(static_cast<int32_t>(i)), nv, &out[i * nv]);
  } else {
    for (size_t i = 0; i < ids.size(); ++i) {
      EXPECT_TRUE(c->Eval(&ids[i], 1).ok());
      std::copy_n(c->logits(), nv, &out[i * nv]);
    }
  }
  return out;
}

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double d = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) d = std::max(d, std::fabs(double(a[i]) - b[i]));
  return d;
}

class LoraEmbedding : public ::testing::TestWithParam<Case> {};

TEST_P(LoraEmbedding, RuntimeEqualsMergedAndPrefillEqualsTokenByToken) {
  const Case c = GetParam();
  auto m = load(c.model);
  ASSERT_TRUE(m);
  const std::vector<uint8_t> bytes = synthetic_adapter(*m, c);
  auto a = parse_adapter(*m, bytes);
  ASSERT_TRUE(a);
  EXPECT_TRUE(a->AffectsCache());
  const std::string stem = std::string(c.model).substr(0, std::strlen(c.model) - 5);
  std::vector<int32_t> ids = testing::read_ids(fixture("models/" + stem + ".case-3.tokens.txt"));
  ASSERT_GT(ids.size(), 1u);
  const int32_t n = static_cast<int32_t>(ids.size());

  LoraSet set(*m, n);
  bool affects = false;
  Status s = set.Set(a.get(), 0.75f, &affects);  // no longer refused
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_TRUE(affects);

  GgufWriter w;
  const DType f32 = DType::F32;
  ASSERT_TRUE(lora_merge(*m, {{a.get(), 0.75f}}, &f32, &w).ok());
  std::vector<uint8_t> merged_bytes = w.Serialize();
  std::unique_ptr<GgufFile> g;
  ASSERT_TRUE(GgufFile::FromMemory(merged_bytes.data(), merged_bytes.size(), "merged.gguf", &g).ok());
  std::unique_ptr<Model> merged;
  s = Model::FromGguf(std::move(g), {}, &merged);
  ASSERT_TRUE(s.ok()) << s.ToString();
  // A tied model keeps its (unadapted, or output-adapted) output as its own tensor.
  EXPECT_FALSE(merged->weights().tied_output);

  const std::vector<float> base = logits(*m, ids, nullptr, n), run = logits(*m, ids, &set, n),
                           mer = logits(*merged, ids, nullptr, n);
  double max_logit = 0;
  for (float v : mer) max_logit = std::max(max_logit, std::fabs(double(v)));
  const int32_t K = std::max({m->config().n_ff, m->config().n_embd, m->config().q_dim()});
  const double bound = 0.25 * K * std::numeric_limits<float>::epsilon() * max_logit;
  const double d = max_abs_diff(run, mer), changed = max_abs_diff(run, base);
  std::printf("[ lora ] %s (%s%s): run time vs merged %.3g (bound %.3g); the adapter moves logits by %.3g\n",
              c.model, dtype_name(c.type), c.with_output ? ", + output" : "", d, bound, changed);
  EXPECT_LT(d, bound);
  EXPECT_GT(changed, 100 * bound);  // applied, not ignored

  // Without the output adapter, the embedding delta alone must not reach a tied output:
  // compare against merging into the embedding only, output kept (checked above through
  // `merged`, whose output.weight is the base token_embd then).
  if (m->weights().tied_output && !c.with_output) {
    const kernels::MatView& out = merged->weights().output;
    ASSERT_EQ(out.type, DType::F32);
    EXPECT_EQ(std::memcmp(out.data, m->weights().token_embd.data, static_cast<size_t>(out.rows) * out.cols * 4), 0);
  }

  // Token by token (n = 1 per Eval) gives the batched logits bit for bit: each row of the
  // delta is computed the same way whatever the batch.
  LoraSet set1(*m, 1);
  ASSERT_TRUE(set1.Set(a.get(), 0.75f, &affects).ok());
  EXPECT_EQ(logits(*m, ids, &set1, 1), run);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, LoraEmbedding,
                         ::testing::Values(Case{"tiny-llama-gqa-f32.gguf", DType::F16, false},
                                           Case{"tiny-gemma-f32.gguf", DType::F32, false},
                                           Case{"tiny-gemma-f32.gguf", DType::F32, true}),
                         [](const ::testing::TestParamInfo<Case>& i) {
                           return std::string(i.param.model[5] == 'l' ? "llama" : "gemma") +
                                  (i.param.with_output ? "_output" : "");
                         });

TEST(LoraEmbeddingCapi, SetLoraAcceptsAnEmbeddingAdapter) {
  const Case kase{"tiny-gemma-f32.gguf", DType::F32, false};
  auto m = load(kase.model);
  ASSERT_TRUE(m);
  const std::vector<uint8_t> bytes = synthetic_adapter(*m, kase);
  std::string dir = (std::filesystem::temp_directory_path() / "ember-lora-embd-XXXXXX").string();
  ASSERT_NE(::mkdtemp(dir.data()), nullptr);
  const std::string path = dir + "/embd.gguf";
  {
    FILE* f = std::fopen(path.c_str(), "wb");
    ASSERT_NE(f, nullptr);
    ASSERT_EQ(std::fwrite(bytes.data(), 1, bytes.size(), f), bytes.size());
    std::fclose(f);
  }
  ember_model* em = nullptr;
  ASSERT_EQ(ember_model_load(fixture("models/tiny-gemma-f32.gguf").c_str(), nullptr, &em), EMBER_OK);
  ember_lora* l = nullptr;
  ASSERT_EQ(ember_lora_load(em, path.c_str(), &l), EMBER_OK) << ember_last_error();
  ember_context_params cp = ember_context_default_params();
  cp.n_ctx = 64;
  cp.n_threads = 1;
  ember_context* ctx = nullptr;
  ASSERT_EQ(ember_context_create(em, &cp, &ctx), EMBER_OK);
  std::vector<int32_t> ids = testing::read_ids(fixture("models/tiny-gemma-f32.case-2.tokens.txt"));
  ASSERT_EQ(ember_eval(ctx, ids.data(), ids.size()), EMBER_OK);
  const int32_t nv = m->config().n_vocab;
  const std::vector<float> base(ember_get_logits(ctx, -1), ember_get_logits(ctx, -1) + nv);
  ASSERT_EQ(ember_context_set_lora(ctx, l, 0.75f), EMBER_OK) << ember_last_error();
  EXPECT_EQ(ember_n_past(ctx), 0);  // the embedding changes every cached key and value
  EXPECT_EQ(ember_context_n_loras(ctx), 1);
  ASSERT_EQ(ember_eval(ctx, ids.data(), ids.size()), EMBER_OK);
  const std::vector<float> adapted(ember_get_logits(ctx, -1), ember_get_logits(ctx, -1) + nv);
  // The same as the C++ LoraSet with the same adapter (the code path under the C API).
  auto a = parse_adapter(*m, bytes);
  LoraSet set(*m, static_cast<int32_t>(ids.size()));
  bool affects;
  ASSERT_TRUE(set.Set(a.get(), 0.75f, &affects).ok());
  ContextParams p;  // the C API's defaults (F16 cache)
  p.n_ctx = 64;
  p.n_threads = 1;
  std::unique_ptr<Context> c;
  ASSERT_TRUE(Context::Create(*m, p, &c).ok());
  c->SetProjectionDelta(&set);
  ASSERT_TRUE(c->Eval(ids.data(), ids.size()).ok());
  EXPECT_EQ(adapted, std::vector<float>(c->logits(), c->logits() + nv));
  EXPECT_NE(adapted, base);
  // Removal gives the base back bit for bit; freeing the context frees its adapter set.
  ASSERT_EQ(ember_context_remove_lora(ctx, l), EMBER_OK);
  EXPECT_EQ(ember_context_n_loras(ctx), 0);
  ASSERT_EQ(ember_eval(ctx, ids.data(), ids.size()), EMBER_OK);
  EXPECT_EQ(std::vector<float>(ember_get_logits(ctx, -1), ember_get_logits(ctx, -1) + nv), base);
  ASSERT_EQ(ember_context_set_lora(ctx, l, 1.0f), EMBER_OK);
  ember_context_free(ctx);
  ember_lora_free(l);
  ember_model_free(em);
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

}  // namespace
}  // namespace ember
