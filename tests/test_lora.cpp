// LoRA adapters (engine/lora/lora.h, the C API section): octopus-tiny's golden logits with
// the phone adapter (GGUF and PEFT forms), scale 0 / removal give the base bit for bit,
// two adapters = the sum of their deltas (against a merged model), the equal blend,
// blending tools, hot-swap cache semantics, malformed adapters, and the accuracy of
// each domain adapter on its twisted queries.
//
// Tolerances. The reference logits are PyTorch float32 (a float64 pass reproduces them
// within 1.2e-5); the base model's golden test uses 1e-4 absolute, and the adapter adds
// two rank-8 products per projection, so the same bound holds (README: "about 1e-4").
// Run-time vs merged weights: W'x and Wx + s·B(Ax) differ by float32 rounding of dot
// products of length K <= 768 with |terms| summing to ~|logit|: bound
// c · K · eps_f32 · max|logit| with c = 1/4 (sums of random rounding errors grow
// like sqrt(K), far below K) — about 4.6e-4 for |logit| ~ 20; measured values are
// printed.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "ember/ember.h"
#include "engine/model/context.h"
#include "engine/lora/lora.h"
#include "loader/gguf_writer.h"
#include "offline/lora_tools.h"
#include "engine/model/model.h"
#include "loader/safetensors.h"
#include "support/fixtures.h"
#include "support/json.h"

namespace ember {
namespace {

using testing::fixture;

const char* kDir = "models/octopus-tiny/";

// Smaller samples under emulation: EMBER_TEST_QUICK=1, or any cross build (its
// tests run under qemu, about 20x slower).
bool quick() {
#ifdef EMBER_TEST_EMULATOR
  return true;
#else
  const char* q = std::getenv("EMBER_TEST_QUICK");
  return q && std::string(q) == "1";
#endif
}

std::unique_ptr<Model> load_model(const std::string& file) {
  std::unique_ptr<Model> m;
  Status s = Model::Load(fixture(std::string(kDir) + file), {}, &m);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return m;
}

std::unique_ptr<LoraAdapter> load_lora(const Model& m, const std::string& rel) {
  std::unique_ptr<LoraAdapter> a;
  Status s = LoraAdapter::Load(m, fixture(std::string(kDir) + rel), &a);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return a;
}

// Logits of every position of `ids` in one batch with `delta` (may be null).
std::vector<float> logits(const Model& m, const std::vector<int32_t>& ids, const LoraSet* delta,
                          int threads = 1) {
  ContextParams cp;
  cp.type_k = cp.type_v = DType::F32;  // float32 cache: the goldens' tolerance
  cp.n_ctx = static_cast<int32_t>(ids.size()) + 8;
  cp.n_batch = static_cast<int32_t>(ids.size());
  cp.n_threads = threads;
  cp.logits_all = true;
  std::unique_ptr<Context> c;
  Status s = Context::Create(m, cp, &c);
  EXPECT_TRUE(s.ok()) << s.ToString();
  if (!s.ok()) return {};
  c->SetProjectionDelta(delta);
  s = c->Eval(ids.data(), ids.size());
  EXPECT_TRUE(s.ok()) << s.ToString();
  const size_t nv = m.config().n_vocab;
  std::vector<float> out(ids.size() * nv);
  for (size_t i = 0; i < ids.size(); ++i) std::copy_n(c->logits(static_cast<int32_t>(i)), nv, out.data() + i * nv);
  return out;
}

// A LoraSet for n_batch tokens with adapters at scales.
std::unique_ptr<LoraSet> make_set(const Model& m, int32_t n_batch,
                                  const std::vector<std::pair<const LoraAdapter*, float>>& as) {
  auto s = std::make_unique<LoraSet>(m, n_batch);
  for (const auto& [a, scale] : as) {
    bool affects = false;
    Status st = s->Set(a, scale, &affects);
    EXPECT_TRUE(st.ok()) << st.ToString();
  }
  return s;
}

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  double d = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) d = std::max(d, std::fabs(double(a[i]) - b[i]));
  return d;
}

double max_abs(const std::vector<float>& a) {
  double d = 0;
  for (float v : a) d = std::max(d, std::fabs(double(v)));
  return d;
}

// The merged-vs-unmerged bound of the header comment.
double rounding_bound(const std::vector<float>& l) {
  return 0.25 * 768 * std::numeric_limits<float>::epsilon() * max_abs(l);
}

std::vector<int32_t> case_ids(int k) {
  return testing::read_ids(fixture(std::string(kDir) + "reference/case-" + std::to_string(k) + ".tokens.txt"));
}

// A model with ΔW of `as` merged in (F32), parsed from memory; `bytes` keeps the file.
std::unique_ptr<Model> merged_model(const Model& base, const std::vector<std::pair<const LoraAdapter*, float>>& as,
                                    std::vector<uint8_t>* bytes) {
  GgufWriter w;
  const DType f32 = DType::F32;
  Status s = lora_merge(base, as, &f32, &w);
  EXPECT_TRUE(s.ok()) << s.ToString();
  *bytes = w.Serialize();
  std::unique_ptr<GgufFile> g;
  s = GgufFile::FromMemory(bytes->data(), bytes->size(), "merged.gguf", &g);
  EXPECT_TRUE(s.ok()) << s.ToString();
  std::unique_ptr<Model> m;
  s = Model::FromGguf(std::move(g), {}, &m);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return m;
}

// ---- goldens -----------------------------------------------------------------------

void check_phone_golden(const char* adapter) {
  auto m = load_model("octopus-tiny.gguf");
  auto a = load_lora(*m, adapter);
  ASSERT_TRUE(m && a);
  const size_t nv = m->config().n_vocab;
  for (int k = 0; k < 3; ++k) {
    std::vector<int32_t> ids = case_ids(k);
    auto set = make_set(*m, static_cast<int32_t>(ids.size()), {{a.get(), 1.0f}});
    std::vector<float> got = logits(*m, ids, set.get(), 2);
    std::vector<float> want =
        testing::read_f32(fixture(std::string(kDir) + "reference/case-" + std::to_string(k) + ".lora0.logits.f32"));
    ASSERT_EQ(got.size(), want.size());
    const double d = max_abs_diff(got, want);
    EXPECT_LT(d, 1e-4) << "case " << k;
    size_t argmax_ok = 0;
    for (size_t t = 0; t < ids.size(); ++t) {
      auto g = std::max_element(got.begin() + t * nv, got.begin() + (t + 1) * nv) - (got.begin() + t * nv);
      auto w = std::max_element(want.begin() + t * nv, want.begin() + (t + 1) * nv) - (want.begin() + t * nv);
      argmax_ok += g == w;
    }
    EXPECT_EQ(argmax_ok, ids.size());
    std::printf("[ lora ] %s case %d: max |logit - golden| = %.3g\n", adapter, k, d);
  }
}

TEST(LoraGolden, PhoneGgufMatchesReference) { check_phone_golden("lora-phone.gguf"); }
TEST(LoraGolden, PhonePeftMatchesReference) { check_phone_golden("adapters/phone"); }

TEST(LoraGolden, PeftAndGgufGiveTheSameLogits) {
  auto m = load_model("octopus-tiny.gguf");
  auto g = load_lora(*m, "lora-phone.gguf");
  auto p = load_lora(*m, "adapters/phone");
  ASSERT_TRUE(m && g && p);
  ASSERT_EQ(g->weights().size(), p->weights().size());
  for (size_t i = 0; i < g->weights().size(); ++i) {
    EXPECT_EQ(g->weights()[i].target, p->weights()[i].target);
    EXPECT_EQ(g->weights()[i].a, p->weights()[i].a) << g->weights()[i].target;
    EXPECT_EQ(g->weights()[i].b, p->weights()[i].b) << g->weights()[i].target;
    EXPECT_EQ(g->weights()[i].factor, 2.0f);
  }
  std::vector<int32_t> ids = case_ids(1);
  auto sg = make_set(*m, 64, {{g.get(), 1.0f}});
  auto sp = make_set(*m, 64, {{p.get(), 1.0f}});
  EXPECT_EQ(logits(*m, ids, sg.get()), logits(*m, ids, sp.get()));
}

// ---- identities ----------------------------------------------------------------------

TEST(LoraApply, ScaleZeroAndRemovalGiveTheBaseBitwise) {
  auto m = load_model("octopus-tiny.gguf");
  auto a = load_lora(*m, "lora-phone.gguf");
  ASSERT_TRUE(m && a);
  std::vector<int32_t> ids = case_ids(0);
  const std::vector<float> base = logits(*m, ids, nullptr);
  auto zero = make_set(*m, 64, {{a.get(), 0.0f}});
  EXPECT_EQ(logits(*m, ids, zero.get()), base);
  auto set = make_set(*m, 64, {{a.get(), 1.0f}});
  EXPECT_NE(logits(*m, ids, set.get()), base);
  bool affects = false;
  EXPECT_TRUE(set->Remove(a.get(), &affects));
  EXPECT_TRUE(affects);
  EXPECT_EQ(logits(*m, ids, set.get()), base);
}

TEST(LoraApply, RuntimeEqualsMergedF32) {
  auto m = load_model("octopus-tiny.gguf");
  auto a = load_lora(*m, "lora-phone.gguf");
  ASSERT_TRUE(m && a);
  std::vector<uint8_t> bytes;
  auto merged = merged_model(*m, {{a.get(), 0.7f}}, &bytes);
  ASSERT_TRUE(merged);
  for (int k = 0; k < 3; ++k) {
    std::vector<int32_t> ids = case_ids(k);
    auto set = make_set(*m, 64, {{a.get(), 0.7f}});
    std::vector<float> run = logits(*m, ids, set.get()), mer = logits(*merged, ids, nullptr);
    const double d = max_abs_diff(run, mer), bound = rounding_bound(mer);
    EXPECT_LT(d, bound) << "case " << k;
    std::printf("[ lora ] run-time vs merged, case %d: %.3g (bound %.3g)\n", k, d, bound);
  }
}

TEST(LoraApply, TwoAdaptersAreTheSumOfTheirDeltas) {
  auto m = load_model("octopus-tiny.gguf");
  auto p = load_lora(*m, "lora-phone.gguf");
  auto h = load_lora(*m, "adapters/home");
  ASSERT_TRUE(m && p && h);
  std::vector<uint8_t> bytes;
  auto merged = merged_model(*m, {{p.get(), 0.5f}, {h.get(), 1.25f}}, &bytes);
  std::vector<int32_t> ids = case_ids(2);
  auto set = make_set(*m, 64, {{p.get(), 0.5f}, {h.get(), 1.25f}});
  std::vector<float> run = logits(*m, ids, set.get()), mer = logits(*merged, ids, nullptr);
  EXPECT_LT(max_abs_diff(run, mer), rounding_bound(mer));
  std::printf("[ lora ] two adapters vs merged sum: %.3g\n", max_abs_diff(run, mer));
}

TEST(LoraApply, BlendEqualIsTheThreeAtOneThird) {
  auto m = load_model("octopus-tiny.gguf");
  auto ph = load_lora(*m, "lora-phone.gguf");
  auto ho = load_lora(*m, "lora-home.gguf");
  auto tr = load_lora(*m, "lora-travel.gguf");
  auto bg = load_lora(*m, "lora-blend_equal.gguf");
  auto bp = load_lora(*m, "adapters/blend_equal");
  ASSERT_TRUE(m && ph && ho && tr && bg && bp);
  std::vector<int32_t> ids = case_ids(0);
  const float third = 1.0f / 3.0f;
  auto three = make_set(*m, 64, {{ph.get(), third}, {ho.get(), third}, {tr.get(), third}});
  auto sg = make_set(*m, 64, {{bg.get(), 1.0f}});
  auto sp = make_set(*m, 64, {{bp.get(), 1.0f}});
  std::vector<float> want = logits(*m, ids, three.get());
  std::vector<float> g = logits(*m, ids, sg.get()), p = logits(*m, ids, sp.get());
  EXPECT_EQ(g, p);
  EXPECT_LT(max_abs_diff(g, want), rounding_bound(want));
  std::printf("[ lora ] blend_equal vs three at 1/3: %.3g\n", max_abs_diff(g, want));
}

TEST(LoraApply, BatchedPrefillEqualsTokenByToken) {
  auto m = load_model("octopus-tiny.gguf");
  auto a = load_lora(*m, "lora-phone.gguf");
  ASSERT_TRUE(m && a);
  std::vector<int32_t> ids = case_ids(1);
  auto set = make_set(*m, 64, {{a.get(), 1.0f}});
  std::vector<float> batched = logits(*m, ids, set.get());
  ContextParams cp;
  cp.type_k = cp.type_v = DType::F32;  // float32 cache: the goldens' tolerance
  cp.n_ctx = 64;
  cp.n_batch = 1;
  cp.n_threads = 1;
  std::unique_ptr<Context> c;
  ASSERT_TRUE(Context::Create(*m, cp, &c).ok());
  auto set1 = make_set(*m, 1, {{a.get(), 1.0f}});
  c->SetProjectionDelta(set1.get());
  const size_t nv = m->config().n_vocab;
  for (size_t t = 0; t < ids.size(); ++t) {
    ASSERT_TRUE(c->Eval(&ids[t], 1).ok());
    for (size_t v = 0; v < nv; ++v) ASSERT_EQ(c->logits()[v], batched[t * nv + v]) << t;
  }
}

TEST(LoraApply, QuantizedBasesAcceptAdapters) {
  for (const char* file : {"octopus-tiny-q8_0.gguf", "octopus-tiny-q4_0.gguf"}) {
    std::unique_ptr<Model> m;
    Status st = Model::Load(fixture(std::string(kDir) + file), {}, &m);
    // Quantized weight kernels land separately (issue 3); until then this build says so.
    if (st.code() == Code::kUnsupported) GTEST_SKIP() << st.ToString();
    ASSERT_TRUE(st.ok()) << st.ToString();
    auto a = load_lora(*m, "lora-phone.gguf");
    ASSERT_TRUE(m && a);
    std::vector<int32_t> ids = case_ids(1);
    auto set = make_set(*m, 64, {{a.get(), 1.0f}});
    std::vector<float> got = logits(*m, ids, set.get());
    std::vector<float> want = testing::read_f32(fixture(std::string(kDir) + "reference/case-1.lora0.logits.f32"));
    const size_t nv = m->config().n_vocab, last = ids.size() - 1;
    // Quantization error, not adapter error: llama.cpp measured 0.12 (q8_0), 0.74 (q4_0).
    EXPECT_LT(max_abs_diff(got, want), std::string(file).find("q8") != std::string::npos ? 0.25 : 1.5) << file;
    auto g = std::max_element(got.begin() + last * nv, got.end()) - (got.begin() + last * nv);
    EXPECT_EQ(g, 1977) << file;
  }
}

// ---- C API: hot swap -------------------------------------------------------------------

TEST(LoraCapi, HotSwapResetsTheCacheOnlyWhenNeeded) {
  ember_model* m = nullptr;
  ASSERT_EQ(ember_model_load(fixture(std::string(kDir) + "octopus-tiny.gguf").c_str(), nullptr, &m), EMBER_OK);
  ember_lora* a = nullptr;
  ASSERT_EQ(ember_lora_load(m, fixture(std::string(kDir) + "lora-phone.gguf").c_str(), &a), EMBER_OK)
      << ember_last_error();
  ember_lora_info info{};
  ASSERT_EQ(ember_lora_get_info(a, &info), EMBER_OK);
  EXPECT_EQ(info.rank, 8);
  EXPECT_EQ(info.alpha, 16.0f);
  EXPECT_EQ(info.n_weights, 30);
  ember_context_params cp = ember_context_default_params();
  cp.n_ctx = 64;
  cp.n_threads = 1;
  ember_context* c = nullptr;
  ASSERT_EQ(ember_context_create(m, &cp, &c), EMBER_OK);
  std::vector<int32_t> ids = case_ids(1);
  ASSERT_EQ(ember_eval(c, ids.data(), ids.size()), EMBER_OK);
  const std::vector<float> base(ember_get_logits(c, -1), ember_get_logits(c, -1) + 2048);
  ASSERT_EQ(ember_context_set_lora(c, a, 0.0f), EMBER_OK);  // scale 0: no change to the cache
  EXPECT_EQ(ember_n_past(c), static_cast<int32_t>(ids.size()));
  ASSERT_EQ(ember_context_set_lora(c, a, 1.0f), EMBER_OK);
  EXPECT_EQ(ember_n_past(c), 0);
  EXPECT_EQ(ember_context_n_loras(c), 1);
  ASSERT_EQ(ember_eval(c, ids.data(), ids.size()), EMBER_OK);
  const float* l = ember_get_logits(c, -1);
  EXPECT_EQ(std::max_element(l, l + 2048) - l, 1977);
  ASSERT_EQ(ember_context_set_lora(c, a, 1.0f), EMBER_OK);  // no-op
  EXPECT_EQ(ember_n_past(c), static_cast<int32_t>(ids.size()));
  ASSERT_EQ(ember_context_remove_lora(c, a), EMBER_OK);
  EXPECT_EQ(ember_n_past(c), 0);
  EXPECT_EQ(ember_context_remove_lora(c, a), EMBER_ERR_NOT_FOUND);
  ASSERT_EQ(ember_eval(c, ids.data(), ids.size()), EMBER_OK);
  EXPECT_EQ(std::vector<float>(ember_get_logits(c, -1), ember_get_logits(c, -1) + 2048), base);
  ember_context_free(c);
  ember_lora_free(a);
  ember_model_free(m);
}

// ---- malformed adapters --------------------------------------------------------------

Status load_from_writer(const Model& m, GgufWriter& w, std::unique_ptr<LoraAdapter>* out) {
  std::vector<uint8_t> bytes = w.Serialize();
  std::unique_ptr<GgufFile> g;
  EMBER_RETURN_IF_ERROR(GgufFile::FromMemory(bytes.data(), bytes.size(), "bad.gguf", &g));
  return LoraAdapter::FromGguf(m, *g, out);
}

GgufWriter adapter_writer(const char* arch) {
  GgufWriter w;
  w.SetString("general.architecture", arch);
  w.SetString("general.type", "adapter");
  w.SetString("adapter.type", "lora");
  w.SetF32("adapter.lora.alpha", 16);
  return w;
}

TEST(LoraErrors, BadAdaptersAreRejectedNamingTheTensor) {
  auto m = load_model("octopus-tiny.gguf");
  ASSERT_TRUE(m);
  std::vector<float> z(8 * 768, 0.0f);
  std::unique_ptr<LoraAdapter> a;
  {  // wrong architecture
    GgufWriter w = adapter_writer("llama");
    ASSERT_TRUE(w.AddTensor("blk.0.attn_q.weight.lora_a", DType::F32, {192, 8}, z.data(), 192 * 8 * 4).ok());
    ASSERT_TRUE(w.AddTensor("blk.0.attn_q.weight.lora_b", DType::F32, {8, 256}, z.data(), 256 * 8 * 4).ok());
    Status s = load_from_writer(*m, w, &a);
    EXPECT_FALSE(s.ok());
    EXPECT_NE(s.message().find("llama"), std::string::npos) << s.message();
  }
  {  // shape mismatch: attn_k is 64 x 192, the adapter says 256 x 192
    GgufWriter w = adapter_writer("gemma");
    ASSERT_TRUE(w.AddTensor("blk.2.attn_k.weight.lora_a", DType::F32, {192, 8}, z.data(), 192 * 8 * 4).ok());
    ASSERT_TRUE(w.AddTensor("blk.2.attn_k.weight.lora_b", DType::F32, {8, 256}, z.data(), 256 * 8 * 4).ok());
    Status s = load_from_writer(*m, w, &a);
    EXPECT_EQ(s.code(), Code::kBadFormat);
    EXPECT_NE(s.message().find("blk.2.attn_k.weight"), std::string::npos) << s.message();
  }
  {  // ranks of a and b differ
    GgufWriter w = adapter_writer("gemma");
    ASSERT_TRUE(w.AddTensor("blk.0.ffn_up.weight.lora_a", DType::F32, {192, 8}, z.data(), 192 * 8 * 4).ok());
    ASSERT_TRUE(w.AddTensor("blk.0.ffn_up.weight.lora_b", DType::F32, {4, 768}, z.data(), 768 * 4 * 4).ok());
    Status s = load_from_writer(*m, w, &a);
    EXPECT_EQ(s.code(), Code::kBadFormat);
    EXPECT_NE(s.message().find("blk.0.ffn_up.weight"), std::string::npos) << s.message();
  }
  {  // missing half, unknown target, layer out of range
    GgufWriter w = adapter_writer("gemma");
    ASSERT_TRUE(w.AddTensor("blk.0.ffn_up.weight.lora_a", DType::F32, {192, 8}, z.data(), 192 * 8 * 4).ok());
    EXPECT_FALSE(load_from_writer(*m, w, &a).ok());
    GgufWriter w2 = adapter_writer("gemma");
    ASSERT_TRUE(w2.AddTensor("blk.9.ffn_up.weight.lora_a", DType::F32, {192, 8}, z.data(), 192 * 8 * 4).ok());
    ASSERT_TRUE(w2.AddTensor("blk.9.ffn_up.weight.lora_b", DType::F32, {8, 768}, z.data(), 768 * 8 * 4).ok());
    Status s = load_from_writer(*m, w2, &a);
    EXPECT_EQ(s.code(), Code::kNotFound);
    EXPECT_NE(s.message().find("blk.9.ffn_up.weight"), std::string::npos) << s.message();
  }
  {  // a model file is not an adapter
    Status s = LoraAdapter::Load(*m, fixture(std::string(kDir) + "octopus-tiny.gguf"), &a);
    EXPECT_EQ(s.code(), Code::kBadFormat) << s.ToString();
  }
}

// A safetensors file: the header's length (u64 LE), the header, `data` zero bytes.
std::vector<uint8_t> safetensors_bytes(const std::string& header, size_t data) {
  std::vector<uint8_t> b(8 + header.size() + data, 0);
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) b[i] = static_cast<uint8_t>(n >> (8 * i));
  std::memcpy(b.data() + 8, header.data(), header.size());
  return b;
}

TEST(LoraErrors, SafetensorsOffsetsAreChecked) {
  const auto make = safetensors_bytes;
  std::unique_ptr<SafetensorsFile> f;
  auto ok = make(R"({"x": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]}})", 24);
  ASSERT_TRUE(SafetensorsFile::FromMemory(ok.data(), ok.size(), "ok", &f).ok());
  EXPECT_EQ(f->tensors().size(), 1u);
  auto past = make(R"({"x": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]}})", 20);
  EXPECT_EQ(SafetensorsFile::FromMemory(past.data(), past.size(), "past", &f).code(), Code::kBadFormat);
  auto size = make(R"({"x": {"dtype": "F32", "shape": [2, 4], "data_offsets": [0, 24]}})", 24);
  EXPECT_EQ(SafetensorsFile::FromMemory(size.data(), size.size(), "size", &f).code(), Code::kBadFormat);
  auto overlap = make(R"({"x": {"dtype": "F16", "shape": [4], "data_offsets": [0, 8]},)"
                      R"( "y": {"dtype": "F16", "shape": [4], "data_offsets": [4, 12]}})", 12);
  EXPECT_EQ(SafetensorsFile::FromMemory(overlap.data(), overlap.size(), "ov", &f).code(), Code::kBadFormat);
  std::vector<uint8_t> hdr = {0xff, 0xff, 0, 0, 0, 0, 0, 0, '{', '}'};
  EXPECT_EQ(SafetensorsFile::FromMemory(hdr.data(), hdr.size(), "len", &f).code(), Code::kBadFormat);
}

TEST(LoraErrors, SafetensorsHeaderJsonIsChecked) {
  auto open = [](const std::string& header, size_t data, std::unique_ptr<SafetensorsFile>* f) {
    const std::vector<uint8_t> b = safetensors_bytes(header, data);
    return SafetensorsFile::FromMemory(b.data(), b.size(), "h.safetensors", f);
  };
  std::unique_ptr<SafetensorsFile> f;
  // Tensors in the header's order; __metadata__ strings kept, other values skipped.
  Status s = open(R"({"b": {"dtype": "F16", "shape": [2], "data_offsets": [0, 4]}, "__metadata__": )"
                  R"({"format": "pt", "n": 3}, "a": {"dtype": "F16", "shape": [], "data_offsets": [4, 6]}}  )",
                  6, &f);
  ASSERT_TRUE(s.ok()) << s.ToString();
  ASSERT_EQ(f->tensors().size(), 2u);
  EXPECT_EQ(f->tensors()[0].name, "b");
  EXPECT_EQ(f->tensors()[1].name, "a");
  EXPECT_EQ(f->metadata().size(), 1u);
  struct Case {
    const char* header;
    const char* needle;
  } cases[] = {
      {R"({"x": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]})",  // no closing '}'
       "h.safetensors: offset 60 (line 1, column 61): syntax error"},
      {R"({"x": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, "x": {}})", "duplicate key \"x\""},
      {R"({"x": {"dtype": "F32", "shape": [1.0], "data_offsets": [0, 4]}})", "non-integer or negative dimension"},
      {R"({"x": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}})", "non-integer or negative dimension"},
      {R"({"x": {"dtype": "F32", "shape": [1], "data_offsets": [0, "4"]}})", "not non-negative integers"},
      {R"({"x": {"dtype": 3, "shape": [1], "data_offsets": [0, 4]}})", "non-string dtype"},
      {R"({"x": {"dtype": "F32", "shape": [1], "data_offsets": [0]}})", "data_offsets is not [begin, end]"},
      {R"([1])", "header is not a JSON object"},
  };
  for (const Case& c : cases) {
    s = open(c.header, 4, &f);
    EXPECT_EQ(s.code(), Code::kBadFormat) << c.header;
    EXPECT_NE(s.message().find(c.needle), std::string::npos) << c.header << " -> " << s.message();
  }
}

TEST(LoraErrors, PeftConfigIsChecked) {
  auto m = load_model("octopus-tiny.gguf");
  ASSERT_TRUE(m);
  const std::string dir = ::testing::TempDir() + "ember-peft-config";
  std::filesystem::create_directories(dir);
  struct Case {
    const char* config;
    Code code;
    const char* needle;
  } cases[] = {
      {"{\"r\": 8,", Code::kBadFormat, "adapter_config.json: offset 8 (line 1, column 9): syntax error"},
      {"[8, 16]", Code::kBadFormat, "not a JSON object"},
      {R"({"r": "8", "lora_alpha": 16})", Code::kBadFormat, "'r' missing or not a number"},
      {R"({"r": 8})", Code::kBadFormat, "'lora_alpha' missing or not a number"},
      {R"({"peft_type": "IA3", "r": 8, "lora_alpha": 16})", Code::kUnsupported, "peft_type 'IA3'"},
      {R"({"r": 8, "lora_alpha": 16, "use_dora": true})", Code::kUnsupported, "DoRA"},
      {R"({"r": 8, "lora_alpha": 16, "rank_pattern": {"q_proj": 4}})", Code::kUnsupported, "rank_pattern"},
      {R"({"r": 8, "lora_alpha": 16, "modules_to_save": ["lm_head"]})", Code::kUnsupported, "modules_to_save"},
  };
  for (const Case& c : cases) {
    std::ofstream(dir + "/adapter_config.json") << c.config;
    std::unique_ptr<LoraAdapter> a;
    Status s = LoraAdapter::FromPeft(*m, dir, &a);
    EXPECT_EQ(s.code(), c.code) << c.config << " -> " << s.ToString();
    EXPECT_NE(s.message().find(c.needle), std::string::npos) << c.config << " -> " << s.message();
  }
  // Empty patterns and modules_to_save: null are what PEFT writes by default; past the
  // config, the missing weights file is the error.
  std::ofstream(dir + "/adapter_config.json")
      << R"({"r": 8, "lora_alpha": 16, "rank_pattern": {}, "alpha_pattern": {}, "modules_to_save": null})";
  std::unique_ptr<LoraAdapter> a;
  Status s = LoraAdapter::FromPeft(*m, dir, &a);
  EXPECT_NE(s.message().find("adapter_model.safetensors"), std::string::npos) << s.ToString();
  std::filesystem::remove_all(dir);
}

// ---- blending tools --------------------------------------------------------------------

TEST(LoraBlend, ExactBlendEqualsApplyingTogetherAndSvdAtFullRankEqualsExact) {
  auto m = load_model("octopus-tiny.gguf");
  auto ph = load_lora(*m, "lora-phone.gguf");
  auto tr = load_lora(*m, "lora-travel.gguf");
  ASSERT_TRUE(m && ph && tr);
  std::vector<LoraBlendInput> in = {{ph.get(), 0.6f}, {tr.get(), 0.4f}};
  std::unique_ptr<LoraAdapter> exact, svd, avg;
  Status s = lora_blend(*m, in, LoraBlendMode::kExact, 0, &exact);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(exact->max_rank(), 16);
  std::vector<int32_t> ids = case_ids(0);
  auto together = make_set(*m, 64, {{ph.get(), 0.6f}, {tr.get(), 0.4f}});
  auto se = make_set(*m, 64, {{exact.get(), 1.0f}});
  std::vector<float> want = logits(*m, ids, together.get()), got = logits(*m, ids, se.get());
  EXPECT_LT(max_abs_diff(got, want), rounding_bound(want));
  // Round trip through a GGUF file.
  std::vector<uint8_t> bytes = lora_serialize_gguf(*exact);
  std::unique_ptr<GgufFile> g;
  ASSERT_TRUE(GgufFile::FromMemory(bytes.data(), bytes.size(), "exact.gguf", &g).ok());
  std::unique_ptr<LoraAdapter> back;
  ASSERT_TRUE(LoraAdapter::FromGguf(*m, *g, &back).ok());
  auto sb = make_set(*m, 64, {{back.get(), 1.0f}});
  EXPECT_EQ(logits(*m, ids, sb.get()), got);

  s = lora_blend(*m, in, LoraBlendMode::kSvd, 16, &svd);
  ASSERT_TRUE(s.ok()) << s.ToString();
  auto ss = make_set(*m, 64, {{svd.get(), 1.0f}});
  std::vector<float> sv = logits(*m, ids, ss.get());
  // SVD in float64 of a rank-16 ΔW: exact up to the float32 storage of the factors.
  EXPECT_LT(max_abs_diff(sv, want), 4 * rounding_bound(want));
  std::printf("[ lora ] exact blend %.3g, svd rank 16 %.3g vs together\n", max_abs_diff(got, want),
              max_abs_diff(sv, want));

  s = lora_blend(*m, in, LoraBlendMode::kAverage, 0, &avg);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(avg->max_rank(), 8);
}

// ---- accuracy on the twisted queries ----------------------------------------------------

struct Accuracy { int n = 0, correct = 0, same_as_reference = 0; };

Accuracy twisted_accuracy(const Model& m, const LoraAdapter* a, const std::string& domain, size_t stride) {
  const std::vector<testing::json> queries =
      testing::read_jsonl(fixture(std::string(kDir) + "adapters/" + domain + "/test_queries.jsonl"));
  ContextParams cp;
  cp.type_k = cp.type_v = DType::F32;  // float32 cache: the goldens' tolerance
  cp.n_ctx = 128;
  cp.n_batch = 64;
  cp.n_threads = 2;
  std::unique_ptr<Context> c;
  EXPECT_TRUE(Context::Create(m, cp, &c).ok());
  LoraSet set(m, cp.n_batch);
  bool affects;
  EXPECT_TRUE(set.Set(a, 1.0f, &affects).ok());
  c->SetProjectionDelta(&set);
  Accuracy acc;
  for (size_t i = 0; i < queries.size(); i += stride) {
    const auto ids_of = [&](const char* key) { return queries[i].at(key).get<std::vector<int32_t>>(); };
    std::vector<int32_t> prompt = ids_of("prompt_ids"), expected = ids_of("expected_ids"),
                         reference = ids_of("reference_output_ids");
    c->Reset();
    EXPECT_TRUE(c->Eval(prompt.data(), prompt.size()).ok());
    std::vector<int32_t> out;
    while (out.size() < 48) {
      const float* l = c->logits();
      const int32_t t = static_cast<int32_t>(std::max_element(l, l + m.config().n_vocab) - l);
      out.push_back(t);
      if (t == 36 || t == 1 || c->n_past() + 1 >= c->n_ctx()) break;  // <nexa_end>, <eos>
      EXPECT_TRUE(c->Eval(&t, 1).ok());
    }
    acc.n++;
    acc.correct += out == expected;
    acc.same_as_reference += out == reference;
  }
  return acc;
}

TEST(LoraAccuracy, EachAdapterOnItsTwistedQueries) {
  auto m = load_model("octopus-tiny.gguf");
  ASSERT_TRUE(m);
  // Every query natively (499 short decodes, ~1 s); every 8th under EMBER_TEST_QUICK.
  const size_t stride = quick() ? 8 : 1;
  const char* env = std::getenv("EMBER_LORA_BASE");  // e.g. octopus-tiny-q8_0.gguf
  std::unique_ptr<Model> qm;
  const Model* base = m.get();
  if (env) { qm = load_model(env); base = qm.get(); }
  struct { const char* domain; double want; } kDomains[] = {{"phone", 89.0}, {"home", 100.0}, {"travel", 81.0}};
  for (const auto& d : kDomains) {
    auto a = load_lora(*base, std::string("adapters/") + d.domain);
    ASSERT_TRUE(a);
    Accuracy acc = twisted_accuracy(*base, a.get(), d.domain, stride);
    const double pct = 100.0 * acc.correct / std::max(acc.n, 1);
    std::printf("[ lora ] %-6s %d queries: exact match %.1f %% (RESULTS.md %.1f %%), identical to the "
                "PyTorch output %d/%d\n", d.domain, acc.n, pct, d.want, acc.same_as_reference, acc.n);
    if (stride == 1 && !env) {
      EXPECT_NEAR(pct, d.want, 0.05) << d.domain;
      EXPECT_EQ(acc.same_as_reference, acc.n) << d.domain;
    } else {
      EXPECT_GE(acc.same_as_reference, acc.n * 9 / 10) << d.domain;
    }
  }
}

}  // namespace
}  // namespace ember
