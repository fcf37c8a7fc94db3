// The C API's thread-safety rules (include/ember/ember.h, docs/EMBEDDING.md), checked:
//  - one model shared by contexts used on different threads at the same time gives each
//    context exactly what it gives alone (greedy generation, function calls through one
//    shared registry);
//  - ember_last_error() is per thread: a failure on one thread does not change another's.
// Run under ThreadSanitizer too when the build has it (the races this would catch are
// writes to the shared model, tokenizer or registry during evaluation).
#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

#include "ember/ember.h"
#include "support/fixtures.h"

namespace ember {
namespace {

using testing::fixture;

#ifdef EMBER_TEST_EMULATOR
constexpr int kRounds = 2;  // qemu is ~20x slower
#else
constexpr int kRounds = 8;
#endif

int append_text(int32_t, const char* text, size_t len, void* user) {
  static_cast<std::string*>(user)->append(text, len);
  return 0;
}

// Greedy text of 24 tokens for prompt on ctx.
std::string generate(ember_context* ctx, const char* prompt) {
  ember_generate_params gp = ember_generate_default_params();
  gp.sampling.temperature = 0;
  gp.max_tokens = 24;
  gp.stop_at_eos = 0;
  std::string text;
  gp.on_token = append_text;
  gp.user = &text;
  EXPECT_EQ(ember_generate(ctx, prompt, &gp, nullptr), EMBER_OK) << ember_last_error();
  return text;
}

ember_context* new_context(ember_model* m, int32_t n_threads) {
  ember_context_params cp = ember_context_default_params();
  cp.n_ctx = 128;
  cp.n_threads = n_threads;
  ember_context* c = nullptr;
  EXPECT_EQ(ember_context_create(m, &cp, &c), EMBER_OK) << ember_last_error();
  return c;
}

TEST(ApiThreads, ContextsOfOneModelOnSeveralThreads) {
  ember_model* m = nullptr;
  ASSERT_EQ(ember_model_load(fixture("models/stories260K.gguf").c_str(), nullptr, &m), EMBER_OK);
  const char* prompts[] = {"Once upon a time", "The little dog"};
  std::string alone[2];
  {
    ember_context* c = new_context(m, 1);
    for (int i = 0; i < 2; ++i) alone[i] = generate(c, prompts[i]);
    ember_context_free(c);
  }
  ASSERT_NE(alone[0], alone[1]);
  std::string got[2][kRounds];
  std::vector<std::thread> threads;
  for (int i = 0; i < 2; ++i) {
    threads.emplace_back([&, i] {
      ember_context* c = new_context(m, i + 1);  // 1 and 2 threads: each calling thread has its own pool
      for (int r = 0; r < kRounds; ++r) got[i][r] = generate(c, prompts[i]);
      ember_context_free(c);
    });
  }
  for (std::thread& t : threads) t.join();
  for (int i = 0; i < 2; ++i)
    for (int r = 0; r < kRounds; ++r) EXPECT_EQ(got[i][r], alone[i]) << "thread " << i << ", round " << r;
  ember_model_free(m);
}

TEST(ApiThreads, OneRegistryCallsOnSeveralThreads) {
  ember_model* m = nullptr;
  ASSERT_EQ(ember_model_load((std::string(EMBER_SOURCE_DIR) + "/models/octopus-tiny.gguf").c_str(), nullptr, &m),
            EMBER_OK);
  ember_functions* fns = nullptr;
  ASSERT_EQ(ember_functions_load(m, nullptr, &fns), EMBER_OK) << ember_last_error();
  const char* queries[] = {"What's the weather in Paris?", "Wake me at 7 am"};
  std::string alone[2];
  ember_call_params cp = ember_call_default_params();
  auto call = [&](ember_context* c, const char* q) {
    ember_call_result r;
    EXPECT_EQ(ember_call(c, fns, q, &cp, &r), EMBER_OK) << ember_last_error();
    std::string json = r.json ? r.json : "";
    ember_call_result_free(&r);
    return json;
  };
  {
    ember_context* c = new_context(m, 1);
    for (int i = 0; i < 2; ++i) alone[i] = call(c, queries[i]);
    ember_context_free(c);
  }
  std::string got[2][kRounds];
  std::vector<std::thread> threads;
  for (int i = 0; i < 2; ++i) {
    threads.emplace_back([&, i] {
      ember_context* c = new_context(m, 1);
      for (int r = 0; r < kRounds; ++r) got[i][r] = call(c, queries[i]);
      ember_context_free(c);
    });
  }
  for (std::thread& t : threads) t.join();
  for (int i = 0; i < 2; ++i)
    for (int r = 0; r < kRounds; ++r) EXPECT_EQ(got[i][r], alone[i]) << "thread " << i << ", round " << r;
  ember_functions_free(fns);
  ember_model_free(m);
}

TEST(ApiThreads, LastErrorIsPerThread) {
  EXPECT_EQ(ember_model_load("/nonexistent/a.gguf", nullptr, nullptr), EMBER_ERR_INVALID_ARGUMENT);
  const std::string mine = ember_last_error();
  ASSERT_NE(mine, "");
  std::string other_before, other_after;
  std::thread t([&] {
    other_before = ember_last_error();
    ember_model* m = nullptr;
    EXPECT_NE(ember_model_load("/nonexistent/b.gguf", nullptr, &m), EMBER_OK);
    other_after = ember_last_error();
  });
  t.join();
  EXPECT_EQ(other_before, "");  // a new thread starts with no error
  EXPECT_NE(other_after.find("b.gguf"), std::string::npos) << other_after;
  EXPECT_EQ(ember_last_error(), mine);  // this thread's message is untouched
}

}  // namespace
}  // namespace ember
