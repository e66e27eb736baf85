// Generation benchmark: duet's real generator training step (train::generate_train_step, what
// `duet train --task generate` runs) and guided Euler sampling (gen::generate, what `duet sample`
// runs) timed in alternating rounds against the PyTorch twin (bench/peers/torch_gen_bench.py) on
// the same threads, with the peak memory of sampling on both sides.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "bench/bench_row.h"

namespace duet::bench {

struct GenBenchOptions {
  std::string arch = "unet-s";
  std::string data = "fashion-mnist";  // duet's training batches; the peer uses random images
  int64_t batch = 64;
  int steps = 5;          // training steps per round and Euler steps per sampling run, per side
  int rounds = 3;         // alternating rounds; medians are reported
  int warmup = 1;         // training steps and sampling steps per side before the rounds
  int latency_steps = 0;  // Euler steps of the batch-1 latency run; 0: max(steps, 10)
  double cfg = 2.0;       // guidance scale of sampling (2 forwards of the batch per step)
  int threads = 1;        // both sides
  int64_t seed = 1;
};

// Rows: "fma peak"; "train ARCH (flow)" in img/s; "sample ARCH euler cfg S" in images/s of a
// 10-step run and in ms per step at the batch, and in ms per step at batch 1 (rates: ratio = duet /
// PyTorch; times: ratio = PyTorch / duet; > 1: duet faster). GFLOP/s from the forward MACs of the
// model (nn::ProfileScope, as `duet info`): training 3 x forward, sampling 2B forwards per step
// (CFG runs the conditional and unconditional halves as one batch). Memory rows: duet's allocator
// peak over one sampling run at the batch (after memory::reset_peak(); weights and optimizer
// state included) against the peer's VmHWM over the same run (reset through clear_refs), then
// both processes' peak RSS. Without torch the peer is reported unavailable and duet is timed
// alone. Context lines go to `note`; $DUET_BENCH_TRACE=1 prints every round on stderr.
std::vector<BenchRow> bench_gen(const GenBenchOptions& options,
                                const std::function<void(const std::string&)>& note);

}  // namespace duet::bench
