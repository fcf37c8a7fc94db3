// ThreadPool: every index runs exactly once per loop, on a valid thread id, for
// back-to-back loops (workers spinning), loops after the workers went to sleep,
// loops with fewer indices than threads, and pools re-created per thread.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <numeric>
#include <thread>
#include <vector>

#include "core/thread_pool.h"

namespace ember {
namespace {

// Runs one loop of `count` indices and checks each ran once on a thread in range.
void expect_each_index_once(ThreadPool& pool, size_t count) {
  std::vector<std::atomic<int>> hits(count);
  std::atomic<int> bad_tid{0};
  pool.ParallelFor(count, [&](size_t i, int tid) {
    hits[i].fetch_add(1, std::memory_order_relaxed);
    if (tid < 0 || tid >= pool.n_threads()) bad_tid.fetch_add(1);
  });
  for (size_t i = 0; i < count; ++i) ASSERT_EQ(hits[i].load(), 1) << "index " << i << " of " << count;
  EXPECT_EQ(bad_tid.load(), 0);
}

TEST(ThreadPool, EveryIndexOnceForManyBackToBackLoops) {
  for (int threads : {1, 2, 3, 4}) {
    ThreadPool pool(threads);
    EXPECT_EQ(pool.n_threads(), threads);
    // 0, 1, fewer than the threads, and many; 2000 loops in a row exercise the
    // hand-off while workers still spin (a decoded token runs ~200).
    for (size_t count : {0, 1, 2, 3, 7, 64, 1000}) expect_each_index_once(pool, count);
    for (int loop = 0; loop < 2000; ++loop) expect_each_index_once(pool, 1 + loop % 17);
  }
}

TEST(ThreadPool, LoopsAfterWorkersWentToSleep) {
  ThreadPool pool(3);
  for (int loop = 0; loop < 5; ++loop) {
    // Far longer than the bounded spin (100 us): the workers are asleep on the futex.
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    expect_each_index_once(pool, 100);
  }
}

TEST(ThreadPool, SlowIndicesAreSharedOutAndResultsAreComplete) {
  // Each index writes its own slot, so the sum is exact whoever ran what; a thread
  // that is slow on its index must not stop the others from taking the rest.
  ThreadPool pool(2);
  std::vector<uint64_t> out(256, 0);
  pool.ParallelFor(out.size(), [&](size_t i, int) {
    if (i == 0) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    out[i] = i * i;
  });
  uint64_t expect = 0;
  for (uint64_t i = 0; i < out.size(); ++i) expect += i * i;
  EXPECT_EQ(std::accumulate(out.begin(), out.end(), uint64_t{0}), expect);
}

TEST(ThreadPool, UsesMoreThanOneThreadWhenWorkIsLong) {
  // With indices that take a while, a worker must have taken some of them: a
  // pool that silently ran everything on the caller would pass the tests above.
  ThreadPool pool(2);
  std::vector<std::atomic<int>> by_tid(2);
  pool.ParallelFor(40, [&](size_t, int tid) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    by_tid[tid].fetch_add(1);
  });
  EXPECT_EQ(by_tid[0].load() + by_tid[1].load(), 40);
  EXPECT_GT(by_tid[1].load(), 0) << "the worker thread never ran an index";
}

// The straggler guard: when the caller keeps waiting for a thread that holds an index
// (here: an index takes 3 ms on a worker, 0.1 ms on the caller), the pool
// runs the next loops on the caller alone, all indices still done; later it tries the
// workers again.
TEST(ThreadPool, StragglersMakeThePoolRunOnTheCallerForAWhile) {
  ThreadPool pool(2);
  auto loop = [&](int* by_worker) {
    std::vector<std::atomic<int>> hits(8);
    std::atomic<int> worker{0};
    pool.ParallelFor(hits.size(), [&](size_t i, int tid) {
      if (tid != 0) worker.fetch_add(1);
      std::this_thread::sleep_for(std::chrono::microseconds(tid != 0 ? 3000 : 100));
      hits[i].fetch_add(1);
    });
    for (auto& h : hits) ASSERT_EQ(h.load(), 1);
    *by_worker = worker.load();
  };
  // A window of loops in which the worker took part: the caller waited most of the time.
  int used = 0, by_worker = 0;
  for (int j = 0; j < 64; ++j) {
    loop(&by_worker);
    used += by_worker;
  }
  ASSERT_GT(used, 0) << "the worker never took an index: nothing to guard against";
  // The next loops run on the caller alone.
  for (int j = 0; j < 100; ++j) {
    loop(&by_worker);
    ASSERT_EQ(by_worker, 0) << "loop " << j;
  }
  // After the solo stretch (1024 loops in all) the workers are asked again.
  int later = 0;
  for (int j = 100; j < 1024 + 64 && later == 0; ++j) {
    loop(&by_worker);
    later += by_worker;
  }
  EXPECT_GT(later, 0);
}

TEST(ThreadPool, PoolsAreIndependentObjects) {
  // Pools belong to their owner (a context): two of different sizes on one thread, and
  // another on a second thread, each run every index once.
  ThreadPool a(2), b(3);
  EXPECT_EQ(a.n_threads(), 2);
  EXPECT_EQ(b.n_threads(), 3);
  for (int round = 0; round < 3; ++round) {
    expect_each_index_once(a, 50);
    expect_each_index_once(b, 50);
  }
  std::thread t([] {
    ThreadPool other(3);
    expect_each_index_once(other, 50);
  });
  t.join();
  EXPECT_GE(ThreadPool::DefaultThreads(), 1);
}

}  // namespace
}  // namespace ember
