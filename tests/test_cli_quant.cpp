// `ember quantize` and `ember synth`: the C API (ember_quantize_file, ember_synth_file)
// and the commands (run as a child process, like tests/test_cli.cpp does).
//   - quantizing the F32 fixtures gives the Q8_0 / Q4_0 fixtures' tensors byte for byte,
//     with every metadata key of the fixture;
//   - the llama.cpp type rules (output Q6_K/Q8_0, use_more_bits for q4_k_m, fallbacks):
//     the type of every tensor of the eleven fixtures llama.cpp quantized, and llama.cpp's
//     recorded choices on models of other depths and shapes (GQA, 70B, MoE, tied 192-wide);
//   - `ember quantize` of tiny-llama256-f32 gives llama.cpp's files: types and bytes;
//   - f16 output loads and its logits agree with F32 within the f16 rounding bound;
//   - the tiny synth presets load and evaluate; synth is deterministic by seed and
//     independent of the thread count; its weights have the stated statistics;
//   - errors: one line, exit 2 for usage, 1 for files, naming the tensor and shape.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "ember/ember_tools.h"
#include "offline/quantize_model.h"
#include "loader/gguf.h"
#include "loader/gguf_writer.h"
#include "quant/convert.h"
#include "quant/quantize.h"
#include "support/fixtures.h"
#include "support/run_ember.h"

extern char** environ;

namespace ember {
namespace {

using testing::fixture;

// ---- helpers ------------------------------------------------------------------------------

std::unique_ptr<GgufFile> open_gguf(const std::string& path) {
  std::unique_ptr<GgufFile> f;
  Status s = GgufFile::Open(path, &f);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return f;
}

size_t elem_size(GgufType t) {
  switch (t) {
    case GgufType::kU8: case GgufType::kI8: case GgufType::kBool: return 1;
    case GgufType::kU16: case GgufType::kI16: return 2;
    case GgufType::kU32: case GgufType::kI32: case GgufType::kF32: return 4;
    case GgufType::kU64: case GgufType::kI64: case GgufType::kF64: return 8;
    default: return 0;
  }
}

bool same_value(const GgufValue& a, const GgufValue& b) {
  if (a.type != b.type) return false;
  switch (a.type) {
    case GgufType::kString: return a.str == b.str;
    case GgufType::kArray:
      if (a.elem_type != b.elem_type || a.count != b.count) return false;
      if (a.elem_type == GgufType::kString) return a.strings == b.strings;
      return std::memcmp(a.elems, b.elems, a.count * elem_size(a.elem_type)) == 0;
    default: return a.i == b.i && a.u == b.u && a.f == b.f;
  }
}

// Same tensors (names, order, types, shapes, bytes) in both files.
void expect_same_tensors(const GgufFile& got, const GgufFile& want) {
  ASSERT_EQ(got.tensors().size(), want.tensors().size());
  for (size_t i = 0; i < want.tensors().size(); ++i) {
    const GgufTensor& g = got.tensors()[i];
    const GgufTensor& w = want.tensors()[i];
    SCOPED_TRACE(w.name);
    EXPECT_EQ(g.name, w.name);
    EXPECT_EQ(g.type, w.type) << dtype_name(g.type) << " vs " << dtype_name(w.type);
    EXPECT_EQ(g.n_dims, w.n_dims);
    for (int d = 0; d < 4; ++d) EXPECT_EQ(g.ne[d], w.ne[d]);
    ASSERT_EQ(g.nbytes, w.nbytes);
    EXPECT_EQ(std::memcmp(g.data, w.data, w.nbytes), 0) << "tensor bytes differ";
  }
}

std::map<std::string, DType> tensor_types(const GgufFile& f) {
  std::map<std::string, DType> m;
  for (const GgufTensor& t : f.tensors()) m[t.name] = t.type;
  return m;
}

std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

using testing::one_line;

using Result = testing::CliResult;

struct Counter {
  int calls = 0, last_i = 0, n = 0, cancel_at = 0;
  std::vector<std::string> names, types, notes;
};

int count_progress(int32_t i, int32_t n, const char* name, const char* type, const char* note, void* user) {
  auto* c = static_cast<Counter*>(user);
  EXPECT_EQ(i, c->last_i + 1);
  c->last_i = i;
  c->n = n;
  ++c->calls;
  c->names.push_back(name);
  c->types.push_back(type);
  c->notes.push_back(note);
  return c->cancel_at != 0 && i == c->cancel_at;
}

// A temporary directory per test; run() executes the built `ember`.
class QuantFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::temp_directory_path() / "ember-quant-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr) << std::strerror(errno);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
  }
  std::string path(const std::string& name) const { return dir_ + "/" + name; }
  // Files in the test directory (to check that nothing, e.g. a temporary, is left).
  std::set<std::string> listing() const {
    std::set<std::string> s;
    for (const auto& e : std::filesystem::directory_iterator(dir_))
      if (e.path().filename().string()[0] != '.') s.insert(e.path().filename().string());
    return s;
  }

  ember_status quantize(const std::string& in, const std::string& out, const char* type, Counter* c = nullptr,
                        int threads = 1) {
    ember_quantize_params p = ember_quantize_default_params();
    p.n_threads = threads;
    if (c) {
      p.progress = count_progress;
      p.user = c;
    }
    return ember_quantize_file(in.c_str(), out.c_str(), type, &p);
  }
  ember_status synth(const std::string& out, const char* preset, const char* type, uint64_t seed, int threads = 1,
                     Counter* c = nullptr) {
    ember_synth_params p = ember_synth_default_params();
    p.preset = preset;
    p.type = type;
    p.seed = seed;
    p.n_threads = threads;
    if (c) {
      p.progress = count_progress;
      p.user = c;
    }
    return ember_synth_file(out.c_str(), &p);
  }

  // A minimal llama-named file whose attn_q rows hold 48 values (not a multiple of 32).
  std::string odd_rows_model() {
    GgufWriter w;
    w.SetString("general.architecture", "llama");
    w.SetU32("llama.block_count", 1);
    std::vector<float> q(48 * 4, 0.5f), norm(48, 1.0f);
    EXPECT_TRUE(w.AddTensor("blk.0.attn_norm.weight", DType::F32, {48}, norm.data(), norm.size() * 4).ok());
    EXPECT_TRUE(w.AddTensor("blk.0.attn_q.weight", DType::F32, {48, 4}, q.data(), q.size() * 4).ok());
    const std::string p = path("odd.gguf");
    EXPECT_TRUE(w.Write(p).ok());
    return p;
  }

  // Runs `ember args...` with stdin /dev/null, stdout/stderr captured; 60 s limit
  // (the same runner as tests/test_cli.cpp, emulator included in cross builds).
  Result run(const std::vector<std::string>& args) { return testing::run_ember(args, path(".run"), 60); }

  std::string dir_;
};

// ---- ember_quantize_file -------------------------------------------------------------------

// The fixtures were made by llama-quantize's default type choice and ggml's reference
// quantizers: our file must hold exactly their tensors and every one of their keys.
TEST_F(QuantFiles, QuantizeReproducesTheQ8_0AndQ4_0Fixtures) {
  const char* models[] = {"tiny-llama-gqa", "tiny-gemma"};
  for (const char* m : models) {
    for (const char* type : {"q8_0", "q4_0"}) {
      SCOPED_TRACE(std::string(m) + " " + type);
      const std::string out = path(std::string(m) + "-" + type + ".gguf");
      Counter c;
      ASSERT_EQ(quantize(fixture(std::string("models/") + m + "-f32.gguf"), out, type, &c), EMBER_OK)
          << ember_last_error();
      auto got = open_gguf(out);
      auto want = open_gguf(fixture(std::string("models/") + m + "-" + type + ".gguf"));
      ASSERT_TRUE(got && want);
      expect_same_tensors(*got, *want);
      for (const auto& [key, v] : want->metadata()) {
        const GgufValue* g = got->Find(key);
        ASSERT_NE(g, nullptr) << key;
        EXPECT_TRUE(same_value(*g, v)) << key;
      }
      // ... and every key of the input (CopyMetadata), nothing else.
      auto in = open_gguf(fixture(std::string("models/") + m + "-f32.gguf"));
      for (const auto& [key, v] : in->metadata()) EXPECT_TRUE(got->Has(key)) << key;
      std::set<std::string> extra;
      for (const auto& [key, v] : got->metadata())
        if (!in->Has(key)) extra.insert(key);
      const std::set<std::string> allowed = {"general.quantization_version", "general.file_type"};
      for (const std::string& k : extra) EXPECT_TRUE(allowed.count(k)) << k;
      // Progress: once per tensor, in order.
      EXPECT_EQ(c.calls, static_cast<int>(want->tensors().size()));
      EXPECT_EQ(c.n, c.calls);
      EXPECT_EQ(c.names.front(), want->tensors().front().name);
      EXPECT_EQ(listing().count(std::filesystem::path(out).filename().string()), 1u);
    }
  }
  EXPECT_EQ(listing().size(), 4u) << "no temporary files left";
}

TEST_F(QuantFiles, QuantizeToF16LoadsAndAgreesWithF32WithinTheRoundingBound) {
  const std::string f32 = fixture("models/tiny-llama-gqa-f32.gguf"), f16 = path("f16.gguf");
  ASSERT_EQ(quantize(f32, f16, "F16"), EMBER_OK) << ember_last_error();
  auto g = open_gguf(f16);
  uint32_t ft = 99;
  EXPECT_TRUE(g->GetU32("general.file_type", &ft).ok());
  EXPECT_EQ(ft, 1u);
  for (const GgufTensor& t : g->tensors()) EXPECT_EQ(t.type, t.n_dims == 1 ? DType::F32 : DType::F16) << t.name;

  // Logits of case 3 (60 tokens) from both files.
  const std::vector<int32_t> ids = testing::read_ids(fixture("models/tiny-llama-gqa-f32.case-3.tokens.txt"));
  auto logits = [&](const std::string& p) {
    ember_model* m = nullptr;
    EXPECT_EQ(ember_model_load(p.c_str(), nullptr, &m), EMBER_OK) << ember_last_error();
    ember_context_params cp = ember_context_default_params();
    cp.n_ctx = static_cast<int32_t>(ids.size());
    cp.n_batch = static_cast<int32_t>(ids.size());
    cp.n_threads = 1;
    cp.logits_all = 1;
    ember_context* c = nullptr;
    EXPECT_EQ(ember_context_create(m, &cp, &c), EMBER_OK) << ember_last_error();
    EXPECT_EQ(ember_eval(c, ids.data(), ids.size()), EMBER_OK) << ember_last_error();
    ember_model_info info{};
    ember_model_get_info(m, &info);
    std::vector<float> all;
    for (size_t i = 0; i < ids.size(); ++i) {
      const float* l = ember_get_logits(c, static_cast<int32_t>(i));
      all.insert(all.end(), l, l + info.n_vocab);
    }
    ember_context_free(c);
    ember_model_free(m);
    return all;
  };
  const std::vector<float> a = logits(f32), b = logits(f16);
  ASSERT_EQ(a.size(), b.size());
  double max_abs = 0, max_diff = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    max_abs = std::max(max_abs, std::fabs(double(a[i])));
    max_diff = std::max(max_diff, std::fabs(double(a[i]) - b[i]));
  }
  // Bound: rounding to f16 moves each weight by at most u = 2^-11 relative. To first
  // order each rounded matrix perturbs its output by at most u relative, and the
  // perturbations add along the longest chain of matrices a logit depends on:
  // embedding, 4 layers x (q/k -> scores, v, output; gate/up, down) = 4 x 5, output
  // matrix: 22 matrices. RMSNorm and the residual stream pass relative errors with gain
  // ~1, so |dlogit| <= 22 * u * max|logit| (= 0.089 here; measured: about 6e-3).
  const double bound = 22 * std::ldexp(1.0, -11) * max_abs;
  EXPECT_LE(max_diff, bound) << "max |logit| " << max_abs;
  EXPECT_GT(max_diff, 0.0) << "f16 rounding must change something";
  RecordProperty("max_logit_diff_f16", std::to_string(max_diff));
}

TEST_F(QuantFiles, QuantizeQ4_K_MFollowsTheLlamaCppRules) {
  // Synthetic tiny llama: n_embd 256 (k-quants fit), 2 layers, separate output.
  const std::string f32 = path("tiny.gguf"), out = path("tiny-q4_k_m.gguf");
  ASSERT_EQ(synth(f32, "tiny", "f32", 3), EMBER_OK) << ember_last_error();
  ASSERT_EQ(quantize(f32, out, "q4_k_m"), EMBER_OK) << ember_last_error();
  auto g = open_gguf(out);
  auto types = tensor_types(*g);
  EXPECT_EQ(types["output.weight"], DType::Q6_K);
  EXPECT_EQ(types["token_embd.weight"], DType::Q4_K);
  EXPECT_EQ(types["output_norm.weight"], DType::F32);
  // use_more_bits(i, 2): i < 0 || i >= 1 || (i % 3) == 2: only layer 1.
  EXPECT_EQ(types["blk.0.attn_v.weight"], DType::Q4_K);
  EXPECT_EQ(types["blk.0.ffn_down.weight"], DType::Q4_K);
  EXPECT_EQ(types["blk.1.attn_v.weight"], DType::Q6_K);
  EXPECT_EQ(types["blk.1.ffn_down.weight"], DType::Q6_K);
  EXPECT_EQ(types["blk.1.attn_q.weight"], DType::Q4_K);
  EXPECT_EQ(types["blk.1.ffn_norm.weight"], DType::F32);
  uint32_t ft = 0, qv = 0;
  EXPECT_TRUE(g->GetU32("general.file_type", &ft).ok());
  EXPECT_TRUE(g->GetU32("general.quantization_version", &qv).ok());
  EXPECT_EQ(ft, 15u);
  EXPECT_EQ(qv, 2u);
  EXPECT_EQ(g->Find("ember.synth.preset")->str, "tiny");  // metadata kept

  // Writing q4_k_m directly from synth gives the same tensors (same rules, same weights).
  const std::string direct = path("direct.gguf");
  ASSERT_EQ(synth(direct, "tiny", "q4_k_m", 3), EMBER_OK) << ember_last_error();
  expect_same_tensors(*open_gguf(direct), *g);

  // q4_0: the output matrix gets Q6_K too (every quantized target but q8_0).
  ASSERT_EQ(quantize(f32, path("q4_0.gguf"), "q4_0"), EMBER_OK);
  EXPECT_EQ(tensor_types(*open_gguf(path("q4_0.gguf")))["output.weight"], DType::Q6_K);
  ASSERT_EQ(quantize(f32, path("q8_0.gguf"), "q8_0"), EMBER_OK);
  EXPECT_EQ(tensor_types(*open_gguf(path("q8_0.gguf")))["output.weight"], DType::Q8_0);
}

// use_more_bits on real depths, the tied output, and the fallbacks, on the rule itself.
TEST(QuantRules, TypeChoiceMatchesLlamaQuantize) {
  auto choose = [](QuantTarget t, const std::string& name, int64_t ne0, int64_t ne1, int n_layer, bool has_output,
                   std::string* note = nullptr) {
    TensorShape s{name, ne1 ? 2u : 1u, {ne0, ne1 ? ne1 : 1, 1, 1}, DType::F32};
    DType out = DType::F32;
    std::string n;
    ModelFacts m;
    m.n_layer = n_layer;
    m.has_output = has_output;
    Status st = ChooseTensorType(t, s, m, &out, note ? note : &n);
    EXPECT_TRUE(st.ok()) << st.message();
    return out;
  };
  // 22 layers (TinyLlama): n/8 = 2, 7n/8 = 19 -> 0, 1, 4, 7, 10, 13, 16, 19, 20, 21.
  std::vector<int> more;
  for (int i = 0; i < 22; ++i)
    if (choose(QuantTarget::kQ4_K_M, "blk." + std::to_string(i) + ".attn_v.weight", 2048, 256, 22, true) ==
        DType::Q6_K) {
      more.push_back(i);
      EXPECT_EQ(choose(QuantTarget::kQ4_K_M, "blk." + std::to_string(i) + ".ffn_down.weight", 5632, 2048, 22, true),
                DType::Q6_K);
    }
  EXPECT_EQ(more, (std::vector<int>{0, 1, 4, 7, 10, 13, 16, 19, 20, 21}));
  // Tied output: token_embd is the output matrix.
  EXPECT_EQ(choose(QuantTarget::kQ4_K_M, "token_embd.weight", 2048, 256000, 18, false), DType::Q6_K);
  EXPECT_EQ(choose(QuantTarget::kQ4_K_M, "token_embd.weight", 2048, 32000, 22, true), DType::Q4_K);
  EXPECT_EQ(choose(QuantTarget::kQ8_0, "token_embd.weight", 2048, 256000, 18, false), DType::Q8_0);
  EXPECT_EQ(choose(QuantTarget::kQ4_0, "output.weight", 2048, 32000, 22, true), DType::Q6_K);
  // Rows of 896 (Qwen2.5 0.5B): the output Q8_0, Q4_K falls back to Q5_0, Q6_K to Q8_0.
  std::string note;
  EXPECT_EQ(choose(QuantTarget::kQ4_K_M, "token_embd.weight", 896, 151936, 24, false, &note), DType::Q8_0);
  EXPECT_EQ(note, "");
  EXPECT_EQ(choose(QuantTarget::kQ4_K_M, "blk.3.attn_q.weight", 896, 896, 24, false, &note), DType::Q5_0);
  EXPECT_NE(note.find("896"), std::string::npos);
  EXPECT_NE(note.find("q5_0 instead of q4_k"), std::string::npos) << note;
  EXPECT_EQ(choose(QuantTarget::kQ4_K_M, "blk.0.attn_v.weight", 896, 128, 24, false, &note), DType::Q8_0);
  EXPECT_EQ(choose(QuantTarget::kQ4_K_M, "blk.0.ffn_down.weight", 4864, 896, 24, false), DType::Q6_K);
  // Float targets: every matrix; 1-D tensors keep their type.
  EXPECT_EQ(choose(QuantTarget::kF16, "output.weight", 100, 7, 1, true), DType::F16);
  EXPECT_EQ(choose(QuantTarget::kQ4_K_M, "blk.0.attn_norm.weight", 2048, 0, 22, true), DType::F32);
}

TEST_F(QuantFiles, QuantizeErrorsNameTheTensorAndLeaveNoFile) {
  const std::string odd = odd_rows_model();
  for (const char* type : {"q8_0", "q4_0"}) {
    EXPECT_EQ(quantize(odd, path("o.gguf"), type), EMBER_ERR_INVALID_ARGUMENT) << type;
    const std::string msg = ember_last_error();
    EXPECT_NE(msg.find("blk.0.attn_q.weight"), std::string::npos) << msg;
    EXPECT_NE(msg.find("[48, 4]"), std::string::npos) << msg;
    EXPECT_NE(msg.find("32"), std::string::npos) << msg;
  }
  // q4_k_m falls back as llama.cpp does: Q4_K -> Q5_0 -> F16 for rows of 48.
  Counter c;
  ASSERT_EQ(quantize(odd, path("o.gguf"), "q4_k_m", &c), EMBER_OK) << ember_last_error();
  EXPECT_EQ(tensor_types(*open_gguf(path("o.gguf")))["blk.0.attn_q.weight"], DType::F16);
  ASSERT_EQ(c.notes.size(), 2u);
  EXPECT_NE(c.notes[1].find("f16 instead of q4_k"), std::string::npos) << c.notes[1];

  EXPECT_EQ(quantize(fixture("models/tiny-llama-gqa-f32.gguf"), path("x.gguf"), "q5_k"), EMBER_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(ember_last_error()).find("q5_k"), std::string::npos);
  EXPECT_NE(quantize(path("missing.gguf"), path("x.gguf"), "q8_0"), EMBER_OK);
  EXPECT_NE(std::string(ember_last_error()).find("missing.gguf"), std::string::npos);
  EXPECT_EQ(quantize(fixture("models/tiny-llama-gqa-q8_0.gguf"), path("x.gguf"), "q4_0"), EMBER_ERR_UNSUPPORTED);
  EXPECT_NE(std::string(ember_last_error()).find("requantiz"), std::string::npos);
  EXPECT_EQ(quantize(odd, odd, "f16"), EMBER_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(ember_quantize_file(nullptr, "x", "q8_0", nullptr), EMBER_ERR_INVALID_ARGUMENT);

  // Cancelled at tensor 3: CANCELLED, no output, no temporary.
  Counter cancel;
  cancel.cancel_at = 3;
  EXPECT_EQ(quantize(fixture("models/tiny-llama-gqa-f32.gguf"), path("c.gguf"), "q8_0", &cancel),
            EMBER_ERR_CANCELLED);
  EXPECT_EQ(cancel.calls, 3);
  EXPECT_EQ(listing(), (std::set<std::string>{"odd.gguf", "o.gguf"}));
}

TEST(QuantApi, TypeNames) {
  std::vector<std::string> names;
  for (int32_t i = 0; const char* n = ember_quantize_type_name(i); ++i) names.push_back(n);
  EXPECT_EQ(names, (std::vector<std::string>{"q8_0", "q6_k", "q5_k_m", "q5_1", "q5_0", "q4_k_m", "q4_k_s", "q4_1",
                                             "q4_0", "iq4_nl", "iq4_xs", "q3_k_m", "q2_k", "f16", "bf16", "f32"}));
  EXPECT_EQ(ember_quantize_type_name(-1), nullptr);
}

// ---- ember_synth_file ------------------------------------------------------------------------

TEST_F(QuantFiles, SynthTinyPresetsLoadAndEvaluate) {
  for (const char* preset : {"tiny", "tiny-gemma"}) {
    for (const char* type : {"f32", "f16"}) {
      SCOPED_TRACE(std::string(preset) + " " + type);
      const std::string p = path(std::string(preset) + "-" + type + ".gguf");
      Counter c;
      ASSERT_EQ(synth(p, preset, type, 1, 1, &c), EMBER_OK) << ember_last_error();
      EXPECT_EQ(c.calls, std::string(preset) == "tiny" ? 21 : 20);
      ember_model* m = nullptr;
      ASSERT_EQ(ember_model_load(p.c_str(), nullptr, &m), EMBER_OK) << ember_last_error();
      ember_model_info info{};
      ASSERT_EQ(ember_model_get_info(m, &info), EMBER_OK);
      EXPECT_EQ(info.n_vocab, 512);
      EXPECT_EQ(info.n_embd, 256);
      EXPECT_EQ(info.n_layer, 2);
      EXPECT_STREQ(info.architecture, std::string(preset) == "tiny" ? "llama" : "gemma");
      // The vocabulary works: text round-trips through the tokenizer.
      int32_t ids[64];
      size_t n = 0;
      const char* text = "a cab, a bad bee";
      ASSERT_EQ(ember_tokenize(m, text, std::strlen(text), 1, 0, ids, 64, &n), EMBER_OK) << ember_last_error();
      EXPECT_EQ(ids[0], 1);
      char back[128];
      size_t nb = 0;
      ASSERT_EQ(ember_detokenize(m, ids + 1, n - 1, 0, back, sizeof back, &nb), EMBER_OK);
      EXPECT_EQ(std::string(back, nb), text);

      ember_context_params cp = ember_context_default_params();
      cp.n_ctx = 16;
      cp.n_threads = 1;
      cp.logits_all = 1;
      ember_context* ctx = nullptr;
      ASSERT_EQ(ember_context_create(m, &cp, &ctx), EMBER_OK) << ember_last_error();
      const int32_t toks[5] = {1, 300, 301, 302, 400};
      ASSERT_EQ(ember_eval(ctx, toks, 5), EMBER_OK) << ember_last_error();
      for (int i = 0; i < 5; ++i) {
        const float* l = ember_get_logits(ctx, i);
        ASSERT_NE(l, nullptr);
        float lo = l[0], hi = l[0];
        for (int v = 0; v < info.n_vocab; ++v) {
          ASSERT_TRUE(std::isfinite(l[v])) << "position " << i << " token " << v;
          lo = std::min(lo, l[v]);
          hi = std::max(hi, l[v]);
        }
        EXPECT_GT(hi - lo, 0.1f) << "logits should vary";
      }
      ember_context_free(ctx);
      ember_model_free(m);
    }
  }
}

// The quantized files run, and their logits track the F32 model's as far as the
// quantization errors predict. Each matrix m adds a relative perturbation of RMS
// sqrt(NMSE_m) (measured here from the stored blocks against the F32 weights); the
// engine also quantizes each matmul's input to 8 bits, which adds about the NMSE an
// 8-bit block quantizer makes on such data (taken as Q8_0's NMSE on the matrix itself).
// Independent perturbations add in quadrature along the network, each passed with gain
// ~1 (RMSNorm, residuals), so
//   rms(dlogits) / rms(logits) ~ sqrt(sum_m (NMSE_m + NMSE_q8_m))
// over all 2-D tensors (an overestimate: q/k and gate/up act in parallel). Required:
// between 1/4 and 1x that figure (measured: 0.6-0.8x). A wrong block layout or kernel
// gives a ratio near 1 / figure.
TEST_F(QuantFiles, QuantizedSynthModelsTrackF32AsTheWeightErrorsPredict) {
  const std::vector<int32_t> ids = {1, 300, 301, 302, 400, 410, 420, 430};
  auto logits = [&](const std::string& p) {
    ember_model* m = nullptr;
    EXPECT_EQ(ember_model_load(p.c_str(), nullptr, &m), EMBER_OK) << ember_last_error();
    std::vector<float> all;
    if (!m) return all;
    ember_context_params cp = ember_context_default_params();
    cp.n_ctx = 16;
    cp.n_threads = 1;
    cp.logits_all = 1;
    ember_context* c = nullptr;
    EXPECT_EQ(ember_context_create(m, &cp, &c), EMBER_OK) << ember_last_error();
    EXPECT_EQ(ember_eval(c, ids.data(), ids.size()), EMBER_OK) << ember_last_error();
    for (size_t i = 0; i < ids.size(); ++i) {
      const float* l = ember_get_logits(c, static_cast<int32_t>(i));
      all.insert(all.end(), l, l + 512);
    }
    ember_context_free(c);
    ember_model_free(m);
    return all;
  };
  ASSERT_EQ(synth(path("f32.gguf"), "tiny", "f32", 4), EMBER_OK) << ember_last_error();
  const std::vector<float> ref = logits(path("f32.gguf"));
  auto f32 = open_gguf(path("f32.gguf"));
  for (const char* type : {"q8_0", "q4_0", "q4_k_m"}) {
    SCOPED_TRACE(type);
    const std::string p = path(std::string(type) + ".gguf");
    ASSERT_EQ(synth(p, "tiny", type, 4), EMBER_OK) << ember_last_error();
    auto q = open_gguf(p);
    double sum_nmse = 0;
    for (const GgufTensor& t : q->tensors()) {
      if (t.n_dims < 2) continue;
      const GgufTensor* w = f32->FindTensor(t.name);
      std::vector<float> row(t.ne[0]);
      const size_t rb = t.nbytes / t.rows();
      double e = 0, s = 0;
      for (int64_t r = 0; r < t.rows(); ++r) {
        ASSERT_TRUE(to_float_row(t.type, t.data + r * rb, row.data(), row.size()));
        const float* x = reinterpret_cast<const float*>(w->data) + r * t.ne[0];
        for (int64_t i = 0; i < t.ne[0]; ++i) {
          e += (double(row[i]) - x[i]) * (double(row[i]) - x[i]);
          s += double(x[i]) * x[i];
        }
      }
      sum_nmse += e / s;
      // 8-bit activation quantization, estimated on the matrix's own values.
      const float* x = reinterpret_cast<const float*>(w->data);
      const std::vector<float> xs(x, x + t.n_elements);
      std::vector<uint8_t> q8(row_bytes(DType::Q8_0, t.ne[0]) * t.rows());
      ASSERT_GT(quantize_tensor(DType::Q8_0, xs.data(), q8.data(), t.rows(), t.ne[0]), 0u);
      const size_t rb8 = q8.size() / t.rows();
      e = 0;
      for (int64_t r = 0; r < t.rows(); ++r) {
        ASSERT_TRUE(to_float_row(DType::Q8_0, q8.data() + r * rb8, row.data(), row.size()));
        for (int64_t i = 0; i < t.ne[0]; ++i) {
          const double d = double(row[i]) - xs[r * t.ne[0] + i];
          e += d * d;
        }
      }
      sum_nmse += e / s;
    }
    const std::vector<float> got = logits(p);
    ASSERT_EQ(got.size(), ref.size());
    double e = 0, s = 0;
    for (size_t i = 0; i < ref.size(); ++i) {
      ASSERT_TRUE(std::isfinite(got[i]));
      e += (double(got[i]) - ref[i]) * (double(got[i]) - ref[i]);
      s += double(ref[i]) * ref[i];
    }
    const double rel = std::sqrt(e / s), predicted = std::sqrt(sum_nmse);
    EXPECT_LE(rel, predicted) << "relative logit error " << rel << ", predicted " << predicted;
    EXPECT_GE(rel, predicted / 4) << "relative logit error " << rel << ", predicted " << predicted;
    RecordProperty(std::string("logit_rel_error_") + type, std::to_string(rel) + " / " + std::to_string(predicted));
  }
}

TEST_F(QuantFiles, SynthIsDeterministicBySeed) {
  for (const char* type : {"q8_0", "q4_k_m"}) {
    ASSERT_EQ(synth(path("a.gguf"), "tiny-gemma", type, 42), EMBER_OK) << ember_last_error();
    ASSERT_EQ(synth(path("b.gguf"), "tiny-gemma", type, 42), EMBER_OK);
    ASSERT_EQ(synth(path("c.gguf"), "tiny-gemma", type, 43), EMBER_OK);
    const std::string a = slurp(path("a.gguf")), b = slurp(path("b.gguf")), c = slurp(path("c.gguf"));
    EXPECT_GT(a.size(), 100000u);
    EXPECT_TRUE(a == b) << type << ": same seed, different bytes";
    EXPECT_EQ(a.size(), c.size());
    EXPECT_FALSE(a == c) << type << ": another seed, same bytes";
  }
}

// Rows are generated and converted each by one thread: bytes independent of threads.
// A separate suite because it starts threads (see MatmulThreads in test_kernels.cpp).
class QuantThreads : public QuantFiles {};
TEST_F(QuantThreads, ThreadsDoNotChangeTheBytes) {
  ASSERT_EQ(synth(path("t1.gguf"), "tiny", "q4_k_m", 9, 1), EMBER_OK) << ember_last_error();
  ASSERT_EQ(synth(path("t3.gguf"), "tiny", "q4_k_m", 9, 3), EMBER_OK) << ember_last_error();
  EXPECT_TRUE(slurp(path("t1.gguf")) == slurp(path("t3.gguf")));
  ASSERT_EQ(quantize(fixture("models/tiny-gemma-f32.gguf"), path("q1.gguf"), "q4_0", nullptr, 1), EMBER_OK);
  ASSERT_EQ(quantize(fixture("models/tiny-gemma-f32.gguf"), path("q3.gguf"), "q4_0", nullptr, 3), EMBER_OK);
  EXPECT_TRUE(slurp(path("q1.gguf")) == slurp(path("q3.gguf")));
}

// Matrices N(0, 1/fan_in): mean 0 and variance 1/fan_in within sampling error (the
// Irwin-Hall(4) variable has kurtosis 2.7, so the variance estimate of N samples has
// relative standard error sqrt(1.7/N): 0.5% for N = 65536; tolerance 3%), |w| below
// the generator's cut 2*sqrt(3)/sqrt(fan_in); norms exactly 1; vocabulary unique.
TEST_F(QuantFiles, SynthWeightsHaveTheStatedStatistics) {
  ASSERT_EQ(synth(path("s.gguf"), "tiny", "f32", 5), EMBER_OK) << ember_last_error();
  auto g = open_gguf(path("s.gguf"));
  for (const char* name : {"blk.0.attn_q.weight", "blk.1.ffn_down.weight", "token_embd.weight"}) {
    const GgufTensor* t = g->FindTensor(name);
    ASSERT_NE(t, nullptr);
    const float* w = reinterpret_cast<const float*>(t->data);
    double s = 0, s2 = 0, mx = 0;
    for (uint64_t i = 0; i < t->n_elements; ++i) {
      s += w[i];
      s2 += double(w[i]) * w[i];
      mx = std::max(mx, std::fabs(double(w[i])));
    }
    const double n = static_cast<double>(t->n_elements), fan_in = static_cast<double>(t->ne[0]);
    const double mean = s / n, var = s2 / n - mean * mean;
    EXPECT_LT(std::fabs(mean), 5 / std::sqrt(n * fan_in)) << name;  // 5 standard errors
    EXPECT_NEAR(var * fan_in, 1.0, 0.03) << name;
    EXPECT_LE(mx * std::sqrt(fan_in), 2 * std::sqrt(3.0) + 1e-4) << name;
  }
  const GgufTensor* norm = g->FindTensor("blk.1.attn_norm.weight");
  for (uint64_t i = 0; i < norm->n_elements; ++i) ASSERT_EQ(reinterpret_cast<const float*>(norm->data)[i], 1.0f);
  std::vector<std::string_view> tokens;
  ASSERT_TRUE(g->GetStringArray("tokenizer.ggml.tokens", &tokens).ok());
  EXPECT_EQ(tokens.size(), 512u);
  EXPECT_EQ(std::set<std::string_view>(tokens.begin(), tokens.end()).size(), tokens.size());
  EXPECT_EQ(tokens[3], "<0x00>");
  EXPECT_EQ(tokens[258], "<0xFF>");
  EXPECT_EQ(tokens[259], "\xE2\x96\x81");
}

TEST_F(QuantFiles, SynthErrors) {
  EXPECT_EQ(synth(path("x.gguf"), "gpt-5", "f32", 0), EMBER_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(ember_last_error()).find("gpt-5"), std::string::npos);
  EXPECT_EQ(synth(path("x.gguf"), "tiny", "q3_k", 0), EMBER_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(synth(dir_, "tiny", "f32", 0), EMBER_ERR_INVALID_ARGUMENT);  // a directory
  EXPECT_EQ(ember_synth_file(nullptr, nullptr), EMBER_ERR_INVALID_ARGUMENT);
  Counter c;
  c.cancel_at = 2;
  EXPECT_EQ(synth(path("x.gguf"), "tiny", "f32", 0, 1, &c), EMBER_ERR_CANCELLED);
  EXPECT_TRUE(listing().empty());
  std::vector<std::string> names;
  for (int32_t i = 0; const char* n = ember_synth_preset_name(i); ++i) {
    names.push_back(n);
    EXPECT_NE(ember_synth_preset_description(i), nullptr);
  }
  for (const char* want : {"tiny", "tinyllama-1.1b", "llama-3.2-1b", "gemma-2b", "qwen2.5-0.5b"})
    EXPECT_NE(std::find(names.begin(), names.end(), want), names.end()) << want;
}

// ---- llama.cpp's files: the tensor types of every fixture it quantized ---------------------

// The files llama.cpp b10256's quantizer made (no importance matrix), the target that names
// their file type, and the F32 model whose names, shapes and keys the rules read (the
// tiny-gemma3w640 file has no F32 twin: its own shapes serve).
struct LlamaCppFile {
  const char* file;
  QuantTarget target;
  const char* source;
};
constexpr const char* kLlama256F32 = "models/tiny-llama256-f32.gguf";
const LlamaCppFile kLlamaCppFiles[] = {
    {"models/tiny-llama256-q2_k.gguf", QuantTarget::kQ2_K, kLlama256F32},
    {"models/tiny-llama256-q3_k_m.gguf", QuantTarget::kQ3_K_M, kLlama256F32},
    {"models/tiny-llama256-q4_1.gguf", QuantTarget::kQ4_1, kLlama256F32},
    {"models/tiny-llama256-q4_k_s.gguf", QuantTarget::kQ4_K_S, kLlama256F32},
    {"models/tiny-llama256-q5_0.gguf", QuantTarget::kQ5_0, kLlama256F32},
    {"models/tiny-llama256-q5_1.gguf", QuantTarget::kQ5_1, kLlama256F32},
    {"models/tiny-llama256-q5_k_m.gguf", QuantTarget::kQ5_K_M, kLlama256F32},
    {"models/tiny-llama256-q6_k.gguf", QuantTarget::kQ6_K, kLlama256F32},
    {"models/tiny-llama256-iq4_nl.gguf", QuantTarget::kIQ4_NL, kLlama256F32},
    {"models/tiny-llama256-iq4_xs.gguf", QuantTarget::kIQ4_XS, kLlama256F32},
    {"models/tiny-gemma3w640-q4_k_m.gguf", QuantTarget::kQ4_K_M, "models/tiny-gemma3w640-q4_k_m.gguf"},
};

std::vector<TensorShape> shapes_of(const GgufFile& f) {
  std::vector<TensorShape> v;
  for (const GgufTensor& t : f.tensors()) v.push_back({t.name, t.n_dims, {t.ne[0], t.ne[1], t.ne[2], t.ne[3]}, t.type});
  return v;
}

// For every tensor of every file, the type the rules choose from the source model is the
// type llama.cpp wrote; and the target's general.file_type is the file's. The
// tiny-gemma3w640 rows (640, not a multiple of 256) exercise the fallbacks: tied output
// Q8_0, Q4_K -> Q5_0 (attn_q/k/v of layer 0, ffn_gate/up), Q6_K -> Q8_0 (attn_v of layer 1).
TEST(QuantRules, ChooseTheTypesOfEveryLlamaCppFixture) {
  for (const LlamaCppFile& c : kLlamaCppFiles) {
    SCOPED_TRACE(c.file);
    auto want = open_gguf(fixture(c.file));
    auto src = open_gguf(fixture(c.source));
    ASSERT_TRUE(want && src);
    uint32_t file_type = 0;
    EXPECT_TRUE(want->GetU32("general.file_type", &file_type).ok());
    EXPECT_EQ(file_type, TargetInfo(c.target).file_type);
    ModelFacts m;
    ASSERT_TRUE(ReadModelFacts(*src, &m).ok());
    const std::vector<TensorShape> shapes = shapes_of(*src);
    std::vector<DType> types;
    std::vector<std::string> notes;
    ASSERT_TRUE(ChooseTensorTypes(c.target, shapes, m, &types, &notes).ok());
    ASSERT_EQ(shapes.size(), want->tensors().size());
    int fallbacks = 0;
    for (size_t i = 0; i < shapes.size(); ++i) {
      const GgufTensor* w = want->FindTensor(shapes[i].name);
      ASSERT_NE(w, nullptr) << shapes[i].name;
      EXPECT_EQ(types[i], w->type) << shapes[i].name << ": " << dtype_name(types[i]) << " vs llama.cpp's "
                                   << dtype_name(w->type);
      fallbacks += !notes[i].empty();
    }
    // 640-wide rows: layer 0's attn_q, attn_k, attn_v and both layers' ffn_gate/ffn_up (Q4_K
    // -> Q5_0), layer 1's attn_q/attn_k (Q4_K -> Q5_0) and attn_v (Q6_K -> Q8_0).
    EXPECT_EQ(fallbacks, c.source == kLlama256F32 ? 0 : 10);
  }
}

// An F32 copy of a quantized model (its tensors dequantized, every key kept).
std::string write_f32_copy(const GgufFile& src, const std::string& out) {
  GgufWriter w;
  w.CopyMetadata(src);
  w.SetU32("general.file_type", 0);
  for (const GgufTensor& t : src.tensors()) {
    std::vector<float> f(t.n_elements);
    for (int64_t r = 0; r < t.rows(); ++r)
      EXPECT_TRUE(to_float_row(t.type, t.data + r * row_bytes(t.type, t.ne[0]), f.data() + r * t.ne[0], t.ne[0]));
    EXPECT_TRUE(w.AddTensor(t.name, DType::F32, std::vector<int64_t>(t.ne, t.ne + t.n_dims), f.data(), f.size() * 4).ok());
  }
  EXPECT_TRUE(w.Write(out).ok());
  return out;
}

// `ember quantize` end to end against llama.cpp's own files: the same tensor types (and
// shapes), and, since every reference quantizer reproduces ggml's bytes, the same bytes
// (llama.cpp orders tensors by layer and name: compared by name).
TEST_F(QuantFiles, QuantizeWritesLlamaCppsTensorsForEveryFileType) {
  int written = 0;
  for (const LlamaCppFile& c : kLlamaCppFiles) {
    SCOPED_TRACE(c.file);
    auto want = open_gguf(fixture(c.file));
    ASSERT_TRUE(want);
    const bool same_weights = c.source == kLlama256F32;  // else: re-quantized dequantized weights
    const std::string in = same_weights ? fixture(c.source) : write_f32_copy(*want, path("f32.gguf"));
    const std::string out_name = std::string(TargetInfo(c.target).name) + (same_weights ? "" : "-gemma3w640") + ".gguf";
    const std::string out = path(out_name);
    const ember_status st = quantize(in, out, TargetInfo(c.target).name);
    ASSERT_EQ(st, EMBER_OK) << ember_last_error();
    auto got = open_gguf(out);
    ASSERT_TRUE(got);
    ASSERT_EQ(got->tensors().size(), want->tensors().size());
    for (const GgufTensor& g : got->tensors()) {
      const GgufTensor* w = want->FindTensor(g.name);
      ASSERT_NE(w, nullptr) << g.name;
      EXPECT_EQ(g.type, w->type) << g.name << ": " << dtype_name(g.type) << " vs " << dtype_name(w->type);
      EXPECT_EQ(std::vector<int64_t>(g.ne, g.ne + 4), std::vector<int64_t>(w->ne, w->ne + 4)) << g.name;
      if (same_weights && g.nbytes == w->nbytes) {
        EXPECT_EQ(std::memcmp(g.data, w->data, g.nbytes), 0) << g.name << ": bytes differ from llama.cpp's";
      }
    }
    uint32_t ft = 0;
    EXPECT_TRUE(got->GetU32("general.file_type", &ft).ok());
    EXPECT_EQ(ft, TargetInfo(c.target).file_type);
    ++written;
  }
  EXPECT_EQ(written, 11);
  RecordProperty("file_types_written", written);
}

// Llama-layout models of other depths and shapes, tensors only (the shapes and keys the
// rules read), and the type llama.cpp b10256's quantizer gave each tensor when run on F32
// files of exactly these shapes (recorded as runs over the layers: "q5_kx2,q4_kx30" =
// layers 0-1 Q5_K, 2-31 Q4_K). They reach the rules the fixtures do not: n_gqa >= 4, the
// first 2 / 4 attn_v, the first 1/16 and 1/8 of ffn_down, the 70B llama bump (and its
// 65B exception, n_head_kv == n_head), 8 experts (3-D expert tensors, the layer from the
// name), a tied 192-wide model (fallbacks everywhere, the output Q8_0).
struct SynthLlama {
  int32_t n_layer, n_embd, n_head, n_head_kv, n_ff;
  bool tied;
  int32_t n_expert;
};

std::vector<TensorShape> llama_shapes(const SynthLlama& c) {
  const int64_t E = c.n_embd, hd = c.n_embd / c.n_head, Q = c.n_head * hd, KV = c.n_head_kv * hd, F = c.n_ff;
  std::vector<TensorShape> v;
  auto add = [&v](std::string name, std::vector<int64_t> ne) {
    TensorShape t{std::move(name), static_cast<uint32_t>(ne.size()), {1, 1, 1, 1}, DType::F32};
    for (size_t d = 0; d < ne.size(); ++d) t.ne[d] = ne[d];
    v.push_back(t);
  };
  add("token_embd.weight", {E, 512});
  add("output_norm.weight", {E});
  if (!c.tied) add("output.weight", {E, 512});
  for (int l = 0; l < c.n_layer; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".";
    add(b + "attn_norm.weight", {E});
    add(b + "attn_q.weight", {E, Q});
    add(b + "attn_k.weight", {E, KV});
    add(b + "attn_v.weight", {E, KV});
    add(b + "attn_output.weight", {Q, E});
    add(b + "ffn_norm.weight", {E});
    if (c.n_expert) {
      add(b + "ffn_gate_inp.weight", {E, c.n_expert});
      add(b + "ffn_gate_exps.weight", {E, F, c.n_expert});
      add(b + "ffn_up_exps.weight", {E, F, c.n_expert});
      add(b + "ffn_down_exps.weight", {F, E, c.n_expert});
    } else {
      add(b + "ffn_gate.weight", {E, F});
      add(b + "ffn_up.weight", {E, F});
      add(b + "ffn_down.weight", {F, E});
    }
  }
  return v;
}

// "token_embd=q4_k output=q6_k attn_q=q4_kx32 ...": the matrices' types, runs over layers.
std::string type_runs(const std::vector<TensorShape>& shapes, const std::vector<DType>& types) {
  const char* order[] = {"token_embd", "output", "attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up",
                         "ffn_down", "ffn_gate_exps", "ffn_up_exps", "ffn_down_exps"};
  std::map<std::string, std::vector<std::string>> by_kind;  // in layer order
  for (size_t i = 0; i < shapes.size(); ++i) {
    std::string kind = shapes[i].name.substr(0, shapes[i].name.size() - std::string(".weight").size());
    if (kind.rfind("blk.", 0) == 0) kind = kind.substr(kind.find('.', 4) + 1);
    by_kind[kind].push_back(dtype_name(types[i]));
  }
  std::string s;
  for (const char* kind : order) {
    auto it = by_kind.find(kind);
    if (it == by_kind.end()) continue;
    if (!s.empty()) s += ' ';
    s.append(kind).append("=");
    const std::vector<std::string>& v = it->second;
    for (size_t i = 0, j = 0; i < v.size(); i = j) {
      while (j < v.size() && v[j] == v[i]) ++j;
      if (i) s += ',';
      s += v[i];
      if (j - i > 1) s.append("x").append(std::to_string(j - i));
    }
  }
  return s;
}

TEST(QuantRules, MatchLlamaCppOnOtherDepthsAndShapes) {
  const SynthLlama m32g4{32, 256, 8, 2, 512, false, 0}, m80w256{80, 256, 8, 2, 256, false, 0},
      m80mha{80, 256, 4, 4, 256, false, 0}, moe8{4, 256, 4, 2, 256, false, 8}, m17g3{17, 192, 6, 2, 256, true, 0};
  const struct {
    SynthLlama model;
    QuantTarget target;
    const char* llama_cpp;
  } cases[] = {
      {m32g4, QuantTarget::kQ2_K,
       "token_embd=q2_k output=q6_k attn_q=q2_kx32 attn_k=q2_kx32 attn_v=q4_kx32 attn_output=q3_kx32 ffn_gate=q2_kx32 ffn_up=q2_kx32 ffn_down=q3_kx32"},
      {m32g4, QuantTarget::kQ3_K_M,
       "token_embd=q3_k output=q6_k attn_q=q3_kx32 attn_k=q3_kx32 attn_v=q5_kx2,q4_kx30 attn_output=q4_kx32 ffn_gate=q3_kx32 ffn_up=q3_kx32 ffn_down=q5_kx2,q4_kx30"},
      {m32g4, QuantTarget::kQ4_K_S,
       "token_embd=q4_k output=q6_k attn_q=q4_kx32 attn_k=q4_kx32 attn_v=q5_kx4,q4_kx28 attn_output=q4_kx32 ffn_gate=q4_kx32 ffn_up=q4_kx32 ffn_down=q5_kx4,q4_kx28"},
      {m32g4, QuantTarget::kQ4_K_M,
       "token_embd=q4_k output=q6_k attn_q=q4_kx32 attn_k=q4_kx32 attn_v=q6_kx4,q4_kx2,q6_k,q4_kx2,q6_k,q4_kx2,q6_k,q4_kx2,q6_k,q4_kx2,q6_k,q4_kx2,q6_k,q4_kx2,q6_k,q4_kx2,q6_kx5 attn_output=q4_kx32 ffn_gate=q4_kx32 ffn_up=q4_kx32 ffn_down=q6_kx4,q4_kx2,q6_k,q4_kx2,q6_k,q4_kx2,q6_k,q4_kx2,q6_k,q4_kx2,q6_k,q4_kx2,q6_k,q4_kx2,q6_k,q4_kx2,q6_kx5"},
      {m32g4, QuantTarget::kIQ4_NL,
       "token_embd=iq4_nl output=q6_k attn_q=iq4_nlx32 attn_k=iq4_nlx32 attn_v=q5_kx32 attn_output=iq4_nlx32 ffn_gate=iq4_nlx32 ffn_up=iq4_nlx32 ffn_down=q5_kx4,iq4_nlx28"},
      {m80w256, QuantTarget::kQ2_K,
       "token_embd=q2_k output=q6_k attn_q=q2_kx80 attn_k=q2_kx80 attn_v=q5_kx80 attn_output=q3_kx80 ffn_gate=q2_kx80 ffn_up=q2_kx80 ffn_down=q3_kx80"},
      {m80w256, QuantTarget::kQ3_K_M,
       "token_embd=q3_k output=q6_k attn_q=q3_kx80 attn_k=q3_kx80 attn_v=q5_kx80 attn_output=q4_kx80 ffn_gate=q3_kx80 ffn_up=q3_kx80 ffn_down=q5_kx5,q4_kx75"},
      {m80mha, QuantTarget::kQ3_K_M,
       "token_embd=q3_k output=q6_k attn_q=q3_kx80 attn_k=q3_kx80 attn_v=q5_kx2,q4_kx78 attn_output=q4_kx80 ffn_gate=q3_kx80 ffn_up=q3_kx80 ffn_down=q5_kx5,q4_kx75"},
      {moe8, QuantTarget::kQ2_K,
       "token_embd=q2_k output=q6_k attn_q=q2_kx4 attn_k=q8_0x4 attn_v=q8_0x4 attn_output=q5_kx4 ffn_gate_exps=q2_kx4 ffn_up_exps=q2_kx4 ffn_down_exps=q3_kx4"},
      {moe8, QuantTarget::kQ4_K_M,
       "token_embd=q4_k output=q6_k attn_q=q4_kx4 attn_k=q8_0x4 attn_v=q8_0x4 attn_output=q5_kx4 ffn_gate_exps=q4_kx4 ffn_up_exps=q4_kx4 ffn_down_exps=q4_kx2,q6_kx2"},
      {moe8, QuantTarget::kQ4_0,
       "token_embd=q4_0 output=q6_k attn_q=q4_0x4 attn_k=q8_0x4 attn_v=q8_0x4 attn_output=q4_0x4 ffn_gate_exps=q4_0x4 ffn_up_exps=q4_0x4 ffn_down_exps=q4_0x4"},
      {m17g3, QuantTarget::kQ3_K_M,
       "token_embd=q8_0 attn_q=q4_0x17 attn_k=q4_0x17 attn_v=q5_1x2,q5_0x15 attn_output=q5_0x17 ffn_gate=q4_0x17 ffn_up=q4_0x17 ffn_down=q5_k,q4_kx16"},
      {m17g3, QuantTarget::kQ4_K_M,
       "token_embd=q8_0 attn_q=q5_0x17 attn_k=q5_0x17 attn_v=q8_0x2,q5_0x2,q8_0,q5_0x2,q8_0,q5_0x2,q8_0,q5_0x2,q8_0x4 attn_output=q5_0x17 ffn_gate=q5_0x17 ffn_up=q5_0x17 ffn_down=q6_kx2,q4_kx2,q6_k,q4_kx2,q6_k,q4_kx2,q6_k,q4_kx2,q6_kx4"},
      {m17g3, QuantTarget::kQ6_K,
       "token_embd=q8_0 attn_q=q8_0x17 attn_k=q8_0x17 attn_v=q8_0x17 attn_output=q8_0x17 ffn_gate=q8_0x17 ffn_up=q8_0x17 ffn_down=q6_kx17"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(std::string(TargetInfo(c.target).name) + ", " + std::to_string(c.model.n_layer) + " layers");
    ModelFacts m;
    m.n_layer = c.model.n_layer;
    m.has_output = !c.model.tied;
    m.n_head = c.model.n_head;
    m.n_head_kv = c.model.n_head_kv;
    m.arch = "llama";
    m.n_expert = c.model.n_expert;
    const std::vector<TensorShape> shapes = llama_shapes(c.model);
    std::vector<DType> types;
    std::vector<std::string> notes;
    ASSERT_TRUE(ChooseTensorTypes(c.target, shapes, m, &types, &notes).ok());
    EXPECT_EQ(type_runs(shapes, types), c.llama_cpp);
    for (size_t i = 0; i < shapes.size(); ++i) {  // norms and the MoE router stay F32
      if (shapes[i].n_dims == 1 || shapes[i].name.find("ffn_gate_inp") != std::string::npos) {
        EXPECT_EQ(types[i], DType::F32) << shapes[i].name;
      }
    }
  }
}

// ---- the commands ------------------------------------------------------------------------------



TEST_F(QuantFiles, CliQuantize) {
  Result r = run({"quantize", "--help"});
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.out.find("usage: ember quantize"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("q4_k_m"), std::string::npos);
  r = run({"--help"});
  EXPECT_NE(r.out.find("quantize"), std::string::npos);
  EXPECT_NE(r.out.find("synth"), std::string::npos);

  const std::string in = fixture("models/tiny-llama-gqa-f32.gguf"), out = path("q.gguf");
  EXPECT_USAGE_ERROR(run({"quantize", in, out}), "TYPE");
  EXPECT_USAGE_ERROR(run({"quantize", in, out, "q4_2"}), "unknown type 'q4_2'");
  EXPECT_USAGE_ERROR(run({"quantize", in, out, "q8_0", "-t", "-3"}), "'-t'");
  EXPECT_RUNTIME_ERROR(run({"quantize", path("nope.gguf"), out, "q8_0"}), "nope.gguf");
  EXPECT_RUNTIME_ERROR(run({"quantize", odd_rows_model(), out, "q4_0"}), "blk.0.attn_q.weight");

  r = run({"quantize", in, out, "Q8_0", "-t", "1", "--verbose"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("[ 1/39]"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("token_embd.weight -> q8_0"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("[39/39]"), std::string::npos) << r.err;
  EXPECT_TRUE(one_line(r.out)) << r.out;  // the summary
  expect_same_tensors(*open_gguf(out), *open_gguf(fixture("models/tiny-llama-gqa-q8_0.gguf")));

  r = run({"quantize", in, path("q4.gguf"), "q4_0", "-t", "1", "-q"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "");
  // The output matrix falls back from Q6_K (rows of 128): one note line, no progress.
  EXPECT_TRUE(one_line(r.err)) << r.err;
  EXPECT_NE(r.err.find("output.weight"), std::string::npos) << r.err;
  expect_same_tensors(*open_gguf(path("q4.gguf")), *open_gguf(fixture("models/tiny-llama-gqa-q4_0.gguf")));
}

TEST_F(QuantFiles, CliSynth) {
  Result r = run({"synth", "--help"});
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.out.find("usage: ember synth"), std::string::npos);
  r = run({"synth", "--list"});
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.out.find("gemma-2b"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("rope_freqs (llama3 scaling"), std::string::npos) << r.out;

  EXPECT_USAGE_ERROR(run({"synth", "--type", "f32", "-o", path("x.gguf")}), "--preset");
  EXPECT_USAGE_ERROR(run({"synth", "--preset", "tiny", "-o", path("x.gguf")}), "--type");
  EXPECT_USAGE_ERROR(run({"synth", "--preset", "tiny", "--type", "f32"}), "-o");
  EXPECT_USAGE_ERROR(run({"synth", "--preset", "huge", "--type", "f32", "-o", path("x.gguf")}), "unknown preset 'huge'");
  EXPECT_USAGE_ERROR(run({"synth", "--preset", "tiny", "--type", "int3", "-o", path("x.gguf")}), "unknown type 'int3'");
  EXPECT_RUNTIME_ERROR(run({"synth", "--preset", "tiny", "--type", "f32", "-o", path("no/such/dir/x.gguf")}),
                       "no/such/dir");

  const std::string out = path("tiny.gguf");
  r = run({"synth", "--preset", "tiny", "--type", "q8_0", "-o", out, "--seed", "7", "-t", "1"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(one_line(r.out)) << r.out;
  ASSERT_EQ(synth(path("api.gguf"), "tiny", "q8_0", 7), EMBER_OK);
  EXPECT_TRUE(slurp(out) == slurp(path("api.gguf"))) << "CLI and C API agree";
  r = run({"synth", "-p", "tiny-gemma", "--type", "f16", "-o", path("g.gguf"), "-q"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out + r.err, "");
  r = run({"tokenize", "-m", path("g.gguf"), "a cab"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out.substr(0, 2), "1,") << r.out;  // BOS, then the pieces
}

}  // namespace
}  // namespace ember
