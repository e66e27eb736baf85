// Standalone runner for the conv benchmark (until the `duet bench` CLI covers it):
//   bench_conv [-t THREADS] [--quick]
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>

#include "conv_bench.h"
#include "duet/kernels/fma_peak.h"
#include "duet/kernels/isa.h"

int main(int argc, char** argv) {
  int threads = 2;
  bool quick = false;
  for (int i = 1; i < argc; ++i) {
    if ((!std::strcmp(argv[i], "-t") || !std::strcmp(argv[i], "--threads")) && i + 1 < argc) {
      threads = std::atoi(argv[++i]);
    } else if (!std::strcmp(argv[i], "--quick")) {
      quick = true;
    } else {
      std::fprintf(stderr, "usage: bench_conv [-t THREADS] [--quick]\n");
      return 2;
    }
  }
  if (threads < 1) {
    std::fprintf(stderr, "bench_conv: threads must be >= 1\n");
    return 2;
  }
  try {
    const double peak = duet::kernels::measure_fma_peak_gflops(threads);
    std::printf("isa %s, threads %d, fma peak %.1f GFLOP/s\n",
                std::string(duet::kernels::isa_name(duet::kernels::active_isa())).c_str(), threads,
                peak);
    const auto rows = duet::bench::bench_conv(threads, quick, peak);
    duet::bench::print_table(rows);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_conv: %s\n", e.what());
    return 1;
  }
  return 0;
}
