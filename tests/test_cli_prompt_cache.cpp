// `--prompt-cache FILE` of `ember run` and `ember call` (tools/prompt_cache.*): the first run
// saves the state, the next ones load it and evaluate only what follows the common prefix,
// and print the same output as a run without it; a file that does not fit is one error line.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "support/fixtures.h"
#include "support/run_ember.h"

namespace ember {
namespace {

using testing::fixture;

std::string scratch(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("ember-pcache-" + std::to_string(::getpid()) + "-" + name))
      .string();
}

testing::CliResult ember(const std::vector<std::string>& args) {
  return testing::run_ember(args, scratch("run"), 120);
}

std::vector<std::string> run_args(const std::string& prompt, const std::string& cache) {
  std::vector<std::string> a = {"run", "-m", fixture("models/memo260K.gguf"), "-p", prompt, "-n", "24",
                                "--temp", "0", "-t", "1", "-c", "128"};
  if (!cache.empty()) a.insert(a.end(), {"--prompt-cache", cache});
  return a;
}

TEST(PromptCacheCli, RunSavesLoadsAndPrintsTheSameText) {
  const std::string cache = scratch("run.state");
  std::filesystem::remove(cache);
  const testing::CliResult plain = ember(run_args("Once upon a time", ""));
  ASSERT_EQ(plain.code, 0) << plain.err;

  testing::CliResult first = ember(run_args("Once upon a time", cache));
  ASSERT_EQ(first.code, 0) << first.err;
  EXPECT_EQ(first.out, plain.out);
  EXPECT_NE(first.err.find("prompt cache " + cache + ": 0 of 5 prompt tokens reused"), std::string::npos)
      << first.err;
  EXPECT_TRUE(std::filesystem::exists(cache));

  testing::CliResult second = ember(run_args("Once upon a time", cache));
  ASSERT_EQ(second.code, 0) << second.err;
  EXPECT_EQ(second.out, plain.out);
  EXPECT_NE(second.err.find(": 4 of 5 prompt tokens reused"), std::string::npos) << second.err;

  // A longer prompt starting with the saved one: its 5 tokens reused, the rest evaluated.
  const std::string longer = "Once upon a time, there was a little";
  const testing::CliResult longer_plain = ember(run_args(longer, ""));
  testing::CliResult third = ember(run_args(longer, cache));
  ASSERT_EQ(third.code, 0) << third.err;
  EXPECT_EQ(third.out, longer_plain.out);
  EXPECT_NE(third.err.find(": 5 of "), std::string::npos) << third.err;

  // Another context size: refused in one line naming it.
  std::vector<std::string> other = run_args("Once upon a time", cache);
  other[other.size() - 3] = "64";  // -c
  testing::CliResult refused = ember(other);
  EXPECT_EQ(refused.code, 1);
  EXPECT_TRUE(testing::one_line(refused.err)) << refused.err;
  EXPECT_NE(refused.err.find("n_ctx 128, this context 64"), std::string::npos) << refused.err;
  EXPECT_EQ(refused.out, "");
  std::filesystem::remove(cache);
}

TEST(PromptCacheCli, CallReusesTheTemplate) {
  const std::string cache = scratch("call.state");
  std::filesystem::remove(cache);
  const std::string model = fixture("models/octopus-tiny/octopus-tiny.gguf");
  const testing::CliResult plain = ember({"call", "-m", model, "-t", "1", "Take a selfie with the front camera"});
  ASSERT_EQ(plain.code, 0) << plain.err;
  testing::CliResult first =
      ember({"call", "-m", model, "-t", "1", "--prompt-cache", cache, "Take a selfie with the front camera"});
  ASSERT_EQ(first.code, 0) << first.err;
  EXPECT_EQ(first.out, plain.out);
  EXPECT_NE(first.err.find(": 0 of "), std::string::npos) << first.err;
  testing::CliResult second =
      ember({"call", "-m", model, "-t", "1", "--prompt-cache", cache, "Take a selfie with the back camera"});
  ASSERT_EQ(second.code, 0) << second.err;
  const testing::CliResult second_plain = ember({"call", "-m", model, "-t", "1", "Take a selfie with the back camera"});
  EXPECT_EQ(second.out, second_plain.out);
  // The template's opening and the query's first words come from the file.
  const size_t at = second.err.find("prompt tokens reused");
  ASSERT_NE(at, std::string::npos) << second.err;
  EXPECT_EQ(second.err.find(": 0 of "), std::string::npos) << second.err;
  std::filesystem::remove(cache);
}

// chat: the state after the first reply; the next run's first turn keeps what it shares.
TEST(PromptCacheCli, ChatReusesTheFirstTurn) {
  const std::string cache = scratch("chat.state");
  std::filesystem::remove(cache);
  const std::vector<std::string> args = {"chat", "-m", fixture("models/memo260K.gguf"), "--chat-template", "chatml",
                                         "--system", "You tell stories.", "-n", "8", "--temp", "0", "-t", "1",
                                         "-p", "Once upon a time"};
  const testing::CliResult plain = ember(args);
  ASSERT_EQ(plain.code, 0) << plain.err;
  std::vector<std::string> cached = args;
  cached.insert(cached.end(), {"--prompt-cache", cache});
  const testing::CliResult first = ember(cached);
  ASSERT_EQ(first.code, 0) << first.err;
  EXPECT_EQ(first.out, plain.out);
  EXPECT_NE(first.err.find("prompt cache " + cache + ": 0 of "), std::string::npos) << first.err;
  const testing::CliResult second = ember(cached);
  ASSERT_EQ(second.code, 0) << second.err;
  EXPECT_EQ(second.out, plain.out);
  EXPECT_EQ(second.err.find(": 0 of "), std::string::npos) << second.err;
  EXPECT_NE(second.err.find("prompt tokens reused"), std::string::npos) << second.err;
  std::filesystem::remove(cache);
}

}  // namespace
}  // namespace ember
