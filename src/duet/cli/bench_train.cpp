// `duet bench train`: duet's training step (what `duet train` runs) against the PyTorch twin of the
// same recipe, alternating rounds on the same data and threads; img/s, their ratio, GFLOP/s
// against the FMA peak, and both sides' peak memory. Registered under `duet bench` by
// cmd_bench.cpp; the work is in bench/train_bench.
#include <cstdio>
#include <memory>

#include "bench/train_bench.h"
#include "duet/cli/bench_suite.h"
#include "duet/cli/commands.h"
#include "duet/ops/blocked.h"
#include "duet/tensor/parallel.h"

namespace duet::cli {
namespace {

struct TrainBenchFlags {
  bench::TrainBenchOptions bench;
  bool quick = false;
  bool json = false;
  bool no_winograd = false;
  bool no_blocked = false;
};

void run_bench_train(TrainBenchFlags f, CLI::App* sub) {
  f.bench.threads = num_threads();
  apply_no_winograd(f.no_winograd, f.json);
  apply_no_blocked(f.no_blocked, f.json);
  if (f.quick) {  // a smoke run, unless the sizes were given explicitly
    if (sub->count("--steps") == 0) f.bench.steps = 8;
    if (sub->count("--rounds") == 0) f.bench.rounds = 3;
    f.bench.warmup = 2;
  }
  run_bench_suite("train", f.bench.threads, f.quick, f.json,
                  [&](const BenchNote& note) { return bench::bench_train(f.bench, note); });
}

}  // namespace

Action add_bench_train_command(CLI::App& bench) {
  auto f = std::make_shared<TrainBenchFlags>();
  auto& b = f->bench;
  CLI::App* sub = bench.add_subcommand(
      "train", "training throughput and peak memory vs PyTorch on the same recipe, alternating");
  sub->add_option("--arch", b.arch, "a built-in architecture")->capture_default_str();
  sub->add_option("--batch", b.batch, "batch size")
      ->capture_default_str()
      ->check(positive_number());
  sub->add_option("--steps", b.steps, "training steps per round, per side")
      ->capture_default_str()
      ->check(positive_number());
  sub->add_option("--rounds", b.rounds, "alternating rounds (medians are reported)")
      ->capture_default_str()
      ->check(positive_number());
  sub->add_option("--augment", b.augment, "comma list of crop, flip, erase")->capture_default_str();
  sub->add_option("-s,--seed", b.seed, "seed of the weights, shuffle and augmentation")
      ->capture_default_str()
      ->check(non_negative_number());
  sub->add_flag("--quick", f->quick, "8 steps x 3 rounds, 2 warm-up steps (a smoke run)");
  sub->add_flag("--json", f->json, "one JSON object per row (the common bench format)");
  add_no_winograd_flag(sub, f->no_winograd);
  add_no_blocked_flag(sub, f->no_blocked);
  return [f, sub] {
    if (sub->parsed()) run_bench_train(*f, sub);
  };
}

}  // namespace duet::cli
