// Tests of the `ember` command: runs the built binary (EMBER_BINARY_DIR/bin/ember)
// with stdout and stderr captured to files, and checks exit codes, one-line errors,
// and the outputs on the memo260K fixture (golden ids, logits and greedy text).
// Every run uses -t 1 so the tests stay fast when ctest runs them in parallel.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "ember/ember.h"
#include "support/fixtures.h"
#include "support/run_ember.h"
#include "support/json.h"

extern char** environ;

namespace ember {
namespace {

using testing::fixture;

using Result = testing::CliResult;

using testing::one_line;

class Cli : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::temp_directory_path() / "ember-cli-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr) << std::strerror(errno);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
  }

  std::string path(const std::string& name) const { return dir_ + "/" + name; }

  // Runs `ember args...`; stdin is /dev/null. Fails the test (and kills the child)
  // after 20 s. EMBER_LOG is removed from the environment so that stderr is exactly
  // what the command prints.
  Result run(const std::vector<std::string>& args) { return testing::run_ember(args, path(".run"), 20); }

  // A copy of the first n bytes of a fixture model, in the test's temp dir.
  std::string truncated_model(size_t n) {
    std::vector<uint8_t> bytes = testing::read_file(fixture("models/memo260K.gguf"));
    bytes.resize(std::min(bytes.size(), n));
    std::string p = path("truncated.gguf");
    std::ofstream(p, std::ios::binary)
        .write(reinterpret_cast<const char*>(bytes.data()),
               static_cast<std::streamsize>(bytes.size()));
    return p;
  }

  std::string dir_;
};



const char* const kSubcommands[] = {"run", "logits", "tokenize"};

// ---- help, version, dispatch ----------------------------------------------------------

TEST_F(Cli, TopLevelHelpListsEveryCommand) {
  for (const char* flag : {"--help", "-h", "help"}) {
    Result r = run({flag});
    EXPECT_EQ(r.code, 0) << flag;
    EXPECT_NE(r.out.find("usage: ember"), std::string::npos) << r.out;
    for (const char* cmd : kSubcommands) EXPECT_NE(r.out.find(cmd), std::string::npos) << cmd;
    EXPECT_EQ(r.err, "");
  }
}

TEST_F(Cli, EverySubcommandHasHelp) {
  for (const char* cmd : kSubcommands) {
    for (const char* flag : {"--help", "-h"}) {
      Result r = run({cmd, flag});
      EXPECT_EQ(r.code, 0) << cmd << " " << flag;
      EXPECT_NE(r.out.find(std::string("usage: ember ") + cmd), std::string::npos) << r.out;
      EXPECT_NE(r.out.find("--model"), std::string::npos) << r.out;
      EXPECT_EQ(r.err, "");
    }
    Result r = run({"help", cmd});
    EXPECT_EQ(r.code, 0);
    EXPECT_NE(r.out.find(std::string("usage: ember ") + cmd), std::string::npos);
  }
}

// ---- README's usage block against --help ------------------------------------------------

// The entries of README.md's usage block (the ```sh block under "The `ember` command"):
// a line starting with "ember " and its indented continuation lines, joined.
std::vector<std::string> readme_usage_entries() {
  std::ifstream f(std::string(EMBER_SOURCE_DIR) + "/README.md");
  std::vector<std::string> entries;
  bool in_section = false, in_block = false;
  for (std::string line; std::getline(f, line);) {
    if (line.rfind("## ", 0) == 0) in_section = line.find("The `ember` command") != std::string::npos;
    if (!in_section) continue;
    if (line.rfind("```", 0) == 0) {
      if (in_block) break;
      in_block = true;
      continue;
    }
    if (!in_block) continue;
    if (line.rfind("ember ", 0) == 0) entries.push_back(line);
    else if (!line.empty() && line[0] == ' ' && !entries.empty()) entries.back() += " " + line;
  }
  return entries;
}

// "-m" and "--model" in text: a dash after the start, a space, '[', '(' or '|'.
std::set<std::string> flags_in(const std::string& text) {
  static const std::regex kFlag(R"((?:^|[\s\[(|])(--?[A-Za-z][A-Za-z0-9-]*))");
  std::set<std::string> out;
  for (std::sregex_iterator it(text.begin(), text.end(), kFlag), end; it != end; ++it) out.insert((*it)[1]);
  return out;
}

// The flags of a --help text: every option row ("  -m, --model MODEL  ..." or
// "      --tokens IDS  ..." and its continuation lines) with its names, and whether the
// row says "(required)".
struct HelpRow {
  std::set<std::string> names;
  bool required = false;
};
std::vector<HelpRow> help_rows(const std::string& help) {
  // Short names ("-m, ", llama.cpp's "-ctk, ") before the long name.
  static const std::regex kRow(R"(^  ((?:-[A-Za-z0-9]+, )*)(--[A-Za-z0-9-]+)|^      (--[A-Za-z0-9-]+))");
  std::vector<HelpRow> rows;
  std::istringstream in(help);
  bool in_row = false;  // a row runs until an empty or unindented line
  for (std::string line; std::getline(in, line);) {
    std::smatch m;
    if (std::regex_search(line, m, kRow)) {
      rows.emplace_back();
      for (size_t i = 2; i < m.size(); ++i)
        if (m[i].matched) rows.back().names.insert(m[i]);
      std::istringstream shorts(m[1].str());
      for (std::string name; std::getline(shorts, name, ',');)
        if (name.find('-') != std::string::npos) rows.back().names.insert(name.substr(name.find('-')));
      in_row = true;
    } else if (line.empty() || line[0] != ' ') {
      in_row = false;
    }
    if (in_row && line.find("(required)") != std::string::npos) rows.back().required = true;
  }
  return rows;
}

// The command words of a usage entry: "ember lora blend -m ..." -> "lora blend".
std::vector<std::string> command_words(const std::string& entry) {
  std::istringstream in(entry);
  std::string w;
  in >> w;  // "ember"
  std::vector<std::string> words;
  while (in >> w && std::regex_match(w, std::regex("[a-z][a-z-]*"))) words.push_back(w);
  return words;
}

// Every flag README shows for a command is one its --help lists, and every flag the help
// marks (required) is shown: the README cannot drift from the commands.
TEST_F(Cli, ReadmeUsageMatchesHelp) {
  const std::vector<std::string> entries = readme_usage_entries();
  ASSERT_GE(entries.size(), 10u) << "README.md's usage block not found";
  std::set<std::string> commands;
  for (const std::string& entry : entries) {
    std::vector<std::string> args = command_words(entry);
    if (args.empty()) continue;  // "ember COMMAND --help"
    commands.insert(args[0]);
    args.push_back("--help");
    Result r = run(args);
    ASSERT_EQ(r.code, 0) << entry << "\n" << r.err;
    const std::vector<HelpRow> rows = help_rows(r.out);
    ASSERT_FALSE(rows.empty()) << r.out;
    std::set<std::string> known;
    for (const HelpRow& row : rows) known.insert(row.names.begin(), row.names.end());
    const std::set<std::string> shown = flags_in(entry.substr(entry.find(' ', 6)));
    for (const std::string& flag : shown)
      EXPECT_TRUE(known.count(flag)) << "README: " << entry << "\n" << flag << " is not in --help:\n" << r.out;
    for (const HelpRow& row : rows) {
      if (!row.required) continue;
      bool in_readme = false;
      for (const std::string& name : row.names) in_readme = in_readme || shown.count(name);
      EXPECT_TRUE(in_readme) << "README: " << entry << "\nlacks the required " << *row.names.begin();
    }
  }
  // Every command of `ember --help` has a line.
  Result top = run({"--help"});
  std::istringstream in(top.out.substr(top.out.find("commands:")));
  std::string line;
  std::getline(in, line);
  while (std::getline(in, line) && line.rfind("  ", 0) == 0 && line[2] != ' ') {
    std::istringstream words(line);
    std::string name;
    words >> name;
    EXPECT_TRUE(commands.count(name)) << "README's usage block has no 'ember " << name << "' line";
  }
}

// The one reference switch is the context's: --reference sets it, EMBER_REFERENCE=1 only
// its default, and neither changes the answer (greedy, same tokens).
TEST_F(Cli, ReferenceKernelsFromFlagOrEnvironment) {
  const std::vector<std::string> args = {"run", "-m", fixture("models/tiny-llama-gqa-q4_0.gguf"), "-p", "Hello",
                                         "-n", "4", "--temp", "0", "-t", "1", "-v"};
  Result fast = run(args);
  ASSERT_EQ(fast.code, 0) << fast.err;
  EXPECT_EQ(fast.err.find("kernels scalar"), std::string::npos) << fast.err;
  std::vector<std::string> with_flag = args;
  with_flag.push_back("--reference");
  Result flag = run(with_flag);
  ASSERT_EQ(flag.code, 0) << flag.err;
  EXPECT_NE(flag.err.find("kernels scalar"), std::string::npos) << flag.err;
  const char* saved = std::getenv("EMBER_REFERENCE");
  const std::string keep = saved ? saved : "";
  setenv("EMBER_REFERENCE", "1", 1);
  Result env = run(args);
  if (saved) setenv("EMBER_REFERENCE", keep.c_str(), 1); else unsetenv("EMBER_REFERENCE");
  ASSERT_EQ(env.code, 0) << env.err;
  EXPECT_NE(env.err.find("kernels scalar"), std::string::npos) << env.err;
  EXPECT_EQ(flag.out, fast.out);
  EXPECT_EQ(env.out, fast.out);
}

// Past the training context or the CPU count is allowed (the user may know better) but said
// once on stderr; the output is the same as within the limits.
TEST_F(Cli, ContextPastTrainingAndThreadsPastCoresWarn) {
  const std::string model = fixture("models/stories260K.gguf");  // trained on 512 positions
  Result within = run({"run", "-m", model, "-p", "Once", "-n", "4", "--temp", "0", "-t", "1", "-c", "512"});
  ASSERT_EQ(within.code, 0) << within.err;
  EXPECT_EQ(within.err.find("warning"), std::string::npos) << within.err;
  Result past = run({"run", "-m", model, "-p", "Once", "-n", "4", "--temp", "0", "-t", "1", "-c", "2048"});
  ASSERT_EQ(past.code, 0) << past.err;
  EXPECT_NE(past.err.find("n_ctx 2048 exceeds the model's training context 512"), std::string::npos) << past.err;
  EXPECT_EQ(past.out, within.out);
  const std::string too_many = std::to_string(std::thread::hardware_concurrency() + 1);
  Result threads = run({"run", "-m", model, "-p", "Once", "-n", "4", "--temp", "0", "-t", too_many});
  ASSERT_EQ(threads.code, 0) << threads.err;
  EXPECT_NE(threads.err.find(too_many + " threads on"), std::string::npos) << threads.err;
  EXPECT_EQ(threads.out, within.out);
}

TEST_F(Cli, HelpWinsOverOtherFlags) {
  Result r = run({"run", "--tmep", "1", "--help"});
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.out.find("usage: ember run"), std::string::npos);
}

TEST_F(Cli, Version) {
  Result r = run({"--version"});
  EXPECT_EQ(r.code, 0);
  EXPECT_EQ(r.out, std::string("ember ") + ember_version() + "\n");
}

TEST_F(Cli, MissingOrUnknownCommandIsAUsageError) {
  EXPECT_USAGE_ERROR(run({}), "missing command");
  EXPECT_USAGE_ERROR(run({"frobnicate"}), "unknown command 'frobnicate'");
  EXPECT_USAGE_ERROR(run({"--frobnicate"}), "unknown flag '--frobnicate'");
  EXPECT_USAGE_ERROR(run({"help", "frobnicate"}), "frobnicate");
}

// ---- flag parsing ---------------------------------------------------------------------

TEST_F(Cli, UnknownFlagIsOneExactLine) {
  Result r = run({"run", "--tmep", "0.5"});
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.err, "ember run: unknown flag '--tmep' (see 'ember run --help')\n");
  EXPECT_EQ(r.out, "");
  EXPECT_USAGE_ERROR(run({"logits", "-x"}), "ember logits: unknown flag '-x'");
  EXPECT_USAGE_ERROR(run({"tokenize", "--bos"}), "ember tokenize: unknown flag '--bos'");
}

TEST_F(Cli, BadValuesAreUsageErrors) {
  const std::string m = fixture("models/memo260K.gguf");
  EXPECT_USAGE_ERROR(run({"run", "-m", m, "-p", "x", "--temp", "abc"}), "'--temp'");
  EXPECT_USAGE_ERROR(run({"run", "-m", m, "-p", "x", "--temp=-1"}), "must be in [0, 100]");
  EXPECT_USAGE_ERROR(run({"run", "-m", m, "-p", "x", "--top-p", "1.5"}), "'--top-p'");
  EXPECT_USAGE_ERROR(run({"run", "-m", m, "-p", "x", "--repeat-penalty", "0"}), "(0, 100]");
  EXPECT_USAGE_ERROR(run({"run", "-m", m, "-p", "x", "-n", "2x"}), "'-n'");
  EXPECT_USAGE_ERROR(run({"run", "-m", m, "-p", "x", "-n", "0"}), "-n");
  EXPECT_USAGE_ERROR(run({"run", "-m", m, "-p", "x", "--seed", "-3"}), "'--seed'");
  EXPECT_USAGE_ERROR(run({"run", "-m", m, "-p", "x", "-t", "99999"}), "'-t'");
  EXPECT_USAGE_ERROR(run({"run", "-m", m, "-p"}), "'-p' needs a value");
  EXPECT_USAGE_ERROR(run({"run", "-m", m, "-p", "x", "--verbose=1"}), "takes no value");
  EXPECT_USAGE_ERROR(run({"run", "-m", m, "-p", "x", "stray"}), "unexpected argument 'stray'");
  EXPECT_USAGE_ERROR(run({"logits", "-m", m, "--tokens", "1,x", "--out", path("l.f32")}), "'1,x'");
  EXPECT_USAGE_ERROR(run({"logits", "-m", m, "--tokens", "1,,2", "--out", path("l.f32")}),
                     "--tokens");
  EXPECT_USAGE_ERROR(run({"logits", "-m", m, "--tokens", "99999999999", "--out", path("l.f32")}),
                     "--tokens");
}

TEST_F(Cli, MissingRequiredArgumentsAreUsageErrors) {
  const std::string m = fixture("models/memo260K.gguf");
  EXPECT_USAGE_ERROR(run({"run", "-p", "x"}), "'--model'");
  EXPECT_USAGE_ERROR(run({"run", "-m", m}), "missing prompt");
  EXPECT_USAGE_ERROR(run({"run", "-m", m, "-p", "x", "-f", path("p.txt")}), "not both");
  EXPECT_USAGE_ERROR(run({"logits", "-m", m, "--out", path("l.f32")}), "'--tokens'");
  EXPECT_USAGE_ERROR(run({"logits", "-m", m, "--tokens", "1"}), "'--out'");
  EXPECT_USAGE_ERROR(run({"logits", "-m", m, "--tokens", "1,2,3", "-c", "2", "--out", path("l")}),
                     "smaller");
  EXPECT_USAGE_ERROR(run({"tokenize", "-m", m}), "missing TEXT");
  EXPECT_USAGE_ERROR(run({"tokenize", "-m", m, "a", "b"}), "unexpected argument 'b'");
}

// ---- bad files ------------------------------------------------------------------------

TEST_F(Cli, MissingModelFileNamesThePath) {
  const std::string missing = path("no-such-model.gguf");
  EXPECT_RUNTIME_ERROR(run({"run", "-m", missing, "-p", "x", "-t", "1"}), missing);
  EXPECT_RUNTIME_ERROR(run({"tokenize", "-m", missing, "x"}), missing);
  EXPECT_RUNTIME_ERROR(run({"logits", "-m", missing, "--tokens", "1", "--out", path("l.f32")}),
                       missing);
  EXPECT_FALSE(testing::file_exists(path("l.f32")));
}

TEST_F(Cli, MalformedModelsAreOneLineErrors) {
  for (size_t n : {size_t{0}, size_t{3}, size_t{1000}, size_t{200000}}) {
    SCOPED_TRACE(n);
    const std::string bad = truncated_model(n);
    Result r = run({"run", "-m", bad, "-p", "x", "-t", "1"});
    EXPECT_RUNTIME_ERROR(r, "ember run: ");
    EXPECT_RUNTIME_ERROR(r, bad);
    EXPECT_RUNTIME_ERROR(run({"tokenize", "-m", bad, "x"}), bad);
    EXPECT_RUNTIME_ERROR(run({"logits", "-m", bad, "--tokens", "1", "--out", path("l.f32")}), bad);
  }
  // A directory and a text file are not models either.
  EXPECT_RUNTIME_ERROR(run({"tokenize", "-m", dir_, "x"}), dir_);
  std::ofstream(path("text.gguf")) << "hello, I am not a model\n";
  EXPECT_RUNTIME_ERROR(run({"tokenize", "-m", path("text.gguf"), "x"}), "text.gguf");
}

TEST_F(Cli, MissingPromptFileNamesThePath) {
  const std::string missing = path("no-such-prompt.txt");
  EXPECT_RUNTIME_ERROR(run({"run", "-m", fixture("models/memo260K.gguf"), "-f", missing}), missing);
}

// ---- tokenize -------------------------------------------------------------------------

TEST_F(Cli, TokenizeGoldenIds) {
  Result r = run({"tokenize", "-m", fixture("models/memo260K.gguf"), "Once upon a time"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  EXPECT_EQ(r.out,
            "1,403,407,261,378\n"
            "1\t<s>\n"
            "403\t\xe2\x96\x81Once\n"
            "407\t\xe2\x96\x81upon\n"
            "261\t\xe2\x96\x81"
            "a\n"
            "378\t\xe2\x96\x81time\n");
}

TEST_F(Cli, TokenizeNoBosAndSpecial) {
  const std::string m = fixture("models/memo260K.gguf");
  Result r = run({"tokenize", "-m", m, "--no-bos", "Once upon a time"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out.substr(0, r.out.find('\n')), "403,407,261,378");

  // "</s>" is one control token only with --special.
  Result plain = run({"tokenize", "-m", m, "--no-bos", "</s>"});
  Result special = run({"tokenize", "-m", m, "--no-bos", "--special", "</s>"});
  ASSERT_EQ(plain.code, 0) << plain.err;
  ASSERT_EQ(special.code, 0) << special.err;
  EXPECT_EQ(special.out.substr(0, special.out.find('\n')), "2");
  EXPECT_NE(plain.out.substr(0, plain.out.find('\n')), "2");

  // `--` lets TEXT start with a dash.
  Result dash = run({"tokenize", "-m", m, "--", "-x"});
  EXPECT_EQ(dash.code, 0) << dash.err;
}

// A vocab-only GGUF (no tensors) tokenizes as llama.cpp's llama_tokenize does (add_special,
// no parse_special): the goldens of both SentencePiece vocabularies; with --special
// (parse_special) those of the byte-level BPE ones (Llama 3, Qwen3).
// The goldens the command is run on, one process each: every third line, and every line
// whose text is an edge case for argv (empty, leading '-' or whitespace, trailing
// whitespace). The library's own tests (Golden, BpeGolden) check every line; this shows
// the command hands argv's bytes to the same tokenizer intact (each run loads a 128k
// vocabulary: all 142 lines took a minute under qemu).
bool argv_sample(size_t i, const std::string& text) {
  if (i % 3 == 0 || text.empty()) return true;
  const auto space = [](char c) { return c == ' ' || c == '\t' || c == '\n'; };
  return text[0] == '-' || space(text.front()) || space(text.back());
}

TEST_F(Cli, TokenizeVocabOnlyGguf) {
  for (const std::string vocab : {"llama2", "memo260K"}) {
    const std::string m = fixture("tokenizer/" + vocab + "-vocab.gguf");
    const std::vector<testing::json> goldens = testing::read_jsonl(fixture("tokenizer/" + vocab + ".tokenizer.jsonl"));
    ASSERT_FALSE(goldens.empty());
    for (size_t i = 0; i < goldens.size(); ++i) {
      const testing::json& g = goldens[i];
      const std::string text = g.at("text").get<std::string>();
      if (!argv_sample(i, text)) continue;
      if (text.find('\0') != std::string::npos) continue;  // an argument cannot carry it
      std::string want;
      for (int32_t id : g.at("ids_llamacpp").get<std::vector<int32_t>>()) {
        if (!want.empty()) want += ',';  // (appended in two steps: GCC 12 warns falsely on "," + s)
        want += std::to_string(id);
      }
      Result r = run({"tokenize", "-m", m, "--", text});
      ASSERT_EQ(r.code, 0) << vocab << ": " << r.err;
      EXPECT_EQ(r.out.substr(0, r.out.find('\n')), want) << vocab << ": '" << text << "'";
    }
  }
  for (const std::string bpe : {"llama3", "qwen3"}) {
    const std::string m = fixture("tokenizer/" + bpe + "-vocab.gguf");
    const std::vector<testing::json> goldens = testing::read_jsonl(fixture("tokenizer/" + bpe + ".tokenizer.jsonl"));
    ASSERT_FALSE(goldens.empty());
    for (size_t i = 0; i < goldens.size(); ++i) {
      const testing::json& g = goldens[i];
      if (!argv_sample(i, g.at("text").get<std::string>())) continue;
      std::string want;
      for (int32_t id : g.at("ids_llamacpp").get<std::vector<int32_t>>()) {
        if (!want.empty()) want += ',';
        want += std::to_string(id);
      }
      Result r = run({"tokenize", "-m", m, "--special", "--", g.at("text").get<std::string>()});
      ASSERT_EQ(r.code, 0) << bpe << ": " << r.err;
      EXPECT_EQ(r.out.substr(0, r.out.find('\n')), want) << bpe << " #" << g.at("i");
    }
  }
  // Byte-level BPE prints each token's text, escaped to stay on its line.
  Result r = run({"tokenize", "-m", fixture("tokenizer/llama3-vocab.gguf"), "--special", "<|begin_of_text|>Hello\n"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "128000,128000,9906,198\n128000\t<|begin_of_text|>\n128000\t<|begin_of_text|>\n9906\tHello\n198\t\\n\n");
  // Other commands need the weights: the error says the file is a vocabulary only.
  EXPECT_RUNTIME_ERROR(run({"run", "-m", fixture("tokenizer/memo260K-vocab.gguf"), "-p", "x", "-t", "1"}),
                       "has no tensors (a vocabulary-only GGUF)");
  EXPECT_RUNTIME_ERROR(run({"chat", "-m", fixture("tokenizer/llama3-vocab.gguf"), "-p", "x", "-t", "1"}),
                       "has no tensors (a vocabulary-only GGUF)");
}

// ---- logits ---------------------------------------------------------------------------

TEST_F(Cli, LogitsMatchGolden) {
  const std::vector<int32_t> ids = testing::read_ids(fixture("models/memo260K.case-2.tokens.txt"));
  const std::vector<float> golden = testing::read_f32(fixture("models/memo260K.case-2.logits.f32"));
  ASSERT_EQ(ids.size(), 21u);
  std::string csv;
  for (int32_t id : ids) {
    if (!csv.empty()) csv += ',';
    csv += std::to_string(id);
  }
  const std::string out = path("logits.f32");

  for (bool reference : {false, true}) {
    SCOPED_TRACE(reference ? "reference" : "fast");
    // An f32 cache: the f16 default moves memo260K's logits by up to its kv_f16, 4.8e-3.
    std::vector<std::string> args = {"logits", "-m", fixture("models/memo260K.gguf"), "--tokens", csv, "--out", out,
                                     "-t", "1", "-ctk", "f32", "-ctv", "f32"};
    if (reference) args.push_back("--reference");
    Result r = run(args);
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(r.err, "");
    EXPECT_EQ(std::filesystem::file_size(out), 4u * 21 * 512);
    std::vector<float> got = testing::read_f32(out);
    ASSERT_EQ(got.size(), golden.size());
    double max_err = 0;
    for (size_t i = 0; i < got.size(); ++i)
      max_err = std::max(max_err, double(std::fabs(got[i] - golden[i])));
    EXPECT_LT(max_err, 1e-3);
  }
  // Only the output is left: the temporary file was renamed.
  size_t n_files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir_))
    n_files += e.path().filename().string().rfind("logits.f32", 0) == 0;
  EXPECT_EQ(n_files, 1u);
}

// `ember logits` on every golden fixture and case, within the tolerance derived in
// tests/test_engine.cpp and docs/TESTING.md: kv_f16 / 64 from the fixture manifest
// (octopus-tiny: 1e-4 against its float32 reference), with an f32 cache (--cache-type-k/v;
// the other types' envelopes: tests/test_kv_cache.cpp).
TEST_F(Cli, LogitsOfEveryGoldenFixtureWithinTolerance) {
  testing::json manifest = testing::read_json(fixture("models/manifest.json"));
  struct Case { std::string model, tokens, logits; double tol; };
  std::vector<Case> cases;
  for (const char* name : {"stories260K", "stories260K-f16", "memo260K", "tiny-llama-gqa-f32", "tiny-gemma-f32",
                           "tiny-gemma2-f32"}) {
    const double tol =
        manifest.at("goldens").at(std::string(name) + ".gguf").at(2).at("sensitivity").at("kv_f16").get<double>() / 64;
    ASSERT_GT(tol, 0) << name;
    for (int k = 1; k <= 3; ++k) {
      const std::string base = std::string("models/") + name + ".case-" + std::to_string(k);
      cases.push_back({std::string("models/") + name + ".gguf", base + ".tokens.txt", base + ".logits.f32", tol});
    }
  }
  for (int k = 0; k < 3; ++k) {
    const std::string base = "models/octopus-tiny/reference/case-" + std::to_string(k);
    cases.push_back({"models/octopus-tiny/octopus-tiny.gguf", base + ".tokens.txt", base + ".logits.f32", 1e-4});
  }
  const std::string out = path("golden.f32");
  for (const Case& c : cases) {
    SCOPED_TRACE(c.logits);
    std::string csv;
    for (int32_t id : testing::read_ids(fixture(c.tokens))) {
      if (!csv.empty()) csv += ',';
      csv += std::to_string(id);
    }
    Result r = run({"logits", "-m", fixture(c.model), "--tokens", csv, "--out", out, "-t", "2", "--cache-type-k",
                    "f32", "--cache-type-v=f32"});
    ASSERT_EQ(r.code, 0) << r.err;
    std::vector<float> got = testing::read_f32(out), golden = testing::read_f32(fixture(c.logits));
    ASSERT_EQ(got.size(), golden.size());
    double max_err = 0;
    for (size_t i = 0; i < got.size(); ++i) max_err = std::max(max_err, double(std::fabs(got[i] - golden[i])));
    EXPECT_LE(max_err, c.tol);
  }
}

// -ctk/-ctv (llama.cpp's spellings) on every command that makes a context: help lists them,
// llama.cpp's types Ember lacks are one-line usage errors naming what it supports.
TEST_F(Cli, CacheTypeFlagsOnEveryCommand) {
  const std::string m = fixture("models/memo260K.gguf");
  for (const char* cmd : {"run", "chat", "call", "eval-calls", "logits", "bench"}) {
    SCOPED_TRACE(cmd);
    Result r = run({cmd, "--help"});
    ASSERT_EQ(r.code, 0);
    for (const char* flag : {"-ctk, --cache-type-k", "-ctv, --cache-type-v", "--swa-full"})
      EXPECT_NE(r.out.find(flag), std::string::npos) << flag << " in\n" << r.out;
    r = run({cmd, "-m", m, "-ctk", "q4_0"});
    EXPECT_USAGE_ERROR(r, "bad value 'q4_0' for '-ctk'");
    EXPECT_NE(r.err.find("f32, f16 or q8_0"), std::string::npos) << r.err;
    EXPECT_USAGE_ERROR(run({cmd, "-m", m, "--cache-type-v=iq4_nl"}), "'--cache-type-v'");
    EXPECT_USAGE_ERROR(run({cmd, "-m", m, "-ctv"}), "'-ctv' needs a value");
  }
  // One type per context outside bench; -ctk is not -c with "tk" unless written as one word.
  EXPECT_USAGE_ERROR(run({"run", "-m", m, "-p", "x", "-ctk", "f16,q8_0"}), "one type, not a list");
  EXPECT_USAGE_ERROR(run({"run", "-m", m, "-p", "x", "-ctkf32"}), "bad value 'tkf32' for '-c'");
}

// q8_0 keys and values: generation runs and --verbose names the types and the cache's size;
// a model whose heads are not whole q8_0 blocks is refused by the library in one line.
TEST_F(Cli, RunWithQ8_0Cache) {
  const std::string gemma3 = fixture("models/tiny-gemma3-f32.gguf");  // heads of 64
  Result r = run({"run", "-m", gemma3, "-p", "Once upon a time", "-n", "12", "--temp", "0", "-t", "1", "-c", "64",
                  "-ctk", "q8_0", "-ctv", "q8_0", "--verbose"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_FALSE(r.out.empty());
  EXPECT_NE(r.err.find("context 64 tokens"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("KV cache"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("K q8_0, V q8_0"), std::string::npos) << r.err;
  r = run({"run", "-m", gemma3, "-p", "Once upon a time", "-n", "12", "--temp", "0", "-t", "1", "-c", "64",
           "-ctk=f32", "--cache-type-v", "f16", "--swa-full", "--verbose"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("K f32, V f16"), std::string::npos) << r.err;
  // memo260K: heads of 8 values.
  r = run({"run", "-m", fixture("models/memo260K.gguf"), "-p", "Once", "-n", "2", "-t", "1", "-ctk", "q8_0"});
  EXPECT_RUNTIME_ERROR(r, "q8_0");
  EXPECT_NE(r.err.find("32"), std::string::npos) << r.err;
}

TEST_F(Cli, LogitsRejectsOutOfRangeIds) {
  const std::string out = path("logits.f32");
  Result r = run({"logits", "-m", fixture("models/memo260K.gguf"), "--tokens", "1,403,512", "--out",
                  out, "-t", "1"});
  EXPECT_RUNTIME_ERROR(r, "512");
  EXPECT_NE(r.err.find("position 2"), std::string::npos) << r.err;
  EXPECT_RUNTIME_ERROR(
      run({"logits", "-m", fixture("models/memo260K.gguf"), "--tokens", "-1", "--out", out}), "-1");
  EXPECT_FALSE(testing::file_exists(out));
}

TEST_F(Cli, LogitsUnwritableOutput) {
  const std::string out = path("no-such-dir/logits.f32");
  EXPECT_RUNTIME_ERROR(run({"logits", "-m", fixture("models/memo260K.gguf"), "--tokens", "1",
                            "--out", out, "-t", "1"}),
                       "no-such-dir");
  EXPECT_RUNTIME_ERROR(run({"logits", "-m", fixture("models/memo260K.gguf"), "--tokens", "1",
                            "--out", dir_, "-t", "1"}),
                       "is a directory");
}

// ---- run ------------------------------------------------------------------------------

const char kGreedyStart[] = ", there was a little girl named Lily";

TEST_F(Cli, RunGreedyMatchesGoldenText) {
  Result r = run({"run", "-m", fixture("models/memo260K.gguf"), "-p", "Once upon a time", "-n",
                  "20", "--temp", "0", "-t", "1"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out.rfind(kGreedyStart, 0), 0u) << r.out;
  EXPECT_EQ(r.err, "");

  // The scalar reference kernels give the same text; --verbose only adds to stderr.
  Result ref = run({"run", "-m", fixture("models/memo260K.gguf"), "-p", "Once upon a time", "-n",
                    "20", "--temp", "0", "-t", "1", "--reference", "--verbose"});
  ASSERT_EQ(ref.code, 0) << ref.err;
  EXPECT_EQ(ref.out, r.out);
  for (const char* needle :
       {"seed", "prefill", "decode", "tok/s", "first token", "stop reason: max tokens"})
    EXPECT_NE(ref.err.find(needle), std::string::npos) << needle << " in\n" << ref.err;
}

TEST_F(Cli, RunPromptFromFile) {
  std::ofstream(path("prompt.txt")) << "Once upon a time\n";
  Result r = run({"run", "-m", fixture("models/memo260K.gguf"), "-f", path("prompt.txt"), "-n",
                  "12", "--temp", "0", "-t", "1"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out.rfind(kGreedyStart, 0), 0u) << r.out;
}

TEST_F(Cli, RunStopsAtStopString) {
  Result r = run({"run", "-m", fixture("models/memo260K.gguf"), "-p", "Once upon a time", "-n",
                  "40", "--temp", "0", "-t", "1", "--stop", "Lily", "--stop", "zebra", "-v"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, ", there was a little girl named ");
  EXPECT_NE(r.err.find("stop reason: stop string"), std::string::npos) << r.err;
}

TEST_F(Cli, RunSeedIsReproducible) {
  std::vector<std::string> args = {"run",     "-m",      fixture("models/memo260K.gguf"),
                                   "-p",      "Once",    "-n",
                                   "24",      "--temp",  "1.5",
                                   "--top-k", "0",       "--top-p",
                                   "1",       "--min-p", "0",
                                   "--seed",  "1234",    "-t",
                                   "1"};
  Result a = run(args), b = run(args);
  ASSERT_EQ(a.code, 0) << a.err;
  ASSERT_EQ(b.code, 0) << b.err;
  EXPECT_FALSE(a.out.empty());
  EXPECT_EQ(a.out, b.out);

  // Without --seed a random seed is chosen and shown with --verbose.
  args.resize(args.size() - 4);
  args.insert(args.end(), {"-t", "1", "-v"});
  Result c = run(args);
  ASSERT_EQ(c.code, 0) << c.err;
  EXPECT_NE(c.err.find("seed "), std::string::npos) << c.err;
}

// The first 40 tokens of memo260K's story fit a context of 48 either way: the same text
// with --context-shift; past the full context, generation goes on only with it.
TEST_F(Cli, RunContextShiftGoesOnPastAFullContext) {
  std::vector<std::string> args = {"run", "-m", fixture("models/memo260K.gguf"), "-p", "Once upon a time",
                                   "-n", "100", "-c", "48", "--temp", "0", "-t", "1", "-v"};
  Result plain = run(args);
  ASSERT_EQ(plain.code, 0) << plain.err;
  EXPECT_NE(plain.err.find("stop reason: context full"), std::string::npos) << plain.err;
  args.insert(args.end(), {"--context-shift", "--keep", "-1"});
  Result shifted = run(args);
  ASSERT_EQ(shifted.code, 0) << shifted.err;
  EXPECT_NE(shifted.err.find("stop reason: max tokens"), std::string::npos) << shifted.err;
  EXPECT_NE(shifted.err.find("context shifts: "), std::string::npos) << shifted.err;
  EXPECT_EQ(shifted.out.rfind(plain.out.substr(0, plain.out.size() / 2), 0), 0u) << shifted.out;
  EXPECT_GT(shifted.out.size(), plain.out.size());
}

TEST_F(Cli, RunPromptLongerThanContext) {
  Result r = run({"run", "-m", fixture("models/memo260K.gguf"), "-p",
                  "Once upon a time there was a little girl", "-c", "4", "-t", "1"});
  EXPECT_RUNTIME_ERROR(r, "context");
}

}  // namespace
}  // namespace ember
