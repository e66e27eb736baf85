#include "duet/tensor/parallel.h"

#include <omp.h>

#include <algorithm>
#include <cstdlib>
#include <string>
#include <thread>

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

}  // namespace

int num_threads() {
  return threads_setting();
}

void set_num_threads(int n) {
  threads_setting() = n > 0 ? n : default_threads();
}

bool in_parallel_region() {
  return omp_in_parallel() != 0;
}

int thread_index() {
  return omp_get_thread_num();
}

namespace detail {
int omp_threads_for(int64_t n, int64_t grain) {
  if (in_parallel_region()) return 1;
  const int64_t by_grain = std::max<int64_t>(1, n / std::max<int64_t>(1, grain));
  return static_cast<int>(std::min<int64_t>(num_threads(), by_grain));
}
}  // namespace detail

}  // namespace duet
