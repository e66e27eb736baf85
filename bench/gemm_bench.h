// SGEMM benchmark: duet::kernels::sgemm against OpenBLAS's cblas_sgemm at the same thread
// count, alternating runs, on square sizes and on the convolution-as-GEMM shapes of the
// ResNet-20 / UNet models. The `duet bench` command and the standalone bench_gemm call it.
#pragma once

#include <vector>

#include "bench/bench_row.h"

namespace duet::bench {

// quick: fewer repetitions and no 2048^3. The first row is the measured FMA peak.
std::vector<BenchRow> bench_gemm(int threads, bool quick);

}  // namespace duet::bench
