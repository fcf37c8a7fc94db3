// Architectures as data: strict loading (every tensor a family needs is required, every
// tensor it does not use is an error, each named in one line), the family rules that
// fixtures' goldens do not isolate (sliding-window pattern, per-layer rope, LongRoPE,
// output bias) checked through exact identities, and LoRA's refusal of fused projections.
// Fixture goldens: test_engine.cpp.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine/lora/lora.h"
#include "engine/model/model.h"
#include "support/fixtures.h"
#include "support/gguf_edit.h"
#include "support/logits.h"

namespace ember {
namespace {

using testing::all_logits;
using testing::fixture;
using testing::GgufEdit;

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// A model parsed from bytes that it keeps alive.
struct Loaded {
  std::vector<uint8_t> bytes;
  std::unique_ptr<Model> model;
  Status status;
};

std::unique_ptr<Loaded> load_edited(const std::string& name, const GgufEdit& e) {
  auto l = std::make_unique<Loaded>();
  l->bytes = testing::edit_gguf(fixture("models/" + name), e);
  std::unique_ptr<GgufFile> g;
  l->status = GgufFile::FromMemory(l->bytes.data(), l->bytes.size(), name, &g);
  if (l->status.ok()) l->status = Model::FromGguf(std::move(g), {}, &l->model);
  return l;
}

// Expects loading `name` with `e` applied to fail with a message holding each of `parts`.
void expect_refused(const std::string& name, const GgufEdit& e, const std::vector<std::string>& parts) {
  auto l = load_edited(name, e);
  ASSERT_FALSE(l->status.ok()) << name << " loaded";
  for (const std::string& p : parts) EXPECT_TRUE(contains(l->status.message(), p)) << l->status.message();
  EXPECT_EQ(l->status.message().find('\n'), std::string::npos) << "one line: " << l->status.message();
}

GgufEdit drop(const std::string& tensor) {
  return {.tensor = [tensor](const GgufTensor& t, GgufWriter&) { return t.name == tensor; }};
}

GgufEdit keep_first_elements(const std::string& tensor, int64_t n) {
  return {.tensor = [tensor, n](const GgufTensor& t, GgufWriter& w) {
    if (t.name != tensor) return false;
    EXPECT_TRUE(w.AddTensor(t.name, t.type, {n}, t.data, static_cast<size_t>(n) * 4).ok());
    return true;
  }};
}

std::vector<int32_t> case_ids(const std::string& model, int k = 3) {
  return testing::read_ids(fixture("models/" + model.substr(0, model.size() - 5) + ".case-" + std::to_string(k) +
                                   ".tokens.txt"));
}

// ---- strict loading -------------------------------------------------------------------

// Every model fixture (not the adapters, not the vocabulary-only files) binds exactly the
// tensors it holds. A weight type this build cannot compute with yet is another error
// (the type table's), counted apart.
TEST(ArchLoading, EveryFixtureModelLoads) {
  size_t loaded = 0, type_unsupported = 0;
  for (const char* dir : {"models", "models/octopus-tiny", "models/octopus-server"})
    for (const auto& e : std::filesystem::directory_iterator(testing::fixtures_dir() + "/" + dir)) {
      if (e.path().extension() != ".gguf") continue;
      std::unique_ptr<GgufFile> g;
      ASSERT_TRUE(GgufFile::Open(e.path().string(), &g).ok()) << e.path();
      std::string type;
      if (g->GetStringOr("general.type", &type).ok() && type == "adapter") continue;
      std::unique_ptr<Model> m;
      Status s = Model::FromGguf(std::move(g), {}, &m);
      if (s.code() == Code::kUnsupported && contains(s.message(), "cannot compute with")) {
        ++type_unsupported;
        continue;
      }
      EXPECT_TRUE(s.ok()) << s.ToString();
      ++loaded;
    }
  std::printf("[ fixtures ] %zu models loaded, %zu hold a weight type this build does not compute\n", loaded,
              type_unsupported);
  EXPECT_GE(loaded + type_unsupported, 32u);
}

// llama.cpp refuses a file whose tensor count does not match what the architecture
// creates; Ember names the first tensor it did not use.
TEST(ArchLoading, TensorTheArchitectureDoesNotUseIsAnError) {
  struct Case {
    const char* model;
    const char* tensor;
    std::vector<int64_t> ne;
  };
  const Case cases[] = {
      {"tiny-qwen3-f32.gguf", "blk.1.attn_q.bias", {256}},                   // qwen3 has no biases
      {"tiny-llama-gqa-f32.gguf", "rope_factors_long.weight", {8}},          // LongRoPE is phi3's
      {"tiny-phi3-f32.gguf", "blk.0.ffn_gate.weight", {128, 256}},           // fused into ffn_up
      {"tiny-phi3-f32.gguf", "blk.2.attn_q.weight", {128, 128}},             // fused into attn_qkv
      {"tiny-gemma-f32.gguf", "blk.0.post_attention_norm.weight", {128}},    // gemma 1: no post norms
      {"tiny-gemma3-f32.gguf", "rope_freqs.weight", {32}},                   // llama's
      {"tiny-qwen2-f32.gguf", "blk.0.attn_output.bias", {128}},              // only q/k/v biases
      {"stories260K.gguf", "something_else.weight", {4}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(std::string(c.model) + " + " + c.tensor);
    int64_t n = 1;
    for (int64_t d : c.ne) n *= d;
    const std::vector<float> ones(static_cast<size_t>(n), 1.0f);
    GgufEdit e{.extra = [&](GgufWriter& w) {
      ASSERT_TRUE(w.AddTensor(c.tensor, DType::F32, c.ne, ones.data(), ones.size() * 4).ok());
    }};
    expect_refused(c.model, e, {c.model, std::string("'") + c.tensor + "'", "not used"});
  }
}

TEST(ArchLoading, MissingRequiredTensorIsNamed) {
  const std::pair<const char*, const char*> cases[] = {
      {"tiny-qwen2-f32.gguf", "blk.1.attn_q.bias"},
      {"tiny-qwen2-f32.gguf", "blk.0.attn_k.bias"},
      {"tiny-qwen2-f32.gguf", "blk.2.attn_v.bias"},
      {"tiny-qwen3-f32.gguf", "blk.2.attn_q_norm.weight"},
      {"tiny-qwen3-f32.gguf", "blk.0.attn_k_norm.weight"},
      {"tiny-gemma3-f32.gguf", "blk.5.attn_q_norm.weight"},
      {"tiny-gemma3-f32.gguf", "blk.1.attn_k_norm.weight"},
      {"tiny-gemma3-f32.gguf", "blk.3.post_attention_norm.weight"},
      {"tiny-gemma3-f32.gguf", "blk.4.post_ffw_norm.weight"},
      {"tiny-phi3-f32.gguf", "blk.1.attn_qkv.weight"},
      {"tiny-phi3-f32.gguf", "blk.2.ffn_up.weight"},
      {"tiny-llama3-f32.gguf", "blk.0.attn_q.weight"},
  };
  for (const auto& [model, tensor] : cases) {
    SCOPED_TRACE(std::string(model) + " - " + tensor);
    expect_refused(model, drop(tensor), {model, std::string("'") + tensor + "'", "missing"});
  }
}

TEST(ArchLoading, WrongShapesAreNamed) {
  // phi3's ffn_up holds gate and up: n_ff rows alone are the wrong shape.
  GgufEdit half_up{.tensor = [](const GgufTensor& t, GgufWriter& w) {
    if (t.name != "blk.0.ffn_up.weight") return false;
    EXPECT_TRUE(w.AddTensor(t.name, t.type, {t.ne[0], t.ne[1] / 2}, t.data, t.nbytes / 2).ok());
    return true;
  }};
  expect_refused("tiny-phi3-f32.gguf", half_up, {"'blk.0.ffn_up.weight'", "[128, 256]", "expected [128, 512]"});
  expect_refused("tiny-qwen3-f32.gguf", keep_first_elements("blk.1.attn_q_norm.weight", 32),
                 {"'blk.1.attn_q_norm.weight'", "32 elements, expected 64"});
  expect_refused("tiny-qwen2-f32.gguf", keep_first_elements("blk.1.attn_k.bias", 32),
                 {"'blk.1.attn_k.bias'", "32 elements, expected 64"});
  expect_refused("tiny-llama3-f32.gguf", keep_first_elements("rope_freqs.weight", 8),
                 {"'rope_freqs.weight'", "8 elements, expected 16"});
  // A frequency divisor must be positive (0 would give infinite angles).
  GgufEdit zero_freq{.tensor = [](const GgufTensor& t, GgufWriter& w) {
    if (t.name != "rope_freqs.weight") return false;
    std::vector<float> v = testing::f32_values(t);
    v[3] = 0;
    testing::add_f32(w, t.name, v);
    return true;
  }};
  expect_refused("tiny-llama3-f32.gguf", zero_freq, {"'rope_freqs.weight'", "element 3"});
  // LongRoPE comes in pairs.
  GgufEdit long_only{
      .extra = [](GgufWriter& w) { testing::add_f32(w, "rope_factors_long.weight", std::vector<float>(16, 2)); }};
  expect_refused("tiny-phi3-f32.gguf", long_only, {"'rope_factors_short.weight'", "missing"});
}

// Sizes whose products overflow int32 (fuzz_gguf: head_count x key_length) are refused
// with the value and the limit, before anything is computed from them.
TEST(ArchLoading, AbsurdSizesAreRefusedWithTheLimit) {
  expect_refused("tiny-qwen3-f32.gguf",
                 {.keys = [](GgufWriter& w) { w.SetU32("qwen3.attention.key_length", 134217732u); }},
                 {"head_count x key_length", "exceeds 16777216"});
  expect_refused("tiny-llama3-f32.gguf", {.keys = [](GgufWriter& w) { w.SetU32("llama.block_count", 70000u); }},
                 {"block_count 70000", "exceeds 65536"});
}

// A block_count far beyond the limit is refused before anything is sized by it: block
// count 2^30 once allocated 1 GiB (and set it in a billion-step loop) before the refusal
// (found by fuzz_gguf). A child process loads it with only 256 MiB of address space to
// spare, so an allocation of that size fails it (std::bad_alloc escapes: abort).
TEST(ArchLoading, AbsurdBlockCountIsRefusedBeforeItAllocates) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "the sanitizers reserve terabytes of address space: no RLIMIT_AS";
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
  GTEST_SKIP() << "the sanitizers reserve terabytes of address space: no RLIMIT_AS";
#endif
#endif
  const std::vector<uint8_t> bytes = testing::edit_gguf(
      fixture("models/tiny-gemma2-f32.gguf"), {.keys = [](GgufWriter& w) { w.SetU32("gemma2.block_count", 1u << 30); }});
  ASSERT_FALSE(bytes.empty());
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    long pages = 0;
    if (FILE* f = std::fopen("/proc/self/statm", "r")) {
      if (std::fscanf(f, "%ld", &pages) != 1) pages = 0;
      std::fclose(f);
    }
    const rlim_t spare = rlim_t{256} << 20, limit = static_cast<rlim_t>(pages) * ::sysconf(_SC_PAGESIZE) + spare;
    const rlimit lim{limit, limit};
    if (pages == 0 || ::setrlimit(RLIMIT_AS, &lim) != 0) ::_exit(2);
    std::unique_ptr<GgufFile> g;
    std::unique_ptr<Model> m;
    Status st = GgufFile::FromMemory(bytes.data(), bytes.size(), "huge.gguf", &g);
    if (st.ok()) st = Model::FromGguf(std::move(g), {}, &m);
    ::_exit(!st.ok() && contains(st.message(), "block_count 1073741824") && contains(st.message(), "exceeds 65536")
                ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
      << (WIFSIGNALED(status) ? "killed by signal " + std::to_string(WTERMSIG(status))
                              : "exit " + std::to_string(WEXITSTATUS(status)));
}

// rope_freqs of all ones divides by 1.0 exactly: the same bits as a file without it.
TEST(ArchLoading, RopeFreqsOfOnesChangeNothing) {
  const std::string name = "stories260K.gguf";
  auto ones = load_edited(
      name, {.extra = [](GgufWriter& w) { testing::add_f32(w, "rope_freqs.weight", std::vector<float>(4, 1)); }});
  auto plain = load_edited(name, {});
  ASSERT_TRUE(ones->status.ok() && plain->status.ok()) << ones->status.ToString() << plain->status.ToString();
  EXPECT_NE(ones->model->weights().rope_freqs, nullptr);
  const std::vector<int32_t> ids = case_ids(name);
  EXPECT_TRUE(all_logits(*ones->model, ids) == all_logits(*plain->model, ids));
}

// ---- family rules through exact identities ---------------------------------------------

// One rule for Gemma 2 and 3: layer il slides when il % P < P - 1 (P = 0: all).
TEST(ArchRules, SlidingWindowPattern) {
  auto with_pattern = [](const std::string& model, int period) {
    const std::string key =
        (contains(model, "gemma3") ? "gemma3" : "gemma2") + std::string(".attention.sliding_window_pattern");
    auto l = load_edited(model, {.keys = [&](GgufWriter& w) {
                                   if (period >= 0) w.SetU32(key, static_cast<uint32_t>(period));
                                 }});
    EXPECT_TRUE(l->status.ok()) << l->status.ToString();
    return l->model ? l->model->config().layer_swa : std::vector<uint8_t>{};
  };
  using V = std::vector<uint8_t>;
  EXPECT_EQ(with_pattern("tiny-gemma2-f32.gguf", -1), (V{1, 0, 1, 0}));
  EXPECT_EQ(with_pattern("tiny-gemma3-f32.gguf", -1), (V{1, 1, 1, 1, 1, 0}));  // default 6
  EXPECT_EQ(with_pattern("tiny-gemma3-f32.gguf", 3), (V{1, 1, 0, 1, 1, 0}));
  EXPECT_EQ(with_pattern("tiny-gemma3-f32.gguf", 0), (V{1, 1, 1, 1, 1, 1}));
  EXPECT_EQ(with_pattern("tiny-gemma3-f32.gguf", 1), (V{0, 0, 0, 0, 0, 0}));
  auto w640 = load_edited("tiny-gemma3w640-q4_k_m.gguf", {});
  ASSERT_TRUE(w640->status.ok()) << w640->status.ToString();
  EXPECT_EQ(w640->model->config().layer_swa, (V{1, 0}));
  // phi3 carries sliding_window 2047; llama.cpp b10256 disables phi3's window.
  auto phi3 = load_edited("tiny-phi3-f32.gguf", {});
  ASSERT_TRUE(phi3->status.ok()) << phi3->status.ToString();
  EXPECT_EQ(phi3->model->config().sliding_window, 0);
  EXPECT_EQ(phi3->model->config().layer_swa, (V{0, 0, 0}));
}

// gemma3: sliding-window layers rope with rope.freq_base_swa and no scaling, global layers
// with rope.freq_base and rope.scaling.factor. With every layer local (pattern 0) the global
// keys must not change a bit, with every layer global (pattern 1) the local key must not.
TEST(ArchRules, Gemma3RopesLocalAndGlobalLayersApart) {
  const std::string name = "tiny-gemma3-f32.gguf";
  const std::vector<int32_t> ids = case_ids(name);
  auto logits = [&](uint32_t period, const char* key, float value) {
    auto l = load_edited(name, {.keys = [&](GgufWriter& w) {
      w.SetU32("gemma3.attention.sliding_window_pattern", period);
      if (key) w.SetF32(std::string("gemma3.") + key, value);
    }});
    EXPECT_TRUE(l->status.ok()) << l->status.ToString();
    return l->model ? all_logits(*l->model, ids) : std::vector<float>{};
  };
  const std::vector<float> local = logits(0, nullptr, 0), global = logits(1, nullptr, 0);
  ASSERT_FALSE(local.empty());
  EXPECT_TRUE(logits(0, "rope.scaling.factor", 4) == local);
  EXPECT_TRUE(logits(0, "rope.freq_base", 12345) == local);
  EXPECT_FALSE(logits(0, "rope.freq_base_swa", 20000) == local);
  EXPECT_TRUE(logits(1, "rope.freq_base_swa", 20000) == global);
  EXPECT_FALSE(logits(1, "rope.scaling.factor", 4) == global);
  EXPECT_FALSE(logits(1, "rope.freq_base", 12345) == global);
}

// LongRoPE (phi3 128k): rope_factors_short up to rope.scaling.original_context_length,
// rope_factors_long above it, as divisors of every frequency; rope.scaling.attn_factor
// multiplies cos and sin. Identities that hold bit for bit (powers of two scale exactly):
//   factors all 2               == linear rope.scaling.factor 2 (theta/2 either way)
//   factors all 4               == linear rope.scaling.factor 4
//   attn_factor 2 (cos, sin x2) == the q and k rows of attn_qkv times 2 (rope is linear;
//                                  rope_dim == head_dim here, so every q/k value doubles)
TEST(ArchRules, LongRopeFactorsAndAttnFactor) {
  const std::string name = "tiny-phi3-f32.gguf";
  const std::vector<int32_t> ids = case_ids(name);
  auto longrope = load_edited(name, {.keys = [](GgufWriter& w) { w.SetF32("phi3.rope.scaling.attn_factor", 2); },
                                     .extra = [](GgufWriter& w) {
                                       testing::add_f32(w, "rope_factors_long.weight", std::vector<float>(16, 4));
                                       testing::add_f32(w, "rope_factors_short.weight", std::vector<float>(16, 2));
                                     }});
  auto linear = [&](float factor) {
    return load_edited(name, {.keys = [=](GgufWriter& w) { w.SetF32("phi3.rope.scaling.factor", factor); },
                              .tensor = [](const GgufTensor& t, GgufWriter& w) {
                                if (t.name.find("attn_qkv") == std::string::npos) return false;
                                std::vector<float> v = testing::f32_values(t);
                                const size_t qk = static_cast<size_t>(t.ne[0]) * 256;  // q rows, then k rows
                                for (size_t i = 0; i < qk; ++i) v[i] *= 2;
                                EXPECT_TRUE(w.AddTensor(t.name, t.type, {t.ne[0], t.ne[1]}, v.data(), t.nbytes).ok());
                                return true;
                              }});
  };
  auto by2 = linear(2), by4 = linear(4);
  ASSERT_TRUE(longrope->status.ok() && by2->status.ok() && by4->status.ok()) << longrope->status.ToString();
  ASSERT_EQ(longrope->model->config().rope_ctx_orig, 4096);
  const int short_ctx = static_cast<int>(ids.size()) + 8, long_ctx = 4097;
  const std::vector<float> got_short = all_logits(*longrope->model, ids, 1, false, 0, short_ctx);
  const std::vector<float> got_long = all_logits(*longrope->model, ids, 1, false, 0, long_ctx);
  EXPECT_TRUE(got_short == all_logits(*by2->model, ids, 1, false, 0, short_ctx));
  EXPECT_TRUE(got_long == all_logits(*by4->model, ids, 1, false, 0, long_ctx));
  EXPECT_FALSE(got_short == got_long);  // the context size picks the factors
}

// qwen2's optional output.bias is added to the logits (float adds, bit for bit).
TEST(ArchRules, OutputBiasIsAddedToTheLogits) {
  const std::string name = "tiny-qwen2-f32.gguf";
  std::vector<float> bias(512);
  for (size_t i = 0; i < bias.size(); ++i) bias[i] = 0.01f * static_cast<float>(i % 17) - 0.05f;
  auto with = load_edited(name, {.extra = [&](GgufWriter& w) { testing::add_f32(w, "output.bias", bias); }});
  auto without = load_edited(name, {});
  ASSERT_TRUE(with->status.ok() && without->status.ok()) << with->status.ToString();
  const std::vector<int32_t> ids = case_ids(name, 2);
  std::vector<float> want = all_logits(*without->model, ids);
  for (size_t i = 0; i < want.size(); ++i) want[i] += bias[i % bias.size()];
  EXPECT_TRUE(all_logits(*with->model, ids) == want);
}

// ---- LoRA on fused projections ------------------------------------------------------------

LoraWeight lora_weight(int32_t layer, Proj p, int32_t n_in, int32_t n_out) {
  LoraWeight w;
  w.target = lora_target_name(layer, p);
  w.layer = layer;
  w.proj = p;
  w.rank = 2;
  w.n_in = n_in;
  w.n_out = n_out;
  w.a.assign(static_cast<size_t>(w.rank) * n_in * 4, 0);
  w.b.assign(static_cast<size_t>(w.rank) * n_out * 4, 0);
  return w;
}

TEST(ArchLora, FusedProjectionsAreRefused) {
  auto phi3 = load_edited("tiny-phi3-f32.gguf", {});
  ASSERT_TRUE(phi3->status.ok()) << phi3->status.ToString();
  const Model& m = *phi3->model;
  std::unique_ptr<LoraAdapter> a;
  Status s = LoraAdapter::FromWeights(m, "up", 0, false, {lora_weight(0, Proj::kUp, 128, 256)}, &a);
  EXPECT_EQ(s.code(), Code::kUnsupported) << s.ToString();
  EXPECT_TRUE(contains(s.message(), "fused projection 'ffn_up'")) << s.message();
  s = LoraAdapter::FromWeights(m, "k", 0, false, {lora_weight(1, Proj::kK, 128, 128)}, &a);
  EXPECT_TRUE(contains(s.message(), "fused projection 'attn_qkv'")) << s.message();
  // Unfused projections of the same model adapt as usual.
  s = LoraAdapter::FromWeights(m, "down", 0, false, {lora_weight(0, Proj::kDown, 256, 128)}, &a);
  EXPECT_TRUE(s.ok()) << s.ToString();

  // A GGUF adapter of the fused tensor itself, as llama.cpp's converter would name it.
  GgufWriter w;
  w.SetString("general.architecture", "phi3");
  w.SetString("general.type", "adapter");
  w.SetString("adapter.type", "lora");
  w.SetF32("adapter.lora.alpha", 2);
  const std::vector<float> A(128 * 2, 0.f), B(2 * 384, 0.f);
  ASSERT_TRUE(w.AddTensor("blk.0.attn_qkv.weight.lora_a", DType::F32, {128, 2}, A.data(), A.size() * 4).ok());
  ASSERT_TRUE(w.AddTensor("blk.0.attn_qkv.weight.lora_b", DType::F32, {2, 384}, B.data(), B.size() * 4).ok());
  const std::vector<uint8_t> bytes = w.Serialize();
  std::unique_ptr<GgufFile> g;
  ASSERT_TRUE(GgufFile::FromMemory(bytes.data(), bytes.size(), "qkv-adapter.gguf", &g).ok());
  s = LoraAdapter::FromGguf(m, *g, &a);
  EXPECT_EQ(s.code(), Code::kUnsupported) << s.ToString();
  EXPECT_TRUE(contains(s.message(), "blk.0.attn_qkv.weight.lora_a")) << s.message();
  EXPECT_TRUE(contains(s.message(), "fused projection 'attn_qkv'")) << s.message();
}

// ---- context size and memory -------------------------------------------------------------

std::unique_ptr<Loaded> with_training_context(uint32_t n) {
  return load_edited("tiny-llama3-f32.gguf", {.keys = [n](GgufWriter& w) { w.SetU32("llama.context_length", n); }});
}

// A 131072-token training context (Llama 3.2) gets the 4096 default, a short one its own.
TEST(ContextDefaults, TrainingContextCappedAt4096) {
  for (const auto& [train, want] : {std::pair{131072u, 4096}, std::pair{4096u, 4096}, std::pair{300u, 300}}) {
    auto l = with_training_context(train);
    ASSERT_TRUE(l->status.ok()) << l->status.ToString();
    std::unique_ptr<Context> ctx;
    ContextParams cp;
    cp.type_k = cp.type_v = DType::F32;  // float32 cache: the goldens' tolerance
    cp.n_threads = 1;
    ASSERT_TRUE(Context::Create(*l->model, cp, &ctx).ok());
    EXPECT_EQ(ctx->n_ctx(), want) << "training context " << train;
  }
}

// With less memory available than the weights and the context need, Create refuses in one
// line naming the bytes; a meminfo without MemAvailable means no check.
TEST(ContextDefaults, RefusedWhenTheSystemHasTooLittleMemory) {
  auto l = with_training_context(131072);
  ASSERT_TRUE(l->status.ok()) << l->status.ToString();
  const std::string path =
      (std::filesystem::temp_directory_path() / ("ember-meminfo-" + std::to_string(::getpid()))).string();
  auto create = [&](const char* meminfo, int32_t n_ctx) {
    if (std::FILE* f = std::fopen(path.c_str(), "w")) {
      std::fputs(meminfo, f);
      std::fclose(f);
    }
    setenv("EMBER_MEMINFO", path.c_str(), 1);
    std::unique_ptr<Context> ctx;
    ContextParams cp;
    cp.type_k = cp.type_v = DType::F32;  // float32 cache: the goldens' tolerance
    cp.n_ctx = n_ctx;
    cp.n_threads = 1;
    const Status st = Context::Create(*l->model, cp, &ctx);
    unsetenv("EMBER_MEMINFO");
    return st;
  };
  // tiny-llama3: 3 layers x 2 KV heads x (32 + 32) floats = 1.5 KiB per position, 12 MiB at
  // 8192, plus its 2.9 MB of weights: more than 2 MiB, less than 64 GiB.
  const Status low = create("MemTotal: 1000000 kB\nMemAvailable:    2048 kB\n", 8192);
  EXPECT_EQ(low.code(), Code::kOutOfMemory);
  EXPECT_TRUE(contains(low.message(), "are available; use a smaller context (-c)")) << low.message();
  EXPECT_TRUE(contains(low.message(), "n_ctx 8192")) << low.message();
  EXPECT_TRUE(contains(low.message(), "but only 2 MiB")) << low.message();
  EXPECT_EQ(low.message().find('\n'), std::string::npos);
  EXPECT_TRUE(create("MemAvailable: 67108864 kB\n", 8192).ok());
  EXPECT_TRUE(create("MemTotal: 1000 kB\n", 8192).ok());  // no MemAvailable line: not checked
  std::remove(path.c_str());
}

}  // namespace
}  // namespace ember
