// How the generative classifier should weight its times (eval/generative_classifier.h), measured:
// for N images of a Fashion-MNIST split, every class's loss at each of T evenly spaced times with
// one fixed noise per time (no pruning), then the accuracy of averaging those losses over a few
// t ranges with a few signal powers (weights a_t^P). Choose on training images, not the test set.
//   bench_gen_times -m GENERATOR [--split train|test] [--start 0] [--images 1500] [--times 32]
//                   [--seed 1000] [-t THREADS]
// docs/gap.md has the run that chose the defaults and its command.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>
#include <tuple>
#include <vector>

#include "duet/data/dataset.h"
#include "duet/eval/generative_classifier.h"
#include "duet/eval/judge.h"
#include "duet/models/checkpoint.h"
#include "duet/models/unified.h"
#include "duet/tensor/parallel.h"

namespace {

struct Args {
  std::string model, split = "train";
  int64_t start = 0, images = 1500;
  int times = 32, threads = 2;
  uint64_t seed = 1000;
};

int usage() {
  std::fprintf(stderr,
               "usage: bench_gen_times -m GENERATOR [--split train|test] [--start N] "
               "[--images N] [--times T] [--seed S] [-t THREADS]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace duet;
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string f = argv[i];
    if (i + 1 >= argc) return usage();
    const char* v = argv[++i];
    if (f == "-m")
      a.model = v;
    else if (f == "--split")
      a.split = v;
    else if (f == "--start")
      a.start = std::atoll(v);
    else if (f == "--images")
      a.images = std::atoll(v);
    else if (f == "--times")
      a.times = std::atoi(v);
    else if (f == "--seed")
      a.seed = std::strtoull(v, nullptr, 10);
    else if (f == "-t")
      a.threads = std::atoi(v);
    else
      return usage();
  }
  if (a.model.empty() || (a.split != "train" && a.split != "test") || a.start < 0 || a.images < 1 ||
      a.times < 2 || a.threads < 1)
    return usage();
  try {
    set_num_threads(a.threads);
    auto loaded = models::load_model(a.model);
    models::UNet* unet = models::generator_network(*loaded.model);
    if (!unet) {
      std::fprintf(stderr, "bench_gen_times: %s is not a generator\n", a.model.c_str());
      return 2;
    }
    const auto objective = gen::parse_objective(loaded.config.value("objective", "flow"));
    const data::Dataset d =
        data::load_fashion_mnist(a.split == "train" ? data::Split::train : data::Split::test);
    if (a.start + a.images > d.size()) {
      std::fprintf(stderr, "bench_gen_times: images [%lld, %lld) beyond the split's %lld\n",
                   static_cast<long long>(a.start), static_cast<long long>(a.start + a.images),
                   static_cast<long long>(d.size()));
      return 2;
    }
    const int64_t n = a.images, k = unet->config().num_classes, T = a.times;
    eval::GenerativeOptions o;
    std::tie(o.lo, o.hi) = eval::value_range(loaded.config);
    o.times = 1;  // one time per call: the midpoint of [t_min, t_max]
    o.prune_margin = INFINITY;
    std::vector<double> loss(size_t(T * n * k));  // [T][N][K]
    std::vector<double> t(static_cast<size_t>(T));
    for (int64_t j = 0; j < T; ++j) {
      t[size_t(j)] = (double(j) + 0.5) / double(T);
      o.t_min = t[size_t(j)] - 0.25 / double(T);
      o.t_max = t[size_t(j)] + 0.25 / double(T);
      o.seed = a.seed + uint64_t(j);
      for (int64_t b0 = 0; b0 < n; b0 += 100) {
        const int64_t b1 = std::min(n, b0 + 100);
        const Tensor x = eval::u8_to_generator_input(d.image(a.start + b0), b1 - b0, d.channels,
                                                     d.height, d.width, o.lo, o.hi);
        const auto r = eval::classify_generative(*unet, objective, x, o);
        std::copy(r.loss.begin(), r.loss.end(), loss.begin() + (j * n + b0) * k);
      }
      std::fprintf(stderr, "\rtime %lld/%lld", static_cast<long long>(j + 1),
                   static_cast<long long>(T));
    }
    std::fprintf(stderr, "\n");
    std::printf("%s, %s images [%lld, %lld), %lld times, noise seeds %llu + j\n", a.model.c_str(),
                a.split.c_str(), static_cast<long long>(a.start),
                static_cast<long long>(a.start + n), static_cast<long long>(T),
                static_cast<unsigned long long>(a.seed));
    std::printf("%-12s %6s %7s %9s\n", "t range", "power", "times", "accuracy");
    const double ranges[][2] = {{0.0, 1.0}, {0.1, 0.9}, {0.2, 0.8}, {0.3, 0.9}, {0.05, 0.95}};
    for (const auto& range : ranges)
      for (const double power : {0.0, 1.0, 2.0}) {
        int used = 0;
        std::vector<double> w(static_cast<size_t>(T), 0.0);
        for (int64_t j = 0; j < T; ++j)
          if (t[size_t(j)] > range[0] && t[size_t(j)] < range[1]) {
            w[size_t(j)] = std::pow(gen::noise_level(objective, t[size_t(j)]).a, power);
            ++used;
          }
        int64_t right = 0;
        for (int64_t i = 0; i < n; ++i) {
          int64_t best = 0;
          double best_loss = INFINITY;
          for (int64_t c = 0; c < k; ++c) {
            double s = 0.0;
            for (int64_t j = 0; j < T; ++j) s += w[size_t(j)] * loss[size_t((j * n + i) * k + c)];
            if (s < best_loss) best_loss = s, best = c;
          }
          right += best == d.label(a.start + i);
        }
        std::printf("[%.2f, %.2f] %6.0f %7d %8.2f%%\n", range[0], range[1], power, used,
                    100.0 * double(right) / double(n));
      }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_gen_times: %s\n", e.what());
    return 1;
  }
  return 0;
}
