// Inference benchmark: a duet model's eval-mode forward at several batch sizes, timed in
// alternation with ONNX Runtime running the same weights (a float model exported through the
// PyTorch twin, bench/peers/export_onnx.py; an int8 checkpoint as a QDQ graph with duet's own
// scales, bench/peers/export_onnx_int8.py, so ORT runs its int8 kernels; both served by
// bench/peers/ort_infer.js), or with a second duet model on the same inputs.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "bench/bench_row.h"

namespace duet::bench {

struct InferBenchOptions {
  std::string arch;   // a preset, built with `seed` (random init is fine for timing), or
  std::string model;  // a duet checkpoint; exactly one of the two
  std::string vs;     // when set: this other duet model (checkpoint or preset) is the peer
  std::vector<int64_t> batches = {250, 1};
  int threads = 1;
  bool quick = false;             // fewer, shorter rounds (a smoke run)
  uint64_t seed = 0;              // weights of --arch / preset models and the random inputs
  double check_tolerance = 1e-3;  // max |duet - ONNX Runtime| logits before failing
  // duet runs the model as compress::fold_for_inference makes it (BatchNorm folded into the
  // convs, bias / ReLU / residual in their epilogues) when its family has a folding rule.
  bool fold = true;
  // Folded classifiers keep their activations channel-blocked between convs
  // (compress/blocked_forward.h) unless this is false.
  bool blocked = true;
  // 3x3 stride-1 convolutions take Winograd (F(4x4) or F(2x2), kernels::set_winograd) where it
  // applies unless this is false.
  bool winograd = true;
};

// Returns the "fma peak" row, then one row per batch size: ms per call (median of alternating
// rounds), ratio = peer ms / duet ms (> 1: duet faster), duet's GFLOP/s from the model's MACs.
// Context lines (model, folding, peer version or why it is unavailable, the logits checks) go
// to `note` as they happen. Without node, onnxruntime-node or torch the peer is reported
// unavailable and duet is timed alone; logits that disagree beyond check_tolerance (folded vs
// unfolded, or duet vs ONNX Runtime) throw duet::Error.
// $DUET_BENCH_TRACE=1 prints every round's times on stderr.
std::vector<BenchRow> bench_infer(const InferBenchOptions& options,
                                  const std::function<void(const std::string&)>& note);

// Table for people: batch, duet ms, peer ms, ratio, img/s, GFLOP/s, % of peak (rows as above).
void print_infer_table(const std::vector<BenchRow>& rows);

}  // namespace duet::bench
