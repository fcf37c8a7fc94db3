// `ember serve --server URL`: an edge server that forwards (docs/HYBRID.md). The device model
// (octopus-tiny Q4_0 with the phone adapter) answers tool calls first; the router decides
// whether the call stands or the query goes upstream — a fake OpenAI server in this process
// or a second `ember serve` with octopus-server. Where the answer came from is in
// "ember_route"; a slow, unreachable or failing upstream leaves the local call standing;
// plain completions are answered locally; without --server nothing changes.
#include "test_serve_support.h"
#include "support/fake_openai_server.h"

namespace ember::testing {
namespace {

const std::string kDevice = "models/octopus-tiny/octopus-tiny-q4_0.gguf";
const std::string kPhoneLora = "models/octopus-tiny/lora-phone.gguf";
const std::string kServerModel = "models/octopus-server/octopus-server.gguf";
const std::string kHardQuery = "lr heat 17!";  // the home domain's shorthand: the phone device is unsure
const FakeServer::Call kWeatherParis{"get_weather", {{"city", "Paris"}}};

// The device as an edge server: `ember serve -m octopus-tiny-q4_0 --lora phone [extra]`.
std::vector<std::string> edge_args(std::vector<std::string> extra) {
  std::vector<std::string> a = {"-m", fixture(kDevice), "--lora", fixture(kPhoneLora)};
  a.insert(a.end(), extra.begin(), extra.end());
  return a;
}

json ask(httplib::Client& cli, const std::string& query, bool stream = false) {
  return chat(cli, {{"messages", {{{"role", "user"}, {"content", query}}}}, {"stream", stream}});
}

json first_call(const json& response) {
  const json& m = response["choices"][0]["message"];
  if (!m.contains("tool_calls")) return json();
  const json& f = m["tool_calls"][0]["function"];
  return {{"name", f["name"]}, {"arguments", json::parse(f["arguments"].get<std::string>())}};
}

TEST(ServeForward, RouteServerAnswersWithTheUpstreamsCallAndSaysSo) {
  FakeServer upstream(kWeatherParis);
  ServeProcess edge(edge_args({"--server", upstream.url(), "--route", "server"}), "forward_server");
  ASSERT_TRUE(edge.ok());
  auto cli = edge.client();
  const json r = ask(cli, kHardQuery);
  EXPECT_EQ(r["choices"][0]["finish_reason"], "tool_calls") << r;
  EXPECT_EQ(first_call(r), json({{"name", "get_weather"}, {"arguments", {{"city", "Paris"}}}})) << r;
  const json& route = r["ember_route"];
  EXPECT_EQ(route.value("source", ""), "server") << r;
  EXPECT_EQ(route.value("route", ""), "server");
  EXPECT_TRUE(route["score"].is_number() && route["threshold"].is_number()) << r;
  EXPECT_TRUE(route["local"].is_object()) << r;  // the call it replaced
  // The request the router sends: the user's query, the registry's tools, temperature 0.
  const std::vector<json> reqs = upstream.requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0]["messages"], json::array({{{"role", "user"}, {"content", kHardQuery}}}));
  EXPECT_EQ(reqs[0].value("temperature", -1), 0);
  EXPECT_EQ(reqs[0]["tools"].size(), 24u);  // octopus-tiny's registry
  EXPECT_EQ(metric(cli, "ember_requests_routed_total"), 1);
  EXPECT_EQ(metric(cli, "ember_route_fallbacks_total"), 0);

  // Streamed: the upstream's call in the tool_calls delta, ember_route in the last chunk.
  bool done = false;
  auto s = post(cli, "/v1/chat/completions",
                {{"messages", {{{"role", "user"}, {"content", kHardQuery}}}}, {"stream", true}});
  ASSERT_TRUE(s);
  const std::vector<json> ev = sse_events(s->body, &done);
  ASSERT_TRUE(done && ev.size() == 3) << s->body;
  EXPECT_EQ(ev[1]["choices"][0]["delta"]["tool_calls"][0]["function"]["name"], "get_weather") << s->body;
  EXPECT_EQ(ev[2]["ember_route"].value("source", ""), "server") << s->body;

  // A request's tools go upstream instead of the registry's; a call outside them is refused.
  const json only_timer = {{"messages", {{{"role", "user"}, {"content", kHardQuery}}}},
                           {"tools", {{{"type", "function"}, {"function", {{"name", "set_timer"}}}}}}};
  const json t = chat(cli, only_timer);
  EXPECT_EQ(upstream.requests().back()["tools"].size(), 1u);
  EXPECT_EQ(t["ember_route"].value("source", ""), "local") << t;
  EXPECT_NE(t["ember_route"].value("server_error", "").find("not among the request's tools"), std::string::npos) << t;
  EXPECT_EQ(first_call(t)["name"], "set_timer") << t;
  EXPECT_EQ(metric(cli, "ember_route_fallbacks_total"), 1);
}

TEST(ServeForward, RouteLocalAndASureCallNeverAskAndAnswerAsTheDevice) {
  FakeServer upstream(kWeatherParis);
  ServeProcess local(edge_args({"--server", upstream.url(), "--route", "local"}), "forward_local");
  // auto with a threshold below every score: the local call always stands.
  ServeProcess sure(edge_args({"--server", upstream.url(), "--route-threshold", "-1"}), "forward_sure");
  ASSERT_TRUE(local.ok() && sure.ok());
  auto a = local.client();
  auto b = sure.client();
  const json ra = ask(a, kHardQuery), rb = ask(b, kHardQuery);
  EXPECT_EQ(ra["ember_route"].value("source", ""), "local") << ra;
  EXPECT_EQ(rb["ember_route"].value("source", ""), "local") << rb;
  EXPECT_EQ(rb["ember_route"].value("route", ""), "auto") << rb;
  EXPECT_FALSE(ra["ember_route"].contains("server_error"));
  EXPECT_EQ(first_call(ra), first_call(rb));  // the same device call either way
  EXPECT_FLOAT_EQ(ra["ember_route"].value("score", -1.0f), rb["ember_route"].value("score", -2.0f));
  EXPECT_TRUE(upstream.requests().empty());
  EXPECT_EQ(metric(a, "ember_requests_routed_total"), 0);
  EXPECT_EQ(metric(b, "ember_route_decisions_total"), 1);
}

TEST(ServeForward, AutoForwardsAHardQueryToASecondEmberServe) {
  ServeProcess server({"-m", fixture(kServerModel)}, "forward_upstream");
  ASSERT_TRUE(server.ok());
  const std::string url = "http://127.0.0.1:" + std::to_string(server.port());
  // function_prob of the phone device on the home shorthand is about one half: a threshold
  // above 1 routes every call, the auto path's "unsure" branch.
  ServeProcess edge(edge_args({"--server", url, "--route-threshold", "1.01", "--server-timeout",
                                std::to_string(kStepTimeoutS)}),
                    "forward_edge");
  ASSERT_TRUE(edge.ok());
  auto cli = edge.client();
  const json r = ask(cli, kHardQuery);
  EXPECT_EQ(r["ember_route"].value("source", ""), "server") << r;
  EXPECT_EQ(first_call(r)["name"], "set_temperature") << r;
  EXPECT_EQ(first_call(r)["arguments"].value("degrees", -1), 17) << r;
  EXPECT_EQ(metric(cli, "ember_requests_routed_total"), 1);
}

TEST(ServeForward, SlowUnreachableOrFailingUpstreamLeavesTheLocalCallStanding) {
  FakeServer slow(kWeatherParis, std::chrono::milliseconds(30000));
  FakeServer failing(kWeatherParis, std::chrono::milliseconds(0), 500);
  std::string dead_url;
  {
    FakeServer gone(kWeatherParis);
    dead_url = gone.url();
  }  // stopped: nothing listens on that port now
  const std::pair<std::string, std::string> cases[] = {
      {slow.url(), "longer than --server-timeout"}, {dead_url, "unreachable"}, {failing.url(), "HTTP 500"}};
  for (const auto& [url, why] : cases) {
    ServeProcess edge(edge_args({"--server", url, "--route", "server", "--server-timeout", "0.5"}), "forward_fb");
    ASSERT_TRUE(edge.ok());
    auto cli = edge.client();
    const auto t0 = std::chrono::steady_clock::now();
    const json r = ask(cli, kHardQuery);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const json& route = r["ember_route"];
    EXPECT_EQ(route.value("source", ""), "local") << r;
    EXPECT_NE(route.value("server_error", "").find("local answer stands"), std::string::npos) << r;
    EXPECT_TRUE(route.value("server_error", "").find(why) != std::string::npos ||
                route.value("server_error", "").find("unreachable or too slow") != std::string::npos)
        << why << ": " << r;
    EXPECT_EQ(r["choices"][0]["finish_reason"], "tool_calls") << r;  // the device's call stands
    EXPECT_LT(s, kStepTimeoutS / 2.0) << "the edge server waited for the upstream";
    EXPECT_EQ(metric(cli, "ember_route_fallbacks_total"), 1);
  }
}

TEST(ServeForward, PlainCompletionsAreAnsweredLocallyAndNoServerChangesNothing) {
  FakeServer upstream(kWeatherParis);
  ServeProcess edge(edge_args({"--server", upstream.url(), "--route", "server"}), "forward_plain");
  ServeProcess plain(edge_args({}), "forward_none");
  ServeProcess local(edge_args({"--server", upstream.url(), "--route", "local"}), "forward_keep");
  ASSERT_TRUE(edge.ok() && plain.ok() && local.ok());
  auto e = edge.client();
  auto p = plain.client();
  const json completion = {{"prompt", "Take a selfie"}, {"max_tokens", 4}, {"temperature", 0}};
  const json ce = chat(e, completion, "/v1/completions"), cp = chat(p, completion, "/v1/completions");
  EXPECT_FALSE(ce.contains("ember_route")) << ce;
  EXPECT_EQ(ce["choices"], cp["choices"]);
  const json none = {{"messages", {{{"role", "user"}, {"content", "hi"}}}}, {"tool_choice", "none"},
                     {"max_tokens", 4}, {"temperature", 0}};
  EXPECT_FALSE(chat(e, none).contains("ember_route"));
  EXPECT_TRUE(upstream.requests().empty());
  // Without --server: OpenAI's fields only, and the same call and usage as the device's
  // local answer under --server (whose only addition is ember_route); no routing metrics.
  const json r = ask(p, kHardQuery);
  auto l = local.client();
  json routed_locally = ask(l, kHardQuery);
  ASSERT_TRUE(routed_locally.contains("ember_route")) << routed_locally;
  routed_locally.erase("ember_route");
  for (const char* k : {"id", "created"}) EXPECT_TRUE(r.contains(k) && routed_locally.contains(k));
  json a = r, b = routed_locally;
  for (json* x : {&a, &b}) {
    x->erase("id");
    x->erase("created");
    (*x)["choices"][0]["message"]["tool_calls"][0].erase("id");
  }
  EXPECT_EQ(a, b);
  EXPECT_EQ(metric(p, "ember_requests_routed_total"), -1);
  EXPECT_EQ(metric(p, "ember_route_fallbacks_total"), -1);
}

TEST(ServeForward, BadFlagsAreErrors) {
  const CliResult r = run_ember({"serve", "-m", fixture(kDevice), "--route", "server", "--port", "0"},
                                ::testing::TempDir() + "forward_bad", kStepTimeoutS);
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("--route server needs --server URL"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace ember::testing
