#include "conv_bench.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "bench/peer_process.h"
#include "duet/kernels/conv2d.h"
#include "duet/kernels/conv2d_blocked.h"
#include "duet/kernels/fma_peak.h"
#include "duet/tensor/error.h"
#include "duet/tensor/parallel.h"

namespace duet::bench {
namespace {

using kernels::Conv2dShape;

// The PyTorch side: one python process for the whole benchmark, driven line by line so its
// measurements interleave with ours instead of running minutes apart on a shared machine.
class TorchPeer {
 public:
  explicit TorchPeer(int threads) {
    const std::string script = find_source_file("bench/peers/torch_conv.py");
    if (script.empty() || access("/usr/bin/python3", X_OK) != 0) return;
    const std::string t = std::to_string(threads);
    process_ = std::make_unique<PeerProcess>(
        std::vector<std::string>{"/usr/bin/python3", script, t},
        std::vector<std::pair<std::string, std::string>>{{"OMP_NUM_THREADS", t}});
  }

  bool ok() const { return process_ && process_->ok(); }

  // Seconds per call of `pass` averaged over `iters` calls, or a negative value on failure.
  double time(const char* pass, const Conv2dShape& s, int iters) {
    if (!ok()) return -1;
    char request[256];
    std::snprintf(request, sizeof request, "time %s %ld %ld %ld %ld %ld %ld %ld %ld %ld %d", pass,
                  long(s.batch), long(s.in_channels), long(s.out_channels), long(s.in_h),
                  long(s.in_w), long(s.kernel_h), long(s.kernel_w), long(s.stride_h), long(s.pad_h),
                  iters);
    const auto answer = process_->request(request);
    if (!answer) return -1;
    if (std::getenv("DUET_BENCH_TRACE"))
      std::fprintf(stderr, "peer %s %ld/%ld/%ld x%d -> %s\n", pass, long(s.in_channels),
                   long(s.out_channels), long(s.in_h), iters, answer->c_str());
    return std::atof(answer->c_str());
  }

 private:
  std::unique_ptr<PeerProcess> process_;
};

struct ConvCase {
  const char* label;
  int64_t in_c, out_c, hw, stride, batch;
};

std::vector<float> filled(size_t n, uint64_t seed) {
  std::mt19937_64 gen(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(gen);
  return v;
}

template <class Fn>
double seconds_per_call(Fn&& fn, int iters) {
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < iters; ++i) fn();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / iters;
}

}  // namespace

std::vector<BenchRow> bench_conv(int threads, bool quick, double peak_gflops) {
  DUET_CHECK(threads >= 1, "bench_conv: threads must be >= 1, got ", threads);
  const int saved_threads = num_threads();
  set_num_threads(threads);
  if (peak_gflops <= 0) peak_gflops = kernels::measure_fma_peak_gflops(threads);
  // ResNet-20's convolutions at its training batch, then unet-s's main 3x3 shapes at its batch
  // (the level convs and the widest skip-concatenation conv of the way up).
  const ConvCase cases[] = {
      {"16->16 3x3 28x28", 16, 16, 28, 1, 128},      {"16->32 3x3 s2 28x28", 16, 32, 28, 2, 128},
      {"32->32 3x3 14x14", 32, 32, 14, 1, 128},      {"32->64 3x3 s2 14x14", 32, 64, 14, 2, 128},
      {"64->64 3x3 7x7", 64, 64, 7, 1, 128},         {"unet 32->32 3x3 28x28", 32, 32, 28, 1, 64},
      {"unet 64->64 3x3 14x14", 64, 64, 14, 1, 64},  {"unet 128->128 3x3 7x7", 128, 128, 7, 1, 64},
      {"unet 256->128 3x3 7x7", 256, 128, 7, 1, 64},
  };
  const char* passes[] = {"fwd", "bwd_data", "bwd_weight"};
  const int rounds = quick ? 3 : 7;
  const double target_s = quick ? 0.05 : 0.15;  // per measurement, per side

  TorchPeer peer(threads);
  std::vector<BenchRow> rows;
  for (const ConvCase& cc : cases) {
    const int64_t batch = cc.batch;
    Conv2dShape s;
    s.batch = batch;
    s.in_channels = cc.in_c;
    s.out_channels = cc.out_c;
    s.in_h = s.in_w = cc.hw;
    s.kernel_h = s.kernel_w = 3;
    s.stride_h = s.stride_w = cc.stride;
    s.pad_h = s.pad_w = 1;
    const size_t nx = size_t(batch * cc.in_c * cc.hw * cc.hw);
    const size_t ny = size_t(batch * cc.out_c * s.out_h() * s.out_w());
    const size_t nw = size_t(cc.out_c * cc.in_c * 9);
    const auto x = filled(nx, 1), w = filled(nw, 2), dy = filled(ny, 3);
    std::vector<float> y(ny), dx(nx), dw(nw), db(size_t(cc.out_c));
    for (const char* pass : passes) {
      const std::string p = pass;
      auto run = [&] {
        if (p == "fwd")
          kernels::conv2d_forward(s, x.data(), w.data(), y.data());
        else if (p == "bwd_data")
          kernels::conv2d_backward_data(s, dy.data(), w.data(), dx.data());
        else
          kernels::conv2d_backward_weight(s, x.data(), dy.data(), dw.data(), db.data());
      };
      // Passes that run Winograd are also timed with it off, in the same rounds, so
      // the table shows what it buys.
      const kernels::ConvPass cp = p == "fwd"        ? kernels::ConvPass::forward
                                   : p == "bwd_data" ? kernels::ConvPass::input_gradient
                                                     : kernels::ConvPass::weight_gradient;
      const bool ab = kernels::conv2d_takes_winograd(s, cp);
      const double warm = seconds_per_call(run, 1);
      const int iters = std::max(1, int(target_s / std::max(warm, 1e-6)));
      std::vector<double> ours, direct, theirs;
      for (int r = 0; r < rounds; ++r) {
        ours.push_back(seconds_per_call(run, iters));
        if (ab) {
          kernels::set_winograd(false);
          direct.push_back(seconds_per_call(run, iters));
          kernels::set_winograd(true);
        }
        const double t = peer.time(pass, s, iters);
        if (t > 0) theirs.push_back(t);
      }
      const bool peer_ok = theirs.size() == size_t(rounds);
      auto add_row = [&](const std::string& name, const std::vector<double>& times) {
        BenchRow row;
        row.name = name;
        row.batch = batch;
        row.unit = "ms";
        const double ours_s = median(times);
        row.ours = ours_s * 1e3;
        row.peer = peer_ok ? "pytorch-1.13" : "pytorch-1.13 (unavailable)";
        row.theirs = peer_ok ? median(theirs) * 1e3 : NAN;
        row.ratio = peer_ok ? row.theirs / row.ours : NAN;
        row.gflops = s.flops() / ours_s * 1e-9;  // direct-convolution flops, whatever the algorithm
        row.peak_fraction = peak_gflops > 0 ? row.gflops / peak_gflops : 0.0;
        if (std::getenv("DUET_BENCH_TRACE") && peer_ok) {
          // Best-of-rounds on both sides: on a loaded machine the medians mix in scheduler stalls.
          const double best_ours = *std::min_element(times.begin(), times.end());
          const double best_theirs = *std::min_element(theirs.begin(), theirs.end());
          std::fprintf(stderr, "best %s: ours %.2f ms theirs %.2f ms ratio %.2f\n",
                       row.name.c_str(), best_ours * 1e3, best_theirs * 1e3,
                       best_theirs / best_ours);
        }
        rows.push_back(row);
      };
      const std::string name = std::string("conv ") + pass + " " + cc.label;
      add_row(name, ours);
      if (ab) add_row(name + " direct", direct);
    }
  }
  set_num_threads(saved_threads);
  return rows;
}

std::vector<BenchRow> bench_conv(int threads, bool quick) {
  return bench_conv(threads, quick, 0);
}

}  // namespace duet::bench
