// test_serve: per-request adapters and blends (equal to the CLI's), and concurrent
// clients (equal to sequential requests).
#include <atomic>
#include <cstdio>

#include "tests/test_serve_support.h"

namespace ember::testing {
namespace {

const char* kPhone = "models/octopus-tiny/lora-phone.gguf";

json ask(httplib::Client& cli, const std::string& q, const json& extra = json::object()) {
  json body = {{"messages", {{{"role", "user"}, {"content", q}}}}};
  body.update(extra);
  return chat(cli, body);
}

// {"function", "arguments"} of a server answer, shaped as `ember call` prints them.
json as_call(const json& r) {
  const json& f = r.at("choices").at(0).at("message").at("tool_calls").at(0).at("function");
  return {{"function", f.at("name")}, {"arguments", json::parse(f.at("arguments").get<std::string>())}};
}

json cli_call(const std::string& q, const std::vector<std::string>& extra) {
  const json j = ember_call_answer(q, extra);
  return {{"function", j.at("function")}, {"arguments", j.at("arguments")}};
}

TEST(Serve, PerRequestLoraEqualsTheCli) {
  const std::string phone = fixture(kPhone);
  ServeProcess srv({"-m", fixture(kOctopus), "--lora", phone}, "serve_lora");
  ASSERT_TRUE(srv.ok());
  httplib::Client cli = srv.client();
  const json adapters = parse(cli.Get("/lora-adapters")->body);
  ASSERT_EQ(adapters.size(), 1u);
  EXPECT_EQ(adapters[0].at("id"), 0);
  EXPECT_EQ(adapters[0].at("path"), phone);
  EXPECT_EQ(adapters[0].at("scale"), 1.0);
  int differ = 0;
  LocalCaller local;  // ember_call as `ember call` runs it; the last query asks the CLI itself
  for (const std::string& q : adapter_queries("phone", 4)) {
    const json with = local.call(q, phone), base = local.call(q);
    differ += with != base;
    EXPECT_EQ(as_call(ask(cli, q)), with) << q;  // the start scale
    EXPECT_EQ(as_call(ask(cli, q, {{"lora", {{{"id", 0}, {"scale", 0.0}}}}})), base) << q;
    EXPECT_EQ(as_call(ask(cli, q, {{"lora", json::array()}})), base) << q;  // none named: none applied
    EXPECT_EQ(as_call(ask(cli, q, {{"lora", {{{"id", 0}, {"scale", 1.0}}}}})), with) << q;
    EXPECT_EQ(as_call(ask(cli, q)), with) << q;  // back to the start scale after a request's own
  }
  EXPECT_GE(differ, 1) << "the adapter changes none of the sampled calls: the test shows nothing";
  const std::string q = adapter_queries("phone", 1)[0];
  const json half = cli_call(q, {"--lora", phone + ":0.5"});
  EXPECT_EQ(as_call(ask(cli, q, {{"lora", {{{"id", 0}, {"scale", 0.5}}}}})), half);
  EXPECT_EQ(local.call(q, phone, 0.5f), half);
}

// The weights `ember lora blend --weights auto` prints, one per adapter.
std::vector<float> cli_blend_weights(const std::vector<std::string>& examples, const std::vector<std::string>& loras) {
  const std::string path = ::testing::TempDir() + "serve_blend_examples.txt";
  {
    std::ofstream f(path);
    for (const std::string& e : examples) f << e << "\n";
  }
  std::vector<std::string> args = {"lora", "blend", "-m", fixture(kOctopus), "--weights", "auto", "--examples", path,
                                   "-t", "1"};
  for (const std::string& l : loras) args.insert(args.end(), {"-a", l});
  const CliResult r = run_ember(args, ::testing::TempDir() + "serve_blend", kStepTimeoutS);
  std::remove(path.c_str());
  EXPECT_EQ(r.code, 0) << r.err;
  std::vector<float> w;
  std::istringstream in(r.out);
  std::string line;
  std::getline(in, line);  // the header
  while (w.size() < loras.size() && std::getline(in, line)) w.push_back(std::stof(line));
  return w;
}

TEST(Serve, BlendByExamplesUsesTheCliWeightsAndIsCached) {
  // Each adapter with task examples (8 of its domain's twisted queries: enough to tell the
  // domains apart, few enough for qemu), as FILE@TASK_EX.
  std::vector<std::string> loras, task_files;
  for (const char* d : {"phone", "home", "travel"}) {
    task_files.push_back(::testing::TempDir() + "serve_tasks_" + d + ".txt");
    std::ofstream f(task_files.back());
    for (const std::string& q : adapter_queries(d, 8)) f << q << "\n";
    loras.push_back(fixture(std::string("models/octopus-tiny/lora-") + d + ".gguf") + "@" + task_files.back());
  }
  ServeProcess srv({"-m", fixture(kOctopus), "--lora", loras[0], "--lora", loras[1], "--lora", loras[2]},
                   "serve_blend");
  ASSERT_TRUE(srv.ok());
  httplib::Client cli = srv.client();
  const std::vector<std::string> examples = adapter_queries("home", 3);
  const std::vector<float> want = cli_blend_weights(examples, loras);
  ASSERT_EQ(want.size(), 3u);
  const std::string q = adapter_queries("home", 6)[5];
  const json first = ask(cli, q, {{"lora_blend", {{"examples", examples}}}});
  ASSERT_TRUE(first.contains("lora_blend")) << first.dump();
  const json& w = first.at("lora_blend").at("weights");
  ASSERT_EQ(w.size(), 3u);
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(w[i].get<float>(), want[i]) << i;  // the same float (printed %.9g)
  EXPECT_EQ(first.at("lora_blend").at("cached"), false);
  const json second = ask(cli, q, {{"lora_blend", {{"examples", examples}}}});
  EXPECT_EQ(second.at("lora_blend").at("cached"), true);
  EXPECT_EQ(second.at("lora_blend").at("weights"), w);
  EXPECT_EQ(as_call(second), as_call(first));
  // The blend is the adapters at those weights together.
  json scales = json::array();
  for (size_t i = 0; i < 3; ++i) scales.push_back({{"id", i}, {"scale", w[i]}});
  EXPECT_EQ(as_call(ask(cli, q, {{"lora", scales}})), as_call(first));
  for (const std::string& f : task_files) std::remove(f.c_str());
}

// A choice without the tool call ids (they number the requests).
std::string choice_of(const json& r) {
  json c = r.at("choices").at(0);
  if (c.contains("message") && c.at("message").contains("tool_calls"))
    for (json& t : c["message"]["tool_calls"]) t.erase("id");
  return c.dump();
}

// Requests per client: 20 natively; under qemu (about 200 times slower here) 3, the same paths.
#ifdef EMBER_TEST_EMULATOR
constexpr int kRequestsPerClient = 3;
#else
constexpr int kRequestsPerClient = 20;
#endif

// 8 clients x 20 requests on 4 slots answer exactly as one client asking in turn.
TEST(Serve, ConcurrentClientsGetTheSequentialAnswers) {
  ServeProcess srv({"-m", fixture(kOctopus), "--parallel", "4"}, "serve_concurrent");
  ASSERT_TRUE(srv.ok());
  std::vector<std::pair<std::string, json>> requests;  // path, body
  for (const std::string& q : sample_queries(6))
    requests.push_back({"/v1/chat/completions", {{"messages", {{{"role", "user"}, {"content", q}}}}}});
  for (const char* p : {"Call Bob", "Set an alarm", "Turn on the", "Book a flight"})
    requests.push_back({"/v1/completions", {{"prompt", p}, {"max_tokens", 8}, {"temperature", 0}}});
  httplib::Client cli = srv.client();
  std::vector<std::string> expected;
  for (const auto& [path, body] : requests) {
    const json r = chat(cli, body, path);
    expected.push_back(choice_of(r));
  }
  std::atomic<int> wrong{0}, answered{0};
  std::vector<std::thread> clients;
  for (int c = 0; c < 8; ++c)
    clients.emplace_back([&, c] {
      httplib::Client mine = srv.client();
      for (int i = 0; i < kRequestsPerClient; ++i) {
        const size_t k = static_cast<size_t>(c * 7 + i * 3) % requests.size();
        auto r = post(mine, requests[k].first, requests[k].second);
        if (!r || r->status != 200) continue;
        ++answered;
        const json j = json::parse(r->body, nullptr, false);
        if (j.is_discarded() || !j.contains("choices") || choice_of(j) != expected[k]) ++wrong;
      }
    });
  for (std::thread& t : clients) t.join();
  EXPECT_EQ(answered, 8 * kRequestsPerClient);
  EXPECT_EQ(wrong, 0);
  EXPECT_EQ(metric(cli, "ember_slots_busy"), 0);
}

}  // namespace
}  // namespace ember::testing
