// Threading for the whole engine: one pool of worker threads of our own, sized by
// set_num_threads() (the CLI's -t/--threads), else $DUET_THREADS, else all cores. Work is split
// into static, contiguous chunks so the same thread count always gives the same partition and
// therefore the same results. Idle workers poll for up to 1 ms, yielding the core after the first
// 50 us (parallel.cpp), and then sleep, so a busy machine (other processes on the cores) does not
// stall every parallel region, which is what OpenMP's default spin-waiting did here.
#pragma once

#include <cstdint>
#include <type_traits>

namespace duet {

int num_threads();
void set_num_threads(int n);  // n <= 0 means "all cores"
bool in_parallel_region();    // true inside parallel_for: nested work should run serially
int thread_index();           // the chunk being run by this thread; 0 outside parallel_for

// Calls fn(begin, end) on disjoint chunks covering [0, n), one chunk per thread; chunks are at
// least `grain` long. Runs inline when n is small, when one thread is set, or when nested. An
// exception thrown by fn reaches the caller (the first one, when several chunks throw).
template <class Fn>
void parallel_for(int64_t n, int64_t grain, Fn&& fn);

namespace detail {
int threads_for(int64_t n, int64_t grain);
using ChunkFn = void (*)(void* ctx, int64_t begin, int64_t end);
// Runs chunk t of `chunks` (t = 0 on the calling thread) through the pool; when the pool is
// already running another caller's work, runs the same chunks one after another instead.
void run_chunks(int64_t n, int chunks, ChunkFn fn, void* ctx);
}  // namespace detail

template <class Fn>
void parallel_for(int64_t n, int64_t grain, Fn&& fn) {
  if (n <= 0) return;
  const int nt = detail::threads_for(n, grain);
  if (nt <= 1) {
    fn(int64_t{0}, n);
    return;
  }
  using F = std::remove_reference_t<Fn>;
  detail::run_chunks(
      n, nt, [](void* ctx, int64_t b, int64_t e) { (*static_cast<F*>(ctx))(b, e); },
      const_cast<void*>(static_cast<const void*>(&fn)));
}

}  // namespace duet
