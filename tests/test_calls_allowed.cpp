// ember_call_params.allowed_functions: a call restricted to some of the registry's
// functions never chooses another one, and an unrestricted call (NULL, or every
// function listed) is bit for bit the call of before.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "ember/ember.h"
#include "support/fixtures.h"

namespace {

using ember::testing::fixture;

struct Call {
  std::string json, text;
  int32_t function = -1;
  std::vector<int32_t> tokens;
};

Call run(ember_context* c, ember_functions* fns, const char* query, const ember_call_params& p) {
  ember_call_result r;
  Call out;
  if (ember_call(c, fns, query, &p, &r) != EMBER_OK) {
    ADD_FAILURE() << ember_last_error();
    return out;
  }
  out = {r.json, r.text, r.function_index, std::vector<int32_t>(r.tokens, r.tokens + r.n_tokens)};
  ember_call_result_free(&r);
  return out;
}

TEST(CallAllowedFunctions, RestrictsTheChoiceAndLeavesTheRestBitIdentical) {
  ember_set_log_level(4);
  ember_model* m = nullptr;
  ASSERT_EQ(ember_model_load(fixture("models/octopus-tiny/octopus-tiny.gguf").c_str(), nullptr, &m), EMBER_OK)
      << ember_last_error();
  ember_functions* fns = nullptr;
  ASSERT_EQ(ember_functions_load(m, nullptr, &fns), EMBER_OK) << ember_last_error();
  ember_context_params cpar = ember_context_default_params();
  cpar.n_threads = 1;
  ember_context* c = nullptr;
  ASSERT_EQ(ember_context_create(m, &cpar, &c), EMBER_OK);

  const char* query = "Adjust the temperature in the bedroom to 27";
  ember_call_params p = ember_call_default_params();
  EXPECT_EQ(p.allowed_functions, nullptr);
  EXPECT_EQ(p.n_allowed_functions, 0u);
  const Call base = run(c, fns, query, p);
  ASSERT_EQ(base.function, 8);  // set_temperature

  // Every function allowed: the same call, token for token.
  std::vector<int32_t> all(ember_functions_count(fns));
  for (size_t i = 0; i < all.size(); ++i) all[i] = static_cast<int32_t>(i);
  p.allowed_functions = all.data();
  p.n_allowed_functions = all.size();
  const Call same = run(c, fns, query, p);
  EXPECT_EQ(same.tokens, base.tokens);
  EXPECT_EQ(same.json, base.json);

  // The model's choice left out: another allowed function, never the banned one.
  const std::vector<int32_t> some = {0, 3, 5};
  p.allowed_functions = some.data();
  p.n_allowed_functions = some.size();
  for (const char* q : {query, "Call Bob on speaker", "Take a selfie with the front camera"}) {
    const Call r = run(c, fns, q, p);
    EXPECT_TRUE(r.function == 0 || r.function == 3 || r.function == 5) << q << ": " << r.json;
  }
  // A single allowed function is always the answer.
  const int32_t only = 3;
  p.allowed_functions = &only;
  p.n_allowed_functions = 1;
  EXPECT_EQ(run(c, fns, query, p).function, 3);

  // Back to unrestricted: the first call again.
  p.allowed_functions = nullptr;
  p.n_allowed_functions = 0;
  EXPECT_EQ(run(c, fns, query, p).tokens, base.tokens);

  const int32_t bad = 24;
  p.allowed_functions = &bad;
  p.n_allowed_functions = 1;
  ember_call_result r;
  EXPECT_EQ(ember_call(c, fns, query, &p, &r), EMBER_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(ember_last_error()).find("allowed_functions[0] = 24"), std::string::npos) << ember_last_error();

  ember_context_free(c);
  ember_functions_free(fns);
  ember_model_free(m);
}

}  // namespace
