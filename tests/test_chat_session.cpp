// ChatSession (tools/chat_session.*, the conversation of `ember chat`) on a context whose
// sliding-window layers are small rings: when dropping old turns moves the kept prefix
// further back than a ring still holds, ember_context_truncate refuses and the session
// evaluates the kept tokens again instead of failing the turn. The replies are those of a
// context without rings (the forward pass does not depend on the batch split).
#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

#include "ember/ember.h"
#include "support/fixtures.h"
#include "tools/chat_session.h"

namespace ember {
namespace {

struct Conversation {
  std::vector<std::string> replies;
  std::vector<cli::TurnReport> reports;
};

// Six turns with greedy replies of 6 tokens in a 64-token context (old turns get dropped).
Conversation converse(ember_model* m, int32_t n_batch) {
  Conversation out;
  ember_context_params cp = ember_context_default_params();
  cp.n_ctx = 64;
  cp.n_batch = n_batch;
  cp.n_threads = 1;
  ember_context* c = nullptr;
  EXPECT_EQ(ember_context_create(m, &cp, &c), EMBER_OK) << ember_last_error();
  if (!c) return out;
  cli::ChatSession::Config config;
  config.tmpl = "chatml";
  config.generate = ember_generate_default_params();
  config.generate.sampling.temperature = 0;
  config.generate.max_tokens = 6;
  config.reply_room = 6;
  cli::ChatSession s(m, c, config);
  std::string err;
  EXPECT_TRUE(s.Init(&err)) << err;
  for (int i = 0; i < 6; ++i) {
    std::string reply;
    cli::TurnReport report;
    const bool ok = s.Turn("Message number " + std::to_string(i), [&](std::string_view t) {
      reply.append(t);
      return true;
    }, &report, &err);
    EXPECT_TRUE(ok) << "turn " << i << ": " << err;
    out.replies.push_back(reply);
    out.reports.push_back(report);
  }
  ember_context_free(c);
  return out;
}

TEST(ChatSessionRings, DroppedTurnsBehindARingAreEvaluatedAgain) {
  ember_model* m = nullptr;
  ASSERT_EQ(ember_model_load(testing::fixture("models/tiny-gemma3-f32.gguf").c_str(), nullptr, &m), EMBER_OK);
  const Conversation ring = converse(m, 4);    // window 8: rings of 12 cells
  const Conversation plain = converse(m, 64);  // no ring
  EXPECT_EQ(ring.replies, plain.replies);
  int dropped = 0;
  for (const cli::TurnReport& r : ring.reports) dropped += r.dropped;
  EXPECT_GT(dropped, 0) << "no turn was dropped: the ring case was not exercised";
  ember_model_free(m);
}

}  // namespace
}  // namespace ember
