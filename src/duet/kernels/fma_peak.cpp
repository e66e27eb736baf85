#include "duet/kernels/fma_peak.h"

#include <algorithm>
#include <chrono>
#include <vector>

#include "duet/kernels/isa.h"
#include "duet/tensor/error.h"
#include "duet/tensor/parallel.h"

namespace duet::kernels {

namespace fma_peak_detail {

// The portable probe: 8 chains of scalar multiply-add (the compiler may vectorise them with
// whatever the generic ISA offers, which is what the generic kernels get too).
double run_chains_generic(long iters, float* sink) {
  float x[8] = {1.0f, 1.1f, 1.2f, 1.3f, 1.4f, 1.5f, 1.6f, 1.7f};
  const float m = 0.999999f, a = 1e-6f;
  for (long i = 0; i < iters; ++i)
    for (float& v : x) v = v * m + a;
  float total = 0;
  for (float v : x) total += v;
  *sink += total;
  return double(iters) * 8 * 2;
}

}  // namespace fma_peak_detail

namespace {

double measure_once(int threads) {
  DUET_CHECK(threads >= 1, "measure_fma_peak_gflops: threads must be >= 1, got ", threads);
  using clock = std::chrono::steady_clock;
  auto chains = isa_at_least(Isa::avx512) ? fma_peak_detail::run_chains_avx512
                : isa_at_least(Isa::avx2) ? fma_peak_detail::run_chains_avx2
                                          : fma_peak_detail::run_chains_generic;
  const long chunk = 1 << 16;
  const double seconds = 0.2;

  const int saved = num_threads();
  set_num_threads(threads);
  std::vector<double> flops(size_t(threads), 0.0), elapsed(size_t(threads), 0.0);
  std::vector<float> sinks(size_t(threads) * 16, 0.0f);  // 64 bytes apart: no false sharing
  parallel_for(threads, 1, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      float* sink = &sinks[size_t(t) * 16];
      chains(chunk, sink);  // warm-up: lets the clock ramp and the pipes fill
      const auto start = clock::now();
      double done = 0, secs = 0;
      while (secs < seconds) {
        done += chains(chunk, sink);
        secs = std::chrono::duration<double>(clock::now() - start).count();
      }
      flops[size_t(t)] = done;
      elapsed[size_t(t)] = secs;
    }
  });
  set_num_threads(saved);
  double total = 0, longest = 0;
  for (int t = 0; t < threads; ++t) {
    total += flops[size_t(t)];
    longest = std::max(longest, elapsed[size_t(t)]);
  }
  volatile float keep = 0;
  for (float s : sinks) keep = keep + s;
  return longest > 0 ? total / longest * 1e-9 : 0.0;
}

}  // namespace

double measure_fma_peak_gflops(int threads) {
  // Best of three: a shared machine or a clock still ramping up only ever makes a trial slower,
  // and a peak that is too low would flatter every peak_fraction computed from it.
  double best = 0;
  for (int trial = 0; trial < 3; ++trial) best = std::max(best, measure_once(threads));
  return best;
}

}  // namespace duet::kernels
