#include "duet/tensor/parallel.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define DUET_CPU_RELAX() _mm_pause()
#else
#define DUET_CPU_RELAX() std::this_thread::yield()
#endif

namespace duet {
namespace {

int default_threads() {
  if (const char* env = std::getenv("DUET_THREADS")) {
    const int n = std::atoi(env);
    if (n > 0) return n;
  }
  const unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 1 : static_cast<int>(hw);
}

int& threads_setting() {
  static int n = default_threads();
  return n;
}

thread_local int tl_index = 0;
thread_local bool tl_in_region = false;

// How a waiting thread polls before it sleeps: first with pause for kSpin, long enough to
// catch the next region of a layer-by-layer forward pass; then, up to kYieldSpin, yielding the
// core between polls, so the next region of a training step still finds it awake (waking a
// sleeper costs tens of microseconds, more in a VM) while another process that wants the core
// gets it. On a 2-vCPU Xeon VM (docs/benchmarks.md, 2026-12-02): ResNet-20 training 1065-1144
// against 1012-1139 img/s with the 50 us pause alone, and `ctest -j 2` (two processes, 4 threads
// on 2 cores) 104 s against 115 s; a 300 us pause alone trained about 8 % faster but took that
// ctest to 146 s.
constexpr auto kSpin = std::chrono::microseconds(50);
constexpr auto kYieldSpin = std::chrono::microseconds(1000);

// Polls `done` for up to kYieldSpin; true when it became true.
template <class Pred>
bool spin_until(Pred done) {
  const auto start = std::chrono::steady_clock::now();
  const auto until = start + kSpin, yield_until = start + kYieldSpin;
  for (int i = 0;; ++i) {
    if (done()) return true;
    DUET_CPU_RELAX();
    if ((i & 63) == 63 && std::chrono::steady_clock::now() > until) break;
  }
  for (;;) {
    if (done()) return true;
    std::this_thread::yield();
    if (std::chrono::steady_clock::now() > yield_until) return done();
  }
}

// Workers 1..size-1 (the caller is chunk 0). One job at a time: `generation` counts jobs (high
// bits) and holds the job's chunk count (low 16 bits); worker i runs chunk i of a job when i is
// below that count.
// All handshakes use sequentially consistent atomics plus a mutex only for sleeping, so a wake-up
// is never lost: a sleeper registers (sleepers++) before it re-checks the generation, and the
// publisher bumps the generation before it looks at the sleepers.
class Pool {
 public:
  ~Pool() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_.store(true);
      generation_.fetch_add(uint64_t{1} << 16);
    }
    work_cv_.notify_all();
    for (auto& t : workers_) t.join();
  }

  // False when another thread's job is running (the caller then runs its chunks itself).
  bool try_run(int64_t n, int chunks, detail::ChunkFn fn, void* ctx) {
    std::unique_lock<std::mutex> busy(busy_, std::try_to_lock);
    if (!busy.owns_lock()) return false;
    grow(chunks - 1);
    n_ = n, chunks_ = chunks, fn_ = fn, ctx_ = ctx;
    error_ = nullptr;
    remaining_.store(chunks - 1);
    generation_.store(((generation_.load() >> 16) + 1) << 16 | static_cast<uint64_t>(chunks));
    if (sleepers_.load() > 0) {
      std::lock_guard<std::mutex> lock(mu_);
      work_cv_.notify_all();
    }
    run_chunk(0);
    if (!spin_until([&] { return remaining_.load() == 0; })) {
      std::unique_lock<std::mutex> lock(mu_);
      caller_sleeping_.store(true);
      done_cv_.wait(lock, [&] { return remaining_.load() == 0; });
      caller_sleeping_.store(false);
    }
    if (error_) std::rethrow_exception(error_);
    return true;
  }

 private:
  void grow(int workers) {
    while (static_cast<int>(workers_.size()) < workers) {
      const int index = static_cast<int>(workers_.size()) + 1;
      workers_.emplace_back(
          [this, index, seen = generation_.load()]() mutable { worker_loop(index, seen); });
    }
  }

  void run_chunk(int t) {
    tl_index = t;
    tl_in_region = true;
    try {
      fn_(ctx_, n_ * t / chunks_, n_ * (t + 1) / chunks_);
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mu_);
      if (!error_) error_ = std::current_exception();
    }
    tl_in_region = false;
    tl_index = 0;
  }

  void worker_loop(int index, uint64_t seen) {
    for (;;) {
      uint64_t g = seen;
      const auto changed = [&] { return (g = generation_.load()) != seen; };
      if (!spin_until(changed)) {
        std::unique_lock<std::mutex> lock(mu_);
        sleepers_.fetch_add(1);
        work_cv_.wait(lock, changed);
        sleepers_.fetch_sub(1);
      }
      seen = g;
      if (stop_.load()) return;
      // The chunk count travels in the generation word itself: a worker the job does not need
      // never reads the job's other fields, which the next job may already be rewriting.
      if (index >= static_cast<int>(g & kChunkMask)) continue;
      run_chunk(index);
      if (remaining_.fetch_sub(1) == 1 && caller_sleeping_.load()) {
        std::lock_guard<std::mutex> lock(mu_);
        done_cv_.notify_one();
      }
    }
  }

  static constexpr uint64_t kChunkMask = 0xffff;  // threads per job < 65536

  std::mutex busy_;  // held by the caller for the whole job
  std::vector<std::thread> workers_;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> remaining_{0}, sleepers_{0};
  std::atomic<bool> caller_sleeping_{false};
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::condition_variable work_cv_, done_cv_;
  // The current job (written by the caller before the generation bump that publishes it).
  int64_t n_ = 0;
  int chunks_ = 0;
  detail::ChunkFn fn_ = nullptr;
  void* ctx_ = nullptr;
  std::mutex error_mu_;
  std::exception_ptr error_;
};

Pool& pool() {
  static Pool p;
  return p;
}

}  // namespace

int num_threads() {
  return threads_setting();
}

void set_num_threads(int n) {
  threads_setting() = n > 0 ? n : default_threads();
}

bool in_parallel_region() {
  return tl_in_region;
}

int thread_index() {
  return tl_index;
}

namespace detail {

int threads_for(int64_t n, int64_t grain) {
  if (in_parallel_region()) return 1;
  const int64_t by_grain = std::max<int64_t>(1, n / std::max<int64_t>(1, grain));
  return static_cast<int>(std::min<int64_t>(num_threads(), by_grain));
}

void run_chunks(int64_t n, int chunks, ChunkFn fn, void* ctx) {
  if (pool().try_run(n, chunks, fn, ctx)) return;
  // Same partition, one chunk after another: results do not depend on who ran them.
  for (int t = 0; t < chunks; ++t) {
    tl_index = t;
    tl_in_region = true;
    try {
      fn(ctx, n * t / chunks, n * (t + 1) / chunks);
    } catch (...) {
      tl_in_region = false;
      tl_index = 0;
      throw;
    }
  }
  tl_in_region = false;
  tl_index = 0;
}

}  // namespace detail

}  // namespace duet
