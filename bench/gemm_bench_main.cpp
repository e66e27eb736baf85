// Standalone SGEMM benchmark until the `duet bench` command exists:
//   bench_gemm [-t THREADS] [--quick] [--json]
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "bench/gemm_bench.h"
#include "bench/peers/openblas_sgemm.h"
#include "duet/kernels/isa.h"
#include "duet/tensor/error.h"
#include "duet/tensor/parallel.h"

int main(int argc, char** argv) {
  int threads = duet::num_threads();
  bool quick = false, json = false;
  for (int i = 1; i < argc; ++i) {
    if ((!std::strcmp(argv[i], "-t") || !std::strcmp(argv[i], "--threads")) && i + 1 < argc) {
      threads = std::atoi(argv[++i]);
    } else if (!std::strcmp(argv[i], "--quick")) {
      quick = true;
    } else if (!std::strcmp(argv[i], "--json")) {
      json = true;
    } else {
      std::fprintf(stderr, "usage: bench_gemm [-t THREADS] [--quick] [--json]\n");
      return 2;
    }
  }
  if (threads < 1) {
    std::fprintf(stderr, "bench_gemm: -t must be >= 1\n");
    return 2;
  }
  try {
    std::printf("isa %s, threads %d, peer %s\n",
                std::string(duet::kernels::isa_name(duet::kernels::active_isa())).c_str(), threads,
                duet::bench::peers::openblas_config().c_str());
    const auto rows = duet::bench::bench_gemm(threads, quick);
    duet::bench::print_table(rows);
    if (json)
      for (const auto& r : rows) std::printf("%s\n", duet::bench::to_json_line(r).c_str());
  } catch (const duet::Error& e) {
    std::fprintf(stderr, "bench_gemm: %s\n", e.what());
    return e.exit_code();
  }
  return 0;
}
