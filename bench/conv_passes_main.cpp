// The three training passes of single channel-blocked convolution layers, duet alone: forward,
// input gradient and weight gradient, each the best of --reps calls on random data, in ms and in
// direct-convolution GFLOP/s (2 C K R S P Q per image, whatever algorithm ran: Winograd layers
// can pass 100 % of the FMA peak). For kernel work, to see which pass of which layer is slow;
// `duet bench train|gen` measures whole training steps against PyTorch.
//   bench_conv_passes [-t THREADS] [--batch N] [--reps N] [--pass fwd|data|weight|all]
//                     [--bias] [--tiles 0|2|4,...] [LAYER...]
// LAYER is C:K:HW:R:STRIDE (in channels, out channels, input size, kernel size, stride), e.g.
// 16:32:28:3:2; the default list is ResNet-20's and unet-s's layer shapes. --tiles 2,4 runs each
// layer once per Winograd variant (F(2x2, 3x3), F(4x4, 3x3) forced in all three passes), the
// variants taking turns call by call, so that a noisy machine slows both alike; 0 is duet's choice.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

#include "duet/kernels/conv2d.h"
#include "duet/kernels/conv2d_blocked.h"
#include "duet/kernels/conv2d_impl.h"
#include "duet/kernels/fma_peak.h"
#include "duet/kernels/isa.h"
#include "duet/tensor/parallel.h"
#include "duet/tensor/rng.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Layer {
  int64_t c, k, hw, r, stride;
};

struct Args {
  int threads = 2, reps = 20;
  int64_t batch = 128;
  std::string pass = "all";
  bool bias = false;
  // Winograd variants, alternating (0: duet's choice); -1 alone: as set ($DUET_WINOGRAD_TILE).
  std::vector<int64_t> tiles{-1};
  std::vector<Layer> layers;
};

[[noreturn]] void usage(const std::string& why) {
  std::fprintf(stderr,
               "bench_conv_passes: %s\nusage: bench_conv_passes [-t THREADS] [--batch N] "
               "[--reps N] [--pass fwd|data|weight|all] [--bias] [--tiles 0|2|4,...] "
               "[C:K:HW:R:STRIDE...]\n",
               why.c_str());
  std::exit(2);
}

int64_t positive(const char* text, const char* what) {
  char* end = nullptr;
  const long long v = std::strtoll(text, &end, 10);
  if (end == text || *end != '\0' || v < 1 || v > 1 << 20)
    usage(std::string(what) + " must be an integer in [1, 1048576], got '" + text + "'");
  return v;
}

Layer parse_layer(const std::string& text) {
  std::vector<int64_t> v;
  size_t at = 0;
  while (true) {
    const size_t colon = text.find(':', at);
    v.push_back(positive(text.substr(at, colon - at).c_str(), "a layer field"));
    if (colon == std::string::npos) break;
    at = colon + 1;
  }
  if (v.size() != 5) usage("a layer is C:K:HW:R:STRIDE, got '" + text + "'");
  return {v[0], v[1], v[2], v[3], v[4]};
}

std::vector<int64_t> parse_tiles(const std::string& text) {
  std::vector<int64_t> tiles;
  size_t at = 0;
  while (true) {
    const size_t comma = text.find(',', at);
    const std::string item = text.substr(at, comma - at);
    if (item != "0" && item != "2" && item != "4")
      usage("--tiles takes a comma list of 0, 2 and 4, got '" + text + "'");
    tiles.push_back(std::stoll(item));
    if (comma == std::string::npos) break;
    at = comma + 1;
  }
  return tiles;
}

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const bool has_value = i + 1 < argc;
    if ((arg == "-t" || arg == "--threads") && has_value)
      a.threads = int(positive(argv[++i], "--threads"));
    else if (arg == "--batch" && has_value)
      a.batch = positive(argv[++i], "--batch");
    else if (arg == "--reps" && has_value)
      a.reps = int(positive(argv[++i], "--reps"));
    else if (arg == "--pass" && has_value)
      a.pass = argv[++i];
    else if (arg == "--bias")
      a.bias = true;
    else if (arg == "--tiles" && has_value)
      a.tiles = parse_tiles(argv[++i]);
    else if (!arg.empty() && arg[0] != '-')
      a.layers.push_back(parse_layer(arg));
    else
      usage("unknown or incomplete option '" + arg + "'");
  }
  if (a.pass != "fwd" && a.pass != "data" && a.pass != "weight" && a.pass != "all")
    usage("--pass must be fwd, data, weight or all, got '" + a.pass + "'");
  if (a.layers.empty())
    a.layers = {{16, 16, 28, 3, 1}, {32, 32, 14, 3, 1}, {64, 64, 7, 3, 1},  {16, 32, 28, 3, 2},
                {32, 64, 14, 3, 2}, {16, 32, 28, 1, 2}, {32, 64, 14, 1, 2}, {32, 32, 28, 3, 1},
                {64, 64, 14, 3, 1}, {128, 128, 7, 3, 1}};
  return a;
}

std::vector<float> random_values(size_t n, uint64_t seed) {
  duet::Generator gen(seed);
  std::vector<float> v(n);
  gen.uniform(v.data(), int64_t(n), -0.5f, 0.5f);
  return v;
}

// Best wall time of `reps` calls of f under each Winograd variant of `tiles` (-1: the variant
// as set), in seconds: the variants take turns, one call each.
template <class F>
std::vector<double> best_of(int reps, const std::vector<int64_t>& tiles, F&& f) {
  using duet::kernels::detail::set_winograd_tile;
  const int64_t as_set = duet::kernels::detail::forced_winograd_tile();
  std::vector<double> best(tiles.size(), 1e30);
  for (int r = 0; r < reps; ++r)
    for (size_t v = 0; v < tiles.size(); ++v) {
      set_winograd_tile(tiles[v] < 0 ? as_set : tiles[v]);
      const auto t0 = Clock::now();
      f();
      best[v] = std::min(best[v], std::chrono::duration<double>(Clock::now() - t0).count());
    }
  set_winograd_tile(as_set);
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  const Args a = parse(argc, argv);
  try {
    using namespace duet::kernels;
    duet::set_num_threads(a.threads);
    const double peak = measure_fma_peak_gflops(a.threads);
    std::printf("isa %s, threads %d, batch %lld, fma peak %.1f GFLOP/s, best of %d calls\n",
                std::string(isa_name(active_isa())).c_str(), a.threads, (long long)a.batch, peak,
                a.reps);
    std::printf("%-22s %10s %10s %10s   %s\n", "layer C->K HW RxR /S", "fwd ms", "data ms",
                "weight ms", "GFLOP/s (% of peak) fwd, data, weight");
    for (const Layer& l : a.layers) {
      Conv2dShape s;
      s.batch = a.batch, s.in_channels = l.c, s.out_channels = l.k;
      s.in_h = s.in_w = l.hw, s.kernel_h = s.kernel_w = l.r, s.pad_h = s.pad_w = l.r / 2;
      s.stride_h = s.stride_w = l.stride;
      const int64_t pq = s.out_h() * s.out_w(), hw = l.hw * l.hw;
      const size_t nx = size_t(s.batch * channel_blocks(l.c) * hw * kChannelBlock);
      const size_t ny = size_t(s.batch * channel_blocks(l.k) * pq * kChannelBlock);
      const std::vector<float> x = random_values(nx, 1), dy = random_values(ny, 2);
      const std::vector<float> w = random_values(size_t(l.k * l.c * l.r * l.r), 3);
      std::vector<float> y(ny), dx(nx), dw(w.size()), db(size_t(l.k));
      const double gflop = 2e-9 * double(s.batch * l.c * l.k * l.r * l.r * pq);
      const size_t variants = a.tiles.size();
      std::vector<double> none(variants, 0.0);
      std::vector<double> t[3] = {none, none, none};  // per pass, per variant
      if (a.pass == "fwd" || a.pass == "all")
        t[0] = best_of(a.reps, a.tiles,
                       [&] { conv2d_forward_blocked(s, true, x.data(), w.data(), y.data()); });
      if (a.pass == "data" || a.pass == "all")
        t[1] = best_of(a.reps, a.tiles,
                       [&] { conv2d_backward_data_blocked(s, dy.data(), w.data(), dx.data()); });
      if (a.pass == "weight" || a.pass == "all")
        t[2] = best_of(a.reps, a.tiles, [&] {
          conv2d_backward_weight_blocked(s, true, x.data(), dy.data(), dw.data(),
                                         a.bias ? db.data() : nullptr);
        });
      for (size_t v = 0; v < variants; ++v) {
        char name[64];
        std::snprintf(name, sizeof name, "%lld->%lld %lld %lldx%lld /%lld", (long long)l.c,
                      (long long)l.k, (long long)l.hw, (long long)l.r, (long long)l.r,
                      (long long)l.stride);
        std::string label = name;
        if (variants > 1) label += a.tiles[v] == 0 ? " auto" : " F" + std::to_string(a.tiles[v]);
        std::printf("%-22s", label.c_str());
        for (const auto& pass : t)
          if (pass[v] > 0)
            std::printf(" %10.3f", 1e3 * pass[v]);
          else
            std::printf(" %10s", "-");
        std::printf("  ");
        for (const auto& pass : t)
          if (pass[v] > 0)
            std::printf(" %6.0f (%3.0f%%)", gflop / pass[v], 100.0 * gflop / pass[v] / peak);
        std::printf("\n");
      }
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_conv_passes: %s\n", e.what());
    return 1;
  }
  return 0;
}
