// `duet bench infer`: a model's inference speed at several batch sizes against ONNX Runtime on
// the same exported weights, or (--vs) against another duet model on the same inputs, measured
// alternately; duet runs the folded inference form unless --no-fold. Registered under `duet bench`
// by cmd_bench.cpp; the work is in bench/infer_bench.
#include <cstdio>
#include <memory>

#include "bench/bench_row.h"
#include "bench/infer_bench.h"
#include "duet/cli/commands.h"
#include "duet/tensor/parallel.h"

namespace duet::cli {
namespace {

struct InferOptions {
  bench::InferBenchOptions bench;
  bool json = false;
  bool no_fold = false;
  bool no_blocked = false;
  bool no_winograd = false;
};

void run_infer(InferOptions o) {
  o.bench.threads = num_threads();
  // With --json, stdout carries only the rows; context lines go to stderr.
  std::FILE* notes = o.json ? stderr : stdout;
  const auto rows = bench::bench_infer(o.bench, [&](const std::string& line) {
    std::fprintf(notes, "%s\n", line.c_str());
    std::fflush(notes);
  });
  if (o.json) {
    for (const auto& r : rows) std::printf("%s\n", bench::to_json_line(r).c_str());
  } else {
    bench::print_infer_table(rows);
  }
}

}  // namespace

Action add_bench_infer_command(CLI::App& bench) {
  auto o = std::make_shared<InferOptions>();
  CLI::App* sub = bench.add_subcommand(
      "infer", "inference vs ONNX Runtime on the same weights (or --vs another duet model)");
  sub->add_option("--arch", o->bench.arch, "a built-in architecture, random init (e.g. resnet20)");
  sub->add_option("-m,--model", o->bench.model, "a checkpoint (.safetensors)");
  sub->add_option("--vs", o->bench.vs,
                  "time this other duet model (checkpoint or preset) instead of ONNX Runtime");
  sub->add_option("--batch", o->bench.batches, "batch sizes, comma-separated (default 250,1)")
      ->delimiter(',');
  sub->add_option("-s,--seed", o->bench.seed, "seed of random weights and inputs (default 0)");
  sub->add_flag("--quick", o->bench.quick, "fewer, shorter rounds (a smoke run)");
  sub->add_flag("--no-fold", o->no_fold,
                "time the model as built (conv, BatchNorm, ReLU, add as separate ops) instead of "
                "its folded inference form");
  sub->add_flag("--no-blocked", o->no_blocked,
                "keep folded classifiers' activations channel-major (NCHW) between convs instead "
                "of channel-blocked");
  sub->add_flag("--no-winograd", o->no_winograd,
                "run 3x3 stride-1 float convs with the direct kernel instead of Winograd");
  sub->add_flag("--json", o->json, "one JSON object per row (the common bench format)");
  return [o, sub] {
    if (!sub->parsed()) return;
    InferOptions run = *o;
    if (run.bench.arch.empty() && run.bench.model.empty()) run.bench.arch = "resnet20";
    run.bench.fold = !run.no_fold;
    run.bench.blocked = !run.no_blocked;
    run.bench.winograd = !run.no_winograd;
    run_infer(run);
  };
}

}  // namespace duet::cli
