#include "bench/gemm_bench.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <random>
#include <string>

#include "bench/peers/openblas_sgemm.h"
#include "bench/quiet_cpu.h"
#include "duet/kernels/fma_peak.h"
#include "duet/kernels/gemm.h"
#include "duet/tensor/error.h"
#include "duet/tensor/parallel.h"

namespace duet::bench {
namespace {

using kernels::Trans;

struct GemmShape {
  std::string name;
  Trans ta, tb;
  int64_t m, n, k;
};

// Convolutions as the GEMMs our conv kernels run (M = out channels, N = batch * H * W,
// K = in channels * 3 * 3), at Fashion-MNIST resolution:
//   ResNet-20 stage 1/2/3 forward, batch 128: 16ch 28x28, 32ch 14x14, 64ch 7x7;
//   UNet middle block forward, batch 32: 128ch at 14x14;
//   ResNet-20 stage 3 weight gradient (dW = dY * cols^T: long K, B transposed).
std::vector<GemmShape> shapes(bool quick) {
  std::vector<GemmShape> s;
  for (int64_t n : {256, 512, 1024, 2048}) {
    if (quick && n == 2048) continue;
    s.push_back({"square " + std::to_string(n), Trans::no, Trans::no, n, n, n});
  }
  s.push_back({"resnet20 s1 conv M16 N100352 K144", Trans::no, Trans::no, 16, 128 * 784, 144});
  s.push_back({"resnet20 s2 conv M32 N25088 K288", Trans::no, Trans::no, 32, 128 * 196, 288});
  s.push_back({"resnet20 s3 conv M64 N6272 K576", Trans::no, Trans::no, 64, 128 * 49, 576});
  s.push_back({"unet mid conv M128 N6272 K1152", Trans::no, Trans::no, 128, 32 * 196, 1152});
  s.push_back({"resnet20 s3 dW M64 N576 K6272 (nt)", Trans::no, Trans::yes, 64, 576, 128 * 49});
  return s;
}

// Seconds per call: one warm-up call, then calls until `budget` seconds and at least 2 calls.
template <class Fn>
double time_per_call(Fn&& fn, double budget) {
  fn();
  int calls = 0;
  const auto t0 = std::chrono::steady_clock::now();
  double elapsed = 0;
  while (calls < 2 || elapsed < budget) {
    fn();
    ++calls;
    elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  return elapsed / calls;
}

std::vector<float> random_matrix(size_t n, uint64_t seed) {
  std::mt19937_64 gen(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = dist(gen);
  return v;
}

}  // namespace

std::vector<BenchRow> bench_gemm(int threads, bool quick) {
  DUET_CHECK(threads >= 1, "bench_gemm: threads must be >= 1, got ", threads);
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const bool have_peer = peers::openblas_available();
  const std::string peer = have_peer ? "openblas" : "openblas (unavailable)";
  const int reps = quick ? 3 : 5;
  const double budget = quick ? 0.03 : 0.08;
  // Both runtimes keep idle workers spinning after a call (OpenBLAS for 2^28 cycles, ~0.13 s
  // at 2 GHz), stealing cores from whoever runs next; each side starts once the process (both
  // runtimes live in it) is quiet.
  const auto settle = [] { bench::settle(0); };

  const double peak = kernels::measure_fma_peak_gflops(threads);
  std::vector<BenchRow> rows;
  rows.push_back(fma_peak_row(peak));

  const int saved_threads = num_threads();
  set_num_threads(threads);
  if (have_peer) peers::openblas_set_threads(threads);

  for (const GemmShape& s : shapes(quick)) {
    const int64_t lda = s.ta == Trans::no ? s.k : s.m;
    const int64_t ldb = s.tb == Trans::no ? s.n : s.k;
    const auto a = random_matrix(size_t(s.m * s.k), 1);
    const auto b = random_matrix(size_t(s.k * s.n), 2);
    std::vector<float> c(size_t(s.m * s.n), 0.0f);
    auto ours = [&] {
      kernels::sgemm(s.ta, s.tb, s.m, s.n, s.k, 1.0f, a.data(), lda, b.data(), ldb, 0.0f, c.data(),
                     s.n);
    };
    auto theirs = [&] {
      peers::openblas_sgemm(s.ta == Trans::yes, s.tb == Trans::yes, s.m, s.n, s.k, 1.0f, a.data(),
                            lda, b.data(), ldb, 0.0f, c.data(), s.n);
    };
    std::vector<double> t_ours, t_theirs;
    for (int r = 0; r < reps; ++r) {
      settle();
      t_ours.push_back(time_per_call(ours, budget));
      if (!have_peer) continue;
      settle();
      t_theirs.push_back(time_per_call(theirs, budget));
    }
    const double flops = 2.0 * double(s.m) * double(s.n) * double(s.k);
    BenchRow row;
    row.name = "sgemm " + s.name;
    row.ours = median(t_ours) * 1e3;
    row.theirs = have_peer ? median(t_theirs) * 1e3 : nan;
    row.unit = "ms";
    row.peer = peer;
    row.ratio = have_peer ? row.theirs / row.ours : nan;
    row.gflops = flops / (row.ours * 1e-3) * 1e-9;
    row.peak_fraction = peak > 0 ? row.gflops / peak : nan;
    rows.push_back(row);
  }
  set_num_threads(saved_threads);
  return rows;
}

}  // namespace duet::bench
