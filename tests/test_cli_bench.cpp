// `ember bench`: runs the built binary (like tests/test_cli.cpp) on the memo260K
// fixture with tiny sizes (-p 8 -n 4 -r 1, a 16 MiB probe) and checks the JSON, JSON Lines, CSV
// and table outputs and the usage errors; the energy columns with fake power sensors
// (a sysfs tree through EMBER_SYSFS_ROOT, a vcgencmd script first on PATH) and without.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
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

std::vector<std::string> lines_of(const std::string& s) {
  std::vector<std::string> v;
  std::istringstream in(s);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) v.push_back(line);
  return v;
}

using testing::one_line;

// --output json: one array holding one object per row.
bool json_rows(const std::string& out, std::vector<testing::json>* rows) {
  testing::json a;
  if (!testing::parse_json(out, &a) || !a.is_array()) return false;
  *rows = a.get<std::vector<testing::json>>();
  return true;
}

// --output json of a single combination: its row.
bool one_json_row(const std::string& out, testing::json* row) {
  std::vector<testing::json> rows;
  if (!json_rows(out, &rows) || rows.size() != 1) return false;
  *row = rows[0];
  return true;
}

std::vector<std::string> split_csv(const std::string& line) {  // no quoted fields here
  std::vector<std::string> v;
  std::string cur;
  for (char c : line) {
    if (c == ',') {
      v.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  v.push_back(cur);
  return v;
}

class CliBench : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::temp_directory_path() / "ember-bench-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr) << std::strerror(errno);
    dir_ = tmpl;
    model_ = fixture("models/memo260K.gguf");
  }
  void TearDown() override {
    std::error_code ec;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
  }

  // Runs `ember args...` (stdin /dev/null, stdout/stderr to files, EMBER_LOG removed);
  // kills it and fails after 60 s.
  Result run(const std::vector<std::string>& args) { return testing::run_ember(args, dir_ + "/.run", 60); }

  // bench on memo260K with tiny sizes plus `extra`.
  Result bench(std::vector<std::string> extra) {
    std::vector<std::string> a = {"bench", "-m", model_, "-r", "1", "--probe-mib", "16", "--probe-passes", "2"};
    a.insert(a.end(), extra.begin(), extra.end());
    return run(a);
  }

  // Writes dir_/rel (creating its directories).
  void put(const std::string& rel, const std::string& text) {
    const std::filesystem::path p = dir_ + "/" + rel;
    std::filesystem::create_directories(p.parent_path());
    std::ofstream(p) << text;
  }

  std::string dir_, model_;
};

// Sets an environment variable for the scope (the child inherits it), then restores it.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::string& value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old, had_ = true;
    ::setenv(name, value.c_str(), 1);
  }
  ~ScopedEnv() { had_ ? ::setenv(name_, old_.c_str(), 1) : ::unsetenv(name_); }

 private:
  const char* name_;
  std::string old_;
  bool had_ = false;
};


const char* const kJsonKeys[] = {
    "model",           "kernels",        "weights",        "threads",        "n_prompt",        "n_gen",         "n_depth",  "n_ctx",
    "type_k",          "type_v",         "swa_full",       "kv_bytes_per_token",
    "repetitions",     "prefill_tps",    "prefill_tps_min", "prefill_tps_max", "decode_tps",   "decode_tps_min",
    "decode_tps_max",  "ttft_ms",        "ttft_ms_min",    "ttft_ms_max",     "model_bytes",   "bytes_per_token",
    "context_bytes",   "kv_bytes",       "plan_bytes",     "peak_rss_bytes", "decode_bw_gbs",  "read_bw_gbs",     "decode_bw_pct", "energy_source",
    "energy_note",     "prefill_watts",  "prefill_j_per_token", "decode_watts", "decode_j_per_token"};
const char* const kEnergyKeys[] = {"prefill_watts", "prefill_j_per_token", "decode_watts", "decode_j_per_token"};

TEST_F(CliBench, ListedInTopLevelHelpAndHasHelp) {
  Result r = run({"--help"});
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.out.find("bench"), std::string::npos);
  r = run({"bench", "--help"});
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.out.find("usage: ember bench"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("--output"), std::string::npos);
  EXPECT_EQ(r.err, "");
}

TEST_F(CliBench, JsonHasEveryKeyWithSaneValues) {
  ember_model* m = nullptr;
  ASSERT_EQ(ember_model_load(model_.c_str(), nullptr, &m), EMBER_OK) << ember_last_error();
  ember_model_info info{};
  ASSERT_EQ(ember_model_get_info(m, &info), EMBER_OK);
  const uint64_t weight_bytes = info.weight_bytes;
  const std::string name = info.name;
  ember_model_free(m);

  Result r = bench({"-p", "8", "-n", "4", "-t", "1", "--output", "json", "-q"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.err, "");  // -q: no progress
  testing::json j;
  ASSERT_TRUE(one_json_row(r.out, &j)) << r.out;
  for (const char* k : kJsonKeys) EXPECT_TRUE(j.contains(k)) << k;
  EXPECT_EQ(j.at("model").get<std::string>(), name);
  EXPECT_FALSE(j.at("kernels").get<std::string>().empty());
  EXPECT_EQ(j.at("threads").get<int64_t>(), 1);
  EXPECT_EQ(j.at("n_prompt").get<int64_t>(), 8);
  EXPECT_EQ(j.at("n_gen").get<int64_t>(), 4);
  EXPECT_GE(j.at("n_ctx").get<int64_t>(), 12);
  EXPECT_EQ(j.at("repetitions").get<int64_t>(), 1);
  for (const char* k : {"prefill_tps", "decode_tps", "ttft_ms", "decode_bw_gbs", "read_bw_gbs", "decode_bw_pct"}) {
    EXPECT_TRUE(j.at(k).is_number()) << k;
    EXPECT_GT(j.at(k).get<double>(), 0) << k;
  }
  // One run: median = min = max.
  EXPECT_EQ(j.at("prefill_tps_min").get<double>(), j.at("prefill_tps").get<double>());
  EXPECT_EQ(j.at("decode_tps_max").get<double>(), j.at("decode_tps").get<double>());
  EXPECT_LE(j.at("ttft_ms_min").get<double>(), j.at("ttft_ms").get<double>());
  EXPECT_EQ(static_cast<uint64_t>(j.at("model_bytes").get<double>()), weight_bytes);
  EXPECT_GT(j.at("bytes_per_token").get<double>(), 0);
  EXPECT_LE(j.at("bytes_per_token").get<double>(), j.at("model_bytes").get<double>());
  EXPECT_GT(j.at("context_bytes").get<double>(), 0);
  // The plan: the mapped file + KV + scratch; KV is part of the context's bytes.
  EXPECT_GT(j.at("kv_bytes").get<double>(), 0);
  EXPECT_LT(j.at("kv_bytes").get<double>(), j.at("context_bytes").get<double>());
  EXPECT_GE(j.at("plan_bytes").get<double>(), j.at("model_bytes").get<double>() + j.at("context_bytes").get<double>());
  // The RSS counts the context's allocations (mapped model pages too, once read).
  EXPECT_GE(j.at("peak_rss_bytes").get<double>(), j.at("context_bytes").get<double>());
  // decode GB/s = bytes per token x decode tok/s (printed with 3 decimals).
  EXPECT_NEAR(j.at("decode_bw_gbs").get<double>(), j.at("bytes_per_token").get<double>() * j.at("decode_tps").get<double>() / 1e9, 2e-3);
}

// json: one array, llama-bench's convention; jsonl: one object per line. Same rows.
TEST_F(CliBench, JsonOneArrayJsonlOneObjectPerLineInOrder) {
  const int want[4][2] = {{4, 2}, {4, 4}, {8, 2}, {8, 4}};
  const auto expect_row = [&](const testing::json& j, size_t i) {
    EXPECT_EQ(j.at("n_prompt").get<int64_t>(), want[i][0]);
    EXPECT_EQ(j.at("n_gen").get<int64_t>(), want[i][1]);
    EXPECT_EQ(j.at("n_ctx").get<int64_t>(), want[i][0] + want[i][1]);  // default: exactly what the row needs
  };
  Result r = bench({"-p", "4,8", "-n", "2,4", "-t", "1", "--output", "json"});
  ASSERT_EQ(r.code, 0) << r.err;
  std::vector<testing::json> rows;
  ASSERT_TRUE(json_rows(r.out, &rows)) << r.out;
  ASSERT_EQ(rows.size(), 4u) << r.out;
  for (size_t i = 0; i < 4; ++i) expect_row(rows[i], i);
  // stderr is not a terminal: plain progress lines, one per combination.
  EXPECT_EQ(lines_of(r.err).size(), 4u) << r.err;
  EXPECT_EQ(r.err.find('\r'), std::string::npos);

  r = bench({"-p", "4,8", "-n", "2,4", "-t", "1", "--output", "jsonl", "-q"});
  ASSERT_EQ(r.code, 0) << r.err;
  std::vector<std::string> lines = lines_of(r.out);
  ASSERT_EQ(lines.size(), 4u) << r.out;
  for (size_t i = 0; i < 4; ++i) {
    testing::json j;
    ASSERT_TRUE(testing::parse_json(lines[i], &j)) << lines[i];
    ASSERT_TRUE(j.is_object()) << lines[i];
    expect_row(j, i);
  }
}

TEST_F(CliBench, CsvHeaderThenOneRowPerCombination) {
  Result r = bench({"-p", "8", "-n", "2,4", "-t", "1,2", "--output", "csv", "-q"});
  ASSERT_EQ(r.code, 0) << r.err;
  std::vector<std::string> lines = lines_of(r.out);
  ASSERT_EQ(lines.size(), 1u + 4u) << r.out;
  const std::vector<std::string> header = split_csv(lines[0]);
  for (const char* k : kJsonKeys) EXPECT_NE(std::find(header.begin(), header.end(), k), header.end()) << k;
  const size_t col_threads = std::find(header.begin(), header.end(), "threads") - header.begin();
  const size_t col_decode = std::find(header.begin(), header.end(), "decode_tps") - header.begin();
  const int want_threads[4] = {1, 1, 2, 2};
  for (size_t i = 1; i < lines.size(); ++i) {
    std::vector<std::string> row = split_csv(lines[i]);
    ASSERT_EQ(row.size(), header.size()) << lines[i];
    EXPECT_EQ(std::atoi(row[col_threads].c_str()), want_threads[i - 1]);
    EXPECT_GT(std::atof(row[col_decode].c_str()), 0) << lines[i];
  }
}

TEST_F(CliBench, TableHasAHeaderAndOneRowPerCombination) {
  Result r = bench({"-p", "8", "-n", "4", "-t", "1", "-r", "2"});
  ASSERT_EQ(r.code, 0) << r.err;
  std::vector<std::string> lines = lines_of(r.out);
  size_t header = lines.size();
  for (size_t i = 0; i < lines.size(); ++i)
    if (lines[i].rfind("threads", 0) == 0) header = i;
  ASSERT_LT(header, lines.size()) << r.out;
  ASSERT_EQ(lines.size(), header + 2) << r.out;
  EXPECT_NE(lines[header].find("decode tok/s"), std::string::npos);
  EXPECT_NE(lines[header].find("% of read bw"), std::string::npos);
  // Aligned: the row is as long as the header (right-aligned last column).
  EXPECT_EQ(lines[header + 1].size(), lines[header].size()) << r.out;
  EXPECT_NE(r.out.find("read bandwidth"), std::string::npos) << r.out;
}

// -ctk/-ctv are axes like -p and -n: one row per pair of types, each naming its types and
// the KV bytes they take: per token of context and for the row's context (-c).
TEST_F(CliBench, CacheTypesAreAxesWithTheirBytes) {
  const std::string gemma2 = testing::fixture("models/tiny-gemma2-f32.gguf");  // heads of 32: q8_0 fits
  Result r = bench({"-m", gemma2, "-p", "8", "-n", "2", "-t", "1", "-c", "64", "-ctk", "f32,q8_0", "-ctv", "f16",
                    "--output", "jsonl", "-q", "--probe-mib", "0"});
  ASSERT_EQ(r.code, 0) << r.err;
  std::vector<std::string> rows = lines_of(r.out);
  ASSERT_EQ(rows.size(), 2u) << r.out;
  const testing::json f32 = testing::json::parse(rows[0]), q8 = testing::json::parse(rows[1]);
  EXPECT_EQ(f32.at("type_k"), "f32");
  EXPECT_EQ(q8.at("type_k"), "q8_0");
  EXPECT_EQ(f32.at("type_v"), "f16");
  EXPECT_EQ(q8.at("type_v"), "f16");
  EXPECT_EQ(f32.at("swa_full"), false);
  EXPECT_EQ(f32.at("n_ctx"), 64);
  // tiny-gemma2: 4 layers, 2 of them sliding-window rings (window 8 + n_batch 8 = 16 cells),
  // 2 KV heads of 32. Per token: the 2 full layers' K and V rows.
  const double kv_f16 = 2.0 * 32;  // one head's V row
  EXPECT_EQ(f32.at("kv_bytes_per_token").get<double>(), 2 * 2 * (4.0 * 32 + kv_f16));
  EXPECT_EQ(q8.at("kv_bytes_per_token").get<double>(), 2 * 2 * (34.0 + kv_f16));
  EXPECT_EQ(f32.at("kv_bytes").get<double>(), f32.at("kv_bytes_per_token").get<double>() * (64 + 16));
  EXPECT_EQ(q8.at("kv_bytes").get<double>(), q8.at("kv_bytes_per_token").get<double>() * (64 + 16));

  // --swa-full: every layer holds the whole context.
  r = bench({"-m", gemma2, "-p", "8", "-n", "2", "-t", "1", "-c", "64", "-ctk", "f32", "-ctv", "f16", "--swa-full",
             "--output", "jsonl", "-q", "--probe-mib", "0"});
  ASSERT_EQ(r.code, 0) << r.err;
  const testing::json full = testing::json::parse(lines_of(r.out).at(0));
  EXPECT_EQ(full.at("swa_full"), true);
  EXPECT_EQ(full.at("kv_bytes_per_token").get<double>(), 2 * f32.at("kv_bytes_per_token").get<double>());
  EXPECT_EQ(full.at("kv_bytes").get<double>(), full.at("kv_bytes_per_token").get<double>() * 64);

  // The table names the types and the bytes per token.
  r = bench({"-m", gemma2, "-p", "8", "-n", "2", "-t", "1", "-c", "64", "-ctk", "q8_0", "-ctv", "q8_0", "--probe-mib",
             "0"});
  ASSERT_EQ(r.code, 0) << r.err;
  std::vector<std::string> lines = lines_of(r.out);
  ASSERT_GE(lines.size(), 2u);
  EXPECT_NE(lines[lines.size() - 2].find("KV B/tok"), std::string::npos) << r.out;
  EXPECT_NE(lines.back().find("q8_0  q8_0"), std::string::npos) << r.out;
  EXPECT_NE(lines.back().find(" " + std::to_string(2 * 2 * 2 * 34) + " "), std::string::npos) << r.out;

  // llama.cpp's other types are refused, naming what Ember supports.
  EXPECT_USAGE_ERROR(bench({"-ctk", "f16,q4_0"}), "'q4_0'");
  EXPECT_USAGE_ERROR(bench({"-ctv", "q4_1"}), "f32, f16 or q8_0");
  EXPECT_USAGE_ERROR(bench({"-ctk", "f16,q8_0", "--plot", dir_ + "/p.svg"}), "one pair of cache types");
  // memo260K's heads of 8 values cannot hold q8_0 blocks: the library says so.
  EXPECT_RUNTIME_ERROR(bench({"-p", "8", "-n", "2", "-t", "1", "-ctk", "q8_0", "--probe-mib", "0", "-q"}), "q8_0");
}

TEST_F(CliBench, NoProbeGivesNullBandwidth) {
  Result r = bench({"-p", "8", "-n", "4", "-t", "1", "--output", "json", "--probe-mib", "0", "-q"});
  ASSERT_EQ(r.code, 0) << r.err;
  testing::json j;
  ASSERT_TRUE(one_json_row(r.out, &j)) << r.out;
  EXPECT_TRUE(j.at("read_bw_gbs").is_null());
  EXPECT_TRUE(j.at("decode_bw_pct").is_null());
  EXPECT_GT(j.at("decode_bw_gbs").get<double>(), 0);
}

TEST_F(CliBench, BadFlagsAreUsageErrors) {
  EXPECT_USAGE_ERROR(run({"bench"}), "--model");
  EXPECT_USAGE_ERROR(bench({"--output", "xml"}), "xml");
  EXPECT_USAGE_ERROR(bench({"-p", "0"}), "prompt length 0");
  EXPECT_USAGE_ERROR(bench({"-p", "8,,4"}), "8,,4");
  EXPECT_USAGE_ERROR(bench({"-n", "x"}), "'x'");
  EXPECT_USAGE_ERROR(bench({"-n", "-3"}), "generation length -3");
  EXPECT_USAGE_ERROR(bench({"-t", "1,-1"}), "thread count -1");
  EXPECT_USAGE_ERROR(bench({"-r", "0"}), "-r");
  EXPECT_USAGE_ERROR(bench({"--frobnicate"}), "unknown flag '--frobnicate'");
  EXPECT_USAGE_ERROR(bench({"--energy", "ina"}), "unknown energy source 'ina'");
}

// --plot: an SVG beside the normal output, one marker per row and panel (the
// renderer's own tests, tests/test_plot.cpp, check positions and layout), the model's
// name in the title; an unwritable path is refused before anything is measured.
TEST_F(CliBench, PlotWritesAnSvgWithOnePointPerRowAndPanel) {
  const std::string svg = dir_ + "/threads.svg";
  Result r = bench({"-p", "8", "-n", "4", "-t", "1,2", "--probe-mib", "0", "-q", "--plot", svg});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("prefill tok/s"), std::string::npos) << r.out;  // the table is still printed
  std::ifstream f(svg);
  const std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  ASSERT_EQ(text.rfind("<?xml", 0), 0u) << text.substr(0, 80);
  EXPECT_NE(text.find("</svg>"), std::string::npos);
  size_t points = 0;
  for (size_t at = text.find("class=\"point\""); at != std::string::npos; at = text.find("class=\"point\"", at + 1))
    ++points;
  EXPECT_EQ(points, 4u);  // 2 rows x (prefill, decode)
  EXPECT_NE(text.find(">threads<"), std::string::npos);  // the x axis: the parameter that varies
  EXPECT_NE(text.find("tokens/s"), std::string::npos);

  EXPECT_USAGE_ERROR(bench({"--plot", dir_ + "/no/such/dir/p.svg"}), "cannot write the plot");
}

// -d: the cache holds that many tokens before the prompt; the context is sized for them.
TEST_F(CliBench, DepthIsAnAxisAndSizesTheContext) {
  Result r = bench({"-p", "4", "-n", "2", "-d", "0,40", "-t", "1", "--output", "json", "-q"});
  ASSERT_EQ(r.code, 0) << r.err;
  std::vector<testing::json> rows;
  ASSERT_TRUE(json_rows(r.out, &rows)) << r.out;
  ASSERT_EQ(rows.size(), 2u) << r.out;
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(rows[i].at("n_depth").get<int64_t>(), 40 * static_cast<int64_t>(i));
    EXPECT_EQ(rows[i].at("n_ctx").get<int64_t>(), 40 * static_cast<int64_t>(i) + 6);
    EXPECT_GT(rows[i].at("decode_tps").get<double>(), 0);
  }
  EXPECT_USAGE_ERROR(bench({"-p", "4", "-n", "2", "-d", "12", "-c", "16"}), "exceed the context size 16");
  EXPECT_USAGE_ERROR(bench({"-d", "-1"}), "depth -1");
}

TEST_F(CliBench, PromptPlusGenLargerThanTheContextIsAnError) {
  EXPECT_USAGE_ERROR(bench({"-p", "8,16", "-n", "4", "-c", "16"}), "exceed the context size 16");
  // Exactly full is fine.
  Result r = bench({"-p", "8", "-n", "4", "-c", "12", "-t", "1", "--output", "json", "-q"});
  EXPECT_EQ(r.code, 0) << r.err;
}

// Bytes read per decoded token: the whole model when the output matrix is the
// embedding table (tiny-gemma), the model minus one vocab x embd table when it is
// separate (tiny: F32, 512 x 256 x 4 bytes).
TEST_F(CliBench, BytesPerTokenLeaveOutASeparateEmbeddingTable) {
  for (const char* preset : {"tiny", "tiny-gemma"}) {
    const std::string out = dir_ + "/" + preset + ".gguf";
    Result s = run({"synth", "--preset", preset, "--type", "f32", "-o", out, "-q", "-t", "1"});
    ASSERT_EQ(s.code, 0) << s.err;
    model_ = out;
    Result r = bench({"-p", "4", "-n", "2", "-t", "1", "--output", "json", "--probe-mib", "0", "-q"});
    ASSERT_EQ(r.code, 0) << r.err;
    testing::json j;
    ASSERT_TRUE(one_json_row(r.out, &j)) << r.out;
    const double model_bytes = j.at("model_bytes").get<double>(), per_token = j.at("bytes_per_token").get<double>();
    if (std::string(preset) == "tiny")
      EXPECT_NEAR(per_token, model_bytes - 512.0 * 256 * 4, 64) << preset;
    else
      EXPECT_EQ(per_token, model_bytes) << preset;
  }
}

TEST_F(CliBench, MissingModelIsARuntimeError) {
  Result r = run({"bench", "-m", dir_ + "/nope.gguf", "--probe-mib", "0"});
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(one_line(r.err)) << r.err;
  EXPECT_NE(r.err.find("nope.gguf"), std::string::npos) << r.err;
}

// ---- energy ------------------------------------------------------------------------

// No sensor (an empty sysfs tree, no vcgencmd on PATH): n/a with the reason, null numbers,
// no energy columns in the table.
TEST_F(CliBench, EnergyWithoutSensorsIsNotAvailable) {
  std::filesystem::create_directories(dir_ + "/sys");
  std::filesystem::create_directories(dir_ + "/bin");
  ScopedEnv root("EMBER_SYSFS_ROOT", dir_ + "/sys"), path("PATH", dir_ + "/bin");
  Result r = bench({"-p", "8", "-n", "4", "-t", "1", "--output", "json", "--probe-mib", "0", "-q"});
  ASSERT_EQ(r.code, 0) << r.err;
  testing::json j;
  ASSERT_TRUE(one_json_row(r.out, &j)) << r.out;
  EXPECT_TRUE(j.at("energy_source").is_null());
  const std::string note = "no power sensor: rapl: no intel-rapl:N zone in " + dir_ + "/sys/class/powercap";
  EXPECT_EQ(j.at("energy_note").get<std::string>().rfind(note, 0), 0u) << j.at("energy_note").get<std::string>();
  for (const char* k : kEnergyKeys) EXPECT_TRUE(j.at(k).is_null()) << k;

  r = bench({"-p", "8", "-n", "4", "-t", "1", "--probe-mib", "0", "-q"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("\nenergy: n/a (no power sensor: rapl: "), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("J/tok"), std::string::npos) << r.out;

  // --energy none: n/a even with a sensor.
  put("sys/class/hwmon/hwmon0/power1_input", "5000000\n");
  r = bench({"-p", "8", "-n", "4", "-t", "1", "--output", "json", "--probe-mib", "0", "-q", "--energy", "none"});
  ASSERT_EQ(r.code, 0) << r.err;
  ASSERT_TRUE(one_json_row(r.out, &j)) << r.out;
  EXPECT_TRUE(j.at("energy_source").is_null());
  EXPECT_EQ(j.at("energy_note").get<std::string>(), "disabled (--energy none)");
}

// A constant power P: the average watts are exactly P (printed with 3 decimals). The J per
// token times tok/s is P x (energy interval / timed interval); bench marks the energy
// interval just outside the timed one, so that is >= P (less printing precision: 1e-3)
// and a little more (preemption between a mark and the timer); the upper bound 2P only
// catches unit mistakes (factors of 1000 or of the token count).
void expect_constant_power(const testing::json& j, const char* source, double watts) {
  EXPECT_EQ(j.at("energy_source").get<std::string>(), source);
  EXPECT_NEAR(j.at("prefill_watts").get<double>(), watts, 0.0005 + 1e-9);
  EXPECT_NEAR(j.at("decode_watts").get<double>(), watts, 0.0005 + 1e-9);
  for (const char* phase : {"prefill", "decode"}) {
    const double p = j.at(std::string(phase) + "_j_per_token").get<double>() * j.at(std::string(phase) + "_tps").get<double>();
    EXPECT_GE(p, watts * (1 - 1e-3)) << phase;
    EXPECT_LE(p, watts * 2) << phase;
  }
}

TEST_F(CliBench, EnergyFromAFakeHwmonSensor) {
  put("sys/class/hwmon/hwmon0/name", "power_meter\n");
  put("sys/class/hwmon/hwmon0/power1_input", "5000000\n");  // uW
  ScopedEnv root("EMBER_SYSFS_ROOT", dir_ + "/sys");
  Result r = bench({"-p", "8", "-n", "4", "-t", "1", "--output", "json", "--probe-mib", "0", "-q"});
  ASSERT_EQ(r.code, 0) << r.err;
  testing::json j;
  ASSERT_TRUE(one_json_row(r.out, &j)) << r.out;
  expect_constant_power(j, "hwmon", 5.0);
  EXPECT_EQ(j.at("energy_note").get<std::string>(), "hwmon0/power_meter power1");

  r = bench({"-p", "8", "-n", "4", "-t", "1", "--probe-mib", "0", "-q"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("\nenergy: hwmon (hwmon0/power_meter power1)"), std::string::npos) << r.out;
  std::vector<std::string> lines = lines_of(r.out);
  ASSERT_GE(lines.size(), 2u);
  const std::string &header = lines[lines.size() - 2], &row = lines.back();
  EXPECT_NE(header.find("prefill W  prefill J/tok  decode W  decode J/tok"), std::string::npos) << header;
  EXPECT_EQ(row.size(), header.size()) << r.out;
  // The last four cells: prefill W, prefill J/tok, decode W, decode J/tok.
  std::istringstream cells(row);
  std::vector<std::string> c{std::istream_iterator<std::string>(cells), {}};
  ASSERT_GE(c.size(), 4u);
  EXPECT_EQ(c[c.size() - 4], "5.00") << row;
  EXPECT_EQ(c[c.size() - 2], "5.00") << row;

  r = bench({"-p", "8", "-n", "4", "-t", "1", "--output", "csv", "--probe-mib", "0", "-q"});
  ASSERT_EQ(r.code, 0) << r.err;
  lines = lines_of(r.out);
  ASSERT_EQ(lines.size(), 2u) << r.out;
  const std::vector<std::string> h = split_csv(lines[0]), v = split_csv(lines[1]);
  ASSERT_EQ(h.size(), v.size());
  const auto col = [&](const char* k) { return v[std::find(h.begin(), h.end(), k) - h.begin()]; };
  EXPECT_EQ(col("energy_source"), "hwmon");
  EXPECT_EQ(col("prefill_watts"), "5.000");
  EXPECT_EQ(col("decode_watts"), "5.000");
}

// RAPL counters that do not move: 0 W, exactly. A counter that cannot be read: n/a, naming it.
TEST_F(CliBench, EnergyFromFakeRaplCounters) {
  for (const char* z : {"intel-rapl:0", "intel-rapl:1"}) {
    put(std::string("sys/class/powercap/") + z + "/name", std::string("package-") + z[11] + "\n");
    put(std::string("sys/class/powercap/") + z + "/energy_uj", "123456\n");
    put(std::string("sys/class/powercap/") + z + "/max_energy_range_uj", "262143328850\n");
  }
  ScopedEnv root("EMBER_SYSFS_ROOT", dir_ + "/sys");
  Result r = bench({"-p", "8", "-n", "4", "-t", "1", "--output", "json", "--probe-mib", "0", "-q"});
  ASSERT_EQ(r.code, 0) << r.err;
  testing::json j;
  ASSERT_TRUE(one_json_row(r.out, &j)) << r.out;
  EXPECT_EQ(j.at("energy_source").get<std::string>(), "rapl");
  EXPECT_EQ(j.at("energy_note").get<std::string>(), "intel-rapl:0 (package-0), intel-rapl:1 (package-1)");
  for (const char* k : kEnergyKeys) {
    EXPECT_TRUE(j.at(k).is_number()) << k;
    EXPECT_EQ(j.at(k).get<double>(), 0.0) << k;
  }

  const std::string counter = dir_ + "/sys/class/powercap/intel-rapl:1/energy_uj";
  std::filesystem::remove(counter);
  std::filesystem::create_directories(counter);  // unreadable, even for root
  r = bench({"-p", "8", "-n", "4", "-t", "1", "--output", "json", "--probe-mib", "0", "-q"});
  ASSERT_EQ(r.code, 0) << r.err;
  ASSERT_TRUE(one_json_row(r.out, &j)) << r.out;
  EXPECT_TRUE(j.at("energy_source").is_null());
  EXPECT_EQ(j.at("energy_note").get<std::string>(), "rapl: " + counter + ": is a directory");
  for (const char* k : kEnergyKeys) EXPECT_TRUE(j.at(k).is_null()) << k;
  r = bench({"-p", "8", "-n", "4", "-t", "1", "--probe-mib", "0", "-q"});
  EXPECT_NE(r.out.find("\nenergy: n/a (rapl: " + counter + ": is a directory)\n"), std::string::npos) << r.out;
}

// The Raspberry Pi 5 PMIC: a vcgencmd script printing two rails as the firmware does.
TEST_F(CliBench, EnergyFromAFakeVcgencmd) {
  put("bin/vcgencmd",
      "#!/bin/sh\n[ \"$1\" = pmic_read_adc ] || exit 2\n"
      "echo '  VDD_CORE_A current(7)=2.00000000A'\necho '   3V3_SYS_A current(1)=0.50000000A'\n"
      "echo '  VDD_CORE_V volt(15)=0.80000000V'\necho '   3V3_SYS_V volt(9)=3.30000000V'\n"
      "echo '     EXT5V_V volt(24)=5.10000000V'\n");
  ASSERT_EQ(::chmod((dir_ + "/bin/vcgencmd").c_str(), 0755), 0);
  std::filesystem::create_directories(dir_ + "/sys");
  const char* old_path = std::getenv("PATH");
  ScopedEnv root("EMBER_SYSFS_ROOT", dir_ + "/sys"),
      path("PATH", dir_ + "/bin" + (old_path ? std::string(":") + old_path : std::string()));
  Result r = bench({"-p", "8", "-n", "4", "-t", "1", "--output", "json", "--probe-mib", "0", "-q"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.err, "");  // vcgencmd's stderr does not leak
  testing::json j;
  ASSERT_TRUE(one_json_row(r.out, &j)) << r.out;
  expect_constant_power(j, "pmic", 2.0 * 0.8 + 0.5 * 3.3);
  EXPECT_EQ(j.at("energy_note").get<std::string>(), dir_ + "/bin/vcgencmd pmic_read_adc: sum of rail V x I");
}

}  // namespace
}  // namespace ember
