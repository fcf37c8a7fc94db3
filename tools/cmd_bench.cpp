// ember bench: prefill and decode speed, time to first token, memory, and decode's
// share of the machine's memory bandwidth, over combinations of prompt length,
// generation length and thread count.
//
// For every combination (threads x prompt x gen): a context sized for it is created,
// then one warm-up run and -r timed runs. A run resets the context, evaluates the
// prompt (random valid token ids, fixed seed) in ONE ember_eval (n_batch = prompt
// length), then n single-token ember_eval calls, each with the next random id (the
// engine's cost is the same as for a sampled token). Reported per combination: the
// median and min-max over the runs of prefill tok/s, decode tok/s and time to first
// token (prefill + the first decode step); the model's weight bytes, the context's
// bytes (KV cache + scratch) and the memory plan (ember_context_memory: mapped file +
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
#include "cmd_lora.h"
#include "commands.h"
#include "common.h"
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

std::string json_string(const std::string& s) {
  std::string o = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      o += '\\';
      o += static_cast<char>(c);
    } else if (c < 0x20) {
      char u[8];
      std::snprintf(u, sizeof u, "\\u%04x", c);
      o += u;
    } else {
      o += static_cast<char>(c);
    }
  }
  return o + "\"";
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

std::vector<Field> fields(const Row& r, const std::string& model_name, const std::string& kernels,
                          uint64_t model_bytes, uint64_t bytes_per_token, int32_t reps, const PowerDetection& power) {
  const bool bw = r.read_bw > 0;
  const auto u = [](uint64_t v) { return std::to_string(v); };
  const Energy& e = r.energy;
  // The note: what the source sums when measured, else why there are no figures.
  const std::string note = e.measured ? power.source->detail() : power.source ? e.error : power.reason;
  return {
      {"model", model_name, true},
      {"kernels", kernels, true},
      {"threads", std::to_string(r.cfg.threads)},
      {"n_prompt", std::to_string(r.cfg.n_prompt)},
      {"n_gen", std::to_string(r.cfg.n_gen)},
      {"n_ctx", std::to_string(r.n_ctx)},
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

void print_json(const std::vector<Field>& fs) {
  std::string line = "{";
  for (size_t i = 0; i < fs.size(); ++i) {
    if (i) line += ", ";
    line += json_string(fs[i].key) + ": " + (fs[i].is_string ? json_string(fs[i].value) : fs[i].value);
  }
  line += "}\n";
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
  std::vector<std::vector<std::string>> cells = {{"threads", "prompt", "gen", "prefill tok/s", "(min-max)",
                                                  "decode tok/s", "(min-max)", "TTFT ms", "KV MiB", "context MiB",
                                                  "plan MiB", "peak RSS MiB", "decode GB/s", "% of read bw"}};
  if (with_energy) cells[0].insert(cells[0].end(), {"prefill W", "prefill J/tok", "decode W", "decode J/tok"});
  for (const Row& r : rows) {
    cells.push_back({std::to_string(r.cfg.threads), std::to_string(r.cfg.n_prompt), std::to_string(r.cfg.n_gen),
                     fmt_rate(r.prefill_tps.median),
                     range_text(r.prefill_tps),
                     fmt_rate(r.decode_tps.median),
                     range_text(r.decode_tps),
                     fmt("%.2f", r.ttft_ms.median), mib(r.kv_bytes),
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
      // Numbers right-aligned; the range column left-aligned next to its median.
      const bool left = row[c].size() && row[c][0] == '(';
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

}  // namespace

int cmd_bench(const Args& args) {
  std::string model_path, output = "table";
  std::vector<int32_t> prompts = {128}, gens = {64};
  const int32_t n_cores = static_cast<int32_t>(std::max(1u, std::thread::hardware_concurrency()));
  std::vector<int32_t> threads = {n_cores};
  int32_t reps = 3, n_ctx = 0, probe_mib = 512, probe_passes = 5;
  uint64_t seed = 1234;
  bool reference = false, verbose = false, quiet = false;
  std::string energy = "auto";
  std::string plot_path;

  ArgParser p("bench", "-m MODEL [-p 128[,512..]] [-n 64[,..]] [-t 1,2] [-r 3] [--output table|json|csv]",
              "Measure prefill and decode speed, time to first token and memory for every\n"
              "combination of prompt length, generation length and thread count, and decode's\n"
              "memory bandwidth as a share of the machine's streaming read bandwidth.");
  p.option("model", 'm', "MODEL", &model_path, "model file (GGUF)").required();
  p.option("n-prompt", 'p', "N,..", &prompts, "prompt lengths: tokens evaluated in one batch");
  p.option("n-gen", 'n', "N,..", &gens, "generation lengths: single-token evaluations after the prompt");
  p.option("threads", 't', "N,..", &threads, "thread counts; 0: all cores")
      .default_text(std::to_string(n_cores) + ", all cores");
  p.option("repetitions", 'r', "R", &reps, "timed runs per combination (after one warm-up run)").range(1, 10000);
  p.option("ctx-size", 'c', "N", &n_ctx, "context size; 0: prompt + gen of each combination").range(0, 1 << 24);
  p.option("output", 0, "FORMAT", &output, "table, json (one object per line) or csv");
  p.option("seed", 's', "S", &seed, "seed of the random token ids");
  std::vector<std::string> lora_specs;
  p.option("lora", 0, "FILE[:SCALE]", &lora_specs, kLoraFlagHelp);
  p.option("probe-mib", 0, "MIB", &probe_mib, "buffer of the read-bandwidth probe; 0: no probe").range(0, 1 << 20);
  p.option("probe-passes", 0, "N", &probe_passes, "passes of the probe (the median counts)").range(1, 1000);
  p.option("energy", 0, "SOURCE", &energy,
           "power source for watts and joules per token: auto, rapl, hwmon, pmic or none");
  p.option("plot", 0, "FILE.svg", &plot_path,
           "also draw prefill and decode tok/s against threads (or prompt length) as SVG");
  p.flag("reference", 0, &reference, "use the scalar reference kernels");
  p.flag("quiet", 'q', &quiet, "no progress on stderr");
  p.flag("verbose", 'v', &verbose, "library log messages on stderr");
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
      "  ember bench -m model.gguf -t 1,2,4 --plot threads.svg\n");
  if (int rc = p.parse(args); rc != kContinue) return rc;

  if (output != "table" && output != "json" && output != "csv")
    return p.usage_error("unknown output format '" + output + "' (expected table, json or csv)");
  if (!plot_path.empty()) {
    // Fail before minutes of measuring, not after: the SVG's directory must be writable.
    const size_t slash = plot_path.find_last_of('/');
    const std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : plot_path.substr(0, slash));
    if (access(dir.c_str(), W_OK) != 0)
      return p.usage_error("cannot write the plot " + plot_path + ": " + std::strerror(errno));
  }
  if (!is_power_source_kind(energy))
    return p.usage_error("unknown energy source '" + energy + "' (expected auto, rapl, hwmon, pmic or none)");
  for (int32_t v : prompts)
    if (v < 1 || v > (1 << 24)) return p.usage_error("prompt length " + std::to_string(v) + " out of range 1..16777216");
  for (int32_t v : gens)
    if (v < 1 || v > (1 << 24)) return p.usage_error("generation length " + std::to_string(v) + " out of range 1..16777216");
  for (int32_t& v : threads) {
    if (v < 0 || v > 4096) return p.usage_error("thread count " + std::to_string(v) + " out of range 0..4096");
    if (v == 0) v = n_cores;
  }
  if (n_ctx > 0) {
    for (int32_t pp : prompts)
      for (int32_t nn : gens)
        if (static_cast<int64_t>(pp) + nn > n_ctx)
          return p.usage_error("prompt " + std::to_string(pp) + " + gen " + std::to_string(nn) + " tokens exceed the context size " +
                               std::to_string(n_ctx) + " (-c)");
  }

  std::vector<Config> configs;
  for (int32_t t : threads)
    for (int32_t pp : prompts)
      for (int32_t nn : gens) configs.push_back({t, pp, nn});

  Progress progress(quiet);

  // The probe first, in a child process: before this process starts any thread, and
  // without its buffer counting in our peak RSS.
  std::map<int32_t, double> read_bw;
  if (probe_mib > 0) {
    for (int32_t t : threads) {
      if (read_bw.count(t)) continue;
      progress.show("probing read bandwidth (" + std::to_string(probe_mib) + " MiB, " + std::to_string(t) +
                        (t == 1 ? " thread)" : " threads)"),
                    !quiet && verbose);
      BandwidthResult br = measure_read_bandwidth_isolated(static_cast<size_t>(probe_mib) << 20, t, probe_passes);
      if (!br.error.empty()) {
        progress.clear();
        print_error("bench", "bandwidth probe: " + br.error);
        return kExitRuntime;
      }
      read_bw[t] = br.bytes_per_s;
    }
  }

  setup_logging(verbose);
  ModelPtr model = load_model("bench", model_path, reference);
  if (!model) return kExitRuntime;
  ember_model_info info{};
  if (ember_status st = ember_model_get_info(model.get(), &info); st != EMBER_OK) {
    print_error("bench", library_error(st));
    return kExitRuntime;
  }
  std::string model_name = info.name && *info.name ? info.name : model_path.substr(model_path.find_last_of('/') + 1);
  const std::string kernels = reference ? "reference" : (info.kernels ? info.kernels : "?");
  const uint64_t bytes_per_token = decode_bytes_per_token(info);

  // After the probe's fork: a sampled source starts a thread.
  const PowerDetection power = detect_power_source(energy, power_options_from_env());

  if (output == "table") {
    std::printf("model: %s (%s), %s, %.1f MiB of weights, %.1f MiB read per decoded token, kernels %s\n",
                model_name.c_str(), model_path.c_str(), info.architecture ? info.architecture : "?",
                static_cast<double>(info.weight_bytes) / 1048576.0, static_cast<double>(bytes_per_token) / 1048576.0,
                kernels.c_str());
    if (!read_bw.empty()) {
      std::string s;
      for (const auto& [t, bw] : read_bw)
        s += (s.empty() ? "" : ", ") + std::to_string(t) + (t == 1 ? " thread " : " threads ") + fmt("%.2f GB/s", bw / 1e9);
      std::printf("read bandwidth (probe: %d MiB, median of %d passes): %s\n", probe_mib, probe_passes, s.c_str());
    }
    if (power.source)
      std::printf("energy: %s (%s); W = joules / seconds, J/tok = joules / tokens, over the timed runs\n",
                  power.source->name(), power.source->detail().c_str());
    else
      std::printf("energy: n/a (%s)\n", power.reason.c_str());
    std::printf("%d timed runs per row after one warm-up; median (min-max); TTFT = prefill + first decode step\n\n",
                reps);
    std::fflush(stdout);
  }

  std::vector<Row> rows;
  std::mt19937_64 rng(seed);
  for (size_t ci = 0; ci < configs.size(); ++ci) {
    const Config& cfg = configs[ci];
    const std::string what = "[" + std::to_string(ci + 1) + "/" + std::to_string(configs.size()) + "] t=" +
                             std::to_string(cfg.threads) + " p=" + std::to_string(cfg.n_prompt) +
                             " n=" + std::to_string(cfg.n_gen);
    progress.show(what, true);

    Row row;
    row.cfg = cfg;
    row.n_ctx = n_ctx > 0 ? n_ctx : cfg.n_prompt + cfg.n_gen;
    ember_context_params cp = ember_context_default_params();
    cp.n_ctx = row.n_ctx;
    cp.n_batch = cfg.n_prompt;
    cp.n_threads = cfg.threads;
    cp.reference_kernels = reference ? 1 : 0;
    // Peak RSS of this combination: forget the previous contexts' peak.
    reset_peak_rss();
    ember_context* raw = nullptr;
    if (ember_status st = ember_context_create(model.get(), &cp, &raw); st != EMBER_OK || !raw) {
      progress.clear();
      print_error("bench", library_error(st));
      ember_context_free(raw);
      return kExitRuntime;
    }
    ContextPtr ctx(raw);
    std::vector<LoraPtr> loras;  // freed before ctx
    if (!apply_loras("bench", model.get(), ctx.get(), lora_specs, &loras)) return kExitRuntime;
    row.context_bytes = ember_context_bytes(ctx.get());
    ember_memory_plan plan{};
    if (ember_context_memory(ctx.get(), &plan) == EMBER_OK) {
      row.kv_bytes = plan.kv_bytes;
      row.plan_bytes = plan.total_bytes;
    }

    std::uniform_int_distribution<int32_t> pick(0, info.n_vocab - 1);
    std::vector<int32_t> ids(static_cast<size_t>(cfg.n_prompt) + cfg.n_gen);
    for (int32_t& id : ids) id = pick(rng);

    std::vector<double> prefill_tps, decode_tps, ttft_ms;
    std::vector<RunMarks> marks;
    const auto mark = [&] { return power.source ? power.source->mark() : PowerMark{}; };
    for (int32_t run = 0; run <= reps; ++run) {  // run 0: warm-up
      progress.show(what + (run == 0 ? ": warm-up" : ": run " + std::to_string(run) + "/" + std::to_string(reps)),
                    false);
      ember_context_reset(ctx.get());
      RunMarks m;
      m[0] = mark();
      auto t0 = Clock::now();
      ember_status st = ember_eval(ctx.get(), ids.data(), static_cast<size_t>(cfg.n_prompt));
      const double prefill_s = seconds_since(t0);
      m[1] = mark();
      double first_s = 0;
      t0 = Clock::now();
      for (int32_t i = 0; st == EMBER_OK && i < cfg.n_gen; ++i) {
        st = ember_eval(ctx.get(), &ids[static_cast<size_t>(cfg.n_prompt) + i], 1);
        if (i == 0) first_s = seconds_since(t0);
      }
      const double decode_s = seconds_since(t0);
      m[2] = mark();
      if (st != EMBER_OK) {
        progress.clear();
        print_error("bench", what + ": " + library_error(st));
        return kExitRuntime;
      }
      if (run == 0) continue;
      prefill_tps.push_back(prefill_s > 0 ? cfg.n_prompt / prefill_s : 0);
      decode_tps.push_back(decode_s > 0 ? cfg.n_gen / decode_s : 0);
      ttft_ms.push_back(1000.0 * (prefill_s + first_s));
      marks.push_back(std::move(m));
    }
    row.peak_rss_bytes = peak_rss_bytes();
    row.prefill_tps = summarize(prefill_tps);
    row.decode_tps = summarize(decode_tps);
    row.ttft_ms = summarize(ttft_ms);
    row.decode_bw = static_cast<double>(bytes_per_token) * row.decode_tps.median;
    if (auto it = read_bw.find(cfg.threads); it != read_bw.end()) row.read_bw = it->second;
    if (power.source) row.energy = row_energy(*power.source, marks);
    rows.push_back(row);

    if (output != "table") {
      progress.clear();
      const auto fs = fields(row, model_name, kernels, info.weight_bytes, bytes_per_token, reps, power);
      if (output == "json") {
        print_json(fs);
      } else {
        if (ci == 0) print_csv(fs, true);
        print_csv(fs, false);
      }
    }
  }
  progress.clear();
  if (output == "table") print_table(rows, power.source != nullptr, reps);
  if (!plot_path.empty()) {
    std::vector<PlotRow> points;
    for (const Row& r : rows)
      points.push_back({r.cfg.threads, r.cfg.n_prompt, r.cfg.n_gen, r.prefill_tps.median, r.prefill_tps.min,
                        r.prefill_tps.max, r.decode_tps.median, r.decode_tps.min, r.decode_tps.max});
    const PlotInfo pi{model_name, "kernels " + kernels + "; median of " + std::to_string(reps) +
                                      (reps == 1 ? " timed run" : " timed runs") + " per point"};
    std::string err;
    if (!write_bench_svg(plot_path, points, pi, &err)) {
      print_error("bench", err);
      return kExitRuntime;
    }
  }
  if (std::ferror(stdout) || std::fflush(stdout) != 0) {
    print_error("bench", "cannot write the output");
    return kExitRuntime;
  }
  return kExitOk;
}

}  // namespace ember::cli
