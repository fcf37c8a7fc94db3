// Prefix reuse (Context::EvalPrompt, Generate's reuse_prefix, the C API's cache_prompt):
// a prompt that starts with tokens the cache holds evaluates only the rest.
//
// Exactness: each logit is computed by one fixed sequence of operations whatever the batch
// split (kernels.h's contract; test_engine's ThreadCountAndBatchingDoNotChangeLogits), and
// the cached rows of a kept position are the rows a fresh evaluation writes there, so a
// prompt evaluated after a reused prefix must give the bits a fresh context gives: every
// comparison here is bitwise. Sliding-window models (gemma2, gemma3) run with prompts
// longer than their window of 8, with the default batch and with batches of 4 (small
// rings: then reuse may be refused, CanTruncate, and the prompt evaluated from 0).
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "ember/ember.h"
#include "engine/generate/generator.h"
#include "engine/model/context.h"
#include "engine/model/model.h"
#include "support/fixtures.h"
#include "support/generate_fixture.h"

namespace ember {
namespace {

using testing::fixture;
using testing::greedy_recording;
using Case = testing::KvCase;

std::unique_ptr<Model> load(const std::string& rel) { return testing::load_model(rel); }
std::unique_ptr<Context> context(const Model& m, const Case& s, int32_t n_ctx = 128) {
  return testing::kv_context(m, s, n_ctx);
}
std::vector<int32_t> case3(const Case& s) { return testing::case3_ids(s.model); }

std::vector<int32_t> with_tail(std::vector<int32_t> ids, size_t keep, std::vector<int32_t> tail) {
  ids.resize(keep);
  ids.insert(ids.end(), tail.begin(), tail.end());
  return ids;
}

// The last-token logits of ids evaluated in a fresh context.
std::vector<float> fresh_logits(const Model& m, const Case& s, const std::vector<int32_t>& ids) {
  auto c = context(m, s);
  EXPECT_TRUE(c->Eval(ids.data(), ids.size()).ok());
  return std::vector<float>(c->logits(), c->logits() + c->n_vocab());
}

// Evaluates `prompt` with EvalPrompt in c and checks: the logits are those of a fresh
// evaluation, the reused count is `want_reused` (or 0 where the cache could not be cut
// there), tokens() is the prompt.
void expect_reuse(Context& c, const Model& m, const Case& s, const std::vector<int32_t>& prompt,
                  int32_t want_reused) {
  const bool can = want_reused == 0 || c.CanTruncate(want_reused);
  int32_t reused = -1;
  Status st = c.EvalPrompt(prompt.data(), prompt.size(), &reused);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(reused, can ? want_reused : 0);
  EXPECT_EQ(c.n_past(), static_cast<int32_t>(prompt.size()));
  EXPECT_EQ(c.tokens(), prompt);
  const std::vector<float> want = fresh_logits(m, s, prompt);
  ASSERT_NE(c.logits(), nullptr);
  EXPECT_TRUE(std::equal(want.begin(), want.end(), c.logits())) << "logits differ from a full evaluation";
}

class PrefixReuse : public ::testing::TestWithParam<Case> {};

// One context through the cases, each starting from what the previous one left.
TEST_P(PrefixReuse, EqualsAFullEvaluationBitwise) {
  const Case& s = GetParam();
  auto m = load(std::string("models/") + s.model);
  ASSERT_TRUE(m);
  const std::vector<int32_t> a = case3(s);  // 60 tokens
  ASSERT_EQ(a.size(), 60u);
  auto c = context(*m, s);
  ASSERT_TRUE(c);
  {
    SCOPED_TRACE("empty cache");
    expect_reuse(*c, *m, s, a, 0);
  }
  {
    SCOPED_TRACE("changed after 40 tokens");
    expect_reuse(*c, *m, s, with_tail(a, 40, {300, 301, 302}), 40);
  }
  {
    SCOPED_TRACE("the same prompt again: all but its last token");
    const std::vector<int32_t> b = with_tail(a, 40, {300, 301, 302});
    expect_reuse(*c, *m, s, b, 42);
  }
  {
    SCOPED_TRACE("a prefix of the held tokens");
    expect_reuse(*c, *m, s, with_tail(a, 30, {}), 29);
  }
  {
    SCOPED_TRACE("the held tokens followed by more");
    expect_reuse(*c, *m, s, a, 30);
  }
  {
    SCOPED_TRACE("changed at the first token");
    std::vector<int32_t> b = a;
    b[0] = 2;
    expect_reuse(*c, *m, s, b, 0);
  }
  {
    SCOPED_TRACE("a one-token prompt");
    expect_reuse(*c, *m, s, {a[0]}, 0);
  }
}

// The cache types and the window models (prompts longer than their window).
INSTANTIATE_TEST_SUITE_P(
    Fixtures, PrefixReuse,
    ::testing::Values(Case{"memo260K.gguf", DType::F32, 0}, Case{"tiny-llama3-f32.gguf", DType::F16, 0},
                      Case{"tiny-gemma2-f32.gguf", DType::F32, 0}, Case{"tiny-gemma2-f32.gguf", DType::F16, 4},
                      Case{"tiny-gemma3-f32.gguf", DType::F16, 0}, Case{"tiny-gemma3-f32.gguf", DType::F32, 4},
                      Case{"tiny-qwen3-f32.gguf", DType::Q8_0, 16}),
    [](const auto& info) { return testing::kv_case_name(info.param); });

TEST(PrefixReuse, RejectedPromptsLeaveTheCacheAlone) {
  auto m = load("models/memo260K.gguf");
  ASSERT_TRUE(m);
  const Case s{"memo260K.gguf", DType::F32, 0};
  auto c = context(*m, s, 16);
  const std::vector<int32_t> a = {1, 400, 401, 402, 403};
  ASSERT_TRUE(c->Eval(a.data(), a.size()).ok());
  int32_t reused = -1;
  EXPECT_EQ(c->EvalPrompt(a.data(), 0, &reused).code(), Code::kInvalidArgument);
  const std::vector<int32_t> bad = {1, 400, 9999};
  EXPECT_EQ(c->EvalPrompt(bad.data(), bad.size(), &reused).code(), Code::kInvalidArgument);
  const std::vector<int32_t> too_long(17, 400);
  EXPECT_EQ(c->EvalPrompt(too_long.data(), too_long.size(), &reused).code(), Code::kOutOfRange);
  EXPECT_EQ(reused, 0);
  EXPECT_EQ(c->tokens(), a);
  EXPECT_NE(c->logits(), nullptr);
}

// After a context shift the moved rows are re-rotated and were computed with the discarded
// tokens in view: only the kept n_keep tokens may be reused.
TEST(PrefixReuse, AfterAShiftOnlyTheKeptTokensAreReused) {
  for (const Case& s : {Case{"tiny-llama3-f32.gguf", DType::F32, 0}, Case{"tiny-gemma2-f32.gguf", DType::F16, 0}}) {
    SCOPED_TRACE(s.model);
    auto m = load(std::string("models/") + s.model);
    ASSERT_TRUE(m);
    const std::vector<int32_t> a = case3(s);
    auto c = context(*m, s, 64);
    ASSERT_TRUE(c->Eval(a.data(), a.size()).ok());
    ASSERT_TRUE(c->Shift(10, 20).ok());
    std::vector<int32_t> held(a.begin(), a.begin() + 10);
    held.insert(held.end(), a.begin() + 30, a.end());
    EXPECT_EQ(c->tokens(), held);
    EXPECT_EQ(c->n_exact(), 10);
    const bool can = c->CanTruncate(10);
    int32_t reused = -1;
    ASSERT_TRUE(c->EvalPrompt(held.data(), held.size(), &reused).ok());
    EXPECT_EQ(reused, can ? 10 : 0);
    EXPECT_EQ(c->n_exact(), static_cast<int32_t>(held.size()));
    auto fresh = context(*m, s, 64);
    ASSERT_TRUE(fresh->Eval(held.data(), held.size()).ok());
    EXPECT_TRUE(std::equal(fresh->logits(), fresh->logits() + m->config().n_vocab, c->logits()));
  }
}

TEST(ContextTokens, FollowEvalTruncateAndReset) {
  auto m = load("models/memo260K.gguf");
  ASSERT_TRUE(m);
  auto c = context(*m, Case{"memo260K.gguf", DType::F32, 0}, 32);
  EXPECT_TRUE(c->tokens().empty());
  const std::vector<int32_t> a = {1, 400, 401, 402, 403}, b = {404, 405};
  ASSERT_TRUE(c->Eval(a.data(), a.size()).ok());
  ASSERT_TRUE(c->Eval(b.data(), b.size()).ok());
  EXPECT_EQ(c->tokens(), (std::vector<int32_t>{1, 400, 401, 402, 403, 404, 405}));
  EXPECT_FALSE(c->Eval(b.data(), 0).ok());
  EXPECT_EQ(c->tokens().size(), 7u);
  ASSERT_TRUE(c->Truncate(3).ok());
  EXPECT_EQ(c->tokens(), (std::vector<int32_t>{1, 400, 401}));
  EXPECT_FALSE(c->Truncate(4).ok());
  EXPECT_EQ(c->tokens().size(), 3u);
  c->Reset();
  EXPECT_TRUE(c->tokens().empty());
  EXPECT_GE(c->tokens().capacity(), 32u);  // reserved once: appending never allocates
}

// ---- Generate ----------------------------------------------------------------------------

// Two generations sharing a prefix: the second reuses it and generates what a context
// without reuse generates, step by step.
TEST(GeneratePrefixReuse, SameTokensAndLogitsAsWithoutReuse) {
  for (const Case& s : {Case{"memo260K.gguf", DType::F32, 0}, Case{"tiny-gemma2-f32.gguf", DType::F16, 0}}) {
    SCOPED_TRACE(s.model);
    auto m = load(std::string("models/") + s.model);
    ASSERT_TRUE(m);
    const std::vector<int32_t> a = case3(s);
    const std::vector<int32_t> first(a.begin(), a.begin() + 30), second(a.begin(), a.begin() + 45);
    auto with = context(*m, s), without = context(*m, s);
    std::vector<std::vector<float>> sw, so;
    GenerateResult rw, ro;
    ASSERT_TRUE(Generate(*with, first.data(), first.size(), greedy_recording(5, &sw), nullptr, &rw).ok());
    EXPECT_EQ(rw.n_prompt_reused, 0);
    // The cache now holds first + 4 generated tokens (the last is sampled, not evaluated).
    EXPECT_EQ(with->tokens().size(), first.size() + 4);
    // What the second prompt shares with them (at least first), short of its last token.
    const std::vector<int32_t> held = with->tokens();
    int32_t common = 0;
    while (common < 44 && common < static_cast<int32_t>(held.size()) && held[common] == second[common]) ++common;
    EXPECT_GE(common, 30);
    const bool can = with->CanTruncate(common);
    sw.clear();
    ASSERT_TRUE(Generate(*with, second.data(), second.size(), greedy_recording(8, &sw), nullptr, &rw).ok());
    EXPECT_EQ(rw.n_prompt, 45);
    EXPECT_EQ(rw.n_prompt_reused, can ? common : 0);
    ASSERT_TRUE(Generate(*without, second.data(), second.size(), greedy_recording(8, &so, false), nullptr, &ro).ok());
    EXPECT_EQ(ro.n_prompt_reused, 0);
    EXPECT_EQ(rw.tokens, ro.tokens);
    ASSERT_EQ(sw.size(), so.size());
    for (size_t i = 0; i < sw.size(); ++i) EXPECT_TRUE(sw[i] == so[i]) << "step " << i;
  }
}

// ---- C API -------------------------------------------------------------------------------

struct Capi {
  ember_model* m = nullptr;
  ember_context* c = nullptr;
  ~Capi() {
    ember_context_free(c);
    ember_model_free(m);
  }
};

ember_generate_params capi_greedy(int32_t max_tokens) {
  ember_generate_params gp = ember_generate_default_params();
  gp.sampling.temperature = 0;
  gp.max_tokens = max_tokens;
  gp.stop_at_eos = 0;
  return gp;
}

TEST(CapiPrefixReuse, CachePromptDefaultsOnAndIsReported) {
  Capi h;
  ASSERT_EQ(ember_model_load(fixture("models/memo260K.gguf").c_str(), nullptr, &h.m), EMBER_OK);
  ember_context_params cp = ember_context_default_params();
  cp.n_ctx = 64;
  ASSERT_EQ(ember_context_create(h.m, &cp, &h.c), EMBER_OK) << ember_last_error();
  ember_generate_params gp = capi_greedy(4);
  EXPECT_EQ(gp.cache_prompt, 1);
  const std::vector<int32_t> p = {1, 400, 401, 402, 403, 404};
  ember_generate_result r{};
  ASSERT_EQ(ember_generate_tokens(h.c, p.data(), p.size(), &gp, &r), EMBER_OK) << ember_last_error();
  EXPECT_EQ(r.n_prompt, 6);
  EXPECT_EQ(r.n_prompt_reused, 0);
  ASSERT_EQ(ember_generate_tokens(h.c, p.data(), p.size(), &gp, &r), EMBER_OK);
  EXPECT_EQ(r.n_prompt_reused, 5);
  gp.cache_prompt = 0;
  ASSERT_EQ(ember_generate_tokens(h.c, p.data(), p.size(), &gp, &r), EMBER_OK);
  EXPECT_EQ(r.n_prompt_reused, 0);
  // The text entry point: BOS + "Once upon a time" is 5 tokens, 4 of them cached.
  gp.cache_prompt = 1;
  ASSERT_EQ(ember_generate(h.c, "Once upon a time", &gp, &r), EMBER_OK);
  ASSERT_EQ(ember_generate(h.c, "Once upon a time", &gp, &r), EMBER_OK);
  EXPECT_EQ(r.n_prompt_reused, r.n_prompt - 1);
  EXPECT_EQ(ember_call_default_params().cache_prompt, 1);
}

// An adapter that changes cached keys and values resets the context (ember_context_set_lora),
// so the next prompt reuses nothing and gets the adapter's logits; a no-op keeps the cache.
TEST(CapiPrefixReuse, ALoraThatChangesTheCacheIsNotServedStaleRows) {
  const std::string dir = "models/octopus-tiny/";
  Capi h, fresh;
  ASSERT_EQ(ember_model_load(fixture(dir + "octopus-tiny.gguf").c_str(), nullptr, &h.m), EMBER_OK);
  ember_lora* lora = nullptr;
  ASSERT_EQ(ember_lora_load(h.m, fixture(dir + "lora-phone.gguf").c_str(), &lora), EMBER_OK) << ember_last_error();
  ember_context_params cp = ember_context_default_params();
  cp.n_ctx = 96;
  ASSERT_EQ(ember_context_create(h.m, &cp, &h.c), EMBER_OK);
  ASSERT_EQ(ember_context_create(h.m, &cp, &fresh.c), EMBER_OK);
  std::vector<int32_t> p(40);
  size_t n = 0;
  ASSERT_EQ(ember_tokenize(h.m, "Below is the query from the users, please call the correct function", 68, -1, 1,
                           p.data(), p.size(), &n),
            EMBER_OK);
  p.resize(n);
  ember_generate_params gp = capi_greedy(1);
  ember_generate_result r{};
  ASSERT_EQ(ember_generate_tokens(h.c, p.data(), p.size(), &gp, &r), EMBER_OK);
  ASSERT_EQ(ember_context_set_lora(h.c, lora, 0.0f), EMBER_OK);  // contributes nothing: cache kept
  ASSERT_EQ(ember_generate_tokens(h.c, p.data(), p.size(), &gp, &r), EMBER_OK);
  EXPECT_EQ(r.n_prompt_reused, r.n_prompt - 1);
  ASSERT_EQ(ember_context_set_lora(h.c, lora, 1.0f), EMBER_OK);  // changes every layer's K/V
  ASSERT_EQ(ember_generate_tokens(h.c, p.data(), p.size(), &gp, &r), EMBER_OK);
  EXPECT_EQ(r.n_prompt_reused, 0);
  ember_model_info info{};
  ASSERT_EQ(ember_model_get_info(h.m, &info), EMBER_OK);
  ASSERT_EQ(ember_context_set_lora(fresh.c, lora, 1.0f), EMBER_OK);
  ASSERT_EQ(ember_eval(fresh.c, p.data(), p.size()), EMBER_OK);
  // h's last eval was the last prompt token (1 generated token: sampled, not evaluated).
  const float* got = ember_get_logits(h.c, -1);
  const float* want = ember_get_logits(fresh.c, -1);
  ASSERT_TRUE(got && want);
  EXPECT_TRUE(std::equal(want, want + info.n_vocab, got));
  ember_context_free(h.c);
  h.c = nullptr;
  ember_context_free(fresh.c);
  fresh.c = nullptr;
  ember_lora_free(lora);
}

}  // namespace
}  // namespace ember
