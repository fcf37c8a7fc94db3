#include "power.h"

#include <dirent.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <thread>
#include <type_traits>
#include <utility>

namespace ember::cli {
namespace {

double now_s() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

// "Permission denied" -> "permission denied", as the rest of the one-line messages.
std::string errno_text(int err) {
  std::string s = std::strerror(err);
  if (!s.empty()) s[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(s[0])));
  return s;
}

std::string trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return std::string(s.substr(b, e - b));
}

// The whole of s (spaces around allowed) as a number.
bool to_u64(const std::string& text, uint64_t* v) {
  const std::string s = trim(text);
  if (s.empty() || !std::isdigit(static_cast<unsigned char>(s[0]))) return false;
  char* end = nullptr;
  errno = 0;
  const unsigned long long x = std::strtoull(s.c_str(), &end, 10);
  if (errno != 0 || *end != '\0') return false;
  *v = x;
  return true;
}

bool to_double(const std::string& text, double* v) {
  const std::string s = trim(text);
  if (s.empty()) return false;
  char* end = nullptr;
  errno = 0;
  const double x = std::strtod(s.c_str(), &end);
  if (errno != 0 || *end != '\0') return false;
  *v = x;
  return true;
}

// Reads a number file through `read`; *error names the path.
template <typename T>
bool read_number(const FileReader& read, const std::string& path, T* v, std::string* error) {
  std::string text;
  if (!read(path, &text, error)) return false;
  bool ok;
  if constexpr (std::is_same_v<T, uint64_t>) {
    ok = to_u64(text, v);
  } else {
    ok = to_double(text, v);
  }
  if (!ok) *error = path + ": not a number: '" + trim(text) + "'";
  return ok;
}

// Names in a directory (no "." and ".."), sorted; empty when it cannot be read.
std::vector<std::string> list_dir(const std::string& dir) {
  std::vector<std::string> names;
  DIR* d = ::opendir(dir.c_str());
  if (!d) return names;
  while (const dirent* e = ::readdir(d)) {
    const std::string n = e->d_name;
    if (n != "." && n != "..") names.push_back(n);
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

// "PREFIX<digits>" -> digits as a number; -1 when name is not of that form.
long index_after(const std::string& name, std::string_view prefix) {
  if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) return -1;
  long v = 0;
  for (size_t i = prefix.size(); i < name.size(); ++i) {
    if (!std::isdigit(static_cast<unsigned char>(name[i])) || v > 1000000) return -1;
    v = v * 10 + (name[i] - '0');
  }
  return v;
}

// One attempt at a source: the source, or why not; present: the sensor exists (its
// failure is worth reporting even when auto-detection found nothing else).
struct Attempt {
  std::unique_ptr<PowerSource> source;
  std::string reason;
  bool present = false;
};

// ---- RAPL: cumulative counters ---------------------------------------------------

struct RaplZone {
  std::string dir, label;  // label: the zone's name file ("package-0")
  uint64_t range = 0;      // max_energy_range_uj; 0: unknown
};

class RaplSource final : public PowerSource {
 public:
  RaplSource(std::vector<RaplZone> zones, FileReader read) : zones_(std::move(zones)), read_(std::move(read)) {}

  const char* name() const override { return "rapl"; }

  std::string detail() const override {
    std::string s;
    for (const RaplZone& z : zones_) {
      if (!s.empty()) s += ", ";
      s += z.dir.substr(z.dir.find_last_of('/') + 1);
      if (!z.label.empty()) s += " (" + z.label + ")";
    }
    return s;
  }

  PowerMark mark() override {
    PowerMark m;
    m.t = now_s();
    m.counters.resize(zones_.size());
    for (size_t i = 0; i < zones_.size(); ++i)
      if (!read_number(read_, zones_[i].dir + "/energy_uj", &m.counters[i], &m.error)) break;
    return m;
  }

  EnergyReading energy(const PowerMark& a, const PowerMark& b) override {
    EnergyReading r;
    r.seconds = b.t - a.t;
    if (!a.error.empty() || !b.error.empty()) {
      r.error = !a.error.empty() ? a.error : b.error;
      return r;
    }
    uint64_t total_uj = 0;
    for (size_t i = 0; i < zones_.size(); ++i) {
      uint64_t d = 0;
      if (!counter_delta(a.counters[i], b.counters[i], zones_[i].range, &d)) {
        r.error = zones_[i].dir + "/energy_uj went from " + std::to_string(a.counters[i]) + " down to " +
                  std::to_string(b.counters[i]) + " (max_energy_range_uj " +
                  (zones_[i].range ? std::to_string(zones_[i].range) : std::string("unknown")) + ")";
        return r;
      }
      total_uj += d;
    }
    r.joules = static_cast<double>(total_uj) * 1e-6;
    return r;
  }

 private:
  std::vector<RaplZone> zones_;
  FileReader read_;
};

Attempt try_rapl(const PowerOptions& o) {
  Attempt a;
  const std::string dir = o.sysfs_root + "/class/powercap";
  std::vector<std::pair<long, RaplZone>> found;
  for (const std::string& n : list_dir(dir)) {
    const long idx = index_after(n, "intel-rapl:");  // not intel-rapl:N:M, not intel-rapl-mmio:N
    if (idx < 0) continue;
    RaplZone z;
    z.dir = dir + "/" + n;
    std::string label, ignored;
    if (o.read(z.dir + "/name", &label, &ignored)) z.label = trim(label);
    if (z.label.rfind("psys", 0) == 0) continue;  // the platform: contains the packages
    if (!read_number(o.read, z.dir + "/max_energy_range_uj", &z.range, &ignored)) z.range = 0;
    found.emplace_back(idx, std::move(z));
  }
  if (found.empty()) {
    a.reason = "rapl: no intel-rapl:N zone in " + dir;
    return a;
  }
  a.present = true;
  std::sort(found.begin(), found.end(), [](const auto& x, const auto& y) { return x.first < y.first; });
  std::vector<RaplZone> zones;
  for (auto& f : found) zones.push_back(std::move(f.second));
  auto src = std::make_unique<RaplSource>(std::move(zones), o.read);
  const PowerMark m = src->mark();  // readable? (energy_uj is root-only on recent kernels)
  if (!m.error.empty()) {
    a.reason = "rapl: " + m.error;
    return a;
  }
  a.source = std::move(src);
  return a;
}

// ---- sampled sources: a background thread integrates instantaneous power -----------

// Reads the current power in watts; false with *error on failure. Called from the
// sampler thread only.
using PowerReader = std::function<bool(double* watts, std::string* error)>;

class SampledSource final : public PowerSource {
 public:
  SampledSource(const char* name, std::string detail, PowerReader read, std::chrono::milliseconds period)
      : name_(name),
        detail_(std::move(detail)),
        read_(std::move(read)),
        period_(std::max(period, std::chrono::milliseconds(1))) {}

  ~SampledSource() override {
    {
      std::lock_guard<std::mutex> lk(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

  // Takes the first sample here (so a sensor that cannot be read is reported at once),
  // then starts the sampler thread; false with *error when either fails.
  bool start(std::string* error) {
    if (!sample_once()) {
      *error = failure_;
      return false;
    }
    try {
      thread_ = std::thread([this] { loop(); });
    } catch (const std::exception& e) {  // std::system_error: no thread resources
      *error = std::string("cannot start the sampling thread: ") + e.what();
      return false;
    }
    return true;
  }

  const char* name() const override { return name_; }
  std::string detail() const override { return detail_; }
  PowerMark mark() override {
    PowerMark m;
    m.t = now_s();
    return m;
  }

  EnergyReading energy(const PowerMark& a, const PowerMark& b) override {
    EnergyReading r;
    r.seconds = b.t - a.t;
    if (b.t < a.t) {
      r.error = "interval ends before it starts";
      return r;
    }
    // Wait for the sample after the interval (the end is interpolated, not extrapolated);
    // give up when a read after the interval failed, or after a few periods.
    const auto wait = 3 * period_ + std::chrono::seconds(2);
    std::unique_lock<std::mutex> lk(mu_);
    cv_.wait_for(lk, wait, [&] {
      return dead_ || samples_.back().t >= b.t || (!failure_.empty() && failure_t_ >= b.t);
    });
    if (samples_.back().t < b.t) {
      if (!failure_.empty()) {
        r.error = failure_;
      } else if (dead_) {
        r.error = "the sampling thread stopped";
      } else {
        r.error = "no power reading within " +
                  std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(wait).count()) +
                  " ms after the interval";
      }
      return r;
    }
    r.joules = integrate_power(samples_, a.t, b.t);
    return r;
  }

 private:
  // One reading, recorded at the middle of the read (vcgencmd takes tens of ms).
  bool sample_once() {
    double watts = 0;
    std::string error;
    const double t0 = now_s();
    const bool ok = read_(&watts, &error);
    const double t = 0.5 * (t0 + now_s());
    std::lock_guard<std::mutex> lk(mu_);
    if (ok) {
      samples_.push_back({t, watts});  // all kept: 16 bytes a sample, ~3 MB an hour at 20 ms
      failure_.clear();
    } else {
      failure_ = error;
      failure_t_ = t;
    }
    return ok;
  }

  // Never throws: anything unexpected marks the source dead, and energy() then says so.
  void loop() noexcept {
    try {
      auto next = std::chrono::steady_clock::now() + period_;
      for (;;) {
        {
          std::unique_lock<std::mutex> lk(mu_);
          if (cv_.wait_until(lk, next, [&] { return stop_; })) return;
        }
        sample_once();
        cv_.notify_all();
        next += period_;
        const auto now = std::chrono::steady_clock::now();
        if (next < now) next = now;  // late (a slow read): do not try to catch up
      }
    } catch (...) {
    }
    {
      std::lock_guard<std::mutex> lk(mu_);
      dead_ = true;
    }
    cv_.notify_all();
  }

  const char* name_;
  std::string detail_;
  PowerReader read_;
  std::chrono::milliseconds period_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<PowerSample> samples_;  // sorted by t; non-empty after start()
  std::string failure_;               // the last read failed: why
  double failure_t_ = 0;              // and when
  bool stop_ = false, dead_ = false;
  std::thread thread_;
};

// ---- hwmon ----------------------------------------------------------------------

struct HwmonChannel {
  std::string power;         // powerN_input, uW; "" for a pair
  std::string volts, amps;   // inN_input (mV) and currN_input (mA)
  std::string what, label;   // "hwmon2/ina3221 in1*curr1", "VDD_IN"
};

bool read_channel_watts(const FileReader& read, const HwmonChannel& c, double* watts, std::string* error) {
  if (!c.power.empty()) {
    double uw = 0;
    if (!read_number(read, c.power, &uw, error)) return false;
    *watts = uw * 1e-6;
    return true;
  }
  double mv = 0, ma = 0;
  if (!read_number(read, c.volts, &mv, error) || !read_number(read, c.amps, &ma, error)) return false;
  *watts = mv * ma * 1e-6;
  return true;
}

// The channels of one hwmon device: powerN_input if any, else inN_input x currN_input.
std::vector<HwmonChannel> hwmon_channels(const FileReader& read, const std::string& dev_dir, const std::string& dev) {
  std::string name, ignored;
  if (read(dev_dir + "/name", &name, &ignored)) name = trim(name);
  std::map<long, bool> power, in, curr;
  for (const std::string& f : list_dir(dev_dir)) {
    const size_t us = f.find('_');
    if (us == std::string::npos || f.compare(us, std::string::npos, "_input") != 0) continue;
    const std::string stem = f.substr(0, us);
    if (long i = index_after(stem, "power"); i >= 0) power[i] = true;
    if (long i = index_after(stem, "in"); i >= 0) in[i] = true;
    if (long i = index_after(stem, "curr"); i >= 0) curr[i] = true;
  }
  const auto label = [&](const std::string& stem) {
    std::string l;
    return read(dev_dir + "/" + stem + "_label", &l, &ignored) ? trim(l) : std::string();
  };
  const std::string where = dev + (name.empty() ? "" : "/" + name) + " ";
  std::vector<HwmonChannel> out;
  if (!power.empty()) {
    for (const auto& [i, _] : power) {
      const std::string stem = "power" + std::to_string(i);
      out.push_back({dev_dir + "/" + stem + "_input", "", "", where + stem, label(stem)});
    }
    return out;
  }
  for (const auto& [i, _] : in) {
    if (!curr.count(i)) continue;  // a shunt-voltage or unmonitored channel
    const std::string n = std::to_string(i);
    out.push_back({"", dev_dir + "/in" + n + "_input", dev_dir + "/curr" + n + "_input", where + "in" + n + "*curr" + n,
                   label("in" + n)});
  }
  return out;
}

bool ends_with_in(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s.size() >= 3 && s.compare(s.size() - 3, 3, "_IN") == 0;
}

Attempt try_hwmon(const PowerOptions& o) {
  Attempt a;
  const std::string dir = o.sysfs_root + "/class/hwmon";
  std::vector<HwmonChannel> channels;
  std::string first_error;
  for (const std::string& dev : list_dir(dir)) {
    if (dev.rfind("hwmon", 0) != 0) continue;
    for (HwmonChannel& c : hwmon_channels(o.read, dir + "/" + dev, dev)) {
      a.present = true;
      double w = 0;
      std::string error;
      // A channel that cannot be read now (disabled INA3221 channel: ENODATA) is left out.
      if (read_channel_watts(o.read, c, &w, &error)) {
        channels.push_back(std::move(c));
      } else if (first_error.empty()) {
        first_error = error;
      }
    }
  }
  if (channels.empty()) {
    a.reason = first_error.empty() ? "hwmon: no powerN_input or inN_input+currN_input in " + dir
                                   : "hwmon: " + first_error;
    return a;
  }
  // A board input rail contains the others: keep only the inputs when there are any.
  const auto is_input = [](const HwmonChannel& c) { return ends_with_in(c.label); };
  if (std::any_of(channels.begin(), channels.end(), is_input))
    channels.erase(
        std::remove_if(channels.begin(), channels.end(), [&](const HwmonChannel& c) { return !is_input(c); }),
        channels.end());
  std::string detail;
  for (const HwmonChannel& c : channels)
    detail += (detail.empty() ? "" : ", ") + c.what + (c.label.empty() ? "" : " (" + c.label + ")");
  PowerReader read = [read = o.read, channels](double* watts, std::string* error) {
    double sum = 0;
    for (const HwmonChannel& c : channels) {
      double w = 0;
      if (!read_channel_watts(read, c, &w, error)) return false;
      sum += w;
    }
    *watts = sum;
    return true;
  };
  auto src = std::make_unique<SampledSource>("hwmon", detail, std::move(read), o.hwmon_period);
  if (std::string error; !src->start(&error)) {
    a.reason = "hwmon: " + error;
    return a;
  }
  a.source = std::move(src);
  return a;
}

// ---- Raspberry Pi 5 PMIC through vcgencmd ------------------------------------------

// The first executable regular file named `name` in the ':'-separated `path`.
std::string find_on_path(const std::string& path, const std::string& name) {
  size_t b = 0;
  for (;;) {
    const size_t e = path.find(':', b);
    std::string dir = path.substr(b, e == std::string::npos ? std::string::npos : e - b);
    if (dir.empty()) dir = ".";
    const std::string f = dir + "/" + name;
    struct stat st {};
    if (::stat(f.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(f.c_str(), X_OK) == 0) return f;
    if (e == std::string::npos) return "";
    b = e + 1;
  }
}

// Runs `vcgencmd pmic_read_adc` (stderr discarded: it would land in bench's output).
bool read_pmic(const std::string& vcgencmd, double* watts, std::string* error) {
  std::string quoted = "'";
  for (char c : vcgencmd) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  const std::string cmd = quoted + "' pmic_read_adc 2>/dev/null";
  std::FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) {
    *error = "cannot run " + vcgencmd + ": " + errno_text(errno);
    return false;
  }
  std::string out;
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
  const int status = ::pclose(p);
  if (status != 0) {
    *error = vcgencmd + " pmic_read_adc: " +
             (status > 0 && WIFEXITED(status) ? "exited with status " + std::to_string(WEXITSTATUS(status))
                                               : std::string("failed"));
    return false;
  }
  int rails = 0;
  if (!parse_pmic_adc(out, watts, &rails)) {
    *error = vcgencmd + " pmic_read_adc: no rail with both a current and a voltage (not a Raspberry Pi 5?)";
    return false;
  }
  return true;
}

Attempt try_pmic(const PowerOptions& o) {
  Attempt a;
  const std::string vcgencmd = find_on_path(o.path, "vcgencmd");
  if (vcgencmd.empty()) {
    a.reason = "pmic: no vcgencmd on PATH";
    return a;
  }
  a.present = true;
  PowerReader read = [vcgencmd](double* watts, std::string* error) { return read_pmic(vcgencmd, watts, error); };
  auto src = std::make_unique<SampledSource>("pmic", vcgencmd + " pmic_read_adc: sum of rail V x I", std::move(read),
                                             o.pmic_period);
  if (std::string error; !src->start(&error)) {
    a.reason = "pmic: " + error;
    return a;
  }
  a.source = std::move(src);
  return a;
}

}  // namespace

bool read_small_file(const std::string& path, std::string* out, std::string* error) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) {
    *error = path + ": " + errno_text(errno);
    return false;
  }
  out->clear();
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out->append(buf, n);
  const bool failed = std::ferror(f) != 0;
  const int err = errno;  // a directory opens, then fails to read: EISDIR
  std::fclose(f);
  if (failed) *error = path + ": " + errno_text(err);
  return !failed;
}

PowerOptions power_options_from_env() {
  PowerOptions o;
  if (const char* r = std::getenv("EMBER_SYSFS_ROOT"); r && *r) o.sysfs_root = r;
  if (const char* p = std::getenv("PATH")) o.path = p;
  return o;
}

bool is_power_source_kind(std::string_view kind) {
  return kind == "auto" || kind == "rapl" || kind == "hwmon" || kind == "pmic" || kind == "none";
}

PowerDetection detect_power_source(std::string_view kind, const PowerOptions& options) {
  PowerDetection d;
  if (kind == "none") {
    d.reason = "disabled (--energy none)";
    return d;
  }
  if (!is_power_source_kind(kind)) {
    d.reason = "unknown power source '" + std::string(kind) + "'";
    return d;
  }
  Attempt (*const tries[])(const PowerOptions&) = {try_rapl, try_hwmon, try_pmic};
  const char* const names[] = {"rapl", "hwmon", "pmic"};
  std::string present, absent;  // reasons of sensors that exist but failed, and of missing ones
  for (size_t i = 0; i < 3; ++i) {
    if (kind != "auto" && kind != names[i]) continue;
    Attempt a = tries[i](options);
    if (a.source) {
      d.source = std::move(a.source);
      return d;
    }
    std::string& to = a.present ? present : absent;
    to += (to.empty() ? "" : "; ") + a.reason;
  }
  d.reason = !present.empty() ? present : kind == "auto" ? "no power sensor: " + absent : absent;
  return d;
}

bool counter_delta(uint64_t before, uint64_t after, uint64_t range, uint64_t* delta) {
  if (after >= before) {
    *delta = after - before;
    return true;
  }
  if (range == 0 || before > range) return false;
  *delta = (range - before) + after;  // up to the top, then from zero
  return true;
}

bool parse_pmic_adc(std::string_view text, double* watts, int* rails) {
  std::map<std::string, double> amps, volts;
  size_t b = 0;
  while (b < text.size()) {
    size_t e = text.find('\n', b);
    if (e == std::string_view::npos) e = text.size();
    const std::string line = trim(text.substr(b, e - b));
    b = e + 1;
    // "VDD_CORE_A current(7)=1.42880000A": name, kind(channel)=value+unit.
    const size_t sp = line.find(' '), eq = line.find('=');
    if (sp == std::string::npos || eq == std::string::npos || eq < sp || line.size() < eq + 3) continue;
    const std::string name = line.substr(0, sp), kind = trim(line.substr(sp, eq - sp));
    const char unit = line.back();
    double v = 0;
    if (name.size() < 3 || !to_double(line.substr(eq + 1, line.size() - eq - 2), &v)) continue;
    const std::string rail = name.substr(0, name.size() - 2), suffix = name.substr(name.size() - 2);
    if (suffix == "_A" && unit == 'A' && kind.rfind("current(", 0) == 0) amps[rail] = v;
    if (suffix == "_V" && unit == 'V' && kind.rfind("volt(", 0) == 0) volts[rail] = v;
  }
  double sum = 0;
  int n = 0;
  for (const auto& [rail, a] : amps) {
    if (auto it = volts.find(rail); it != volts.end()) {
      sum += a * it->second;
      ++n;
    }
  }
  *watts = sum;
  *rails = n;
  return n > 0;
}

double integrate_power(const std::vector<PowerSample>& s, double t0, double t1) {
  if (s.empty() || !(t1 > t0)) return 0;
  const auto by_t = [](double t, const PowerSample& x) { return t < x.t; };
  // Power at t: linear between the samples around t, held outside them.
  const auto power = [&](double t) {
    const auto k = std::upper_bound(s.begin(), s.end(), t, by_t);
    if (k == s.begin()) return s.front().watts;
    if (k == s.end()) return s.back().watts;
    const PowerSample& p = *(k - 1);
    return p.watts + (k->watts - p.watts) * (t - p.t) / (k->t - p.t);
  };
  double x = t0, p = power(t0), e = 0;
  for (auto it = std::upper_bound(s.begin(), s.end(), t0, by_t); it != s.end() && it->t < t1; ++it) {
    e += 0.5 * (p + it->watts) * (it->t - x);
    x = it->t;
    p = it->watts;
  }
  return e + 0.5 * (p + power(t1)) * (t1 - x);
}

}  // namespace ember::cli
