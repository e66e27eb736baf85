// Convolution benchmark: forward, backward-data and backward-weight at the ResNet-20 shapes
// (batch 128) and unet-s's main 3x3 shapes (batch 64), timed in alternation with a long-lived
// PyTorch peer (bench/peers/torch_conv.py) at the same thread count, reported as medians and a
// throughput ratio (above 1 = duet faster). Where Winograd runs, a "direct" row times the
// direct kernel in the same rounds.
#pragma once

#include <vector>

#include "bench/bench_row.h"

namespace duet::bench {

// peak_gflops is the machine's FMA peak at `threads` (fma_peak.h); <= 0 measures it here.
// quick: fewer rounds, for smoke runs. Times are ms per call; ratio = theirs / ours.
// When /usr/bin/python3 with torch cannot be started, rows say "(unavailable)" and carry NaN.
// $DUET_BENCH_TRACE=1 prints every peer answer and best-of-rounds ratios on stderr.
std::vector<BenchRow> bench_conv(int threads, bool quick, double peak_gflops);
std::vector<BenchRow> bench_conv(int threads, bool quick);

}  // namespace duet::bench
