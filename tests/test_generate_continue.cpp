// Generation that continues from the KV cache (GenerateContinue, ember_generate_continue),
// Context::Truncate (ember_context_truncate), and the UTF-8 hold-back of streamed text.
//
// Exactness: each logit is computed by one fixed sequence of operations whatever the batch
// split and thread count (kernels.h's contract; test_engine's ThreadCountAndBatchingDoNot-
// ChangeLogits), so continuing a cached sequence must give the bits a fresh evaluation of
// the whole sequence gives: every comparison here is bitwise.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "ember/ember.h"
#include "engine/generate/generator.h"
#include "engine/model/context.h"
#include "engine/model/model.h"
#include "support/fixtures.h"

namespace ember {
namespace {

using testing::fixture;

std::unique_ptr<Model> load(const std::string& rel) {
  std::unique_ptr<Model> m;
  Status s = Model::Load(fixture(rel), ModelParams{}, &m);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return m;
}

std::unique_ptr<Context> context(const Model& m, int32_t n_ctx) {
  ContextParams cp;
  cp.type_k = cp.type_v = DType::F32;  // float32 cache: the goldens' tolerance
  cp.n_ctx = n_ctx;
  cp.n_threads = 2;
  std::unique_ptr<Context> c;
  Status s = Context::Create(m, cp, &c);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return c;
}

std::vector<int32_t> encode(const Model& m, const std::string& text, bool bos) {
  std::vector<int32_t> ids;
  EXPECT_TRUE(m.tokenizer().Encode(text, bos, false, &ids).ok());
  return ids;
}

// Greedy parameters that also record every step's logits (through the filter hook,
// which sees them before sampling and changes nothing).
GenerateParams greedy_recording(int32_t max_tokens, std::vector<std::vector<float>>* steps) {
  GenerateParams gp;
  gp.sampling.temperature = 0;
  gp.max_tokens = max_tokens;
  gp.stop_at_eos = false;
  gp.logits_filter = [steps](float* logits, int32_t n_vocab, const int32_t*, size_t) {
    steps->emplace_back(logits, logits + n_vocab);
  };
  return gp;
}

std::vector<int32_t> concat(std::vector<int32_t> a, const std::vector<int32_t>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// ---- GenerateContinue -------------------------------------------------------------------

// A second turn continued from the cache gives the tokens and logits that generating from
// the whole sequence at once gives, on two architectures.
TEST(GenerateContinue, EqualsGeneratingFromTheWholeSequence) {
  for (const char* name : {"models/memo260K.gguf", "models/tiny-llama3-f32.gguf"}) {
    SCOPED_TRACE(name);
    auto m = load(name);
    ASSERT_TRUE(m);
    auto c = context(*m, 128);
    ASSERT_TRUE(c);
    const std::vector<int32_t> first = encode(*m, "Once upon a time", true);
    const std::vector<int32_t> second = encode(*m, " there was a little girl", false);

    std::vector<std::vector<float>> steps1, steps2, steps_whole;
    GenerateResult r1, r2, whole;
    ASSERT_TRUE(Generate(*c, first.data(), first.size(), greedy_recording(5, &steps1), nullptr, &r1).ok());
    ASSERT_EQ(r1.tokens.size(), 5u);
    // The last sampled token is not in the cache: it comes first in the next prompt.
    EXPECT_EQ(c->n_past(), static_cast<int32_t>(first.size() + r1.tokens.size() - 1));
    const std::vector<int32_t> next = concat({r1.tokens.back()}, second);
    ASSERT_TRUE(GenerateContinue(*c, next.data(), next.size(), greedy_recording(6, &steps2), nullptr, &r2).ok());
    EXPECT_EQ(r2.n_prompt, static_cast<int32_t>(next.size()));
    EXPECT_EQ(c->n_past(), static_cast<int32_t>(first.size() + r1.tokens.size() + second.size() + 5));

    const std::vector<int32_t> all = concat(concat(first, r1.tokens), second);
    auto fresh = context(*m, 128);
    ASSERT_TRUE(Generate(*fresh, all.data(), all.size(), greedy_recording(6, &steps_whole), nullptr, &whole).ok());
    EXPECT_EQ(r2.tokens, whole.tokens);
    ASSERT_EQ(steps2.size(), steps_whole.size());
    for (size_t i = 0; i < steps2.size(); ++i) EXPECT_TRUE(steps2[i] == steps_whole[i]) << "step " << i;
  }
}

TEST(GenerateContinue, RejectsAnEmptyOrOverlongPromptWithoutTouchingTheCache) {
  auto m = load("models/memo260K.gguf");
  ASSERT_TRUE(m);
  auto c = context(*m, 16);
  ASSERT_TRUE(c);
  const std::vector<int32_t> first = encode(*m, "Once upon a time", true);  // 5 tokens
  ASSERT_TRUE(c->Eval(first.data(), first.size()).ok());
  GenerateParams gp;
  gp.sampling.temperature = 0;
  Status s = GenerateContinue(*c, first.data(), 0, gp, nullptr, nullptr);
  EXPECT_EQ(s.code(), Code::kInvalidArgument) << s.ToString();
  // 5 cached + 11 = 16 = n_ctx: no room left to generate.
  const std::vector<int32_t> eleven(11, first[1]);
  s = GenerateContinue(*c, eleven.data(), eleven.size(), gp, nullptr, nullptr);
  EXPECT_EQ(s.code(), Code::kOutOfRange) << s.ToString();
  EXPECT_NE(s.ToString().find("after the 5 in the cache"), std::string::npos) << s.ToString();
  EXPECT_EQ(c->n_past(), 5);
  // 10 fit, leaving one position: the first generated token fills it, the second is
  // sampled (never evaluated) and the context is full.
  GenerateResult r;
  ASSERT_TRUE(GenerateContinue(*c, eleven.data(), 10, gp, nullptr, &r).ok());
  EXPECT_EQ(r.tokens.size(), 2u);
  EXPECT_EQ(r.stop_reason, StopReason::kContextFull);
}

// ---- Truncate ---------------------------------------------------------------------------

// Evaluating A B, truncating to A and evaluating C gives the bits of evaluating A then C
// (same batch split) and of A C in one batch.
TEST(ContextTruncate, ReevaluatingAfterTruncateEqualsAFreshEvaluation) {
  auto m = load("models/tiny-llama3-f32.gguf");
  ASSERT_TRUE(m);
  const std::vector<int32_t> a = encode(*m, "Once upon a time", true);
  const std::vector<int32_t> b = encode(*m, " there was a dog", false);
  const std::vector<int32_t> cc = encode(*m, " in the park", false);
  const size_t nv = m->config().n_vocab;

  auto c = context(*m, 64);
  ASSERT_TRUE(c->Eval(a.data(), a.size()).ok());
  ASSERT_TRUE(c->Eval(b.data(), b.size()).ok());
  ASSERT_TRUE(c->Truncate(static_cast<int32_t>(a.size())).ok());
  EXPECT_EQ(c->n_past(), static_cast<int32_t>(a.size()));
  EXPECT_EQ(c->logits(), nullptr);  // B's logits are gone with B
  ASSERT_TRUE(c->Eval(cc.data(), cc.size()).ok());
  std::vector<float> after_truncate(c->logits(), c->logits() + nv);

  auto fresh = context(*m, 64);
  ASSERT_TRUE(fresh->Eval(a.data(), a.size()).ok());
  ASSERT_TRUE(fresh->Eval(cc.data(), cc.size()).ok());
  EXPECT_TRUE(std::equal(after_truncate.begin(), after_truncate.end(), fresh->logits()));

  const std::vector<int32_t> ac = concat(a, cc);
  auto one_batch = context(*m, 64);
  ASSERT_TRUE(one_batch->Eval(ac.data(), ac.size()).ok());
  EXPECT_TRUE(std::equal(after_truncate.begin(), after_truncate.end(), one_batch->logits()));

  // Truncating to 0 is a reset; to n_past changes nothing.
  ASSERT_TRUE(c->Truncate(c->n_past()).ok());
  ASSERT_TRUE(c->Truncate(0).ok());
  EXPECT_EQ(c->n_past(), 0);
}

TEST(ContextTruncate, RejectsNPastOutsideTheCache) {
  auto m = load("models/memo260K.gguf");
  ASSERT_TRUE(m);
  auto c = context(*m, 32);
  const std::vector<int32_t> a = encode(*m, "Once upon a time", true);
  ASSERT_TRUE(c->Eval(a.data(), a.size()).ok());
  for (int32_t bad : {-1, static_cast<int32_t>(a.size()) + 1, 32}) {
    Status s = c->Truncate(bad);
    EXPECT_EQ(s.code(), Code::kInvalidArgument) << bad;
    EXPECT_NE(s.ToString().find("n_past " + std::to_string(bad)), std::string::npos) << s.ToString();
    EXPECT_EQ(c->n_past(), static_cast<int32_t>(a.size()));
    EXPECT_NE(c->logits(), nullptr);
  }
}

// ---- UTF-8 hold-back ----------------------------------------------------------------------

// Forces the generator to produce `forced` (a logits filter leaves only the next one) and
// returns the text of each callback call.
std::vector<std::string> stream_forced(Context& c, const std::vector<int32_t>& forced, GenerateResult* r) {
  GenerateParams gp;
  gp.sampling.temperature = 0;
  gp.max_tokens = static_cast<int32_t>(forced.size());
  gp.logits_filter = [&forced](float* logits, int32_t n_vocab, const int32_t*, size_t n_generated) {
    for (int32_t i = 0; i < n_vocab; ++i)
      if (i != forced[n_generated]) logits[i] = -INFINITY;
  };
  std::vector<std::string> texts;
  const int32_t bos = c.model().tokenizer().bos_id();
  Status s = Generate(c, &bos, 1, gp, [&](int32_t, std::string_view t) { texts.emplace_back(t); return true; }, r);
  EXPECT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(r->tokens, forced);
  return texts;
}

// memo260K spells characters it has no piece for with the byte tokens <0x00>..<0xFF>.
TEST(GenerateUtf8, ACharacterSplitOverByteTokensIsReleasedWhole) {
  auto m = load("models/memo260K.gguf");
  ASSERT_TRUE(m);
  auto c = context(*m, 64);
  const Tokenizer& tok = m->tokenizer();
  auto byte = [&](unsigned b) {
    static const char kHex[] = "0123456789ABCDEF";
    return tok.PieceToId(std::string("<0x") + kHex[b >> 4] + kHex[b & 15] + ">");
  };
  const int32_t the = tok.PieceToId("\xE2\x96\x81the");
  ASSERT_GE(the, 0);
  ASSERT_GE(byte(0xF0), 0);
  struct Case {
    const char* what;
    std::vector<int32_t> forced;
    std::vector<std::string> texts;  // per callback call
  };
  const Case cases[] = {
      {"4-byte emoji over 4 tokens", {byte(0xF0), byte(0x9F), byte(0xA4), byte(0x96), the},
       {"", "", "", "\xF0\x9F\xA4\x96", " the"}},
      {"2- and 3-byte characters", {byte(0xC3), byte(0xA9), byte(0xE2), byte(0x82), byte(0xAC)},
       {"", "\xC3\xA9", "", "", "\xE2\x82\xAC"}},
      {"a lead byte followed by text can no longer complete", {byte(0xF0), the}, {"", "\xF0 the"}},
      {"a stray continuation byte passes at once", {the, byte(0x9F), the}, {" the", "\x9F", " the"}},
      {"a surrogate prefix (ED A0) is invalid", {byte(0xED), byte(0xA0), the}, {"", "\xED\xA0", " the"}},
      {"an overlong prefix (E0 80) is invalid", {byte(0xE0), byte(0x80)}, {"", "\xE0\x80"}},
      {"held bytes at the end come in one last call", {the, byte(0xF0), byte(0x9F)}, {" the", "", "", "\xF0\x9F"}},
  };
  for (const Case& k : cases) {
    SCOPED_TRACE(k.what);
    GenerateResult r;
    const std::vector<std::string> texts = stream_forced(*c, k.forced, &r);
    EXPECT_EQ(texts, k.texts);
    std::string joined;
    for (const std::string& t : texts) joined += t;
    EXPECT_EQ(r.text, joined);
  }
}

// ---- C API --------------------------------------------------------------------------------

struct Collected {
  std::vector<int32_t> ids;
};
int collect(int32_t id, const char*, size_t, void* user) {
  static_cast<Collected*>(user)->ids.push_back(id);
  return 0;
}

TEST(GenerateContinueCApi, ContinuesTheCacheAndChecksItsArguments) {
  ember_model* m = nullptr;
  ASSERT_EQ(ember_model_load(fixture("models/memo260K.gguf").c_str(), nullptr, &m), EMBER_OK) << ember_last_error();
  ember_context_params cp = ember_context_default_params();
  cp.n_ctx = 64;
  cp.n_threads = 1;
  ember_context *c = nullptr, *fresh = nullptr;
  ASSERT_EQ(ember_context_create(m, &cp, &c), EMBER_OK);
  ASSERT_EQ(ember_context_create(m, &cp, &fresh), EMBER_OK);
  const int32_t prompt[] = {1, 403, 407, 261, 378};  // "Once upon a time"
  ember_generate_params gp = ember_generate_default_params();
  gp.sampling.temperature = 0;
  gp.max_tokens = 4;
  gp.stop_at_eos = 0;
  Collected first, second, whole;
  gp.on_token = collect;
  gp.user = &first;
  ember_generate_result r{};
  ASSERT_EQ(ember_generate_tokens(c, prompt, 5, &gp, &r), EMBER_OK) << ember_last_error();
  ASSERT_EQ(first.ids.size(), 4u);
  EXPECT_EQ(ember_n_past(c), 5 + 4 - 1);

  // Next turn: the unevaluated last token, then " there".
  const int32_t next[] = {first.ids.back(), 383};
  gp.user = &second;
  ASSERT_EQ(ember_generate_continue(c, next, 2, &gp, &r), EMBER_OK) << ember_last_error();
  EXPECT_EQ(r.n_prompt, 2);
  EXPECT_EQ(r.n_generated, 4);
  EXPECT_EQ(ember_n_past(c), 5 + 4 + 1 + 4 - 1);

  std::vector<int32_t> all(prompt, prompt + 5);
  all.insert(all.end(), first.ids.begin(), first.ids.end());
  all.push_back(383);
  gp.user = &whole;
  ASSERT_EQ(ember_generate_tokens(fresh, all.data(), all.size(), &gp, &r), EMBER_OK);
  EXPECT_EQ(second.ids, whole.ids);

  // Truncate back to the first prompt and continue: the first turn's output again.
  ASSERT_EQ(ember_context_truncate(c, 4), EMBER_OK);
  Collected again;
  gp.user = &again;
  ASSERT_EQ(ember_generate_continue(c, prompt + 4, 1, &gp, &r), EMBER_OK);
  EXPECT_EQ(again.ids, first.ids);

  // Errors: one-line messages naming the function, the cache untouched.
  const int32_t n_past = ember_n_past(c);
  EXPECT_EQ(ember_context_truncate(c, n_past + 1), EMBER_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(ember_last_error()).find("n_past"), std::string::npos) << ember_last_error();
  EXPECT_EQ(ember_context_truncate(c, -1), EMBER_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(ember_context_truncate(nullptr, 0), EMBER_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(ember_generate_continue(c, nullptr, 1, &gp, &r), EMBER_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(ember_last_error()).find("ember_generate_continue"), std::string::npos);
  EXPECT_EQ(ember_generate_continue(c, next, 0, &gp, &r), EMBER_ERR_INVALID_ARGUMENT);
  std::vector<int32_t> too_long(64 - n_past, 383);
  EXPECT_EQ(ember_generate_continue(c, too_long.data(), too_long.size(), &gp, &r), EMBER_ERR_OUT_OF_RANGE);
  EXPECT_EQ(ember_generate_continue(nullptr, next, 2, &gp, &r), EMBER_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(ember_n_past(c), n_past);

  ember_context_free(c);
  ember_context_free(fresh);
  ember_model_free(m);
}

}  // namespace
}  // namespace ember
