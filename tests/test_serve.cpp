// `ember serve` over HTTP, as a client sees it: the command is started on an ephemeral
// loopback port (tests/support/run_ember's two-step form) and spoken to with
// httplib::Client; every call has a timeout and the server is stopped with SIGTERM.
// Answers are checked against the CLI (`ember call`, `ember lora blend`) and against
// the server itself (streamed vs not, concurrent vs sequential).
#include "tests/test_serve_support.h"

namespace ember::testing {
namespace {

TEST(Serve, HealthModelsAndToolCallsEqualEmberCall) {
  ServeProcess srv({"-m", fixture(kOctopus)}, "serve_first");
  ASSERT_TRUE(srv.ok());
  httplib::Client cli = srv.client();
  auto health = cli.Get("/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  EXPECT_EQ(parse(health->body).at("status"), "ok");
  auto models = cli.Get("/v1/models");
  ASSERT_TRUE(models);
  EXPECT_EQ(models->status, 200);
  const json m = parse(models->body);
  EXPECT_EQ(m.at("object"), "list");
  EXPECT_EQ(m.at("data").at(0).at("id"), "octopus-tiny");

  for (const std::string& q : sample_queries(4)) {
    const json expected = ember_call_answer(q, {});
    const json r = chat(cli, {{"messages", {{{"role", "user"}, {"content", q}}}}});
    ASSERT_TRUE(r.contains("choices")) << r.dump();
    const json& choice = r.at("choices").at(0);
    EXPECT_EQ(choice.at("finish_reason"), "tool_calls") << q;
    const json& call = choice.at("message").at("tool_calls").at(0);
    EXPECT_EQ(call.at("type"), "function");
    EXPECT_FALSE(call.at("id").get<std::string>().empty());
    EXPECT_EQ(call.at("function").at("name"), expected.at("function")) << q;
    EXPECT_EQ(json::parse(call.at("function").at("arguments").get<std::string>()), expected.at("arguments")) << q;
    EXPECT_GT(r.at("usage").at("prompt_tokens").get<int>(), 0);
  }
}

}  // namespace
}  // namespace ember::testing
