// Saved state (engine/model/state_file.h, ember_context_save/load): save -> load -> continue
// gives the bits of an uninterrupted run (logits and greedy tokens) with F32, F16 and Q8_0
// caches and on sliding-window models past their window (rings, with small batches); a file
// from another model, cache type or n_ctx, or a damaged one, is refused in one line and
// leaves the context reset.
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "ember/ember.h"
#include "engine/generate/generator.h"
#include "engine/model/context.h"
#include "engine/model/model.h"
#include "engine/model/state_file.h"
#include "support/fixtures.h"
#include "support/generate_fixture.h"

namespace ember {
namespace {

using testing::fixture;

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("ember-state-" + std::to_string(::getpid()) + "-" + name))
      .string();
}

using testing::greedy_recording;
using Case = testing::KvCase;

std::unique_ptr<Model> load(const std::string& rel) { return testing::load_model(rel); }
std::unique_ptr<Context> context(const Model& m, const Case& s, int32_t n_ctx = 128) {
  return testing::kv_context(m, s, n_ctx);
}
std::vector<int32_t> case3(const char* model) { return testing::case3_ids(model); }

class StateRoundTrip : public ::testing::TestWithParam<Case> {};

// A process evaluates 50 tokens and saves; another loads and goes on with 10 more and a
// greedy continuation: the same logits and tokens as one process doing it all.
TEST_P(StateRoundTrip, LoadAndContinueEqualsAnUninterruptedRun) {
  const Case& s = GetParam();
  auto m = load(std::string("models/") + s.model);
  ASSERT_TRUE(m);
  const std::vector<int32_t> all = case3(s.model);
  const std::vector<int32_t> head(all.begin(), all.begin() + 50);
  const std::string path = temp_path("roundtrip.state");

  auto saver = context(*m, s);
  ASSERT_TRUE(saver->Eval(head.data(), head.size()).ok());
  Status st = SaveContextState(*saver, path);
  ASSERT_TRUE(st.ok()) << st.ToString();

  auto loader = context(*m, s);
  const std::vector<int32_t> other = {1, 300, 301};
  ASSERT_TRUE(loader->Eval(other.data(), other.size()).ok());  // replaced by the load
  st = LoadContextState(*loader, path);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(loader->tokens(), head);
  ASSERT_NE(loader->logits(), nullptr);
  EXPECT_TRUE(std::equal(saver->logits(), saver->logits() + m->config().n_vocab, loader->logits()));
  EXPECT_TRUE(std::equal(saver->hidden(), saver->hidden() + m->config().n_embd, loader->hidden()));

  std::vector<std::vector<float>> steps_loaded, steps_whole;
  GenerateResult loaded, whole;
  const bool can_keep_all = loader->CanTruncate(50);
  ASSERT_TRUE(Generate(*loader, all.data(), all.size(), greedy_recording(6, &steps_loaded), nullptr, &loaded).ok());
  EXPECT_EQ(loaded.n_prompt_reused, can_keep_all ? 50 : 0);
  auto uninterrupted = context(*m, s);
  ASSERT_TRUE(Generate(*uninterrupted, all.data(), all.size(), greedy_recording(6, &steps_whole), nullptr, &whole).ok());
  EXPECT_EQ(loaded.tokens, whole.tokens);
  ASSERT_EQ(steps_loaded.size(), steps_whole.size());
  for (size_t i = 0; i < steps_loaded.size(); ++i) EXPECT_TRUE(steps_loaded[i] == steps_whole[i]) << "step " << i;
  std::filesystem::remove(path);
}

INSTANTIATE_TEST_SUITE_P(
    Fixtures, StateRoundTrip,
    ::testing::Values(Case{"tiny-llama3-f32.gguf", DType::F32, 0}, Case{"tiny-llama3-f32.gguf", DType::F16, 0},
                      Case{"tiny-llama3-f32.gguf", DType::Q8_0, 0}, Case{"tiny-gemma2-f32.gguf", DType::F32, 4},
                      Case{"tiny-gemma2-f32.gguf", DType::F16, 0}, Case{"tiny-gemma2-f32.gguf", DType::Q8_0, 4},
                      Case{"tiny-gemma3-f32.gguf", DType::F16, 4}, Case{"tiny-gemma3-f32.gguf", DType::Q8_0, 0},
                      Case{"tiny-gemma3-f32.gguf", DType::F32, 8}),
    [](const auto& info) { return testing::kv_case_name(info.param); });

// ---- refused files ----------------------------------------------------------------------

std::vector<char> read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::vector<char>(std::istreambuf_iterator<char>(f), {});
}

void write_bytes(const std::string& path, const std::vector<char>& b) {
  std::ofstream(path, std::ios::binary).write(b.data(), static_cast<std::streamsize>(b.size()));
}

// Loads `path` into c (which holds tokens first) and expects `code`, a one-line message
// naming the file and `needle`, and a reset context.
void expect_refused(Context& c, const std::string& path, Code code, const std::string& needle) {
  const std::vector<int32_t> some = {1, 300, 301};
  ASSERT_TRUE(c.Eval(some.data(), some.size()).ok());
  Status st = LoadContextState(c, path);
  EXPECT_EQ(st.code(), code) << st.ToString();
  EXPECT_NE(st.message().find(path), std::string::npos) << st.message();
  EXPECT_NE(st.message().find(needle), std::string::npos) << st.message();
  EXPECT_EQ(st.message().find('\n'), std::string::npos);
  EXPECT_EQ(c.n_past(), 0);
  EXPECT_TRUE(c.tokens().empty());
}

TEST(StateFile, DamagedAndForeignFilesAreRefused) {
  const Case s{"tiny-gemma2-f32.gguf", DType::F16, 0};
  auto m = load("models/tiny-gemma2-f32.gguf");
  ASSERT_TRUE(m);
  const std::vector<int32_t> ids = case3(s.model);
  auto c = context(*m, s);
  ASSERT_TRUE(c->Eval(ids.data(), 30).ok());
  const std::string good = temp_path("good.state"), bad = temp_path("bad.state");
  ASSERT_TRUE(SaveContextState(*c, good).ok());
  const std::vector<char> bytes = read_bytes(good);
  ASSERT_GT(bytes.size(), 1000u);

  for (size_t n : {size_t{0}, size_t{7}, size_t{40}, size_t{100}, bytes.size() / 2, bytes.size() - 8,
                   bytes.size() - 1}) {
    SCOPED_TRACE("truncated to " + std::to_string(n));
    write_bytes(bad, std::vector<char>(bytes.begin(), bytes.begin() + n));
    expect_refused(*c, bad, Code::kBadFormat, "truncated");
  }
  std::vector<char> b = bytes;
  b.push_back(0);
  write_bytes(bad, b);
  expect_refused(*c, bad, Code::kBadFormat, "trailing bytes");
  b = bytes;
  b[0] = 'X';
  write_bytes(bad, b);
  expect_refused(*c, bad, Code::kBadFormat, "bad magic");
  b = bytes;
  b[bytes.size() / 2] ^= 0x10;  // a cache row
  write_bytes(bad, b);
  expect_refused(*c, bad, Code::kBadFormat, "checksum");
  expect_refused(*c, temp_path("missing.state"), Code::kNotFound, "cannot open");

  auto f32 = context(*m, Case{s.model, DType::F32, 0});
  expect_refused(*f32, good, Code::kInvalidArgument, "cache types K f16");
  auto other_ctx = context(*m, s, 64);
  expect_refused(*other_ctx, good, Code::kInvalidArgument, "n_ctx 128, this context 64");
  auto small_batch = context(*m, Case{s.model, DType::F16, 4});
  if (small_batch->kv_cache().is_ring(0)) expect_refused(*small_batch, good, Code::kInvalidArgument, "n_batch");
  auto other_model = load("models/tiny-llama3-f32.gguf");
  auto foreign = context(*other_model, s);
  expect_refused(*foreign, good, Code::kInvalidArgument, "another model");
  // The same file still loads into the right context.
  auto right = context(*m, s);
  EXPECT_TRUE(LoadContextState(*right, good).ok());
  EXPECT_EQ(right->n_past(), 30);
  std::filesystem::remove(good);
  std::filesystem::remove(bad);
}

// ---- C API -------------------------------------------------------------------------------

TEST(CapiState, SaveLoadAndGenerateReusesTheSavedTokens) {
  ember_model* m = nullptr;
  ASSERT_EQ(ember_model_load(fixture("models/memo260K.gguf").c_str(), nullptr, &m), EMBER_OK);
  ember_context_params cp = ember_context_default_params();
  cp.n_ctx = 64;
  ember_context *a = nullptr, *b = nullptr;
  ASSERT_EQ(ember_context_create(m, &cp, &a), EMBER_OK);
  ASSERT_EQ(ember_context_create(m, &cp, &b), EMBER_OK);
  const std::vector<int32_t> p = {1, 400, 401, 402, 403, 404};
  ASSERT_EQ(ember_eval(a, p.data(), p.size()), EMBER_OK);
  const std::string path = temp_path("capi.state");
  ASSERT_EQ(ember_context_save(a, path.c_str()), EMBER_OK) << ember_last_error();
  ASSERT_EQ(ember_context_load(b, path.c_str()), EMBER_OK) << ember_last_error();
  EXPECT_EQ(ember_n_past(b), 6);
  const float* la = ember_get_logits(a, -1);
  const float* lb = ember_get_logits(b, -1);
  ASSERT_TRUE(la && lb);
  EXPECT_TRUE(std::equal(la, la + 512, lb));
  ember_generate_params gp = ember_generate_default_params();
  gp.sampling.temperature = 0;
  gp.max_tokens = 3;
  ember_generate_result r{};
  ASSERT_EQ(ember_generate_tokens(b, p.data(), p.size(), &gp, &r), EMBER_OK);
  EXPECT_EQ(r.n_prompt_reused, 5);
  EXPECT_EQ(ember_context_load(b, "/nonexistent/x.state"), EMBER_ERR_NOT_FOUND);
  EXPECT_NE(std::string(ember_last_error()).find("/nonexistent/x.state"), std::string::npos);
  EXPECT_EQ(ember_n_past(b), 0);
  EXPECT_EQ(ember_context_save(a, nullptr), EMBER_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(ember_context_save(a, "/nonexistent/dir/x.state"), EMBER_ERR_IO);
  ember_context_free(a);
  ember_context_free(b);
  ember_model_free(m);
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace ember
