// A streaming read-bandwidth probe: the yardstick `ember bench` compares decoding with.
//
// Decoding one token reads every weight once, so on a small device decode speed is
// bounded by how fast the cores can stream memory. The probe reads a buffer much
// larger than the caches (default 512 MiB) with the same number of threads, each
// summing its own contiguous slice with 16-byte vector loads (four accumulators, one
// 64-byte cache line per iteration; the sum is kept so the compiler cannot drop the
// reads), several passes, and reports the median pass. The buffer is filled (touched)
// before timing, so page faults are not measured.
#pragma once
#include <cstddef>
#include <string>

namespace ember::cli {

struct BandwidthResult {
  double bytes_per_s = 0;  // best pass; 0 on failure
  std::string error;       // why the probe failed ("" on success)
};

// Reads `bytes` (rounded down to a multiple of 64 x threads) with `threads` threads,
// `passes` times; in this process (the buffer is freed before returning).
BandwidthResult measure_read_bandwidth(size_t bytes, int threads, int passes);

// The same in a forked child process, so the probe's buffer never counts in this
// process's peak RSS (VmHWM). Call before this process starts any threads. Falls
// back to measure_read_bandwidth when fork is unavailable.
BandwidthResult measure_read_bandwidth_isolated(size_t bytes, int threads, int passes);

}  // namespace ember::cli
