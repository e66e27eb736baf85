// Threading for the whole engine: OpenMP underneath, sized by set_num_threads() (the CLI's
// -t/--threads), else $DUET_THREADS, else all cores. Work is split into static, contiguous chunks
// so the same thread count always gives the same partition and therefore the same results.
#pragma once

#include <cstdint>

namespace duet {

int num_threads();
void set_num_threads(int n);  // n <= 0 means "all cores"
bool in_parallel_region();    // true inside parallel_for: nested work should run serially
int thread_index();           // 0 outside a parallel region

// Calls fn(begin, end) on disjoint chunks covering [0, n), one chunk per thread; chunks are at
// least `grain` long. Runs inline when n is small, when one thread is set, or when nested.
template <class Fn>
void parallel_for(int64_t n, int64_t grain, Fn&& fn);

namespace detail {
int omp_threads_for(int64_t n, int64_t grain);
}

template <class Fn>
void parallel_for(int64_t n, int64_t grain, Fn&& fn) {
  if (n <= 0) return;
  const int nt = detail::omp_threads_for(n, grain);
  if (nt <= 1) {
    fn(int64_t{0}, n);
    return;
  }
#pragma omp parallel num_threads(nt)
  {
    const int64_t t = thread_index();
    const int64_t begin = n * t / nt;
    const int64_t end = n * (t + 1) / nt;
    if (begin < end) fn(begin, end);
  }
}

}  // namespace duet
