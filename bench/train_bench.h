// Training benchmark: duet's real classification step (loader, augmentation, forward, loss,
// backward, optimizer, schedule: train::train_step) timed in alternating rounds against the
// PyTorch twin of the same recipe (bench/peers/torch_train.py) on the same data and threads,
// with both sides' peak memory.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "bench/bench_row.h"

namespace duet::bench {

struct TrainBenchOptions {
  std::string arch = "resnet20";
  std::string data = "fashion-mnist";
  std::string augment = "crop,flip";
  int64_t batch = 128;
  int steps = 30;   // training steps per round, per side
  int rounds = 3;   // alternating rounds; medians are reported
  int warmup = 3;   // steps per side before the rounds (allocator, primitive caches)
  int threads = 1;  // both sides
  int64_t seed = 1;
};

// Rows: "fma peak"; "train ARCH" in img/s (median of the rounds; ratio = duet / PyTorch, > 1:
// duet faster; GFLOP/s counts 3 x forward MACs x 2 flops per image, the forward plus the two
// backward passes); "peak RSS" in MiB (duet's process vs the PyTorch peer's; ratio = PyTorch /
// duet, > 1: duet smaller); "peak tensors" in MiB (duet's allocator high-water mark, counted in
// its size classes, powers of two above 4 KiB, so it can exceed the RSS; no peer).
// Context lines (model, recipe, peer, losses) go to `note`. Without torch the peer is reported
// unavailable and duet is timed alone. $DUET_BENCH_TRACE=1 prints every round on stderr.
std::vector<BenchRow> bench_train(const TrainBenchOptions& options,
                                  const std::function<void(const std::string&)>& note);

}  // namespace duet::bench
