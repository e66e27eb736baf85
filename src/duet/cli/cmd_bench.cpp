// `duet bench kernels`: the FMA peak of this machine, sgemm against OpenBLAS and conv2d (forward
// and both backward passes) against PyTorch, measured alternately in one run. A table for
// people; with --json one object per line (the format every `duet bench` suite shares).
#include <cstdio>
#include <memory>

#include "bench/bench_row.h"
#include "bench/conv_bench.h"
#include "bench/gemm_bench.h"
#include "duet/cli/commands.h"
#include "duet/kernels/isa.h"
#include "duet/tensor/parallel.h"

namespace duet::cli {
namespace {

struct BenchOptions {
  bool quick = false;
  bool json = false;
};

void run_kernels(const BenchOptions& o) {
  const int threads = num_threads();
  if (!o.json)
    std::printf("duet bench kernels: isa %s, %d threads%s\n",
                std::string(kernels::isa_name(kernels::active_isa())).c_str(), threads,
                o.quick ? " (quick)" : "");
  auto rows = bench::bench_gemm(threads, o.quick);
  const double peak = rows.empty() ? 0.0 : rows.front().gflops;  // first row: the FMA probe
  auto conv = bench::bench_conv(threads, o.quick, peak);
  rows.insert(rows.end(), conv.begin(), conv.end());
  if (o.json) {
    for (const auto& r : rows) std::printf("%s\n", bench::to_json_line(r).c_str());
  } else {
    bench::print_table(rows);
  }
}

}  // namespace

Action add_bench_command(CLI::App& app) {
  auto o = std::make_shared<BenchOptions>();
  CLI::App* sub = app.add_subcommand("bench", "speed benchmarks against peers, side by side");
  sub->require_subcommand(1);
  CLI::App* k = sub->add_subcommand("kernels", "sgemm vs OpenBLAS, conv2d vs PyTorch, FMA peak");
  k->add_flag("--quick", o->quick, "fewer repetitions and sizes (a smoke run)");
  k->add_flag("--json", o->json, "one JSON object per line instead of the table");
  Action infer = add_bench_infer_command(*sub);  // src/duet/cli/bench_infer.cpp
  Action train = add_bench_train_command(*sub);  // src/duet/cli/bench_train.cpp
  Action gen = add_bench_gen_command(*sub);      // src/duet/cli/bench_gen.cpp
  return [o, k, infer, train, gen] {
    if (k->parsed()) run_kernels(*o);
    infer();
    train();
    gen();
  };
}

}  // namespace duet::cli
