// `duet bench gen`: duet's generator training step (what `duet train --task generate` runs) and
// guided Euler sampling (what `duet sample` runs) against the PyTorch twin, alternating rounds:
// img/s, images/s, ms per step at the batch and at batch 1, GFLOP/s against the FMA peak, and
// the peak memory of sampling. Registered under `duet bench` by cmd_bench.cpp; the work is in
// bench/gen_bench.
#include <memory>

#include "bench/gen_bench.h"
#include "duet/cli/bench_suite.h"
#include "duet/cli/commands.h"
#include "duet/tensor/parallel.h"

namespace duet::cli {
namespace {

struct GenBenchFlags {
  bench::GenBenchOptions bench;
  bool quick = false;
  bool json = false;
  bool no_winograd = false;
  bool no_blocked = false;
};

void run_bench_gen(GenBenchFlags f, CLI::App* sub) {
  f.bench.threads = num_threads();
  apply_no_winograd(f.no_winograd, f.json);
  apply_no_blocked(f.no_blocked, f.json);
  if (f.quick) {  // a smoke run, unless the sizes were given explicitly
    if (sub->count("--steps") == 0) f.bench.steps = 2;
    if (sub->count("--rounds") == 0) f.bench.rounds = 2;
    f.bench.latency_steps = 5;
  }
  run_bench_suite("gen", f.bench.threads, f.quick, f.json,
                  [&](const BenchNote& note) { return bench::bench_gen(f.bench, note); });
}

}  // namespace

Action add_bench_gen_command(CLI::App& bench) {
  auto f = std::make_shared<GenBenchFlags>();
  auto& b = f->bench;
  CLI::App* sub = bench.add_subcommand(
      "gen", "generator training and guided sampling vs PyTorch, alternating; sampling memory");
  sub->add_option("--arch", b.arch, "a built-in generator architecture")->capture_default_str();
  sub->add_option("--batch", b.batch, "batch size of training and sampling")
      ->capture_default_str()
      ->check(positive_number());
  sub->add_option("--steps", b.steps, "training steps and Euler steps per round, per side")
      ->capture_default_str()
      ->check(positive_number());
  sub->add_option("--rounds", b.rounds, "alternating rounds (medians are reported)")
      ->capture_default_str()
      ->check(positive_number());
  sub->add_option("--cfg", b.cfg, "guidance scale of sampling")->capture_default_str();
  sub->add_option("-s,--seed", b.seed, "seed of the weights and the training draws")
      ->capture_default_str()
      ->check(non_negative_number());
  sub->add_flag("--quick", f->quick, "2 steps x 2 rounds, 5-step batch-1 runs (a smoke run)");
  sub->add_flag("--json", f->json, "one JSON object per row (the common bench format)");
  add_no_winograd_flag(sub, f->no_winograd);
  add_no_blocked_flag(sub, f->no_blocked);
  return [f, sub] {
    if (sub->parsed()) run_bench_gen(*f, sub);
  };
}

}  // namespace duet::cli
