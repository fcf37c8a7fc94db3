// Automatic LoRA blend weights (offline/lora_tools.h, `ember lora blend --weights auto`):
// the similarity and softmax arithmetic against a hand computation, the choice of the
// domain's own adapter on octopus-tiny, task examples in the adapter metadata, and the
// CLI's blend against `--adapter FILE:WEIGHT` with the weights it printed.
//
// Data on octopus-tiny (no training set ships with it): each domain's twisted queries
// (adapters/<domain>/test_queries.jsonl) are sorted by function. Of the first half, the
// odd lines are the adapter's task examples and 8 even lines spread over it the user's
// examples; the second half is left for evaluation (docs/LORA.md).
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "core/json.h"
#include "engine/lora/lora.h"
#include "engine/lora/auto_weights.h"
#include "offline/lora_tools.h"
#include "engine/model/model.h"
#include "support/fixtures.h"
#include "support/json.h"
#include "support/run_ember.h"

namespace ember {
namespace {

using testing::fixture;

const char* kDir = "models/octopus-tiny/";
const char* kDomains[] = {"phone", "home", "travel"};

std::vector<std::string> twisted_queries(const std::string& domain) {
  const std::string path = fixture(std::string(kDir) + "adapters/" + domain + "/test_queries.jsonl");
  std::vector<std::string> out;
  for (const testing::json& q : testing::read_jsonl(path)) out.push_back(q.at("query").get<std::string>());
  EXPECT_FALSE(out.empty()) << domain;
  return out;
}

// Odd lines of the first half.
std::vector<std::string> task_examples(const std::vector<std::string>& q) {
  std::vector<std::string> out;
  for (size_t i = 1; i < q.size() / 2; i += 2) out.push_back(q[i]);
  return out;
}

// k even lines spread evenly over the first half.
std::vector<std::string> user_examples(const std::vector<std::string>& q, size_t k) {
  std::vector<std::string> out;
  const size_t half = q.size() / 2;
  for (size_t j = 0; j < k; ++j) out.push_back(q[(j * half / k) / 2 * 2]);
  return out;
}

std::unique_ptr<Model> load_model() {
  std::unique_ptr<Model> m;
  Status s = Model::Load(fixture(std::string(kDir) + "octopus-tiny.gguf"), {}, &m);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return m;
}

// ---- arithmetic ----------------------------------------------------------------------

TEST(LoraAuto, SimilarityAndSoftmaxMatchAHandComputation) {
  // u = (1, 2, 0), t1 = (1, 0, 0), t2 = (0, 1, 1).
  const std::vector<double> u = {1, 2, 0}, t1 = {1, 0, 0}, t2 = {0, 1, 1};
  // Plain: cos(u, t1) = 1 / sqrt(5), cos(u, t2) = 2 / (sqrt(5) sqrt(2)).
  std::vector<double> s = lora_similarities(u, {t1, t2}, false);
  ASSERT_EQ(s.size(), 2u);
  // Each is a handful of double operations: within a few ulp of 1.
  const double tol = 1e-15;
  EXPECT_NEAR(s[0], 1 / std::sqrt(5.0), tol);
  EXPECT_NEAR(s[1], 2 / std::sqrt(10.0), tol);
  EXPECT_NEAR(lora_cosine(u, t2), s[1], tol);
  // Centered: c = (1/2, 1/2, 1/2); u - c = (1/2, 3/2, -1/2), t1 - c = (1/2, -1/2, -1/2) = -(t2 - c):
  // cos = (1/4 - 3/4 + 1/4) / (sqrt(11/4) sqrt(3/4)) = -1 / sqrt(33), and its negative for t2.
  s = lora_similarities(u, {t1, t2}, true);
  EXPECT_NEAR(s[0], -1 / std::sqrt(33.0), tol);
  EXPECT_NEAR(s[1], 1 / std::sqrt(33.0), tol);
  // One adapter: centering leaves nothing (cosine 0), so it gets the whole weight.
  EXPECT_EQ(lora_similarities(u, {t1}, true)[0], 0.0);
  EXPECT_EQ(lora_softmax({0.0}, 0.1)[0], 1.0);
  // softmax of two: w1 = 1 / (1 + exp((x2 - x1) / T)).
  const double x1 = 1 / std::sqrt(5.0), x2 = 2 / std::sqrt(10.0), T = 0.5;
  std::vector<double> w = lora_softmax({x1, x2}, T);
  EXPECT_NEAR(w[0], 1 / (1 + std::exp((x2 - x1) / T)), tol);
  EXPECT_NEAR(w[1], 1 / (1 + std::exp((x1 - x2) / T)), tol);
  // Three, and large inputs do not overflow (the maximum is subtracted first).
  w = lora_softmax({1000, 1001, 999}, 1);
  const double e = std::exp(1.0), den = 1 + e + 1 / e;
  EXPECT_NEAR(w[0], 1 / den, tol);
  EXPECT_NEAR(w[1], e / den, tol);
  EXPECT_NEAR(w[2], 1 / e / den, tol);
  // A zero vector has cosine 0, not NaN.
  EXPECT_EQ(lora_cosine({0, 0, 0}, t1), 0.0);
}

TEST(LoraAuto, MeanHiddenStateIsTheMeanOfTheTexts) {
  auto m = load_model();
  ASSERT_TRUE(m);
  std::vector<double> a, b, ab;
  ASSERT_TRUE(lora_mean_hidden(*m, {"buzz Rosa thx"}, 1, &a).ok());
  ASSERT_TRUE(lora_mean_hidden(*m, {"lr blinds dn now"}, 1, &b).ok());
  ASSERT_TRUE(lora_mean_hidden(*m, {"buzz Rosa thx", "lr blinds dn now"}, 1, &ab).ok());
  ASSERT_EQ(a.size(), static_cast<size_t>(m->config().n_embd));
  // Double sums of float states: exact to ~1e-16 relative; the states are O(1).
  for (size_t j = 0; j < a.size(); ++j) EXPECT_NEAR(ab[j], (a[j] + b[j]) / 2, 1e-12) << j;
  EXPECT_FALSE(lora_mean_hidden(*m, {}, 1, &a).ok());
  Status s = lora_mean_hidden(*m, {"fine", ""}, 1, &a);
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_NE(s.message().find("example 2"), std::string::npos) << s.message();
}

// ---- octopus-tiny: the own adapter wins ------------------------------------------------

TEST(LoraAuto, EachDomainsExamplesPickItsOwnAdapter) {
  auto m = load_model();
  ASSERT_TRUE(m);
  std::vector<std::unique_ptr<LoraAdapter>> as;
  std::vector<const LoraAdapter*> raw;
  for (const char* d : kDomains) {
    std::unique_ptr<LoraAdapter> a;
    Status s = LoraAdapter::Load(*m, fixture(std::string(kDir) + "lora-" + d + ".gguf"), &a);
    ASSERT_TRUE(s.ok()) << s.ToString();
    a->set_task_examples(task_examples(twisted_queries(d)));
    raw.push_back(a.get());
    as.push_back(std::move(a));
  }
  // The task means once (they are the expensive part, ~125 texts); each domain's weights
  // from them, for both similarities.
  std::vector<std::vector<double>> tasks(3);
  for (size_t i = 0; i < 3; ++i) ASSERT_TRUE(lora_mean_hidden(*m, raw[i]->task_examples(), 2, &tasks[i]).ok());
  for (size_t u = 0; u < 3; ++u) {
    const std::vector<std::string> ex = user_examples(twisted_queries(kDomains[u]), 8);
    std::vector<double> user;
    ASSERT_TRUE(lora_mean_hidden(*m, ex, 2, &user).ok());
    for (bool centered : {true, false}) {
      const float T = centered ? kLoraAutoTemperatureCentered : kLoraAutoTemperatureCosine;
      const std::vector<double> sim = lora_similarities(user, tasks, centered), w = lora_softmax(sim, T);
      std::printf("[ lora ] %-6s examples, %-8s: weights %.4f %.4f %.4f (similarity %.4f %.4f %.4f)\n", kDomains[u],
                  centered ? "centered" : "cosine", w[0], w[1], w[2], sim[0], sim[1], sim[2]);
      for (size_t i = 0; i < 3; ++i) {
        if (i == u) continue;
        EXPECT_GT(w[u], w[i]) << kDomains[u] << " vs " << kDomains[i];
        EXPECT_GT(sim[u], sim[i]) << kDomains[u] << " vs " << kDomains[i];
      }
      // With the default temperature of the centered form, the own adapter takes most.
      if (centered) {
        EXPECT_GT(w[u], 0.5) << kDomains[u];
      }
      if (u != 1 || !centered) continue;
      // End to end once: lora_auto_weights is these steps (the same double arithmetic).
      LoraAutoWeights a;
      Status s = lora_auto_weights(*m, raw, ex, centered, T, 2, &a);
      ASSERT_TRUE(s.ok()) << s.ToString();
      EXPECT_EQ(a.similarity, sim);
      ASSERT_EQ(a.weight.size(), 3u);
      for (size_t i = 0; i < 3; ++i) EXPECT_EQ(a.weight[i], static_cast<float>(w[i]));
    }
  }
  // An adapter without task examples is named.
  std::unique_ptr<LoraAdapter> bare;
  ASSERT_TRUE(LoraAdapter::Load(*m, fixture(std::string(kDir) + "lora-home.gguf"), &bare).ok());
  LoraAutoWeights w;
  Status s = lora_auto_weights(*m, {raw[0], bare.get()}, {"buzz Rosa"}, true, 0.1f, 1, &w);
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_NE(s.message().find("lora-home.gguf"), std::string::npos) << s.message();
  EXPECT_FALSE(lora_auto_weights(*m, raw, {"buzz Rosa"}, true, 0.0f, 1, &w).ok());  // T must be > 0
}

TEST(LoraAuto, TaskExamplesRoundTripThroughGguf) {
  auto m = load_model();
  ASSERT_TRUE(m);
  std::unique_ptr<LoraAdapter> a, back;
  ASSERT_TRUE(LoraAdapter::Load(*m, fixture(std::string(kDir) + "adapters/phone"), &a).ok());
  EXPECT_TRUE(a->task_examples().empty());
  const std::vector<std::string> ex = {"buzz Rosa thx", "txt Dad brt", "caf\xc3\xa9 \"quoted\""};
  a->set_task_examples(ex);
  std::vector<uint8_t> bytes = lora_serialize_gguf(*a);
  std::unique_ptr<GgufFile> g;
  ASSERT_TRUE(GgufFile::FromMemory(bytes.data(), bytes.size(), "phone.gguf", &g).ok());
  ASSERT_TRUE(LoraAdapter::FromGguf(*m, *g, &back).ok());
  EXPECT_EQ(back->task_examples(), ex);
  ASSERT_EQ(back->weights().size(), a->weights().size());
  for (size_t i = 0; i < a->weights().size(); ++i) {
    EXPECT_EQ(back->weights()[i].a, a->weights()[i].a);
    EXPECT_EQ(back->weights()[i].b, a->weights()[i].b);
  }
}

// ---- the command line --------------------------------------------------------------------

class LoraAutoCli : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::temp_directory_path() / "ember-lora-auto-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
  }
  std::string path(const std::string& name) const { return dir_ + "/" + name; }
  testing::CliResult run(const std::vector<std::string>& args) { return testing::run_ember(args, path(".run"), 300); }
  std::string write(const std::string& name, const std::string& text) {
    std::ofstream(path(name), std::ios::binary) << text;
    return path(name);
  }
  // One example per line.
  std::string write_lines(const std::string& name, const std::vector<std::string>& lines) {
    std::string t;
    for (const std::string& l : lines) t += l + "\n";
    return write(name, t);
  }
  std::string dir_;
};

// The (adapter, weight) rows of `lora blend --weights auto`'s table: "WEIGHT SIMILARITY ADAPTER".
std::vector<std::pair<std::string, std::string>> printed_weights(const std::string& out) {
  std::vector<std::pair<std::string, std::string>> rows;
  std::istringstream in(out);
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    std::istringstream f(line);
    std::string name, sim, weight;
    if (line.rfind("(", 0) == 0 || !(f >> weight >> sim >> name)) continue;
    rows.emplace_back(name, weight);
  }
  return rows;
}

TEST_F(LoraAutoCli, WrittenBlendEqualsTheBlendWithThePrintedWeights) {
  const std::string model = fixture(std::string(kDir) + "octopus-tiny.gguf");
  // phone carries its task examples in its metadata (written by `lora describe` from JSON
  // Lines); home and travel get theirs beside the path (FILE@EX, plain text).
  std::string jsonl;
  for (const std::string& q : task_examples(twisted_queries("phone"))) {
    jsonl += "{\"domain\": \"phone\", \"args\": {\"query\": \"not this\"}, \"query\": " + JsonQuote(q) + "}\n";
  }
  const std::string phone = path("phone-described.gguf");
  testing::CliResult r = run({"lora", "describe", "-m", model, "--adapter",
                              fixture(std::string(kDir) + "lora-phone.gguf"), "--examples",
                              write("phone-tasks.jsonl", jsonl), "-o", phone});
  ASSERT_EQ(r.code, 0) << r.err;
  {
    std::unique_ptr<Model> m = load_model();
    std::unique_ptr<LoraAdapter> a;
    ASSERT_TRUE(m && LoraAdapter::Load(*m, phone, &a).ok());
    EXPECT_EQ(a->task_examples(), task_examples(twisted_queries("phone")));  // the top-level "query" only
  }
  const std::vector<std::string> adapters = {
      phone, fixture(std::string(kDir) + "lora-home.gguf") + "@" +
                 write_lines("home-tasks.txt", task_examples(twisted_queries("home"))),
      fixture(std::string(kDir) + "lora-travel.gguf") + "@" +
          write_lines("travel-tasks.txt", task_examples(twisted_queries("travel")))};
  const std::string originals[] = {fixture(std::string(kDir) + "lora-phone.gguf"),
                                   fixture(std::string(kDir) + "lora-home.gguf"),
                                   fixture(std::string(kDir) + "lora-travel.gguf")};
  const std::string ex = write_lines("user.txt", user_examples(twisted_queries("home"), 8));
  for (const char* mode : {"average", "exact"}) {
    std::vector<std::string> args = {"lora", "blend", "-m", model, "--weights", "auto", "--examples", ex,
                                     "--mode", mode, "-t", "2", "-o", path(std::string("auto-") + mode + ".gguf")};
    for (const std::string& a : adapters) args.insert(args.end(), {"--adapter", a});
    r = run(args);
    ASSERT_EQ(r.code, 0) << r.err;
    std::printf("%s", r.out.c_str());
    auto rows = printed_weights(r.out);
    ASSERT_EQ(rows.size(), 3u) << r.out;
    EXPECT_GT(std::stod(rows[1].second), std::max(std::stod(rows[0].second), std::stod(rows[2].second)))
        << "home examples: home first\n" << r.out;
    // The same blend from the original files with the printed weights: the same bytes.
    std::vector<std::string> manual = {"lora", "blend", "-m", model, "--mode", mode,
                                       "-o", path(std::string("manual-") + mode + ".gguf")};
    for (size_t i = 0; i < 3; ++i) manual.insert(manual.end(), {"--adapter", originals[i] + ":" + rows[i].second});
    r = run(manual);
    ASSERT_EQ(r.code, 0) << r.err;
    const std::vector<uint8_t> a = testing::read_file(path(std::string("auto-") + mode + ".gguf"));
    EXPECT_FALSE(a.empty());
    EXPECT_TRUE(a == testing::read_file(path(std::string("manual-") + mode + ".gguf"))) << mode;
  }
  // Without -o only the weights are printed.
  std::vector<std::string> args = {"lora", "blend", "-m", model, "--weights", "auto", "--examples", ex,
                                   "--similarity", "cosine", "--temperature", "0.02"};
  for (const std::string& a : adapters) args.insert(args.end(), {"--adapter", a});
  r = run(args);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(printed_weights(r.out).size(), 3u) << r.out;
  EXPECT_NE(r.out.find("temperature 0.02"), std::string::npos) << r.out;
}

TEST_F(LoraAutoCli, ExampleFilesAreJsonLinesOrPlainText) {
  const std::string model = fixture(std::string(kDir) + "octopus-tiny.gguf");
  const std::string phone = fixture(std::string(kDir) + "lora-phone.gguf");
  auto described = [&](const std::string& examples) {
    std::vector<std::string> got;
    testing::CliResult r = run({"lora", "describe", "-m", model, "--adapter", phone, "--examples", examples, "-o",
                                path("d.gguf")});
    EXPECT_EQ(r.code, 0) << r.err;
    std::unique_ptr<Model> m = load_model();
    std::unique_ptr<LoraAdapter> a;
    Status s = LoraAdapter::Load(*m, path("d.gguf"), &a);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return s.ok() ? a->task_examples() : got;
  };
  // Escapes, a surrogate pair, nested objects and arrays before the key, blank lines.
  const std::string jsonl = write("ex.jsonl",
                                  "{\"query\": \"caf\\u00e9 \\\"x\\\" a\\\\b\"}\n"
                                  "\n"
                                  "  {\"ids\": [1, [2, {\"query\": 3}]], \"kind\": {\"query\": \"no\"}, "
                                  "\"query\": \"\\ud83d\\ude00!\"}\r\n");
  EXPECT_EQ(described(jsonl), (std::vector<std::string>{"caf\xc3\xa9 \"x\" a\\b", "\xf0\x9f\x98\x80!"}));
  // Plain text: every non-blank line as it is (CR of CRLF dropped).
  const std::string txt = write("ex.txt", "buzz Rosa thx\r\n\n  lr blinds dn {now}\n");
  EXPECT_EQ(described(txt), (std::vector<std::string>{"buzz Rosa thx", "  lr blinds dn {now}"}));
}

TEST_F(LoraAutoCli, ErrorsAreOneLineNamingTheProblem) {
  const std::string model = fixture(std::string(kDir) + "octopus-tiny.gguf");
  const std::string phone = fixture(std::string(kDir) + "lora-phone.gguf");
  const std::string ex = write_lines("user.txt", {"buzz Rosa thx"});
  testing::CliResult r = run({"lora", "blend", "-m", model, "--weights", "auto", "--adapter", phone});
  EXPECT_USAGE_ERROR(r, "--examples");
  r = run({"lora", "blend", "-m", model, "--weights", "auto", "--examples", ex, "--adapter", phone + ":0.5"});
  EXPECT_USAGE_ERROR(r, ":WEIGHT");
  r = run({"lora", "blend", "-m", model, "--weights", "often", "--examples", ex, "--adapter", phone});
  EXPECT_USAGE_ERROR(r, "often");
  r = run({"lora", "blend", "-m", model, "--adapter", phone + ":1"});
  EXPECT_USAGE_ERROR(r, "-o");
  // The adapter file has no task examples and none are given.
  r = run({"lora", "blend", "-m", model, "--weights", "auto", "--examples", ex, "--adapter", phone});
  EXPECT_RUNTIME_ERROR(r, "lora-phone.gguf");
  EXPECT_NE(r.err.find("task examples"), std::string::npos) << r.err;
  // A JSON Lines file whose line has no "query".
  const std::string bad = write("bad.jsonl", "{\"query\": \"ok\"}\n{\"text\": \"no query\"}\n");
  r = run({"lora", "blend", "-m", model, "--weights", "auto", "--examples", bad, "--adapter", phone + "@" + ex});
  EXPECT_RUNTIME_ERROR(r, "bad.jsonl:2");
  r = run({"lora", "describe", "-m", model, "--adapter", phone, "--examples", path("missing.txt"), "-o",
           path("x.gguf")});
  EXPECT_RUNTIME_ERROR(r, "missing.txt");
}

}  // namespace
}  // namespace ember
