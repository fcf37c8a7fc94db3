#include "core/thread_pool.h"

#include "core/cpu_topology.h"

#include <system_error>

namespace ember {
namespace {

// How long an idle thread spins before it sleeps. A decoded token runs ~200 loops
// separated by a few microseconds of serial work (norms, rope, sampling), so 100 us
// keeps the workers awake within a token and between tokens of a generation loop,
// while a pool that has nothing to do, or whose partner thread was preempted, gives
// its core back long before the scheduler's time slice (~3 ms) would.
constexpr auto kSpin = std::chrono::microseconds(100);

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

// Spins until done() or kSpin has passed; true if done() became true.
template <class Done>
bool spin_until(Done done) {
  const auto deadline = std::chrono::steady_clock::now() + kSpin;
  for (;;) {
    for (int i = 0; i < 64; ++i) {
      if (done()) return true;
      cpu_relax();
    }
    if (std::chrono::steady_clock::now() >= deadline) return done();
  }
}

}  // namespace

ThreadPool::ThreadPool(int n_threads) {
  const int n_workers = n_threads > 1 ? n_threads - 1 : 0;
  workers_.reserve(static_cast<size_t>(n_workers));
  for (int tid = 1; tid <= n_workers; ++tid) {
    try {
      workers_.emplace_back([this, tid] { WorkerMain(tid); });
    } catch (const std::exception&) {  // std::system_error, or std::bad_alloc for the thread's state
      break;  // run with the threads we have (results do not depend on the thread count)
    }
  }
}

ThreadPool::~ThreadPool() {
  stop_.store(true);
  generation_.fetch_add(1);  // a generation no job has: workers see it and leave
  generation_.notify_all();
  for (std::thread& t : workers_) t.join();
}

void ThreadPool::Work(uint32_t gen, int tid) {
  const Job& job = jobs_[gen & 1];
  for (;;) {
    uint64_t cur = cursor_.load(std::memory_order_acquire);
    if (static_cast<uint32_t>(cur >> 32) != gen) return;  // job over; a newer one is out
    const uint32_t i = static_cast<uint32_t>(cur);
    const uint32_t count = job.count.load(std::memory_order_relaxed);
    const Trampoline call = job.call.load(std::memory_order_relaxed);
    void* const fn = job.fn.load(std::memory_order_relaxed);
    if (i >= count) return;
    // Claim i. Success means the cursor still shows job `gen`, so its slot has not
    // been refilled since we read it (the caller refills slot gen&1 only for job
    // gen+2, after every index of gen and gen+1 is done, and we now hold one of gen's).
    if (!cursor_.compare_exchange_weak(cur, cur + 1, std::memory_order_acq_rel, std::memory_order_relaxed))
      continue;
    call(fn, i, tid);
    // seq_cst, paired with the caller's store of caller_sleeping_ before it reads done_.
    if (done_.fetch_add(1) + 1 == count && caller_sleeping_.load()) done_.notify_one();
  }
}

void ThreadPool::Run(size_t count, Trampoline call, void* fn) {
  const uint32_t n = static_cast<uint32_t>(count);  // callers' loops are far below 2^32
  if (solo_jobs_left_ > 0) {  // the straggler guard (header) keeps the workers out
    --solo_jobs_left_;
    for (uint32_t i = 0; i < n; ++i) call(fn, i, 0);
    return;
  }
  const auto t_start = std::chrono::steady_clock::now();
  const uint32_t gen = ++gen_;
  Job& job = jobs_[gen & 1];
  job.call.store(call, std::memory_order_relaxed);
  job.fn.store(fn, std::memory_order_relaxed);
  job.count.store(n, std::memory_order_relaxed);
  done_.store(0, std::memory_order_relaxed);
  cursor_.store(static_cast<uint64_t>(gen) << 32, std::memory_order_release);  // publish
  // seq_cst with the sleepers_ increment in WorkerMain: either we see the sleeper and
  // wake it, or it sees the new generation before it sleeps.
  generation_.store(gen);
  if (sleepers_.load() > 0) generation_.notify_all();

  Work(gen, 0);
  const auto t_own_done = std::chrono::steady_clock::now();

  if (!spin_until([&] { return done_.load(std::memory_order_acquire) == n; })) {
    caller_sleeping_.store(true);
    for (uint32_t d = done_.load(); d != n; d = done_.load()) done_.wait(d);
    caller_sleeping_.store(false);
  }
  // Straggler guard: over each window of kWindowJobs loops, the share of their time
  // the caller spent waiting for an index another thread still held.
  const auto t_end = std::chrono::steady_clock::now();
  window_wait_ += t_end - t_own_done;
  window_total_ += t_end - t_start;
  if (++window_jobs_ == kWindowJobs) {
    if (window_wait_ > kMaxWaitShare * window_total_) solo_jobs_left_ = kSoloJobs;
    window_jobs_ = 0;
    window_wait_ = window_total_ = std::chrono::steady_clock::duration::zero();
  }
}

void ThreadPool::WorkerMain(int tid) {
  uint32_t seen = 0;
  for (;;) {
    if (!spin_until([&] { return generation_.load(std::memory_order_acquire) != seen; })) {
      sleepers_.fetch_add(1);
      while (generation_.load() == seen) generation_.wait(seen);
      sleepers_.fetch_sub(1);
    }
    seen = generation_.load(std::memory_order_acquire);
    if (stop_.load()) return;
    Work(seen, tid);
  }
}

int ThreadPool::DefaultThreads() { return SystemCpuTopology().n_performance; }

}  // namespace ember
