// `ember call` and `ember eval-calls`: the built binary (EMBER_BINARY_DIR/bin/ember,
// through the cross emulator when there is one) on octopus-tiny: the JSON call,
// exit codes, one-line errors, and the evaluator's JSON report on a few queries.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include "support/fixtures.h"
#include "support/run_ember.h"
#include "support/json.h"

extern char** environ;

namespace ember {
namespace {

using testing::fixture;

// Fewer and cheaper runs in a cross build, whose tests run under qemu.
#ifdef EMBER_TEST_EMULATOR
constexpr bool kQuick = true;
#else
constexpr bool kQuick = false;
#endif

using CliRun = testing::CliResult;

CliRun ember(const std::vector<std::string>& args) {
  return testing::run_ember(
      args, (std::filesystem::temp_directory_path() / ("ember-calls-" + std::to_string(::getpid()))).string(), 120);
}

using testing::one_line;

const std::string kModel = "models/octopus-tiny/octopus-tiny.gguf";

TEST(CallCli, PrintsTheJsonCall) {
  CliRun r = ember({"call", "-m", fixture(kModel), "-t", "1", "Adjust the temperature in the bedroom to 27"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "{\"function\": \"set_temperature\", \"arguments\": {\"room\": \"bedroom\", \"degrees\": 27}, "
                   "\"token\": \"<nexa_8>\"}\n");
  EXPECT_EQ(r.err, "");
  // Explicit registry and template files give the same call.
  r = ember({"call", "-m", fixture(kModel), "-t", "1", "--functions", fixture("models/octopus-tiny/functions.json"),
             "--prompt-template", fixture("models/octopus-tiny/prompt_template.txt"), "Take a selfie with the front camera"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "{\"function\": \"take_photo\", \"arguments\": {\"camera\": \"front\"}, \"token\": \"<nexa_0>\"}\n");
}

TEST(CallCli, VerboseReportsTimingAndSavedTokens) {
  CliRun r = ember({"call", "-m", fixture(kModel), "-t", "1", "--verbose", "Take a selfie with the front camera"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("time to first token"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("tokens generated 6 (call 6)"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("without early stopping 36 tokens: saved 30"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("constraint changed the greedy choice 0 times"), std::string::npos) << r.err;
  if (kQuick) return;
  r = ember({"call", "-m", fixture(kModel), "-t", "1", "--verbose", "--no-early-stop", "Take a selfie with the front camera"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("tokens generated 36 (call 6)"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("early stopping would save 30"), std::string::npos) << r.err;
}

TEST(CallCli, MalformedUnconstrainedOutputIsReported) {
  CliRun r = ember({"call", "-m", fixture(kModel), "-t", "1", "--no-constrain", "Call Bob on speaker"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.out,
            "{\"function\": \"call\", \"error\": \"function 'call' takes 1 argument (contact), got 3\", \"output\": \" "
            "<nexa_2>('Bob', 'Bob', 'Cairo')<nexa_end>\"}\n");
  EXPECT_TRUE(one_line(r.err)) << r.err;
  EXPECT_NE(r.err.find("ember call: the model's output is not a valid call"), std::string::npos) << r.err;
  r = ember({"call", "-m", fixture(kModel), "-t", "1", "Call Bob on speaker"});  // constrained: valid
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "{\"function\": \"call\", \"arguments\": {\"contact\": \"Bob\"}, \"token\": \"<nexa_2>\"}\n");
}

// --lora: octopus-tiny's phone adapter turns this home query into set_volume(27)
// (the visible check of the fixture's README); at scale 0 it changes nothing.
TEST(CallCli, LoraIsApplied) {
  CliRun r = ember({"call", "-m", fixture(kModel), "-t", "1", "--lora", fixture("models/octopus-tiny/lora-phone.gguf"),
                    "Adjust the temperature in the bedroom to 27"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "{\"function\": \"set_volume\", \"arguments\": {\"level\": 27}, \"token\": \"<nexa_6>\"}\n");
  if (kQuick) return;
  r = ember({"call", "-m", fixture(kModel), "-t", "1", "--lora", fixture("models/octopus-tiny/lora-phone.gguf") + ":0",
             "Adjust the temperature in the bedroom to 27"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("\"set_temperature\""), std::string::npos) << r.out;
  r = ember({"call", "-m", fixture(kModel), "--lora", "/nonexistent-adapter", "x"});
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(one_line(r.err)) << r.err;
}

TEST(CallCli, Errors) {
  CliRun r = ember({"call", "-m", fixture(kModel)});
  EXPECT_EQ(r.code, 2);
  EXPECT_TRUE(one_line(r.err)) << r.err;
  r = ember({"call", "-m", fixture(kModel), "--functions", "/nonexistent.json", "x"});
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(one_line(r.err)) << r.err;
  EXPECT_NE(r.err.find("/nonexistent.json"), std::string::npos) << r.err;
  r = ember({"call", "-m", fixture("models/memo260K.gguf"), "x"});  // no registry anywhere
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(one_line(r.err)) << r.err;
  EXPECT_NE(r.err.find("--functions"), std::string::npos) << r.err;
  r = ember({"call", "-m", fixture(kModel), "--end-token", "<nope>", "x"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("'<nope>' is not in the model's vocabulary"), std::string::npos) << r.err;
  r = ember({"eval-calls", "-m", fixture(kModel)});
  EXPECT_EQ(r.code, 2);
  EXPECT_TRUE(one_line(r.err)) << r.err;
  r = ember({"eval-calls", "-m", fixture(kModel), "--queries", "/nonexistent.jsonl"});
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(one_line(r.err)) << r.err;
}

TEST(EvalCallsCli, JsonReportOnAFewQueries) {
  const int n = kQuick ? 1 : 4;
  CliRun r = ember({"eval-calls", "-m", fixture(kModel), "-t", "1", "--queries",
                    fixture("models/octopus-tiny/test_queries.jsonl"), "--limit", std::to_string(n), "--json",
                    "--failures", "3"});
  ASSERT_EQ(r.code, 0) << r.err;
  testing::json j;
  std::string err;
  ASSERT_TRUE(testing::parse_json(r.out, &j, &err)) << err << "\n" << r.out;
  EXPECT_EQ(j.at("queries").get<int64_t>(), n);
  EXPECT_TRUE(j.at("constrained").get<bool>());
  EXPECT_EQ(j.at("exact_match").at("n").get<int64_t>(), n);
  // The first four are take_photo queries the model gets right.
  EXPECT_EQ(j.at("exact_match").at("correct").get<int64_t>(), n);
  EXPECT_EQ(j.at("reference_agreement").at("correct").get<int64_t>(), n);
  EXPECT_EQ(j.at("per_function").at("take_photo").at("predicted").at("take_photo").get<int64_t>(), n);
  EXPECT_GT(j.at("tokens_per_call").at("no_early_stop").get<double>(),
            j.at("tokens_per_call").at("early_stop").get<double>());
  EXPECT_GT(j.at("latency_ms").at("mean").get<double>(), 0);
  // Text report.
  r = ember({"eval-calls", "-m", fixture(kModel), "-t", "1", "--no-constrain", "--no-compare", "--queries",
             fixture("models/octopus-tiny/test_queries.jsonl"), "--limit", "2"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("exact match (function + arguments): 100.0% (2/2)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("tokens per call: 6.00 (call), 6.00 generated"), std::string::npos) << r.out;
}

// Calls re-use the prompt prefix they share with the previous call (the template before
// the query): fewer prompt tokens evaluated, the same calls and token ids as
// --no-prefix-cache, which evaluates every prompt whole.
TEST(EvalCallsCli, PrefixCacheEvaluatesLessAndChangesNoCall) {
  const int n = kQuick ? 2 : 6;
  auto run = [&](bool cache) {
    std::vector<std::string> args = {"eval-calls", "-m", fixture(kModel), "-t", "1", "--queries",
                                     fixture("models/octopus-tiny/test_queries.jsonl"), "--limit",
                                     std::to_string(n), "--json", "--failures", "100", "--no-compare"};
    if (!cache) args.push_back("--no-prefix-cache");
    CliRun r = ember(args);
    EXPECT_EQ(r.code, 0) << r.err;
    testing::json j;
    EXPECT_TRUE(testing::parse_json(r.out, &j)) << r.out;
    return j;
  };
  testing::json with = run(true), without = run(false);
  EXPECT_TRUE(with.at("prefix_cache").get<bool>());
  EXPECT_FALSE(without.at("prefix_cache").get<bool>());
  const int64_t total = with.at("prompt_tokens").get<int64_t>();
  EXPECT_EQ(without.at("prompt_tokens").get<int64_t>(), total);
  EXPECT_EQ(without.at("prompt_tokens_evaluated").get<int64_t>(), total);
  EXPECT_EQ(without.at("prompt_tokens_reused").get<int64_t>(), 0);
  // Every call after the first shares at least the BOS and the template's opening.
  EXPECT_GE(with.at("prompt_tokens_reused").get<int64_t>(), n - 1);
  EXPECT_EQ(with.at("prompt_tokens_evaluated").get<int64_t>() + with.at("prompt_tokens_reused").get<int64_t>(),
            total);
  for (const char* key : {"exact_match", "token_exact_match", "function_correct", "valid_calls",
                          "reference_agreement", "per_function", "tokens_per_call", "constraint_changed", "failures"})
    EXPECT_EQ(with.at(key), without.at(key)) << key;
}

// The query set is JSON read by the command itself: a malformed line is one error naming
// the file, the line and the column; arguments compare as JSON values (27.0 == 27, keys in
// any order).
TEST(EvalCallsCli, QueryFilesAreReadAsJson) {
  const std::string dir = (std::filesystem::temp_directory_path() / ("ember-queries-" + std::to_string(::getpid()))).string();
  std::filesystem::create_directories(dir);
  const auto write = [&](const std::string& name, const std::string& text) {
    std::ofstream(dir + "/" + name) << text;
    return dir + "/" + name;
  };
  const std::string good =
      "{\"query\": \"Adjust the temperature in the bedroom to 27\", \"function\": \"set_temperature\", "
      "\"args\": {\"degrees\": 27.0, \"room\": \"bedroom\"}}\n";
  CliRun r = ember({"eval-calls", "-m", fixture(kModel), "-t", "1", "--no-compare", "--queries",
                    write("good.jsonl", "\n" + good), "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  testing::json j;
  ASSERT_TRUE(testing::parse_json(r.out, &j)) << r.out;
  EXPECT_EQ(j.at("exact_match").at("correct").get<int64_t>(), 1) << r.out;

  const std::string bad = write("bad.jsonl", good + "{\"query\": x}\n");
  r = ember({"eval-calls", "-m", fixture(kModel), "--queries", bad});
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(one_line(r.err)) << r.err;
  EXPECT_EQ(r.err.rfind("ember eval-calls: " + bad + ":2: column 11: syntax error", 0), 0u) << r.err;
  const std::string not_object = write("array.jsonl", "[1, 2]\n");
  r = ember({"eval-calls", "-m", fixture(kModel), "--queries", not_object});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "ember eval-calls: " + not_object + ":1: expected an object with \"query\" and \"function\"\n");
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace ember
