// ember bench: prefill and decode speed, time to first token, memory, and decode's
// share of the machine's memory bandwidth, over combinations of prompt length,
// generation length, thread count and KV cache types (-ctk, -ctv).
//
// For every combination (threads x prompt x gen): a context sized for it is created,
// then one warm-up run and -r timed runs. A run resets the context, evaluates the
// prompt (random valid token ids, fixed seed) in ONE ember_eval (n_batch = prompt
// length), then n single-token ember_eval calls, each with the next random id (the
// engine's cost is the same as for a sampled token). Reported per combination: the
// median and min-max over the runs of prefill tok/s, decode tok/s and time to first
// token (prefill + the first decode step); the model's weight bytes, the context's
// bytes (KV cache + scratch), the KV cache's types, bytes and bytes per token of context, and the memory plan (ember_context_memory: mapped file +
// KV + scratch, what the peak RSS should come to), the peak RSS of the run (VmHWM, reset per combination
// through /proc/self/clear_refs where the kernel allows it), and decode's effective
// bandwidth: weight bytes read per token x decode tok/s, in GB/s and as a percentage
// of the streaming read bandwidth measured by a built-in probe (tools/bandwidth.h)
// at the same thread count.
//
// Energy (tools/power.h): with a power source (--energy; auto-detected: RAPL counters,
// hwmon power sensors, the Raspberry Pi 5 PMIC through vcgencmd), each timed run's
// prefill and decode are also measured in joules, and a row reports the average watts
// (joules / seconds, summed over the runs) and joules per token (joules / tokens, summed
// over the runs) of each phase, and which source was read. Without one the energy
// figures are n/a, with the reason.
//
// Through the C API only.
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "args.h"
#include "bandwidth.h"
#include "cache_flags.h"
#include "cmd_lora.h"
#include "commands.h"
#include "common.h"
#include "json_io.h"
#include "plot_svg.h"
#include "power.h"

namespace ember::cli {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

struct Stat {
  double median = 0, min = 0, max = 0;
};

Stat summarize(std::vector<double> v) {
  Stat s;
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  s.median = n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
  s.min = v.front();
  s.max = v.back();
  return s;
}

struct Config {
  int32_t threads, n_prompt, n_gen;
  int32_t depth;  // tokens already in the cache when the prompt starts
  ember_cache_type type_k, type_v;
};

// Energy of one row's timed runs; measured: every interval was read.
struct Energy {
  bool measured = false;
  double prefill_j = 0, prefill_s = 0, decode_j = 0, decode_s = 0;
  std::string error;  // why not measured
};

struct Row {
  Config cfg{};
  int32_t n_ctx = 0;
  Stat prefill_tps, decode_tps, ttft_ms;
  uint64_t context_bytes = 0, kv_bytes = 0, plan_bytes = 0, peak_rss_bytes = 0;
  uint64_t kv_bytes_per_token = 0;  // what one more position of context adds
  double read_bw = 0;    // bytes/s of the probe at cfg.threads; 0: not measured
  double decode_bw = 0;  // bytes/s: bytes_per_token x decode tok/s (median)
  Energy energy;
};

// Marks of one run: before prefill, between prefill and decode, after decode.
using RunMarks = std::array<PowerMark, 3>;

// Sums the energy of the runs' prefill and decode intervals.
Energy row_energy(PowerSource& src, const std::vector<RunMarks>& runs) {
  Energy e;
  for (const RunMarks& m : runs) {
    const EnergyReading p = src.energy(m[0], m[1]), d = src.energy(m[1], m[2]);
    if (!p.ok() || !d.ok()) {
      e.error = p.ok() ? d.error : p.error;
      return e;
    }
    e.prefill_j += p.joules;
    e.prefill_s += p.seconds;
    e.decode_j += d.joules;
    e.decode_s += d.seconds;
  }
  e.measured = !runs.empty();
  return e;
}

// Peak resident set size of this process (VmHWM), bytes; 0 when unavailable.
uint64_t peak_rss_bytes() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmHWM:", 0) == 0) {
      unsigned long long kb = 0;
      if (std::sscanf(line.c_str() + 6, "%llu", &kb) == 1) return kb * 1024ull;
    }
  }
  return 0;
}

// Resets VmHWM to the current RSS (Linux >= 4.0); false when not allowed.
bool reset_peak_rss() {
  std::FILE* f = std::fopen("/proc/self/clear_refs", "w");
  if (!f) return false;
  const bool ok = std::fputs("5", f) >= 0;
  return (std::fclose(f) == 0) && ok;
}

// Bytes of weights read to decode one token: every mapped weight, except the token
// embedding table when the model has a separate output matrix (decoding reads one
// row of it). Whether the output is tied is inferred from the parameter count: what
// the blocks (attention q/k/v/o, a three-matrix feed-forward, norms) do not account
// for is one or two vocabulary x embedding tables. The embedding table's bytes are
// estimated at the model's average bytes per weight.
uint64_t decode_bytes_per_token(const ember_model_info& m) {
  if (m.n_params == 0 || m.n_vocab <= 0 || m.n_embd <= 0) return m.weight_bytes;
  const double E = m.n_embd, V = m.n_vocab, F = m.n_ff, hd = m.head_dim;
  const double per_layer = E * m.n_head * hd * 2 + E * m.n_head_kv * hd * 2 + 3 * E * F + 2 * E;
  const double rest = static_cast<double>(m.n_params) - m.n_layer * per_layer - E;
  const double table = V * E;
  if (rest < 1.5 * table) return m.weight_bytes;  // tied: the table is the output matrix
  const double share = table / static_cast<double>(m.n_params);
  return static_cast<uint64_t>(static_cast<double>(m.weight_bytes) * (1.0 - share));
}

std::string fmt(const char* f, double v) {
  char s[64];
  std::snprintf(s, sizeof s, f, v);
  return s;
}

// tok/s with about four significant digits, no exponent.
std::string fmt_rate(double v) {
  return fmt(v >= 1000 ? "%.0f" : v >= 100 ? "%.1f" : "%.2f", v);
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string o = "\"";
  for (char c : s) o += c == '"' ? std::string("\"\"") : std::string(1, c);
  return o + "\"";
}

// The columns of the JSON and CSV output, in order; values as text (numbers, or
// "null" / "" when absent).
struct Field {
  const char* key;
  std::string value;  // JSON literal
  bool is_string = false;
};

// Average watts and joules per token of a phase; "null" when not measured.
std::string watts_text(const Energy& e, double j, double s) {
  return e.measured && s > 0 ? fmt("%.3f", j / s) : "null";
}
std::string j_per_token_text(const Energy& e, double j, double tokens) {
  return e.measured && tokens > 0 ? fmt("%.6g", j / tokens) : "null";
}

std::string type_name(ember_cache_type t) {
  const char* n = ember_cache_type_name(t);
  return n ? n : "?";
}

std::vector<Field> fields(const Row& r, const std::string& model_name, const std::string& kernels,
                          const std::string& weights,
                          uint64_t model_bytes, uint64_t bytes_per_token, int32_t reps, const PowerDetection& power,
                          bool swa_full) {
  const bool bw = r.read_bw > 0;
  const auto u = [](uint64_t v) { return std::to_string(v); };
  const Energy& e = r.energy;
  // The note: what the source sums when measured, else why there are no figures.
  const std::string note = e.measured ? power.source->detail() : power.source ? e.error : power.reason;
  return {
      {"model", model_name, true},
      {"kernels", kernels, true},
      {"weights", weights, true},
      {"threads", std::to_string(r.cfg.threads)},
      {"n_prompt", std::to_string(r.cfg.n_prompt)},
      {"n_gen", std::to_string(r.cfg.n_gen)},
      {"n_depth", std::to_string(r.cfg.depth)},
      {"n_ctx", std::to_string(r.n_ctx)},
      {"type_k", type_name(r.cfg.type_k), true},
      {"type_v", type_name(r.cfg.type_v), true},
      {"swa_full", swa_full ? "true" : "false"},
      {"repetitions", std::to_string(reps)},
      {"prefill_tps", fmt("%.3f", r.prefill_tps.median)},
      {"prefill_tps_min", fmt("%.3f", r.prefill_tps.min)},
      {"prefill_tps_max", fmt("%.3f", r.prefill_tps.max)},
      {"decode_tps", fmt("%.3f", r.decode_tps.median)},
      {"decode_tps_min", fmt("%.3f", r.decode_tps.min)},
      {"decode_tps_max", fmt("%.3f", r.decode_tps.max)},
      {"ttft_ms", fmt("%.3f", r.ttft_ms.median)},
      {"ttft_ms_min", fmt("%.3f", r.ttft_ms.min)},
      {"ttft_ms_max", fmt("%.3f", r.ttft_ms.max)},
      {"model_bytes", u(model_bytes)},
      {"bytes_per_token", u(bytes_per_token)},
      {"context_bytes", u(r.context_bytes)},
      {"kv_bytes", u(r.kv_bytes)},
      {"kv_bytes_per_token", u(r.kv_bytes_per_token)},
      {"plan_bytes", u(r.plan_bytes)},
      {"peak_rss_bytes", r.peak_rss_bytes ? u(r.peak_rss_bytes) : "null"},
      {"decode_bw_gbs", fmt("%.3f", r.decode_bw / 1e9)},
      {"read_bw_gbs", bw ? fmt("%.3f", r.read_bw / 1e9) : "null"},
      {"decode_bw_pct", bw ? fmt("%.2f", 100.0 * r.decode_bw / r.read_bw) : "null"},
      {"energy_source", power.source ? power.source->name() : "null", power.source != nullptr},
      {"energy_note", note, true},
      {"prefill_watts", watts_text(e, e.prefill_j, e.prefill_s)},
      {"prefill_j_per_token", j_per_token_text(e, e.prefill_j, static_cast<double>(reps) * r.cfg.n_prompt)},
      {"decode_watts", watts_text(e, e.decode_j, e.decode_s)},
      {"decode_j_per_token", j_per_token_text(e, e.decode_j, static_cast<double>(reps) * r.cfg.n_gen)},
  };
}

// One object on one line, between `before` and `after`.
void print_json(const std::vector<Field>& fs, const char* before, const char* after) {
  std::string line = before;
  line += "{";
  for (size_t i = 0; i < fs.size(); ++i) {
    if (i) line += ", ";
    line += json_quote(fs[i].key) + ": " + (fs[i].is_string ? json_quote(fs[i].value) : fs[i].value);
  }
  line += "}";
  line += after;
  std::fputs(line.c_str(), stdout);
  std::fflush(stdout);
}

void print_csv(const std::vector<Field>& fs, bool header) {
  std::string line;
  for (size_t i = 0; i < fs.size(); ++i) {
    if (i) line += ',';
    if (header) {
      line += fs[i].key;
    } else {
      line += fs[i].is_string ? csv_field(fs[i].value) : (fs[i].value == "null" ? "" : fs[i].value);
    }
  }
  line += '\n';
  std::fputs(line.c_str(), stdout);
  std::fflush(stdout);
}

std::string mib(uint64_t b) { return fmt("%.1f", static_cast<double>(b) / (1024.0 * 1024.0)); }

// "(min-max)" of a rate.
std::string range_text(const Stat& s) {
  std::string t = "(";
  t.append(fmt_rate(s.min));
  t.push_back('-');
  t.append(fmt_rate(s.max));
  t.push_back(')');
  return t;
}

// with_energy: the four energy columns ("-" in a row whose energy could not be read).
void print_table(const std::vector<Row>& rows, bool with_energy, int32_t reps) {
  std::vector<std::vector<std::string>> cells = {{"threads", "K", "V", "depth", "prompt", "gen", "prefill tok/s", "(min-max)",
                                                  "decode tok/s", "(min-max)", "TTFT ms", "KV B/tok", "KV MiB",
                                                  "context MiB",
                                                  "plan MiB", "peak RSS MiB", "decode GB/s", "% of read bw"}};
  if (with_energy) cells[0].insert(cells[0].end(), {"prefill W", "prefill J/tok", "decode W", "decode J/tok"});
  for (const Row& r : rows) {
    cells.push_back({std::to_string(r.cfg.threads), type_name(r.cfg.type_k), type_name(r.cfg.type_v),
                     std::to_string(r.cfg.depth), std::to_string(r.cfg.n_prompt), std::to_string(r.cfg.n_gen),
                     fmt_rate(r.prefill_tps.median),
                     range_text(r.prefill_tps),
                     fmt_rate(r.decode_tps.median),
                     range_text(r.decode_tps),
                     fmt("%.2f", r.ttft_ms.median), std::to_string(r.kv_bytes_per_token), mib(r.kv_bytes),
                     mib(r.context_bytes), mib(r.plan_bytes), r.peak_rss_bytes ? mib(r.peak_rss_bytes) : "-", fmt("%.2f", r.decode_bw / 1e9),
                     r.read_bw > 0 ? fmt("%.1f", 100.0 * r.decode_bw / r.read_bw) : "-"});
    if (with_energy) {
      const Energy& e = r.energy;
      const auto cell = [&](double j, double den, const char* f) {
        return e.measured && den > 0 ? fmt(f, j / den) : std::string("-");
      };
      cells.back().insert(cells.back().end(),
                          {cell(e.prefill_j, e.prefill_s, "%.2f"),
                           cell(e.prefill_j, static_cast<double>(reps) * r.cfg.n_prompt, "%.3g"),
                           cell(e.decode_j, e.decode_s, "%.2f"),
                           cell(e.decode_j, static_cast<double>(reps) * r.cfg.n_gen, "%.3g")});
    }
  }
  std::vector<size_t> width(cells[0].size(), 0);
  for (const auto& row : cells)
    for (size_t c = 0; c < row.size(); ++c) width[c] = std::max(width[c], row[c].size());
  for (const auto& row : cells) {
    std::string line;
    for (size_t c = 0; c < row.size(); ++c) {
      if (c) line += "  ";
      // Numbers right-aligned; the range column left-aligned next to its median, and
      // the cache types (columns 1 and 2).
      const bool left = (row[c].size() && row[c][0] == '(') || c == 1 || c == 2;
      std::string pad(width[c] - row[c].size(), ' ');
      line += left ? row[c] + pad : pad + row[c];
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    std::printf("%s\n", line.c_str());
  }
}

// Status line on stderr: redrawn in place on a terminal, else one line per message
// that asks for it (plain lines for logs).
class Progress {
 public:
  explicit Progress(bool quiet) : quiet_(quiet), tty_(::isatty(STDERR_FILENO) != 0) {}
  ~Progress() { clear(); }
  // line: shown on a terminal; permanent: also printed when stderr is not a terminal.
  void show(const std::string& text, bool permanent) {
    if (quiet_) return;
    const std::string line = "ember bench: " + text;
    if (tty_) {
      const size_t n = line.size();
      std::fprintf(stderr, "\r%s%s", line.c_str(), std::string(shown_ > n ? shown_ - n : 0, ' ').c_str());
      std::fflush(stderr);
      shown_ = n;
    } else if (permanent) {
      std::fprintf(stderr, "%s\n", line.c_str());
    }
  }
  void clear() {
    if (tty_ && shown_ > 0) {
      std::fprintf(stderr, "\r%s\r", std::string(shown_, ' ').c_str());
      std::fflush(stderr);
    }
    shown_ = 0;
  }

 private:
  bool quiet_, tty_;
  size_t shown_ = 0;
};

// ---- options -----------------------------------------------------------------------

struct BenchOptions {
  std::string model_path, output = "table", energy = "auto", plot_path;
  std::vector<int32_t> prompts = {128}, gens = {64}, depths = {0}, threads;
  CacheFlags cache;                                    // -ctk/-ctv as lists
  std::vector<ember_cache_type> types_k, types_v;      // parsed from cache
  int32_t reps = 3, n_ctx = 0, probe_mib = 512, probe_passes = 5;
  uint64_t seed = 1234;
  bool reference = false, verbose = false, quiet = false;
  std::vector<std::string> lora_specs;
};

int32_t n_cores() { return static_cast<int32_t>(std::max(1u, std::thread::hardware_concurrency())); }

void declare_flags(ArgParser& p, BenchOptions& o) {
  p.option("model", 'm', "MODEL", &o.model_path, "model file (GGUF)").required();
  add_model_load_flags(p);
  p.option("n-prompt", 'p', "N,..", &o.prompts, "prompt lengths: tokens evaluated in one batch");
  p.option("n-gen", 'n', "N,..", &o.gens, "generation lengths: single-token evaluations after the prompt");
  p.option("n-depth", 'd', "N,..", &o.depths,
           "tokens already in the KV cache before the prompt (filled once, not timed), as llama-bench's -d: "
           "decode speed at a long context");
  p.option("threads", 't', "N,..", &o.threads, "thread counts; 0: all cores")
      .default_text(std::to_string(n_cores()) + ", all cores");
  p.option("repetitions", 'r', "R", &o.reps, "timed runs per combination (after one warm-up run)").range(1, 10000);
  p.option("ctx-size", 'c', "N", &o.n_ctx, "context size; 0: depth + prompt + gen of each combination").range(0, 1 << 24);
  declare_cache_flags(p, o.cache, /*lists=*/true);
  p.option("output", 0, "FORMAT", &o.output,
           "table, json (one array of row objects), jsonl (one object per line) or csv");
  p.option("seed", 's', "S", &o.seed, "seed of the random token ids");
  p.option("lora", 0, "FILE[:SCALE]", &o.lora_specs, kLoraFlagHelp);
  p.option("probe-mib", 0, "MIB", &o.probe_mib, "buffer of the read-bandwidth probe; 0: no probe").range(0, 1 << 20);
  p.option("probe-passes", 0, "N", &o.probe_passes, "passes of the probe (the median counts)").range(1, 1000);
  p.option("energy", 0, "SOURCE", &o.energy,
           "power source for watts and joules per token: auto, rapl, hwmon, pmic or none");
  p.option("plot", 0, "FILE.svg", &o.plot_path,
           "also draw prefill and decode tok/s against threads (or prompt length) as SVG");
  p.flag("reference", 0, &o.reference, "use the scalar reference kernels");
  p.flag("quiet", 'q', &o.quiet, "no progress on stderr");
  p.flag("verbose", 'v', &o.verbose, "library log messages on stderr");
  p.epilog(
      "Decode bandwidth = weight bytes read per token x decode tok/s (the token embedding table\n"
      "is not counted when the model has a separate output matrix: decoding reads one row of it).\n"
      "Peak RSS counts the mapped model pages that were read. Run with little else on the machine;\n"
      "the medians over -r runs are the figures to quote.\n"
      "Energy: average watts and joules per token of prefill and decode, summed over the -r runs,\n"
      "from the first source that can be read (auto): RAPL package counters\n"
      "($EMBER_SYSFS_ROOT, default /sys, class/powercap), hwmon power sensors (class/hwmon), or the\n"
      "Raspberry Pi 5 PMIC rails (vcgencmd pmic_read_adc); n/a with the reason otherwise.\n"
      "\n"
      "examples:\n"
      "  ember bench -m model.gguf\n"
      "  ember bench -m model.gguf -p 128,512 -n 64 -t 1,2,4 -r 5 --output csv > bench.csv\n"
      "  ember bench -m model.gguf -t 1,2,4 --plot threads.svg\n"
      "  ember bench -m model.gguf -p 512 -n 128 -c 4096 -ctk f32,f16,q8_0 -ctv f32,f16,q8_0\n"
      "  ember bench -m model.gguf -p 1 -n 32 -d 256,1024,4096\n");
}

// The usage errors the parser cannot see; thread count 0 becomes all cores.
// kContinue when the options are fine.
int check_options(const ArgParser& p, BenchOptions& o) {
  if (o.output != "table" && o.output != "json" && o.output != "jsonl" && o.output != "csv")
    return p.usage_error("unknown output format '" + o.output + "' (expected table, json, jsonl or csv)");
  if (!o.plot_path.empty()) {
    // Fail before minutes of measuring, not after: the SVG's directory must be writable.
    const size_t slash = o.plot_path.find_last_of('/');
    const std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : o.plot_path.substr(0, slash));
    if (access(dir.c_str(), W_OK) != 0)
      return p.usage_error("cannot write the plot " + o.plot_path + ": " + std::strerror(errno));
  }
  if (!is_power_source_kind(o.energy))
    return p.usage_error("unknown energy source '" + o.energy + "' (expected auto, rapl, hwmon, pmic or none)");
  for (int32_t v : o.prompts)
    if (v < 1 || v > (1 << 24)) return p.usage_error("prompt length " + std::to_string(v) + " out of range 1..16777216");
  for (int32_t v : o.gens)
    if (v < 1 || v > (1 << 24)) return p.usage_error("generation length " + std::to_string(v) + " out of range 1..16777216");
  for (int32_t v : o.depths)
    if (v < 0 || v > (1 << 24)) return p.usage_error("depth " + std::to_string(v) + " out of range 0..16777216");
  for (int32_t& v : o.threads) {
    if (v < 0 || v > 4096) return p.usage_error("thread count " + std::to_string(v) + " out of range 0..4096");
    if (v == 0) v = n_cores();
  }
  // Checked by the parser already; here they become the axes.
  if (std::string why = parse_cache_types(o.cache.type_k, &o.types_k); !why.empty()) return p.usage_error(why);
  if (std::string why = parse_cache_types(o.cache.type_v, &o.types_v); !why.empty()) return p.usage_error(why);
  // The plot's series are threads, prompt and generation lengths only (tools/plot_svg.h).
  if (!o.plot_path.empty() && o.types_k.size() * o.types_v.size() > 1)
    return p.usage_error("--plot draws one pair of cache types: give one -ctk and one -ctv");
  if (o.n_ctx > 0) {
    for (int32_t dd : o.depths)
      for (int32_t pp : o.prompts)
        for (int32_t nn : o.gens)
          if (static_cast<int64_t>(dd) + pp + nn > o.n_ctx)
            return p.usage_error("depth " + std::to_string(dd) + " + prompt " + std::to_string(pp) + " + gen " +
                                 std::to_string(nn) + " tokens exceed the context size " + std::to_string(o.n_ctx) +
                                 " (-c)");
  }
  return kContinue;
}

// Every combination, threads outermost, then the cache types.
std::vector<Config> combinations(const BenchOptions& o) {
  std::vector<Config> configs;
  for (int32_t t : o.threads)
    for (ember_cache_type k : o.types_k)
      for (ember_cache_type v : o.types_v)
        for (int32_t dd : o.depths)
          for (int32_t pp : o.prompts)
            for (int32_t nn : o.gens) configs.push_back({t, pp, nn, dd, k, v});
  return configs;
}

// ---- measuring ---------------------------------------------------------------------

// The read bandwidth at each thread count, measured in a child process: before this
// process starts any thread, and without the probe's buffer counting in our peak RSS.
// false after printing the error.
bool probe_read_bandwidth(const BenchOptions& o, Progress& progress, std::map<int32_t, double>* read_bw) {
  if (o.probe_mib <= 0) return true;
  for (int32_t t : o.threads) {
    if (read_bw->count(t)) continue;
    progress.show("probing read bandwidth (" + std::to_string(o.probe_mib) + " MiB, " + std::to_string(t) +
                      (t == 1 ? " thread)" : " threads)"),
                  !o.quiet && o.verbose);
    BandwidthResult br = measure_read_bandwidth_isolated(static_cast<size_t>(o.probe_mib) << 20, t, o.probe_passes);
    if (!br.error.empty()) {
      progress.clear();
      print_error("bench", "bandwidth probe: " + br.error);
      return false;
    }
    (*read_bw)[t] = br.bytes_per_s;
  }
  return true;
}

// The model under test and what the rows say about it.
struct BenchModel {
  ModelPtr model;
  ember_model_info info{};
  std::string name, kernels, weights;  // weights: "repacked" or "in place"
  uint64_t bytes_per_token = 0;
};

bool load_bench_model(const BenchOptions& o, BenchModel* bm) {
  bm->model = load_model("bench", o.model_path);
  if (!bm->model || !get_model_info("bench", bm->model.get(), &bm->info)) return false;
  const ember_model_info& info = bm->info;
  bm->name = info.name && *info.name ? info.name : o.model_path.substr(o.model_path.find_last_of('/') + 1);
  bm->kernels = o.reference ? "reference" : (info.kernels ? info.kernels : "?");
  bm->weights = info.weight_layout ? info.weight_layout : "?";
  bm->bytes_per_token = decode_bytes_per_token(info);
  return true;
}

// Per-run figures of a row's timed runs.
struct RunSamples {
  std::vector<double> prefill_tps, decode_tps, ttft_ms;
  std::vector<RunMarks> marks;
};

// Puts the first `depth` ids into the cache (in batches of the context's n_batch), or
// keeps them there: a truncation back to them, when the cache still has what that needs.
ember_status fill_depth(ember_context* ctx, const std::vector<int32_t>& ids, int32_t depth) {
  if (ember_n_past(ctx) >= depth && ember_context_truncate(ctx, depth) == EMBER_OK) return EMBER_OK;
  ember_context_reset(ctx);
  return depth > 0 ? ember_eval(ctx, ids.data(), static_cast<size_t>(depth)) : EMBER_OK;
}

// One warm-up run and `reps` timed runs of the prompt ids[depth, depth + n_prompt) in one
// batch after the depth tokens, then n_gen single-token evaluations. false after printing
// the error.
bool time_runs(ember_context* ctx, const Config& cfg, const std::vector<int32_t>& ids, int32_t reps,
               const PowerDetection& power, Progress& progress, const std::string& what, RunSamples* out) {
  const auto mark = [&] { return power.source ? power.source->mark() : PowerMark{}; };
  for (int32_t run = 0; run <= reps; ++run) {  // run 0: warm-up
    progress.show(what + (run == 0 ? ": warm-up" : ": run " + std::to_string(run) + "/" + std::to_string(reps)),
                  false);
    ember_status st = fill_depth(ctx, ids, cfg.depth);
    RunMarks m;
    m[0] = mark();
    auto t0 = Clock::now();
    if (st == EMBER_OK) st = ember_eval(ctx, ids.data() + cfg.depth, static_cast<size_t>(cfg.n_prompt));
    const double prefill_s = seconds_since(t0);
    m[1] = mark();
    double first_s = 0;
    t0 = Clock::now();
    for (int32_t i = 0; st == EMBER_OK && i < cfg.n_gen; ++i) {
      st = ember_eval(ctx, &ids[static_cast<size_t>(cfg.depth) + cfg.n_prompt + i], 1);
      if (i == 0) first_s = seconds_since(t0);
    }
    const double decode_s = seconds_since(t0);
    m[2] = mark();
    if (st != EMBER_OK) {
      progress.clear();
      print_error("bench", what + ": " + library_error(st));
      return false;
    }
    if (run == 0) continue;
    out->prefill_tps.push_back(prefill_s > 0 ? cfg.n_prompt / prefill_s : 0);
    out->decode_tps.push_back(decode_s > 0 ? cfg.n_gen / decode_s : 0);
    out->ttft_ms.push_back(1000.0 * (prefill_s + first_s));
    out->marks.push_back(std::move(m));
  }
  return true;
}

// What the rows share: the options, the model, the probe's figures and the power source.
struct BenchRun {
  const BenchOptions& o;
  const BenchModel& bm;
  const std::map<int32_t, double>& read_bw;
  const PowerDetection& power;
  Progress& progress;
};

// Measures one combination in a context sized for it (with the --lora adapters); the
// ids are drawn from rng. false after printing the error.
bool measure_row(const BenchRun& b, const Config& cfg, const std::string& what, std::mt19937_64& rng, Row* out) {
  Row row;
  row.cfg = cfg;
  row.n_ctx = b.o.n_ctx > 0 ? b.o.n_ctx : cfg.depth + cfg.n_prompt + cfg.n_gen;
  ember_context_params cp = ember_context_default_params();
  cp.n_ctx = row.n_ctx;
  cp.n_batch = std::max(cfg.n_prompt, std::min(cfg.depth, 512));  // the depth is filled in batches too
  cp.n_threads = cfg.threads;
  if (b.o.reference) cp.reference_kernels = 1;  // else the default: EMBER_REFERENCE
  cp.cache_type_k = cfg.type_k;
  cp.cache_type_v = cfg.type_v;
  cp.swa_full = b.o.cache.swa_full ? 1 : 0;
  // Peak RSS of this combination: forget the previous contexts' peak.
  reset_peak_rss();
  ember_context* raw = nullptr;
  if (ember_status st = ember_context_create(b.bm.model.get(), &cp, &raw); st != EMBER_OK || !raw) {
    b.progress.clear();
    print_error("bench", library_error(st));
    ember_context_free(raw);
    return false;
  }
  ContextPtr ctx(raw);
  std::vector<LoraPtr> loras;  // freed before ctx
  if (!apply_loras("bench", b.bm.model.get(), ctx.get(), b.o.lora_specs, &loras)) return false;
  row.context_bytes = ember_context_bytes(ctx.get());
  ember_memory_plan plan{};
  if (ember_context_memory(ctx.get(), &plan) == EMBER_OK) {
    row.kv_bytes = plan.kv_bytes;
    row.kv_bytes_per_token = plan.kv_bytes_per_token;
    row.plan_bytes = plan.total_bytes;
  }

  std::uniform_int_distribution<int32_t> pick(0, b.bm.info.n_vocab - 1);
  std::vector<int32_t> ids(static_cast<size_t>(cfg.depth) + cfg.n_prompt + cfg.n_gen);
  for (int32_t& id : ids) id = pick(rng);
  RunSamples s;
  if (!time_runs(ctx.get(), cfg, ids, b.o.reps, b.power, b.progress, what, &s)) return false;

  row.peak_rss_bytes = peak_rss_bytes();
  row.prefill_tps = summarize(s.prefill_tps);
  row.decode_tps = summarize(s.decode_tps);
  row.ttft_ms = summarize(s.ttft_ms);
  row.decode_bw = static_cast<double>(b.bm.bytes_per_token) * row.decode_tps.median;
  if (auto it = b.read_bw.find(cfg.threads); it != b.read_bw.end()) row.read_bw = it->second;
  if (b.power.source) row.energy = row_energy(*b.power.source, s.marks);
  *out = row;
  return true;
}

// ---- output ------------------------------------------------------------------------

// The lines above the table: the model, the probe, the energy source, the method.
void print_table_preamble(const BenchRun& b) {
  const ember_model_info& info = b.bm.info;
  std::printf("model: %s (%s), %s, %.1f MiB of weights (%s), %.1f MiB read per decoded token, kernels %s\n",
              b.bm.name.c_str(), b.o.model_path.c_str(), info.architecture ? info.architecture : "?",
              static_cast<double>(info.weight_bytes) / 1048576.0, b.bm.weights.c_str(),
              static_cast<double>(b.bm.bytes_per_token) / 1048576.0, b.bm.kernels.c_str());
  if (!b.read_bw.empty()) {
    std::string s;
    for (const auto& [t, bw] : b.read_bw)
      s += (s.empty() ? "" : ", ") + std::to_string(t) + (t == 1 ? " thread " : " threads ") + fmt("%.2f GB/s", bw / 1e9);
    std::printf("read bandwidth (probe: %d MiB, median of %d passes): %s\n", b.o.probe_mib, b.o.probe_passes,
                s.c_str());
  }
  if (b.power.source)
    std::printf("energy: %s (%s); W = joules / seconds, J/tok = joules / tokens, over the timed runs\n",
                b.power.source->name(), b.power.source->detail().c_str());
  else
    std::printf("energy: n/a (%s)\n", b.power.reason.c_str());
  std::printf("%d timed runs per row after one warm-up; median (min-max); TTFT = prefill + first decode step\n\n",
              b.o.reps);
  std::fflush(stdout);
}

// Row `index` as it is measured, in the json, jsonl or csv format.
void print_streamed_row(const BenchRun& b, size_t index, const Row& row) {
  const std::vector<Field> fs = fields(row, b.bm.name, b.bm.kernels, b.bm.weights, b.bm.info.weight_bytes, b.bm.bytes_per_token,
                                       b.o.reps, b.power, b.o.cache.swa_full);
  if (b.o.output == "json") {
    // One array, an object per line, as llama-bench prints it; closed by end_output.
    print_json(fs, index == 0 ? "[\n  " : ",\n  ", "");
  } else if (b.o.output == "jsonl") {
    print_json(fs, "", "\n");
  } else {
    if (index == 0) print_csv(fs, true);
    print_csv(fs, false);
  }
}

// After the last row: the table, or the end of the JSON array.
void end_output(const BenchRun& b, const std::vector<Row>& rows) {
  if (b.o.output == "table") print_table(rows, b.power.source != nullptr, b.o.reps);
  if (b.o.output == "json" && !rows.empty()) std::fputs("\n]\n", stdout);
}

bool write_plot(const BenchRun& b, const std::vector<Row>& rows) {
  std::vector<PlotRow> points;
  for (const Row& r : rows)
    points.push_back({r.cfg.threads, r.cfg.n_prompt, r.cfg.n_gen, r.prefill_tps.median, r.prefill_tps.min,
                      r.prefill_tps.max, r.decode_tps.median, r.decode_tps.min, r.decode_tps.max});
  const PlotInfo pi{b.bm.name, "kernels " + b.bm.kernels + "; median of " + std::to_string(b.o.reps) +
                                   (b.o.reps == 1 ? " timed run" : " timed runs") + " per point"};
  std::string err;
  if (!write_bench_svg(b.o.plot_path, points, pi, &err)) {
    print_error("bench", err);
    return false;
  }
  return true;
}

}  // namespace

int cmd_bench(const Args& args) {
  BenchOptions o;
  o.threads = {n_cores()};
  ArgParser p("bench", "-m MODEL [-p 128[,512..]] [-n 64[,..]] [-t 1,2] [-r 3] [--output table|json|jsonl|csv]",
              "Measure prefill and decode speed, time to first token and memory for every\n"
              "combination of prompt length, generation length, thread count and KV cache types,\n"
              "and decode's memory bandwidth as a share of the machine's streaming read bandwidth.");
  declare_flags(p, o);
  if (int rc = p.parse(args); rc != kContinue) return rc;
  if (int rc = check_options(p, o); rc != kContinue) return rc;

  Progress progress(o.quiet);
  std::map<int32_t, double> read_bw;
  if (!probe_read_bandwidth(o, progress, &read_bw)) return kExitRuntime;
  setup_logging(o.verbose);
  BenchModel bm;
  if (!load_bench_model(o, &bm)) return kExitRuntime;
  // After the probe's fork: a sampled source starts a thread.
  const PowerDetection power = detect_power_source(o.energy, power_options_from_env());
  const BenchRun b{o, bm, read_bw, power, progress};
  if (o.output == "table") print_table_preamble(b);

  const std::vector<Config> configs = combinations(o);
  std::vector<Row> rows;
  std::mt19937_64 rng(o.seed);
  for (size_t ci = 0; ci < configs.size(); ++ci) {
    const Config& cfg = configs[ci];
    const std::string what = "[" + std::to_string(ci + 1) + "/" + std::to_string(configs.size()) + "] t=" +
                             std::to_string(cfg.threads) + (cfg.depth ? " d=" + std::to_string(cfg.depth) : "") +
                             " p=" + std::to_string(cfg.n_prompt) +
                             " n=" + std::to_string(cfg.n_gen) + " ctk=" + type_name(cfg.type_k) +
                             " ctv=" + type_name(cfg.type_v);
    progress.show(what, true);
    Row row;
    if (!measure_row(b, cfg, what, rng, &row)) return kExitRuntime;
    rows.push_back(row);
    if (o.output != "table") {
      progress.clear();
      print_streamed_row(b, ci, row);
    }
  }
  progress.clear();
  end_output(b, rows);
  if (!o.plot_path.empty() && !write_plot(b, rows)) return kExitRuntime;
  if (std::ferror(stdout) || std::fflush(stdout) != 0) {
    print_error("bench", "cannot write the output");
    return kExitRuntime;
  }
  return kExitOk;
}

}  // namespace ember::cli
