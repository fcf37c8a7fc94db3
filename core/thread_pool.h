// ThreadPool: n-1 worker threads plus the calling thread, for the short parallel
// loops of a forward pass (one matmul, one attention layer: 10 us .. 10 ms each,
// ~200 of them per decoded token).
//
// Why not OpenMP: libgomp's idle workers either spin for a long time (the default;
// next to one busy process on two cores a 2-thread run took 145 s instead of 1 s) or,
// with OMP_WAIT_POLICY=passive, sleep at once, so every parallel region pays a futex
// wake and a reschedule (2 decode threads ended slower than 1). Here idle threads
// spin for a bounded time (kSpin, well above the gap between two loops of one token
// and well below a scheduler time slice), then sleep on a futex (C++20 atomic wait).
// So back-to-back loops cost a cache-line handshake, and a pool left idle, or starved
// by another process, gives its cores back within kSpin.
//
// Work is handed out one index at a time from an atomic counter (dynamic schedule:
// a descheduled thread does not hold back the others, except for the index it holds),
// and a loop is over when all its indices are done, whether or not every worker has
// woken up for it. Which thread runs an index
// varies; callers that need bitwise-reproducible results make each index's result
// independent of who computes it (kernels/matmul.cpp, engine/model/context.cpp).
//
// Straggler guard: a thread that is preempted while it holds an index makes the others
// wait until the scheduler runs it again (milliseconds, against loops of ~100 us). When
// the cores are shared with a busy process, that wait can make n threads slower than
// one thread that has a core to itself. So the caller measures, over windows of
// kWindowJobs loops, the share of the time it spent waiting for other threads; above
// kMaxWaitShare (on a quiet machine it is the tail of the last index, a few percent) it
// runs the next kSoloJobs loops alone, then tries the workers again. Which thread runs
// an index never changes a result (see above), so neither does this.
//
// Jobs must not throw. A pool is used by one calling thread at a time; it belongs to its
// owner (an engine Context, a quantization run), never to a thread.
#pragma once
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <thread>
#include <type_traits>
#include <vector>

namespace ember {

class ThreadPool {
 public:
  // A pool running loops on n_threads threads (the caller and n_threads-1 workers).
  // If the system refuses to start a thread, the pool runs with those it has.
  explicit ThreadPool(int n_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int n_threads() const { return static_cast<int>(workers_.size()) + 1; }

  // Calls f(i, tid) for every i in [0, count), spread over the pool's threads;
  // tid in [0, n_threads()) names the thread (0: the caller), e.g. to index
  // per-thread scratch. Returns when every call has returned.
  template <class F>
  void ParallelFor(size_t count, F&& f) {
    if (count == 0) return;
    if (workers_.empty() || count == 1) {
      for (size_t i = 0; i < count; ++i) f(i, 0);
      return;
    }
    using Fn = std::remove_reference_t<F>;
    Run(count, [](void* fn, size_t i, int tid) { (*static_cast<Fn*>(fn))(i, tid); },
        const_cast<void*>(static_cast<const void*>(&f)));
  }

  // Threads to use when the caller does not say: the performance cores among the CPUs
  // this process may run on (its affinity mask; core/cpu_topology.h), at least 1.
  static int DefaultThreads();

 private:
  using Trampoline = void (*)(void* fn, size_t i, int tid);
  // One loop: written by the caller before it publishes the job, read by workers.
  // Atomics because a late worker may read a slot while the caller refills it for a
  // later job; it then fails to claim an index (see Work) and uses nothing it read.
  struct Job {
    std::atomic<Trampoline> call{nullptr};
    std::atomic<void*> fn{nullptr};
    std::atomic<uint32_t> count{0};
  };
  void Run(size_t count, Trampoline call, void* fn);
  void Work(uint32_t gen, int tid);  // claims and runs indices of job `gen` until none are left
  void WorkerMain(int tid);

  // Two job slots, by generation parity: the caller fills slot (g+1)&1 while late
  // workers may still look at slot g&1.
  Job jobs_[2];
  uint32_t gen_ = 0;  // the caller's last job; only the caller touches it
  // (generation << 32) | next index to hand out. Claiming an index is a CAS on the
  // whole word, so a worker still holding an old generation can never claim an index
  // of a newer job. Completion counts finished indices, not worker check-ins: a
  // worker that is asleep or preempted when a job starts does not hold it up.
  alignas(64) std::atomic<uint64_t> cursor_{0};
  alignas(64) std::atomic<uint32_t> done_{0};        // indices of the current job finished
  alignas(64) std::atomic<uint32_t> generation_{0};  // the current job's generation: workers wait on it
  std::atomic<int> sleepers_{0};                     // workers blocked in generation_.wait
  std::atomic<bool> caller_sleeping_{false};         // caller blocked in done_.wait
  std::atomic<bool> stop_{false};
  std::vector<std::thread> workers_;

  // The straggler guard's state (caller only).
  static constexpr int kWindowJobs = 64;
  static constexpr double kMaxWaitShare = 0.3;
  static constexpr int kSoloJobs = 1024;  // ~5 decoded tokens of a 22-layer model
  int window_jobs_ = 0, solo_jobs_left_ = 0;
  std::chrono::steady_clock::duration window_wait_{}, window_total_{};
};

}  // namespace ember
