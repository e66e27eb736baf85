// The thread pool behind parallel_for: static partitions (the same chunks whatever thread runs
// them), exceptions reaching the caller, nested and concurrent callers, and many back-to-back
// jobs of varying width (the handshake between caller and sleeping/spinning workers).
#include <gtest/gtest.h>

#include <atomic>
#include <stdexcept>
#include <thread>
#include <vector>

#include "duet/tensor/parallel.h"

using namespace duet;

namespace {

struct ThreadsGuard {
  explicit ThreadsGuard(int n) : saved(num_threads()) { set_num_threads(n); }
  ~ThreadsGuard() { set_num_threads(saved); }
  int saved;
};

// Which chunk (thread_index) wrote each element, and that every element was written once.
std::vector<int> owners(int64_t n, int64_t grain) {
  std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
  std::vector<int> owner(static_cast<size_t>(n), -1);
  parallel_for(n, grain, [&](int64_t b, int64_t e) {
    EXPECT_TRUE(in_parallel_region() || e - b == n);
    for (int64_t i = b; i < e; ++i) {
      hits[static_cast<size_t>(i)].fetch_add(1);
      owner[static_cast<size_t>(i)] = thread_index();
    }
  });
  for (auto& h : hits) EXPECT_EQ(h.load(), 1);
  return owner;
}

}  // namespace

TEST(Parallel, StaticContiguousChunks) {
  ThreadsGuard threads(4);
  const auto o = owners(10, 1);
  // 10 items over 4 chunks: [0, 2), [2, 5), [5, 7), [7, 10).
  EXPECT_EQ(o, (std::vector<int>{0, 0, 1, 1, 1, 2, 2, 3, 3, 3}));
  // The grain caps the chunk count: 10 items with grain 4 -> 2 chunks.
  EXPECT_EQ(owners(10, 4), (std::vector<int>{0, 0, 0, 0, 0, 1, 1, 1, 1, 1}));
  EXPECT_FALSE(in_parallel_region());
  EXPECT_EQ(thread_index(), 0);
}

TEST(Parallel, ManyJobsOfVaryingWidth) {
  ThreadsGuard threads(3);
  int64_t total = 0;
  for (int rep = 0; rep < 3000; ++rep) {
    const int64_t n = 1 + rep % 7;  // 1..7 items: 1, 2 or 3 chunks
    std::atomic<int64_t> sum{0};
    parallel_for(n, 1, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) sum.fetch_add(i + 1);
    });
    ASSERT_EQ(sum.load(), n * (n + 1) / 2) << "job " << rep;
    total += sum.load();
    if (rep % 500 == 0)
      std::this_thread::sleep_for(std::chrono::milliseconds(2));  // let workers sleep
  }
  EXPECT_GT(total, 0);
}

TEST(Parallel, ExceptionsReachTheCaller) {
  ThreadsGuard threads(2);
  EXPECT_THROW(parallel_for(100, 1,
                            [](int64_t b, int64_t) {
                              if (b > 0) throw std::runtime_error("second chunk");
                            }),
               std::runtime_error);
  // The pool still works afterwards.
  EXPECT_EQ(owners(4, 1), (std::vector<int>{0, 0, 1, 1}));
}

TEST(Parallel, NestedCallsRunInline) {
  ThreadsGuard threads(2);
  std::atomic<int> inner_chunks{0};
  parallel_for(2, 1, [&](int64_t, int64_t) {
    parallel_for(8, 1, [&](int64_t b, int64_t e) {
      EXPECT_EQ(b, 0);
      EXPECT_EQ(e, 8);
      inner_chunks.fetch_add(1);
    });
  });
  EXPECT_EQ(inner_chunks.load(), 2);
}

TEST(Parallel, ConcurrentCallersGetTheSamePartition) {
  ThreadsGuard threads(2);
  // Two threads issue jobs at once: one uses the pool, the other runs the same chunks itself.
  auto work = [] {
    for (int rep = 0; rep < 300; ++rep) {
      const auto o = owners(6, 1);
      ASSERT_EQ(o, (std::vector<int>{0, 0, 0, 1, 1, 1}));
    }
  };
  std::thread other(work);
  work();
  other.join();
}
