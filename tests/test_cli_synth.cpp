// `ember synth` presets of every architecture:
//   - each small test preset writes exactly the tensors its architecture uses (the loader
//     refuses a missing or an unused tensor), loads through the C API and evaluates to
//     finite logits;
//   - every architecture of a real-shape preset has such a test preset (so its tensor
//     layout is exercised here, in seconds);
//   - the rope_freqs values of the llama3 presets are the converter's: compared with the
//     tensor Llama 3.1's converter wrote into the tiny-llama3-f32 fixture.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <memory>
#include <set>
#include <string>

#include "ember/ember.h"
#include "ember/ember_tools.h"
#include "loader/gguf.h"
#include "offline/synth_model.h"
#include "support/fixtures.h"

namespace ember {
namespace {

// The small presets made for tests say so in their description.
bool is_test_preset(const SynthPreset& p) { return std::string(p.description).rfind("test model", 0) == 0; }

TEST(SynthPresets, Llama3RopeFreqsAreTheConvertersValues) {
  std::unique_ptr<GgufFile> f;
  ASSERT_TRUE(GgufFile::Open(testing::fixture("models/tiny-llama3-f32.gguf"), &f).ok());
  const GgufTensor* t = f->FindTensor("rope_freqs.weight");
  ASSERT_NE(t, nullptr);
  ASSERT_EQ(t->type, DType::F32);
  float base = 0;
  uint32_t head_dim = 0;
  ASSERT_TRUE(f->GetF32("llama.rope.freq_base", &base).ok());
  ASSERT_TRUE(f->GetU32("llama.rope.dimension_count", &head_dim).ok());
  const std::vector<float> mine = Llama3RopeFreqs(static_cast<int32_t>(head_dim), base, 32.0f);
  ASSERT_EQ(mine.size(), t->n_elements);
  // Both sides compute in double and round once to float: equal, or one float ulp apart
  // where the double lies at a rounding boundary (relative 2^-23).
  const float* want = reinterpret_cast<const float*>(t->data);
  for (size_t i = 0; i < mine.size(); ++i)
    EXPECT_NEAR(mine[i], want[i], std::ldexp(std::fabs(want[i]), -23)) << "dimension pair " << i;
  EXPECT_EQ(mine.front(), 1.0f);  // short wavelengths keep their frequency
  EXPECT_EQ(mine.back(), 32.0f);  // long ones are divided by the factor
}

TEST(SynthPresets, EveryRealShapeArchitectureHasATestPreset) {
  std::set<std::string> tested, real;
  for (const SynthPreset& p : SynthPresets())
    (is_test_preset(p) ? tested : real).insert(p.arch);
  for (const std::string& a : real) EXPECT_TRUE(tested.count(a)) << a;
  for (const char* a : {"llama", "gemma", "gemma2", "gemma3", "qwen2", "qwen3", "phi3"})
    EXPECT_TRUE(tested.count(a)) << a;
}

class SynthFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("ember-synth-" + std::to_string(getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path dir_;
};

// Loads, evaluates 12 tokens (past gemma2/gemma3's window of 8) and checks the logits.
void expect_runs(const std::string& path, const char* arch) {
  ember_model* m = nullptr;
  ASSERT_EQ(ember_model_load(path.c_str(), nullptr, &m), EMBER_OK) << ember_last_error();
  ember_model_info info{};
  ASSERT_EQ(ember_model_get_info(m, &info), EMBER_OK);
  EXPECT_STREQ(info.architecture, arch);
  ember_context_params cp = ember_context_default_params();
  cp.n_ctx = 32;
  cp.n_threads = 1;
  ember_context* ctx = nullptr;
  ASSERT_EQ(ember_context_create(m, &cp, &ctx), EMBER_OK) << ember_last_error();
  const int32_t toks[12] = {1, 300, 301, 302, 400, 410, 420, 333, 444, 455, 466, 477};
  ASSERT_EQ(ember_eval(ctx, toks, 12), EMBER_OK) << ember_last_error();
  const float* l = ember_get_logits(ctx, -1);
  ASSERT_NE(l, nullptr);
  float lo = l[0], hi = l[0];
  for (int i = 0; i < info.n_vocab; ++i) {
    ASSERT_TRUE(std::isfinite(l[i])) << i;
    lo = std::min(lo, l[i]);
    hi = std::max(hi, l[i]);
  }
  EXPECT_LT(lo, hi);  // not a constant row
  ember_context_free(ctx);
  ember_model_free(m);
}

TEST_F(SynthFiles, TestPresetOfEveryArchitectureLoadsStrictlyAndEvaluates) {
  for (const SynthPreset& p : SynthPresets()) {
    if (!is_test_preset(p)) continue;
    SCOPED_TRACE(p.name);
    const std::string path = (dir_ / (std::string(p.name) + ".gguf")).string();
    ember_synth_params sp = ember_synth_default_params();
    sp.preset = p.name;
    sp.type = "f32";
    sp.n_threads = 1;
    ASSERT_EQ(ember_synth_file(path.c_str(), &sp), EMBER_OK) << ember_last_error();
    expect_runs(path, p.arch);
  }
}

}  // namespace
}  // namespace ember
