#include "bandwidth.h"

#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>

namespace ember::cli {
namespace {

// A generic 16-byte vector (SSE2 on x86-64, NEON on AArch64): the baseline ISA of
// the tool, enough to saturate memory with four independent accumulators.
typedef uint64_t u64x2 __attribute__((vector_size(16)));

// Sum of n64 cache lines starting at p (64-byte aligned).
uint64_t sum_lines(const u64x2* p, size_t n64) {
  u64x2 a = {0, 0}, b = a, c = a, d = a;
  for (size_t i = 0; i < n64; ++i, p += 4) {
    a += p[0];
    b += p[1];
    c += p[2];
    d += p[3];
  }
  const u64x2 s = (a + b) + (c + d);
  return s[0] + s[1];
}

volatile uint64_t g_sink;  // keeps the sums, hence the reads

}  // namespace

BandwidthResult measure_read_bandwidth(size_t bytes, int threads, int passes) {
  BandwidthResult r;
  threads = std::max(1, threads);
  passes = std::max(1, passes);
  const size_t lines_per_thread = bytes / 64 / static_cast<size_t>(threads);
  if (lines_per_thread == 0) {
    r.error = "probe buffer too small";
    return r;
  }
  const size_t total = lines_per_thread * 64 * static_cast<size_t>(threads);
  void* mem = ::mmap(nullptr, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) {
    r.error = std::string("cannot map a ") + std::to_string(total >> 20) + " MiB probe buffer: " +
              std::strerror(errno);
    return r;
  }
  auto* base = static_cast<unsigned char*>(mem);
  const size_t slice = lines_per_thread * 64;
  // Each thread fills (first-touches) the slice it will read.
  std::vector<uint64_t> sums(static_cast<size_t>(threads));
  auto run = [&](auto&& body) {
    std::vector<std::thread> pool;
    pool.reserve(static_cast<size_t>(threads - 1));
    for (int t = 1; t < threads; ++t) pool.emplace_back(body, t);
    body(0);
    for (std::thread& th : pool) th.join();
  };
  run([&](int t) { std::memset(base + slice * static_cast<size_t>(t), 1 + t, slice); });
  std::vector<double> pass_s;
  for (int pass = 0; pass < passes; ++pass) {
    const auto t0 = std::chrono::steady_clock::now();
    run([&](int t) {
      sums[static_cast<size_t>(t)] =
          sum_lines(reinterpret_cast<const u64x2*>(base + slice * static_cast<size_t>(t)), lines_per_thread);
    });
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    uint64_t acc = 0;
    for (uint64_t v : sums) acc += v;
    g_sink = g_sink + acc;
    if (s > 0) pass_s.push_back(s);
  }
  ::munmap(mem, total);
  // The median pass, not the best: on a shared host one pass can catch the memory system
  // idle (a 2-thread best of 82 GB/s against a median of 45 was seen here), while decoding
  // runs for seconds under the usual conditions.
  double median_s = 0;
  if (!pass_s.empty()) {
    std::sort(pass_s.begin(), pass_s.end());
    const size_t m = pass_s.size();
    median_s = m % 2 ? pass_s[m / 2] : 0.5 * (pass_s[m / 2 - 1] + pass_s[m / 2]);
  }
  r.bytes_per_s = median_s > 0 ? static_cast<double>(total) / median_s : 0;
  if (r.bytes_per_s == 0) r.error = "probe timing failed";
  return r;
}

BandwidthResult measure_read_bandwidth_isolated(size_t bytes, int threads, int passes) {
  int fds[2];
  if (::pipe(fds) != 0) return measure_read_bandwidth(bytes, threads, passes);
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(fds[0]);
    ::close(fds[1]);
    return measure_read_bandwidth(bytes, threads, passes);
  }
  if (pid == 0) {
    ::close(fds[0]);
    BandwidthResult r = measure_read_bandwidth(bytes, threads, passes);
    // Message: 8 bytes of double, then the error text.
    std::string msg(sizeof(double), '\0');
    std::memcpy(msg.data(), &r.bytes_per_s, sizeof(double));
    msg += r.error;
    size_t off = 0;
    while (off < msg.size()) {
      const ssize_t w = ::write(fds[1], msg.data() + off, msg.size() - off);
      if (w <= 0) break;
      off += static_cast<size_t>(w);
    }
    ::_exit(0);  // no atexit handlers or destructors of the parent's objects
  }
  ::close(fds[1]);
  std::string msg;
  char buf[512];
  for (;;) {
    const ssize_t n = ::read(fds[0], buf, sizeof buf);
    if (n > 0) {
      msg.append(buf, static_cast<size_t>(n));
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      break;
    }
  }
  ::close(fds[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  BandwidthResult r;
  if (msg.size() < sizeof(double)) {
    r.error = "the bandwidth probe process failed";
    if (WIFSIGNALED(status)) r.error += std::string(" (") + ::strsignal(WTERMSIG(status)) + ")";
    return r;
  }
  std::memcpy(&r.bytes_per_s, msg.data(), sizeof(double));
  r.error = msg.substr(sizeof(double));
  return r;
}

}  // namespace ember::cli
