#include "core/cpu_topology.h"

#include <sched.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <thread>

namespace ember {
namespace {

std::optional<long long> read_number(const std::string& path) {
  std::ifstream in(path);
  long long v = 0;
  if (!(in >> v) || v <= 0) return std::nullopt;
  return v;
}

// The value of `leaf` (a path under cpuN/) for each CPU; empty unless every CPU has one.
std::vector<long long> read_all(const std::string& dir, const std::vector<int>& cpus, const char* leaf) {
  std::vector<long long> values;
  for (int cpu : cpus) {
    const auto v = read_number(dir + "/cpu" + std::to_string(cpu) + "/" + leaf);
    if (!v) return {};
    values.push_back(*v);
  }
  return values;
}

// Cores faster than the slowest tier; all when the tiers are one.
int count_performance(const std::vector<long long>& speed) {
  const long long slowest = *std::min_element(speed.begin(), speed.end());
  const int faster = static_cast<int>(std::count_if(speed.begin(), speed.end(), [&](long long s) { return s > slowest; }));
  return faster > 0 ? faster : static_cast<int>(speed.size());
}

}  // namespace

CpuTopology ReadCpuTopology(const std::string& sysfs_cpu_dir, const std::vector<int>& cpus) {
  CpuTopology t;
  t.n_allowed = std::max<int>(1, static_cast<int>(cpus.size()));
  t.n_performance = t.n_allowed;
  t.source = "none";
  if (cpus.empty()) return t;
  for (const char* leaf : {"cpu_capacity", "cpufreq/cpuinfo_max_freq"}) {
    const std::vector<long long> speed = read_all(sysfs_cpu_dir, cpus, leaf);
    if (speed.empty()) continue;
    t.n_performance = count_performance(speed);
    t.source = leaf == std::string("cpu_capacity") ? "cpu_capacity" : "cpuinfo_max_freq";
    break;
  }
  return t;
}

std::vector<int> AllowedCpus() {
  std::vector<int> cpus;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0) {
    for (int i = 0; i < CPU_SETSIZE; ++i)
      if (CPU_ISSET(i, &set)) cpus.push_back(i);
  }
  if (cpus.empty()) {
    const int n = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    for (int i = 0; i < n; ++i) cpus.push_back(i);
  }
  return cpus;
}

const CpuTopology& SystemCpuTopology() {
  static const CpuTopology topology = [] {
    const char* dir = std::getenv("EMBER_SYSFS_CPU");
    return ReadCpuTopology(dir && *dir ? dir : "/sys/devices/system/cpu", AllowedCpus());
  }();
  return topology;
}

}  // namespace ember
