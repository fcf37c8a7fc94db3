// KV cache types and sliding-window rings (engine/model/kv_cache.h, issue 14):
//   - every golden fixture with f32, f16 and q8_0 caches inside an envelope derived from
//     the rounding of each type (below);
//   - a sliding-window layer's ring gives the same bits as a full cache (--swa-full) in
//     f32, also when batches of odd sizes straddle the ring's end;
//   - the C API's cache types: names, defaults, refusals, the memory plan.
// Allocation-free decoding and plan vs RSS per cache type: tests/test_memory.cpp.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <cmath>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "ember/ember.h"
#include "engine/model/context.h"
#include "engine/model/kv_cache.h"
#include "engine/model/model.h"
#include "quant/types.h"
#include "support/fixtures.h"
#include "support/json.h"

namespace ember {
namespace {

using testing::fixture;
using testing::json;

std::unique_ptr<Model> load(const std::string& rel) {
  std::unique_ptr<Model> m;
  Status s = Model::Load(fixture(rel), {}, &m);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return m;
}

std::string stem(const std::string& gguf) { return gguf.substr(0, gguf.size() - 5); }

std::vector<int32_t> case_ids(const std::string& name, int k) {
  return testing::read_ids(fixture("models/" + stem(name) + ".case-" + std::to_string(k) + ".tokens.txt"));
}

ContextParams params(DType k, DType v, int32_t n_ctx, int32_t n_batch, bool swa_full = false) {
  ContextParams cp;
  cp.n_ctx = n_ctx;
  cp.n_batch = n_batch;
  cp.n_threads = 2;
  cp.logits_all = true;
  cp.type_k = k;
  cp.type_v = v;
  cp.swa_full = swa_full;
  cp.reference_kernels = false;
  return cp;
}

// Logits [ids.size()][n_vocab] of a context evaluating ids in Evals of the given sizes (in
// turn, cycling; each at most n_batch), and the context afterwards.
std::vector<float> eval_in_chunks(const Model& m, const std::vector<int32_t>& ids, const ContextParams& cp,
                                  const std::vector<int32_t>& sizes, std::unique_ptr<Context>* out = nullptr) {
  std::unique_ptr<Context> c;
  Status s = Context::Create(m, cp, &c);
  EXPECT_TRUE(s.ok()) << s.ToString();
  if (!s.ok()) return {};
  const size_t nv = m.config().n_vocab;
  std::vector<float> logits(ids.size() * nv);
  size_t done = 0;
  for (size_t k = 0; done < ids.size(); ++k) {
    const size_t n = std::min<size_t>(sizes[k % sizes.size()], ids.size() - done);
    s = c->Eval(ids.data() + done, n);
    EXPECT_TRUE(s.ok()) << s.ToString();
    if (!s.ok()) return {};
    for (size_t i = 0; i < n; ++i) std::copy_n(c->logits(static_cast<int32_t>(i)), nv, &logits[(done + i) * nv]);
    done += n;
  }
  if (out) *out = std::move(c);
  return logits;
}

// ---- the envelope of each cache type ------------------------------------------------------
//
// Base (any cache): test_engine.cpp's tolerances for an f32 engine, `kv_f16 / 64` (plus
// 1.5 x `act_q8_or_f16` for the quantized files, whose activations Ember rounds as ggml).
// With a cache type the stored K and V rows are rounded once more:
//   f32:  nothing: base.
//   f16:  relative rounding 2^-11 of each element. The fixtures README measured its effect,
//         `kv_f16` (Q, K, V and the attention probabilities rounded to f16, so it covers an
//         attention that also rounds q to f16), and states the envelope of an F16-cache
//         engine: max abs difference up to about three times `kv_f16`. Tolerance
//         base + 3 kv_f16.
//   q8_0: rounding to one of 255 steps of amax/127 per block of 32: an element's error is at
//         most amax/254 of its block, not relative to itself. To first order the logits move
//         linearly with the rounding errors of the cache, so the f16 envelope scales by
//         rho = rms(q8_0 error) / rms(f16 error), measured on the very rows the cache holds
//         for the case (the f32 cache's rows rounded both ways, KvCache's own quantizers).
//         Tolerance base + 3 rho kv_f16. (rho comes out at 24-27 on these fixtures: q8_0 has
//         ~8 bits relative to a block's largest element, f16 11 bits relative to each
//         element. Checked when this test was written by rounding an f32 cache's rows
//         through each type, nothing else changed: the q8_0 logits moved 14-32 times as
//         far as the f16 ones, i.e. about rho times, and at most 1/4 of this tolerance.
//         The engine's q8_0 attention, which also rounds q, reaches 0.39 of it on
//         tiny-llama3; f16 at most 0.28 (tiny-gemma2) on the float files.)
// Top-1 must survive wherever the golden's top-1/top-2 margin exceeds 2 x tolerance (each
// logit moves at most tolerance).

struct Envelope {
  double base = 0, kv_f16 = 0;
};

Envelope envelope_of(const std::string& name) {
  const json manifest = testing::read_json(fixture("models/manifest.json"));
  const json& sens = manifest.at("goldens").at(name).at(2).at("sensitivity");
  Envelope e;
  e.kv_f16 = sens.at("kv_f16").get<double>();
  e.base = 1.5 * sens.at("act_q8_or_f16").get<double>() + e.kv_f16 / 64;
  return e;
}

// rms(q8_0 rounding error) / rms(f16 rounding error) over every K and V row a context with
// an f32 cache holds.
double q8_over_f16_rounding(const Context& c) {
  const KvCache& kv = c.kv_cache();
  const ModelConfig& cfg = c.model().config();
  double e8 = 0, e16 = 0;
  std::vector<float> back;
  std::vector<uint8_t> row;
  auto add = [&](const float* x, size_t n) {
    back.resize(n);
    row.resize(row_bytes(DType::Q8_0, n) + row_bytes(DType::F16, n));
    for (DType t : {DType::F16, DType::Q8_0}) {
      KvCache::FromFloat(c.kernels(), t, x, row.data(), n);
      KvCache::ToFloat(c.kernels(), t, row.data(), back.data(), n);
      double& e = t == DType::F16 ? e16 : e8;
      for (size_t i = 0; i < n; ++i) e += (static_cast<double>(x[i]) - back[i]) * (static_cast<double>(x[i]) - back[i]);
    }
  };
  for (int32_t l = 0; l < kv.n_layer(); ++l)
    for (int32_t h = 0; h < kv.n_head_kv(); ++h)
      for (int32_t p = kv.first_held(l, c.n_past()); p < c.n_past(); ++p) {
        add(reinterpret_cast<const float*>(kv.k_row(l, h, p)), cfg.head_dim);
        add(reinterpret_cast<const float*>(kv.v_row(l, h, p)), cfg.head_dim_v);
      }
  return e16 > 0 ? std::sqrt(e8 / e16) : 0;
}

struct Deviation {
  double max_abs = 0;
  size_t top1_lost = 0, top1_checked = 0;  // positions whose margin exceeds 2 x tol
};

Deviation deviation(const std::vector<float>& got, const std::vector<float>& golden, size_t nv, double tol) {
  Deviation d;
  for (size_t i = 0; i < got.size(); ++i) d.max_abs = std::max(d.max_abs, std::fabs(double(got[i]) - golden[i]));
  for (size_t r = 0; r * nv < golden.size(); ++r) {
    const float* g = &golden[r * nv];
    std::vector<float> sorted(g, g + nv);
    std::partial_sort(sorted.begin(), sorted.begin() + 2, sorted.end(), std::greater<float>());
    if (sorted[0] - sorted[1] <= 2 * tol) continue;
    ++d.top1_checked;
    d.top1_lost += std::max_element(g, g + nv) - g != std::max_element(&got[r * nv], &got[r * nv] + nv) - &got[r * nv];
  }
  return d;
}

const char* type_name(DType t) { return t == DType::F32 ? "f32" : t == DType::F16 ? "f16" : "q8_0"; }

class CacheGolden : public ::testing::TestWithParam<std::string> {};

TEST_P(CacheGolden, EveryCacheTypeWithinItsEnvelope) {
  const std::string name = GetParam();
  auto model = load("models/" + name);
  ASSERT_TRUE(model);
  const ModelConfig& cfg = model->config();
  const size_t nv = cfg.n_vocab;
  const Envelope env = envelope_of(name);
  const bool q8_fits = cfg.head_dim % 32 == 0 && cfg.head_dim_v % 32 == 0;
  for (int k = 1; k <= 3; ++k) {
    const std::vector<int32_t> ids = case_ids(name, k);
    const std::vector<float> golden =
        testing::read_f32(fixture("models/" + stem(name) + ".case-" + std::to_string(k) + ".logits.f32"));
    const int32_t n = static_cast<int32_t>(ids.size());
    std::unique_ptr<Context> f32_ctx;
    const std::vector<float> f32 = eval_in_chunks(*model, ids, params(DType::F32, DType::F32, n + 8, n), {n}, &f32_ctx);
    ASSERT_TRUE(f32_ctx);
    const double rho = q8_fits ? q8_over_f16_rounding(*f32_ctx) : 0;  // q8_0 rows need blocks of 32
    if (q8_fits) {
      EXPECT_GT(rho, 1.0) << "q8_0 rounds coarser than f16";
    }
    for (DType t : {DType::F32, DType::F16, DType::Q8_0}) {
      SCOPED_TRACE(std::string(type_name(t)) + " case " + std::to_string(k));
      if (t == DType::Q8_0 && !q8_fits) {
        std::unique_ptr<Context> c;
        Status s = Context::Create(*model, params(t, t, n + 8, n), &c);
        EXPECT_EQ(s.code(), Code::kInvalidArgument) << s.ToString();
        EXPECT_NE(s.message().find("q8_0"), std::string::npos) << s.message();
        EXPECT_NE(s.message().find(std::to_string(cfg.head_dim)), std::string::npos) << s.message();
        continue;
      }
      const double tol = env.base + (t == DType::F16 ? 3 * env.kv_f16 : t == DType::Q8_0 ? 3 * rho * env.kv_f16 : 0);
      const std::vector<float> got = t == DType::F32 ? f32 : eval_in_chunks(*model, ids, params(t, t, n + 8, n), {n});
      ASSERT_EQ(got.size(), golden.size());
      const Deviation d = deviation(got, golden, nv, tol);
      std::printf("[ kv cache ] %-28s case %d %-4s: max|got-golden| %.3e, tol %.3e (rho %.1f), top-1 %zu/%zu\n",
                  name.c_str(), k, type_name(t), d.max_abs, tol, rho, d.top1_checked - d.top1_lost, d.top1_checked);
      EXPECT_LE(d.max_abs, tol);
      EXPECT_EQ(d.top1_lost, 0u);
    }
  }
}

// Every model fixture with goldens (manifest.json).
std::vector<std::string> golden_fixtures() {
  std::vector<std::string> names;
  const json manifest = testing::read_json(fixture("models/manifest.json"));
  for (auto it = manifest.at("goldens").begin(); it != manifest.at("goldens").end(); ++it) names.push_back(it.key());
  return names;
}

INSTANTIATE_TEST_SUITE_P(Fixtures, CacheGolden, ::testing::ValuesIn(golden_fixtures()), [](const auto& info) {
  std::string s = stem(info.param);
  for (char& c : s)
    if (!isalnum(static_cast<unsigned char>(c))) c = '_';
  return s;
});

// K and V types are independent: keys in q8_0, values in f16 (and the other way round)
// stay inside the q8_0 envelope, which bounds the coarser of the two.
TEST(CacheTypes, MixedKeyAndValueTypes) {
  const std::string name = "tiny-qwen3-f32.gguf";
  auto model = load("models/" + name);
  ASSERT_TRUE(model);
  const std::vector<int32_t> ids = case_ids(name, 3);
  const std::vector<float> golden = testing::read_f32(fixture("models/" + stem(name) + ".case-3.logits.f32"));
  const int32_t n = static_cast<int32_t>(ids.size());
  std::unique_ptr<Context> f32_ctx;
  eval_in_chunks(*model, ids, params(DType::F32, DType::F32, n + 8, n), {n}, &f32_ctx);
  ASSERT_TRUE(f32_ctx);
  const Envelope env = envelope_of(name);
  const double tol = env.base + 3 * q8_over_f16_rounding(*f32_ctx) * env.kv_f16;
  for (auto [k, v] : {std::pair{DType::Q8_0, DType::F16}, std::pair{DType::F16, DType::Q8_0}}) {
    std::unique_ptr<Context> c;
    const std::vector<float> got = eval_in_chunks(*model, ids, params(k, v, n + 8, n), {n}, &c);
    ASSERT_TRUE(c);
    EXPECT_EQ(c->kv_cache().type_k(), k);
    EXPECT_EQ(c->kv_cache().type_v(), v);
    EXPECT_LE(deviation(got, golden, model->config().n_vocab, tol).max_abs, tol)
        << "K " << type_name(k) << ", V " << type_name(v);
  }
}

// ---- rings ------------------------------------------------------------------------------

// Batches of odd sizes (n_batch 5) so that some straddle the ring's end (cells = window 8 +
// n_batch 5 = 13): whether one did is checked, not assumed.
const std::vector<int32_t> kOddChunks = {3, 5, 1, 4, 2};
constexpr int32_t kSmallBatch = 5;

// Whether some Eval of the chunk sizes writes positions that wrap around a ring of `cells`.
bool some_chunk_straddles(int32_t n_tokens, const std::vector<int32_t>& sizes, int32_t cells) {
  int32_t done = 0;
  for (size_t k = 0; done < n_tokens; ++k) {
    const int32_t n = std::min(sizes[k % sizes.size()], n_tokens - done);
    // Eval splits a chunk into n_batch pieces; each piece is written as a whole.
    for (int32_t off = 0; off < n; off += kSmallBatch) {
      const int32_t first = done + off, last = done + std::min(n, off + kSmallBatch) - 1;
      if (first % cells > last % cells) return true;
    }
    done += n;
  }
  return false;
}

class Ring : public ::testing::TestWithParam<const char*> {};

// In f32 a ring holds exactly the rows a full cache holds for the window, so attention must
// give the same bits: the 60-token case (window 8) in Evals of 3, 5, 1, 4, 2 tokens, with
// the ring and with --swa-full.
TEST_P(Ring, SameBitsAsFullCacheInF32) {
  const std::string name = GetParam();
  auto model = load("models/" + name);
  ASSERT_TRUE(model);
  const ModelConfig& cfg = model->config();
  ASSERT_GT(cfg.sliding_window, 0);
  const std::vector<int32_t> ids = case_ids(name, 3);
  const int32_t n = static_cast<int32_t>(ids.size()), n_ctx = 64;
  ASSERT_GT(n, cfg.sliding_window + kSmallBatch) << "the case must wrap the ring";
  std::unique_ptr<Context> ring, full;
  const std::vector<float> a =
      eval_in_chunks(*model, ids, params(DType::F32, DType::F32, n_ctx, kSmallBatch), kOddChunks, &ring);
  const std::vector<float> b =
      eval_in_chunks(*model, ids, params(DType::F32, DType::F32, n_ctx, kSmallBatch, true), kOddChunks, &full);
  ASSERT_TRUE(ring && full);
  ASSERT_EQ(ring->kv_cache().n_layer(), cfg.n_layer) << "the context's cache was not planned";
  ASSERT_EQ(full->kv_cache().n_layer(), cfg.n_layer) << "the context's cache was not planned";
  size_t n_rings = 0;
  for (int32_t l = 0; l < cfg.n_layer; ++l) {
    EXPECT_FALSE(full->kv_cache().is_ring(l)) << "layer " << l << " with swa_full";
    if (!cfg.layer_swa[l]) continue;
    ++n_rings;
    EXPECT_TRUE(ring->kv_cache().is_ring(l)) << "layer " << l;
    EXPECT_EQ(ring->kv_cache().cells(l), cfg.sliding_window + kSmallBatch) << "layer " << l;
  }
  ASSERT_GT(n_rings, 0u);
  EXPECT_TRUE(some_chunk_straddles(n, kOddChunks, cfg.sliding_window + kSmallBatch));
  EXPECT_LT(ring->kv_bytes(), full->kv_bytes());
  EXPECT_EQ(ring->kv_cache().bytes_per_position(), full->kv_cache().bytes_per_position() -
                                                       n_rings * cfg.n_head_kv * (cfg.head_dim + cfg.head_dim_v) * 4);
  ASSERT_EQ(a.size(), b.size());
  size_t first_diff = a.size();
  for (size_t i = 0; i < a.size() && first_diff == a.size(); ++i)
    if (a[i] != b[i]) first_diff = i;
  EXPECT_EQ(first_diff, a.size()) << "first different logit at position " << first_diff / cfg.n_vocab;

  // Decoding on, one token at a time, past n_batch more wraps of the ring.
  for (int32_t i = 0; i < 3; ++i) {
    const int32_t id = ids[static_cast<size_t>(i) * 7 % ids.size()];
    ASSERT_TRUE(ring->Eval(&id, 1).ok());
    ASSERT_TRUE(full->Eval(&id, 1).ok());
    EXPECT_TRUE(std::equal(ring->logits(), ring->logits() + cfg.n_vocab, full->logits())) << "decode step " << i;
  }
}

// With f16 and q8_0 caches the ring stays inside the type's golden envelope (the rows are
// rounded once, whichever cell they land in).
TEST_P(Ring, EveryTypeWithinItsEnvelope) {
  const std::string name = GetParam();
  auto model = load("models/" + name);
  ASSERT_TRUE(model);
  const std::vector<int32_t> ids = case_ids(name, 3);
  const std::vector<float> golden = testing::read_f32(fixture("models/" + stem(name) + ".case-3.logits.f32"));
  const Envelope env = envelope_of(name);
  std::unique_ptr<Context> f32_ctx;
  const int32_t n = static_cast<int32_t>(ids.size());
  eval_in_chunks(*model, ids, params(DType::F32, DType::F32, n + 8, n), {n}, &f32_ctx);
  ASSERT_TRUE(f32_ctx);
  const double rho = q8_over_f16_rounding(*f32_ctx);
  for (DType t : {DType::F32, DType::F16, DType::Q8_0}) {
    const double tol = env.base + (t == DType::F16 ? 3 * env.kv_f16 : t == DType::Q8_0 ? 3 * rho * env.kv_f16 : 0);
    const std::vector<float> got = eval_in_chunks(*model, ids, params(t, t, 64, kSmallBatch), kOddChunks);
    ASSERT_EQ(got.size(), golden.size());
    EXPECT_LE(deviation(got, golden, model->config().n_vocab, tol).max_abs, tol) << type_name(t);
  }
}

INSTANTIATE_TEST_SUITE_P(SlidingWindow, Ring, ::testing::Values("tiny-gemma2-f32.gguf", "tiny-gemma3-f32.gguf"),
                         [](const auto& info) { return std::string(info.param).substr(5, 6); });

// ---- C API --------------------------------------------------------------------------------

TEST(CacheTypesApi, NamesAndDefaults) {
  for (ember_cache_type t : {EMBER_CACHE_F32, EMBER_CACHE_F16, EMBER_CACHE_Q8_0}) {
    const char* name = ember_cache_type_name(t);
    ASSERT_NE(name, nullptr);
    ember_cache_type back{};
    ASSERT_EQ(ember_cache_type_from_name(name, &back), EMBER_OK) << name;
    EXPECT_EQ(back, t);
  }
  EXPECT_STREQ(ember_cache_type_name(EMBER_CACHE_Q8_0), "q8_0");
  EXPECT_EQ(ember_cache_type_name(static_cast<ember_cache_type>(7)), nullptr);
  ember_cache_type t{};
  for (const char* bad : {"q4_0", "bf16", "F16", ""}) {
    EXPECT_EQ(ember_cache_type_from_name(bad, &t), EMBER_ERR_INVALID_ARGUMENT) << bad;
    const std::string err = ember_last_error();
    EXPECT_NE(err.find(std::string("'") + bad + "'"), std::string::npos) << err;
    EXPECT_NE(err.find("f32, f16 or q8_0"), std::string::npos) << err;
  }
  EXPECT_EQ(ember_cache_type_from_name(nullptr, &t), EMBER_ERR_INVALID_ARGUMENT);
  // Zero-initialized parameters and the defaults both mean f16, without a ring switch.
  const ember_context_params d = ember_context_default_params();
  EXPECT_EQ(d.cache_type_k, EMBER_CACHE_F16);
  EXPECT_EQ(d.cache_type_v, EMBER_CACHE_F16);
  EXPECT_EQ(d.swa_full, 0);
  EXPECT_EQ(static_cast<int>(EMBER_CACHE_F16), 0);
}

struct ApiModel {
  ember_model* m = nullptr;
  explicit ApiModel(const std::string& rel) {
    EXPECT_EQ(ember_model_load(fixture(rel).c_str(), nullptr, &m), EMBER_OK) << ember_last_error();
  }
  ~ApiModel() { ember_model_free(m); }
};

TEST(CacheTypesApi, RefusalsNameTheProblem) {
  ApiModel stories("models/stories260K.gguf");  // head_dim 8
  ASSERT_TRUE(stories.m);
  ember_context_params p = ember_context_default_params();
  p.n_ctx = 32;
  ember_context* c = nullptr;
  // As a C caller may: any int in the enum field (memcpy: in C++ the cast itself is undefined).
  const auto store = [](ember_cache_type* field, int32_t v) { std::memcpy(field, &v, sizeof v); };
  store(&p.cache_type_k, 7);
  EXPECT_EQ(ember_context_create(stories.m, &p, &c), EMBER_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(c, nullptr);
  EXPECT_NE(std::string(ember_last_error()).find("cache_type_k 7"), std::string::npos) << ember_last_error();
  p.cache_type_k = EMBER_CACHE_F16;
  store(&p.cache_type_v, -1);
  EXPECT_EQ(ember_context_create(stories.m, &p, &c), EMBER_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(ember_last_error()).find("cache_type_v -1"), std::string::npos) << ember_last_error();
  p.cache_type_v = EMBER_CACHE_Q8_0;  // 8 values per head: not a whole block of 32
  EXPECT_EQ(ember_context_create(stories.m, &p, &c), EMBER_ERR_INVALID_ARGUMENT);
  const std::string err = ember_last_error();
  EXPECT_NE(err.find("q8_0"), std::string::npos) << err;
  EXPECT_NE(err.find("32"), std::string::npos) << err;
  EXPECT_EQ(err.find('\n'), std::string::npos) << err;
  EXPECT_EQ(c, nullptr);
}

// The plan's KV figures follow the types and the rings: per layer, cells x KV heads x (a K
// row + a V row), rows of head_dim elements at 4, 2 or 34/32 bytes each.
TEST(CacheTypesApi, PlanFollowsTypesAndRings) {
  ApiModel gemma2("models/tiny-gemma2-f32.gguf");  // 4 layers, 2 KV heads of 32, window 8 on 0 and 2
  ASSERT_TRUE(gemma2.m);
  ember_model_info info;
  ASSERT_EQ(ember_model_get_info(gemma2.m, &info), EMBER_OK);
  const uint64_t heads = static_cast<uint64_t>(info.n_head_kv), hd = static_cast<uint64_t>(info.head_dim);
  const int32_t n_ctx = 128, n_batch = 16, window = 8;
  struct TypeBytes { ember_cache_type t; uint64_t row; };
  for (TypeBytes k : {TypeBytes{EMBER_CACHE_F32, 4 * hd}, {EMBER_CACHE_F16, 2 * hd}, {EMBER_CACHE_Q8_0, 34 * hd / 32}})
    for (TypeBytes v : {TypeBytes{EMBER_CACHE_F32, 4 * hd}, {EMBER_CACHE_F16, 2 * hd}, {EMBER_CACHE_Q8_0, 34 * hd / 32}})
      for (int swa_full : {0, 1}) {
        SCOPED_TRACE(std::string(ember_cache_type_name(k.t)) + "/" + ember_cache_type_name(v.t) +
                     (swa_full ? " swa_full" : ""));
        ember_context_params p = ember_context_default_params();
        p.n_ctx = n_ctx;
        p.n_batch = n_batch;
        p.n_threads = 1;
        p.cache_type_k = k.t;
        p.cache_type_v = v.t;
        p.swa_full = swa_full;
        ember_context* c = nullptr;
        ASSERT_EQ(ember_context_create(gemma2.m, &p, &c), EMBER_OK) << ember_last_error();
        ember_memory_plan plan;
        ASSERT_EQ(ember_context_memory(c, &plan), EMBER_OK);
        const uint64_t per_cell = heads * (k.row + v.row);
        const uint64_t ring_cells = swa_full ? n_ctx : window + n_batch;
        EXPECT_EQ(plan.kv_bytes, per_cell * (2 * n_ctx + 2 * ring_cells));
        EXPECT_EQ(plan.kv_bytes_per_token, per_cell * (swa_full ? 4 : 2));
        EXPECT_EQ(plan.kv_bytes + plan.scratch_bytes, ember_context_bytes(c));
        ember_context_free(c);
      }
}

}  // namespace
}  // namespace ember
