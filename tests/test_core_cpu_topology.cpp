// Default thread count on big.LITTLE systems: ReadCpuTopology on fake sysfs trees shaped
// like real boards (RK3588, a three-tier phone SoC, equal cores, a kernel without
// cpu_capacity, no sysfs at all), and an affinity mask that holds only some cores.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/cpu_topology.h"
#include "core/thread_pool.h"

namespace ember {
namespace {

namespace fs = std::filesystem;

// A scratch sysfs cpu directory; each CPU gets the files whose values are given (0: absent).
class FakeSysfs {
 public:
  explicit FakeSysfs(const std::string& name)
      : dir_(fs::temp_directory_path() / ("ember-sysfs-" + name + "-" + std::to_string(::getpid()))) {
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  ~FakeSysfs() { fs::remove_all(dir_); }
  void Cpu(int cpu, long capacity, long max_freq_khz) {
    const fs::path c = dir_ / ("cpu" + std::to_string(cpu));
    fs::create_directories(c / "cpufreq");
    if (capacity > 0) std::ofstream(c / "cpu_capacity") << capacity << "\n";
    if (max_freq_khz > 0) std::ofstream(c / "cpufreq" / "cpuinfo_max_freq") << max_freq_khz << "\n";
  }
  std::string path() const { return dir_.string(); }

 private:
  fs::path dir_;
};

std::vector<int> range(int first, int n) {
  std::vector<int> v;
  for (int i = 0; i < n; ++i) v.push_back(first + i);
  return v;
}

TEST(CpuTopology, Rk3588CountsTheFourBigCores) {
  FakeSysfs sys("rk3588");  // 4x Cortex-A55 (cpu0-3) + 4x Cortex-A76 (cpu4-7), as its kernel reports
  for (int i = 0; i < 4; ++i) sys.Cpu(i, 414, 1800000);
  for (int i = 4; i < 8; ++i) sys.Cpu(i, 1024, 2400000);
  const CpuTopology t = ReadCpuTopology(sys.path(), range(0, 8));
  EXPECT_EQ(t.n_allowed, 8);
  EXPECT_EQ(t.n_performance, 4);
  EXPECT_EQ(t.source, "cpu_capacity");
}

TEST(CpuTopology, ThreeTiersKeepPrimeAndBigCores) {
  FakeSysfs sys("tiers");  // 3 little, 4 big, 1 prime (a recent phone SoC)
  for (int i = 0; i < 3; ++i) sys.Cpu(i, 325, 2016000);
  for (int i = 3; i < 7; ++i) sys.Cpu(i, 870, 2803000);
  sys.Cpu(7, 1024, 3187000);
  EXPECT_EQ(ReadCpuTopology(sys.path(), range(0, 8)).n_performance, 5);
}

TEST(CpuTopology, EqualCoresAreAllUsed) {
  FakeSysfs sys("equal");  // Raspberry Pi 5: 4x Cortex-A76
  for (int i = 0; i < 4; ++i) sys.Cpu(i, 1024, 2400000);
  const CpuTopology t = ReadCpuTopology(sys.path(), range(0, 4));
  EXPECT_EQ(t.n_performance, 4);
  EXPECT_EQ(t.source, "cpu_capacity");
}

TEST(CpuTopology, MaxFrequencyWhenACpuHasNoCapacity) {
  FakeSysfs sys("freq");
  for (int i = 0; i < 6; ++i) sys.Cpu(i, i == 2 ? 0 : 512, i < 2 ? 2000000 : 1400000);
  const CpuTopology t = ReadCpuTopology(sys.path(), range(0, 6));
  EXPECT_EQ(t.n_performance, 2);
  EXPECT_EQ(t.source, "cpuinfo_max_freq");
}

TEST(CpuTopology, NoSysfsMeansEveryAllowedCpu) {
  const CpuTopology t = ReadCpuTopology("/nonexistent/ember/sysfs", range(0, 3));
  EXPECT_EQ(t.n_allowed, 3);
  EXPECT_EQ(t.n_performance, 3);
  EXPECT_EQ(t.source, "none");
}

TEST(CpuTopology, AffinityMaskOnTheBigCoresSeesOneTier) {
  FakeSysfs sys("mask");  // taskset -c 4-7 on the RK3588: the process sees only A76 cores
  for (int i = 0; i < 4; ++i) sys.Cpu(i, 414, 1800000);
  for (int i = 4; i < 8; ++i) sys.Cpu(i, 1024, 2400000);
  EXPECT_EQ(ReadCpuTopology(sys.path(), range(4, 4)).n_performance, 4);
  EXPECT_EQ(ReadCpuTopology(sys.path(), {2, 3, 6}).n_performance, 1);
}

TEST(CpuTopology, DefaultThreadsIsTheSystemsPerformanceCount) {
  const CpuTopology& t = SystemCpuTopology();
  EXPECT_GE(t.n_performance, 1);
  EXPECT_LE(t.n_performance, t.n_allowed);
  EXPECT_EQ(ThreadPool::DefaultThreads(), t.n_performance);
  EXPECT_EQ(t.n_allowed, static_cast<int>(AllowedCpus().size()));
}

}  // namespace
}  // namespace ember
