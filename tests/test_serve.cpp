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

  // The first query against `ember call` itself, the rest against the same call in process.
  LocalCaller local;
  const std::vector<std::string> queries = sample_queries(6);
  for (const std::string& q : queries) {
    const json expected = q == queries[0] ? ember_call_answer(q, {}) : local.call(q);
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

// A request's tools restrict the call to those functions; a repeated prompt is
// evaluated from the slot's cache (only its last token).
TEST(Serve, ToolsRestrictTheCallAndPromptsReuseTheSlotCache) {
  ServeProcess srv({"-m", fixture(kOctopus)}, "serve_tools");
  ASSERT_TRUE(srv.ok());
  httplib::Client cli = srv.client();
  const std::string q = "Adjust the temperature in the bedroom to 27";
  const json free = chat(cli, {{"messages", {{{"role", "user"}, {"content", q}}}}});
  const std::string natural = free.at("choices").at(0).at("message").at("tool_calls").at(0).at("function").at("name");
  EXPECT_EQ(natural, "set_temperature");
  const double before = metric(cli, "ember_prompt_tokens_total");
  const json again = chat(cli, {{"messages", {{{"role", "user"}, {"content", q}}}}});
  EXPECT_EQ(metric(cli, "ember_prompt_tokens_total") - before, 1);  // all but the last token from the cache
  EXPECT_EQ(again.at("choices").at(0).at("message").at("tool_calls").at(0).at("function"),
            free.at("choices").at(0).at("message").at("tool_calls").at(0).at("function"));
  for (const char* only : {"set_alarm", "call"}) {
    const json tools = {{{"type", "function"}, {"function", {{"name", only}, {"parameters", json::object()}}}}};
    const json r = chat(cli, {{"messages", {{{"role", "user"}, {"content", q}}}}, {"tools", tools}});
    EXPECT_EQ(r.at("choices").at(0).at("message").at("tool_calls").at(0).at("function").at("name"), only);
  }
  // Both allowed: the model's own choice stands.
  const json both = {{{"type", "function"}, {"function", {{"name", "call"}}}},
                     {{"type", "function"}, {"function", {{"name", natural}}}}};
  const json r = chat(cli, {{"messages", {{{"role", "user"}, {"content", q}}}}, {"tools", both}});
  EXPECT_EQ(r.at("choices").at(0).at("message").at("tool_calls").at(0).at("function"),
            free.at("choices").at(0).at("message").at("tool_calls").at(0).at("function"));
}

}  // namespace
}  // namespace ember::testing
