// Tests of `ember chat` through a pipe and of `ember synth --vocab`, on tiny random-weight
// models that carry a real vocabulary and chat template (synthesized per test from the
// fixtures' vocab-only GGUFs: Gemma 3's SentencePiece vocabulary; Qwen3's byte-level BPE one
// where this build loads it). What the command reports is checked against an independent
// computation through the C API: the template rendered, the rendered suffix tokenized.
//
// The replies are greedy noise of random weights, deterministic on every machine (every
// kernel table gives the scalar reference's bits). The conversation below was chosen so
// that each reply is plain text that the templates keep verbatim (Gemma 3's trims), which
// is when a turn can evaluate only its new tokens; a test says so if that ever changes.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "ember/ember.h"
#include "ember/ember_tools.h"
#include "loader/gguf_writer.h"
#include "support/fixtures.h"
#include "support/run_ember.h"

namespace ember {
namespace {

using testing::fixture;
using Result = testing::CliResult;

struct Vocab {
  const char* preset;
  const char* file;  // under the fixtures' tokenizer/
};
const Vocab kGemma3 = {"tiny-gemma3", "tokenizer/gemma3-vocab.gguf"};
const Vocab kQwen3 = {"tiny-qwen3", "tokenizer/qwen3-vocab.gguf"};

// One "[turn N: ...]" pair of --verbose lines.
struct TurnLine {
  int turn = 0, evaluated = 0, cached = 0, reply = 0;
  std::string ending;
};
std::vector<TurnLine> turn_lines(const std::string& err) {
  std::vector<TurnLine> v;
  const std::regex prompt(R"(\[turn (\d+): prompt tokens evaluated (\d+), cached (\d+)\])");
  const std::regex reply(R"(\[turn (\d+): reply (\d+) tokens, ([^\]]+)\])");
  std::istringstream in(err);
  for (std::string line; std::getline(in, line);) {
    std::smatch m;
    if (std::regex_match(line, m, prompt)) v.push_back({std::stoi(m[1]), std::stoi(m[2]), std::stoi(m[3]), 0, ""});
    if (std::regex_match(line, m, reply) && !v.empty()) {
      v.back().reply = std::stoi(m[2]);
      v.back().ending = m[3];
    }
  }
  return v;
}

std::vector<std::string> lines_of(const std::string& s) {
  std::vector<std::string> v;
  std::istringstream in(s);
  for (std::string line; std::getline(in, line);) v.push_back(line);
  return v;
}

constexpr int kTimeout = 600;  // seconds per command

class ChatCli : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::temp_directory_path() / "ember-chat-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr) << std::strerror(errno);
    dir_ = tmpl;
  }
  void TearDown() override {
    for (ember_model* m : models_) ember_model_free(m);
    std::error_code ec;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
  }
  std::string path(const std::string& name) const { return dir_ + "/" + name; }

  // A tiny random model of `v`'s preset with its vocabulary and template (q8_0, seed 0).
  std::string synth(const Vocab& v) {
    const std::string out = path(std::string(v.preset) + ".gguf");
    if (std::filesystem::exists(out)) return out;
    const std::string vocab = fixture(v.file);
    ember_synth_params sp = ember_synth_default_params();
    sp.preset = v.preset;
    sp.type = "q8_0";
    sp.vocab = vocab.c_str();
    EXPECT_EQ(ember_synth_file(out.c_str(), &sp), EMBER_OK) << ember_last_error();
    return out;
  }
  // The model's vocabulary and template through the C API (vocab only); null when this
  // build cannot load the vocabulary.
  ember_model* load(const std::string& model_path) {
    ember_model_params mp = ember_model_default_params();
    mp.vocab_only = 1;
    ember_model* m = nullptr;
    if (ember_model_load(model_path.c_str(), &mp, &m) != EMBER_OK) return nullptr;
    models_.push_back(m);
    return m;
  }
  std::string input(const std::string& text) {
    const std::string p = path("stdin.txt");
    std::ofstream(p, std::ios::binary) << text;
    return p;
  }
  Result chat(const std::vector<std::string>& args, const std::string& stdin_text = "") {
    std::vector<std::string> a = {"chat", "-t", "1"};
    a.insert(a.end(), args.begin(), args.end());
    // Generous: a few seconds natively, a minute under qemu (262144-row output matrix).
    return testing::run_ember(a, path(".run"), kTimeout, stdin_text.empty() ? "/dev/null" : input(stdin_text));
  }

  std::string dir_;
  std::vector<ember_model*> models_;
};

// ---- the C API side of the checks -------------------------------------------------------

using Conversation = std::vector<std::pair<std::string, std::string>>;  // role, content

std::string render(const ember_model* m, const Conversation& conv) {
  std::vector<ember_chat_message> msgs;
  for (const auto& [role, content] : conv) msgs.push_back({role.c_str(), content.c_str()});
  std::string out(1 << 16, '\0');
  size_t n = 0;
  EXPECT_EQ(ember_chat_apply_template(m, nullptr, msgs.data(), msgs.size(), 1, out.data(), out.size(), &n),
            EMBER_OK)
      << ember_last_error();
  out.resize(std::min(n, out.size()));
  return out;
}

// Special tokens parsed, no BOS added (the templates write it).
std::vector<int32_t> tokens(const ember_model* m, const std::string& text) {
  std::vector<int32_t> ids(text.size() + 8);
  size_t n = 0;
  EXPECT_EQ(ember_tokenize(m, text.data(), text.size(), 0, 1, ids.data(), ids.size(), &n), EMBER_OK);
  ids.resize(std::min(n, ids.size()));
  return ids;
}

// ---- three turns through a pipe -----------------------------------------------------------

const char* const kMessages[] = {"Tell me a story", "Second question", "Third one"};

// Turn 1 evaluates its whole rendering; turns 2 and 3 only the tokens of what the rendering
// adds after the previous prompt and reply, all of which stay cached.
void expect_three_turns_evaluate_only_new_tokens(const ember_model* m, const Result& r) {
  ASSERT_EQ(r.code, 0) << r.err;
  const std::vector<std::string> replies = lines_of(r.out);
  const std::vector<TurnLine> turns = turn_lines(r.err);
  ASSERT_EQ(replies.size(), 3u) << r.out;
  ASSERT_EQ(turns.size(), 3u) << r.err;
  Conversation conv = {{"user", kMessages[0]}};
  std::string previous = render(m, conv);
  EXPECT_EQ(turns[0].turn, 1);
  EXPECT_EQ(turns[0].cached, 0);
  EXPECT_EQ(static_cast<size_t>(turns[0].evaluated), tokens(m, previous).size());
  for (size_t t = 1; t < 3; ++t) {
    SCOPED_TRACE("turn " + std::to_string(t + 1));
    // -n 8 ends the previous reply (an end-of-turn token would be in the cache too).
    ASSERT_EQ(turns[t - 1].ending, "-n reached");
    ASSERT_EQ(turns[t - 1].reply, 8);
    conv.push_back({"assistant", replies[t - 1]});
    conv.push_back({"user", kMessages[t]});
    const std::string rendered = render(m, conv);
    const std::string evaluated = previous + replies[t - 1];
    ASSERT_EQ(rendered.compare(0, evaluated.size(), evaluated), 0)
        << "the template changed reply " << t << " ('" << replies[t - 1]
        << "'): choose other messages for this test";
    EXPECT_EQ(turns[t].turn, static_cast<int>(t + 1));
    EXPECT_EQ(static_cast<size_t>(turns[t].evaluated), tokens(m, rendered.substr(evaluated.size())).size());
    EXPECT_EQ(turns[t].cached, turns[t - 1].cached + turns[t - 1].evaluated + turns[t - 1].reply);
    previous = rendered;
  }
}

std::string three_turns() { return std::string(kMessages[0]) + "\n" + kMessages[1] + "\n" + kMessages[2] + "\n"; }

TEST_F(ChatCli, ThreeTurnsThroughAPipeEvaluateOnlyTheirNewTokens) {
  const std::string model = synth(kGemma3);
  ember_model* m = load(model);
  ASSERT_NE(m, nullptr) << ember_last_error();
  const Result r = chat({"-m", model, "--verbose", "-n", "8", "--temp", "0"}, three_turns());
  expect_three_turns_evaluate_only_new_tokens(m, r);
  // The end-of-turn token comes from the vocabulary and the template.
  EXPECT_NE(r.err.find("a reply ends at <end_of_turn> (106)"), std::string::npos) << r.err;
}

// Byte-level BPE (Qwen3's vocabulary and ChatML-style template): runs once this build
// loads gpt2 vocabularies.
TEST_F(ChatCli, ThreeTurnsWithAByteLevelBpeVocabulary) {
  const std::string model = synth(kQwen3);
  ember_model* m = load(model);
  if (!m) GTEST_SKIP() << "this build does not load the qwen3 vocabulary: " << ember_last_error();
  const Result r = chat({"-m", model, "--verbose", "-n", "8", "--temp", "0"}, three_turns());
  expect_three_turns_evaluate_only_new_tokens(m, r);
  EXPECT_NE(r.err.find("a reply ends at <|im_end|> (151645)"), std::string::npos) << r.err;
}

TEST_F(ChatCli, OneTurnWithPromptGivesTheFirstReply) {
  const std::string model = synth(kGemma3);
  const Result piped = chat({"-m", model, "-n", "8", "--temp", "0"}, three_turns());
  ASSERT_EQ(piped.code, 0) << piped.err;
  const Result one = chat({"-m", model, "-n", "8", "--temp", "0", "-p", kMessages[0]});
  ASSERT_EQ(one.code, 0) << one.err;
  EXPECT_EQ(one.out, lines_of(piped.out).at(0) + "\n");
  EXPECT_EQ(one.err, "");
}

// /reset starts over with an empty cache; /system changes the first turn of Gemma 3's
// rendering, so the turn re-evaluates from the longest common token prefix.
TEST_F(ChatCli, ResetStartsOverAndSystemReusesTheCommonPrefix) {
  const std::string model = synth(kGemma3);
  ember_model* m = load(model);
  ASSERT_NE(m, nullptr);
  const std::string in = std::string(kMessages[0]) + "\n/reset\n" + kMessages[0] + "\n/system Be brief.\n" +
                         kMessages[1] + "\n/nosuch\n/exit\nnever sent\n";
  const Result r = chat({"-m", model, "--verbose", "-n", "8", "--temp", "0"}, in);
  ASSERT_EQ(r.code, 0) << r.err;
  const std::vector<std::string> replies = lines_of(r.out);
  const std::vector<TurnLine> turns = turn_lines(r.err);
  ASSERT_EQ(replies.size(), 3u) << r.out;  // /exit ended the input
  ASSERT_EQ(turns.size(), 3u) << r.err;
  EXPECT_NE(r.err.find("ember chat: the conversation is reset"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("ember chat: unknown command '/nosuch'"), std::string::npos) << r.err;

  // After /reset: turn 1 again, from nothing, with the same reply.
  EXPECT_EQ(turns[1].turn, 1);
  EXPECT_EQ(turns[1].cached, 0);
  EXPECT_EQ(turns[1].evaluated, turns[0].evaluated);
  EXPECT_EQ(replies[1], replies[0]);

  // After /system: what stays is the common token prefix of the old and new renderings.
  const std::vector<int32_t> before = tokens(m, render(m, {{"user", kMessages[0]}}));
  const std::vector<int32_t> after = tokens(
      m, render(m, {{"system", "Be brief."}, {"user", kMessages[0]}, {"assistant", replies[1]}, {"user", kMessages[1]}}));
  const size_t common = std::mismatch(before.begin(), before.end(), after.begin(), after.end()).first - before.begin();
  ASSERT_LT(common, before.size());  // the system message changes the first turn
  EXPECT_EQ(turns[2].cached, static_cast<int>(common));
  EXPECT_EQ(static_cast<size_t>(turns[2].evaluated), after.size() - common);
}

// A 64-token context holds three short turns: the fourth drops the oldest turn, says so
// once, and re-evaluates the rest; every turn leaves room for its 8-token reply.
TEST_F(ChatCli, AFullContextDropsTheOldestTurnsWithANotice) {
  const std::string model = synth(kGemma3);
  std::string in;
  for (int i = 0; i < 6; ++i) in += "Message number " + std::to_string(i) + "\n";
  const Result r = chat({"-m", model, "--verbose", "-n", "8", "--temp", "0", "-c", "64"}, in);
  ASSERT_EQ(r.code, 0) << r.err;
  const std::vector<TurnLine> turns = turn_lines(r.err);
  ASSERT_EQ(turns.size(), 6u) << r.err;
  const std::regex notice(R"(ember chat: the context is full: dropped the oldest (\d+) turns?)");
  int notices = 0;
  size_t first_drop = 0;
  for (const std::string& line : lines_of(r.err)) {
    if (!std::regex_match(line, notice)) continue;
    ++notices;
    // The turn line printed after the notice belongs to the turn that dropped.
    const size_t at = r.err.find(line);
    if (!first_drop) first_drop = turn_lines(r.err.substr(0, at)).size();
  }
  ASSERT_GE(notices, 1) << r.err;
  ASSERT_GT(first_drop, 0u);
  for (const TurnLine& t : turns) EXPECT_LE(t.cached + t.evaluated + 8, 64) << "turn " << t.turn;
  // The turn that dropped re-evaluated from where the old rendering changed.
  const TurnLine& before = turns[first_drop - 1];
  EXPECT_LT(turns[first_drop].cached, before.cached + before.evaluated + before.reply);
}

TEST_F(ChatCli, BadFlagsAndModelsAreOneLineErrors) {
  EXPECT_USAGE_ERROR(chat({"-p", "hi"}), "--model");
  EXPECT_USAGE_ERROR(chat({"-m", "x.gguf", "-n", "0"}), "-n");
  EXPECT_USAGE_ERROR(chat({"-m", "x.gguf", "--temp", "-1"}), "--temp");
  EXPECT_USAGE_ERROR(chat({"-m", "x.gguf", "-p", ""}), "-p");
  EXPECT_USAGE_ERROR(chat({"-m", "x.gguf", "--frobnicate"}), "--frobnicate");
  EXPECT_RUNTIME_ERROR(chat({"-m", path("missing.gguf"), "-p", "hi"}), "missing.gguf");
  // memo260K carries no chat template.
  EXPECT_RUNTIME_ERROR(chat({"-m", fixture("models/memo260K.gguf"), "-p", "hi"}), "chat_template");
  const std::string model = synth(kGemma3);
  EXPECT_USAGE_ERROR(chat({"-m", model, "--chat-template", "nosuch", "-p", "hi"}), "nosuch");
  // A built-in name and a template file both work.
  const Result builtin = chat({"-m", model, "--chat-template", "chatml", "-p", "hi", "-n", "2", "--temp", "0"});
  EXPECT_EQ(builtin.code, 0) << builtin.err;
  const std::string file = path("tmpl.jinja");
  std::ofstream(file) << "{% for m in messages %}<start_of_turn>{{ m.role }}\n{{ m.content }}<end_of_turn>\n"
                         "{% endfor %}<start_of_turn>model\n";
  const Result from_file = chat({"-m", model, "--chat-template", file, "-p", "hi", "-n", "2", "--temp", "0"});
  EXPECT_EQ(from_file.code, 0) << from_file.err;
}

// Ctrl-C stops the reply being generated and the conversation goes on with the next line.
// A 64-token context bounds both replies (about 50 and 30 tokens): the first one is
// interrupted long before it ends, the second one ends at the full context.
TEST_F(ChatCli, CtrlCStopsTheReplyNotTheConversation) {
  const std::string model = synth(kGemma3);
  const std::string in = input(std::string(kMessages[0]) + "\n" + kMessages[1] + "\n");
  const std::string out = path("sig.out"), err = path("sig.err");
  const std::vector<std::string> args = {"chat", "-t", "1", "-m", model, "--verbose", "--temp", "0", "-c", "64"};
  const int pid = testing::spawn_ember(args, in, out, err);
  ASSERT_GT(pid, 0);
  // Once the first reply streams, the handler is installed: interrupt it.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(kTimeout);
  std::error_code ec;
  while ((std::filesystem::file_size(out, ec) == 0 || ec) && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ::kill(pid, SIGINT);
  EXPECT_EQ(testing::wait_ember(pid, kTimeout, args), 0);
  std::ifstream ef(err);
  const std::string e((std::istreambuf_iterator<char>(ef)), {});
  const std::vector<TurnLine> turns = turn_lines(e);
  ASSERT_EQ(turns.size(), 2u) << e;
  EXPECT_EQ(turns[0].ending, "interrupted") << e;
  // The second turn continued after the interrupted reply (kept in the conversation).
  EXPECT_GT(turns[1].cached, turns[0].cached + turns[0].evaluated);
}

// ---- ember synth --vocab ---------------------------------------------------------------------

TEST_F(ChatCli, SynthVocabCopiesTheTokenizerAndIsDeterministic) {
  const std::string vocab = fixture(kGemma3.file);
  const std::string a = path("a.gguf"), b = path("b.gguf");
  for (const std::string& out : {a, b}) {
    const Result r = testing::run_ember({"synth", "--preset", "tiny-gemma3", "--type", "q8_0", "--vocab", vocab, "-o",
                                         out, "-q", "-t", "1"},
                                        path(".run"), kTimeout);
    ASSERT_EQ(r.code, 0) << r.err;
  }
  EXPECT_TRUE(testing::read_file(a) == testing::read_file(b)) << "two runs wrote different bytes";

  ember_model* synth_model = nullptr;
  ASSERT_EQ(ember_model_load(a.c_str(), nullptr, &synth_model), EMBER_OK) << ember_last_error();
  models_.push_back(synth_model);
  ember_model* vocab_model = load(vocab);
  ASSERT_NE(vocab_model, nullptr);
  ember_model_info info{};
  ASSERT_EQ(ember_model_get_info(synth_model, &info), EMBER_OK);
  EXPECT_EQ(info.n_vocab, 262144);
  EXPECT_EQ(info.n_embd, 256);  // the preset's shapes
  EXPECT_STREQ(ember_model_meta_string(synth_model, "tokenizer.chat_template"),
               ember_model_meta_string(vocab_model, "tokenizer.chat_template"));
  EXPECT_STREQ(ember_model_meta_string(synth_model, "ember.synth.vocab"), "gemma3-vocab.gguf");
  const std::string text = "<start_of_turn>user\nHello, 世界 🤖\n\n  <b>x</b><end_of_turn>";
  EXPECT_EQ(tokens(synth_model, text), tokens(vocab_model, text));

  // A file without a vocabulary, and a missing file: one line naming it.
  GgufWriter w;
  w.SetString("general.architecture", "llama");
  const std::string empty = path("no-vocab.gguf");
  ASSERT_TRUE(w.Write(empty).ok());
  for (const std::string& bad : {empty, path("missing.gguf")}) {
    const Result r = testing::run_ember(
        {"synth", "--preset", "tiny", "--type", "f32", "--vocab", bad, "-o", path("c.gguf"), "-q"}, path(".run"),
        kTimeout);
    EXPECT_RUNTIME_ERROR(r, bad);
    EXPECT_FALSE(std::filesystem::exists(path("c.gguf")));
  }
}

}  // namespace
}  // namespace ember
