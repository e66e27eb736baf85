// `duet bench kernels`: placeholder wiring replaced when the benchmark library lands.
#include "duet/cli/commands.h"
#include "duet/tensor/error.h"

namespace duet::cli {

Action add_bench_command(CLI::App& app) {
  CLI::App* sub = app.add_subcommand("bench", "speed benchmarks against peers");
  sub->require_subcommand(1);
  sub->add_subcommand("kernels", "sgemm and conv2d against OpenBLAS and PyTorch");
  return [] { fail("bench: not built yet"); };
}

}  // namespace duet::cli
