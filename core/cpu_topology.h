// Which CPUs to run on by default: the performance cores of a big.LITTLE system.
//
// On a phone or an RK3588 board, threads on the little cores (Cortex-A55 beside A76)
// finish their share of each matmul late, and a parallel loop waits for its slowest
// thread: decoding on all 8 cores of an RK3588 is slower than on its 4 big ones. So the
// default thread count is the number of cores faster than the slowest tier, read from
// sysfs: the scheduler's `cpu_capacity` when every CPU has it (arm64 kernels publish it
// from the device tree), else `cpufreq/cpuinfo_max_freq`. When every core is equal, or
// sysfs says nothing (x86 desktops and VMs, sandboxes), all of them.
#pragma once
#include <string>
#include <vector>

namespace ember {

struct CpuTopology {
  int n_allowed = 0;      // CPUs this process may run on (its affinity mask)
  int n_performance = 0;  // of them, the faster tiers (== n_allowed when all are equal)
  std::string source;     // "cpu_capacity", "cpuinfo_max_freq" or "none"
};

// The topology of `cpus` (CPU numbers) as sysfs under `sysfs_cpu_dir` describes it
// (normally /sys/devices/system/cpu; tests pass a fake tree).
CpuTopology ReadCpuTopology(const std::string& sysfs_cpu_dir, const std::vector<int>& cpus);

// The CPUs of this process's affinity mask (as taskset or a container sets it); all
// hardware threads when the mask cannot be read.
std::vector<int> AllowedCpus();

// ReadCpuTopology of AllowedCpus() from /sys (EMBER_SYSFS_CPU names another directory),
// read once.
const CpuTopology& SystemCpuTopology();

}  // namespace ember
