// The device-side router (docs/HYBRID.md): the confidence scores ember_call reports, and
// `ember call --server` / `ember eval-calls --server` / `ember route train` against a fake
// OpenAI-compatible server in this process (httplib on 127.0.0.1, an ephemeral port): where
// the answer comes from under --route local|server|auto and the threshold, and the local
// answer standing when the server is slow, unreachable or answers nonsense.
#include <gtest/gtest.h>
#include <httplib.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "ember/ember.h"
#include "support/fake_openai_server.h"
#include "support/fixtures.h"
#include "support/run_ember.h"

namespace ember {
namespace {

using Json = nlohmann::json;
using testing::fixture;

const std::string kDevice = "models/octopus-tiny/octopus-tiny-q4_0.gguf";
const std::string kPhoneLora = "models/octopus-tiny/lora-phone.gguf";
const std::string kPhoneQueries = "models/octopus-tiny/adapters/phone/test_queries.jsonl";
const std::string kHomeQueries = "models/octopus-tiny/adapters/home/test_queries.jsonl";

std::string scratch(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("ember-router-" + std::to_string(::getpid()) + "-" + name))
      .string();
}

testing::CliResult ember(const std::vector<std::string>& args) { return testing::run_ember(args, scratch("run"), 120); }

Json parse(const std::string& s) { return Json::parse(s, nullptr, /*allow_exceptions=*/false); }

using testing::FakeServer;

const FakeServer::Call kWeatherParis{"get_weather", {{"city", "Paris"}}};

std::vector<std::string> call_args(const std::string& url, std::vector<std::string> extra, const std::string& query) {
  std::vector<std::string> a = {"call", "-m", fixture(kDevice), "--lora", fixture(kPhoneLora), "-t", "1",
                                "--server", url};
  a.insert(a.end(), extra.begin(), extra.end());
  a.push_back(query);
  return a;
}

// ---- the scores -----------------------------------------------------------------------

TEST(RouterScores, AreProbabilitiesOfTheCallAndTheHiddenStateIsReported) {
  ember_model* model = nullptr;
  ASSERT_EQ(ember_model_load(fixture(kDevice).c_str(), nullptr, &model), EMBER_OK);
  ember_context_params cparams = ember_context_default_params();
  cparams.n_threads = 1;
  ember_context* ctx = nullptr;
  ASSERT_EQ(ember_context_create(model, &cparams, &ctx), EMBER_OK);
  ember_functions* fns = nullptr;
  ASSERT_EQ(ember_functions_load(model, nullptr, &fns), EMBER_OK);
  ember_call_params cp = ember_call_default_params();
  for (const char* q : {"Take a selfie with the front camera", "lr heat 17!"}) {
    ember_call_result r;
    ASSERT_EQ(ember_call(ctx, fns, q, &cp, &r), EMBER_OK);
    // top-1 probabilities: the smallest along the call bounds the functional token's from
    // below, and their product bounds the smallest from below.
    EXPECT_GT(r.function_prob, 0.0f);
    EXPECT_LE(r.function_prob, 1.0f);
    EXPECT_LE(r.min_prob, r.function_prob);
    EXPECT_LE(r.call_prob, r.min_prob * (1 + 1e-6f));
    EXPECT_GE(r.min_margin, 0.0f);
    EXPECT_LE(r.min_margin, r.min_prob);  // p1 - p2 <= p1
    EXPECT_GE(r.mean_entropy, 0.0f);
    ASSERT_EQ(r.n_hidden, 192);  // octopus-tiny's n_embd
    ASSERT_NE(r.hidden, nullptr);
    // Final-normed: RMS of the state before the norm weight is 1, so the state is not zero.
    double sq = 0;
    for (int i = 0; i < r.n_hidden; ++i) sq += double(r.hidden[i]) * r.hidden[i];
    EXPECT_GT(sq, 0.0);
    ember_call_result_free(&r);
  }
  // The easy ordinary query is surer than the other domain's shorthand.
  ember_functions_free(fns);
  ember_context_free(ctx);
  ember_model_free(model);
}

// ---- ember call --server ----------------------------------------------------------------

TEST(RouterCall, RouteServerTakesTheServersCallAndSendsTheOpenAIRequest) {
  FakeServer server(kWeatherParis);
  testing::CliResult r = ember(call_args(server.url(), {"--route", "server"}, "lr heat 17!"));
  ASSERT_EQ(r.code, 0) << r.err;
  const Json out = parse(r.out);
  EXPECT_EQ(out.value("source", ""), "server") << r.out;
  EXPECT_EQ(out.value("function", ""), "get_weather");
  EXPECT_EQ(out["arguments"], Json({{"city", "Paris"}}));
  EXPECT_TRUE(out.contains("score") && out.contains("local")) << r.out;
  const std::vector<Json> reqs = server.requests();
  ASSERT_EQ(reqs.size(), 1u);
  const Json& q = reqs[0];
  EXPECT_EQ(q["messages"], Json::array({{{"role", "user"}, {"content", "lr heat 17!"}}}));
  EXPECT_EQ(q.value("temperature", -1), 0);
  ASSERT_TRUE(q["tools"].is_array());
  EXPECT_EQ(q["tools"].size(), 24u);  // octopus-tiny's registry
  bool saw_temperature = false;
  for (const Json& t : q["tools"]) {
    EXPECT_EQ(t.value("type", ""), "function");
    if (t["function"].value("name", "") == "set_temperature") {
      saw_temperature = true;
      const Json& p = t["function"]["parameters"];
      EXPECT_EQ(p["properties"]["room"]["type"], "string");
      EXPECT_EQ(p["properties"]["degrees"]["type"], "integer");
      EXPECT_EQ(p["required"], Json::array({"room", "degrees"}));
    }
  }
  EXPECT_TRUE(saw_temperature);
}

TEST(RouterCall, RouteLocalNeverAsksAndKeepsTheLibrarysCall) {
  FakeServer server(kWeatherParis);
  testing::CliResult plain = ember({"call", "-m", fixture(kDevice), "--lora", fixture(kPhoneLora), "-t", "1",
                                    "Take a selfie with the front camera"});
  testing::CliResult r = ember(call_args(server.url(), {"--route", "local"}, "Take a selfie with the front camera"));
  ASSERT_EQ(r.code, 0) << r.err;
  const Json out = parse(r.out), base = parse(plain.out);
  EXPECT_EQ(out.value("source", ""), "local");
  EXPECT_EQ(out["function"], base["function"]);
  EXPECT_EQ(out["arguments"], base["arguments"]);
  EXPECT_TRUE(server.requests().empty());
}

TEST(RouterCall, ThresholdDecidesInAutoMode) {
  FakeServer server(kWeatherParis);
  // Every score of function_prob is in (0, 1]: threshold 0 keeps the local answer, above 1 routes.
  testing::CliResult keep =
      ember(call_args(server.url(), {"--route-score", "function_prob", "--route-threshold", "0"}, "lr heat 17!"));
  testing::CliResult send =
      ember(call_args(server.url(), {"--route-score", "function_prob", "--route-threshold", "1.01"}, "lr heat 17!"));
  ASSERT_EQ(keep.code, 0) << keep.err;
  ASSERT_EQ(send.code, 0) << send.err;
  const Json k = parse(keep.out), s = parse(send.out);
  EXPECT_EQ(k.value("source", ""), "local") << keep.out;
  EXPECT_EQ(s.value("source", ""), "server") << send.out;
  EXPECT_EQ(server.requests().size(), 1u);
  // The same query has the same score either way; the threshold at the score itself keeps it
  // (the local answer stands when score >= threshold).
  const float score = k.value("score", -1.0f);
  ASSERT_GT(score, 0.0f);
  EXPECT_FLOAT_EQ(score, s.value("score", -2.0f));
  testing::CliResult at = ember(call_args(
      server.url(), {"--route-score", "function_prob", "--route-threshold", std::to_string(score * (1 - 1e-6f))},
      "lr heat 17!"));
  EXPECT_EQ(parse(at.out).value("source", ""), "local") << at.out;
}

TEST(RouterCall, SlowServerLeavesTheLocalAnswerStanding) {
  // A server far slower than the timeout; the command must not wait for it (the bound leaves
  // room for a start under qemu in the cross build).
  FakeServer server(kWeatherParis, std::chrono::milliseconds(30000));
  const auto t0 = std::chrono::steady_clock::now();
  testing::CliResult r =
      ember(call_args(server.url(), {"--route", "server", "--server-timeout", "0.3"}, "lr heat 17!"));
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_EQ(r.code, 0) << r.err;
  const Json out = parse(r.out);
  EXPECT_EQ(out.value("source", ""), "local") << r.out;
  EXPECT_NE(out.value("server_error", "").find("local answer stands"), std::string::npos) << r.out;
  EXPECT_LT(s, 20.0) << "the command waited for the slow server";
}

TEST(RouterCall, UnreachableOrBrokenServerLeavesTheLocalAnswerStanding) {
  std::string dead_url;
  {
    FakeServer gone(kWeatherParis);
    dead_url = gone.url();
  }  // stopped: nothing listens on that port now
  testing::CliResult r = ember(call_args(dead_url, {"--route", "server", "--server-timeout", "2"}, "lr heat 17!"));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(parse(r.out).value("source", ""), "local") << r.out;
  EXPECT_NE(r.out.find("unreachable"), std::string::npos) << r.out;

  FakeServer failing(kWeatherParis, std::chrono::milliseconds(0), 500);
  r = ember(call_args(failing.url(), {"--route", "server"}, "lr heat 17!"));
  EXPECT_EQ(parse(r.out).value("source", ""), "local") << r.out;
  EXPECT_NE(r.out.find("HTTP 500"), std::string::npos) << r.out;

  FakeServer unknown({"launch_rocket", {{"target", "moon"}}});
  r = ember(call_args(unknown.url(), {"--route", "server"}, "lr heat 17!"));
  EXPECT_EQ(parse(r.out).value("source", ""), "local") << r.out;
  EXPECT_NE(r.out.find("not in the registry"), std::string::npos) << r.out;
}

TEST(RouterCall, BadRouteFlagsAreUsageErrors) {
  testing::CliResult r = ember(call_args("http://127.0.0.1:9", {"--route", "sometimes"}, "hi"));
  EXPECT_USAGE_ERROR(r, "--route");
  r = ember(call_args("http://127.0.0.1:9", {"--route-score", "vibes"}, "hi"));
  EXPECT_USAGE_ERROR(r, "vibes");
  r = ember(call_args("http://127.0.0.1:9", {"--route-score", "probe"}, "hi"));
  EXPECT_USAGE_ERROR(r, "--router");
}

// ---- eval-calls --server and route train --------------------------------------------------

// A server that knows every answer of the query files (an oracle): the server column is 100 %.
void teach(FakeServer& server, const std::string& path, int limit) {
  std::ifstream in(path);
  std::string line;
  for (int i = 0; i < limit && std::getline(in, line); ++i) {
    const Json q = parse(line);
    server.answer(q["query"], {q["function"], q["args"]});
  }
}

TEST(RouterEval, ReportsLocalServerAndHybridColumns) {
  FakeServer server(kWeatherParis);
  teach(server, fixture(kPhoneQueries), 24);
  const std::vector<std::string> base = {"eval-calls", "-m", fixture(kDevice), "--lora", fixture(kPhoneLora), "-t",
                                         "1", "-q", fixture(kPhoneQueries), "--limit", "24", "--no-compare",
                                         "--json", "--server", server.url()};
  const auto run = [&](std::vector<std::string> extra) {
    std::vector<std::string> a = base;
    a.insert(a.end(), extra.begin(), extra.end());
    testing::CliResult r = ember(a);
    EXPECT_EQ(r.code, 0) << r.err;
    return parse(r.out);
  };
  const Json local = run({"--route", "local"});
  const Json remote = run({"--route", "server"});
  ASSERT_TRUE(local.contains("hybrid") && remote.contains("hybrid")) << local.dump();
  // The local column is today's exact match.
  EXPECT_EQ(local["local"]["exact_match"], local["exact_match"]);
  EXPECT_EQ(local["server"]["exact_match"]["percent"], 100.0);
  EXPECT_EQ(local["hybrid"]["exact_match"], local["local"]["exact_match"]);
  EXPECT_EQ(local["hybrid"]["routed_fraction"], 0.0);
  EXPECT_EQ(remote["hybrid"]["exact_match"]["percent"], 100.0);
  EXPECT_EQ(remote["hybrid"]["routed_fraction"], 1.0);
  for (const char* col : {"local", "server", "hybrid"})
    EXPECT_GT(remote[col]["latency_ms"]["mean"].get<double>(), 0.0) << col;
  EXPECT_EQ(server.requests().size(), 48u);  // every query asked for the server column, twice
}

TEST(RouterTrain, WritesARouterFileThatCallAndEvalUse) {
  const std::string out = scratch("router.json");
  testing::CliResult r =
      ember({"route", "train", "-m", fixture(kDevice), "--lora", fixture(kPhoneLora), "-t", "1", "-q",
             fixture(kPhoneQueries), "-q", fixture(kHomeQueries), "--half", "calibration", "-o", out, "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  const Json report = parse(r.out);
  ASSERT_TRUE(report.contains("scores")) << r.out;
  for (const char* s :
       {"function_prob", "min_prob", "min_margin", "call_prob", "neg_entropy", "probe", "probe_min_prob"})
    EXPECT_TRUE(report["scores"].contains(s)) << s;
  std::ifstream in(out);
  const Json file = Json::parse(in, nullptr, false);
  EXPECT_EQ(file.value("score", ""), "probe");
  EXPECT_EQ(file["probe"]["weights"].size(), 196u);  // the hidden state (192) and 4 scores
  FakeServer server(kWeatherParis);
  r = ember(call_args(server.url(), {"--router", out}, "kit blinds dn now"));
  ASSERT_EQ(r.code, 0) << r.err;
  const Json c = parse(r.out);
  EXPECT_EQ(c.value("score_name", ""), "probe");
  EXPECT_FLOAT_EQ(c.value("threshold", -1.0f), file["threshold"].get<float>());
  std::filesystem::remove(out);
}

// probe_min_prob (the demonstration's score) writes the same probe, and the call's score is
// the probe's P(right) times the call's min_prob: never above either factor.
TEST(RouterTrain, ProbeMinProbScoreIsTheProbeTimesMinProb) {
  const std::string out = scratch("router-pm.json");
  testing::CliResult r =
      ember({"route", "train", "-m", fixture(kDevice), "--lora", fixture(kPhoneLora), "-t", "1", "-q",
             fixture(kPhoneQueries), "-q", fixture(kHomeQueries), "--half", "calibration", "--score",
             "probe_min_prob", "-o", out, "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  std::ifstream in(out);
  const Json file = Json::parse(in, nullptr, false);
  EXPECT_EQ(file.value("score", ""), "probe_min_prob");
  EXPECT_EQ(file["probe"]["weights"].size(), 196u);
  const std::string query = "kit blinds dn now";
  FakeServer server(kWeatherParis);
  r = ember(call_args(server.url(), {"--router", out, "--route", "local"}, query));
  ASSERT_EQ(r.code, 0) << r.err;
  const float product = parse(r.out).value("score", -1.0f);
  const std::string probe_file = scratch("router-p.json");
  Json as_probe = file;
  as_probe["score"] = "probe";
  std::ofstream(probe_file) << as_probe.dump();
  r = ember(call_args(server.url(), {"--router", probe_file, "--route", "local"}, query));
  ASSERT_EQ(r.code, 0) << r.err;
  const float probe = parse(r.out).value("score", -1.0f);
  r = ember(call_args(server.url(), {"--route-score", "min_prob", "--route", "local"}, query));
  ASSERT_EQ(r.code, 0) << r.err;
  const float min_prob = parse(r.out).value("score", -1.0f);
  ASSERT_GE(probe, 0.0f);
  ASSERT_GE(min_prob, 0.0f);
  // One float multiplication of the two printed floats: exact up to its rounding.
  EXPECT_FLOAT_EQ(product, probe * min_prob);
  std::filesystem::remove(out);
  std::filesystem::remove(probe_file);
}

}  // namespace
}  // namespace ember
