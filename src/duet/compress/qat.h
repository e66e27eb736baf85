// Quantisation-aware training: the trainable twin of a classifier's int8 form. It has the folded
// model's structure and names (one conv with bias per conv + BatchNorm, ReLU and residual add
// after it), runs every conv that `duet quantize` makes int8 on fake-quantised input and weights
// (compress/fake_quant.h), and exports back to the int8 checkpoint format through the same
// FusedConv::quantize path, so what trains is what deploys.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "duet/compress/fused_conv.h"
#include "duet/compress/quantize.h"
#include "duet/models/classifier.h"
#include "duet/nn/layers.h"

namespace duet::compress {

// How a layer's activation range moves during training. fixed: the calibrated range stays (the
// weights adapt to it). ema: each training batch pulls it towards the batch's min / max,
// range += momentum * (batch - range), like PyTorch's moving-average min-max observer.
enum class RangeUpdate { fixed, ema };
std::optional<RangeUpdate> parse_range_update(const std::string& name);
std::string range_update_name(RangeUpdate r);

// A FusedConv made trainable: act(conv(fq(x), fq(w)) + bias [+ residual]) with the ops'
// backward. An int8 layer has the buffer "input_range" [2] = {lo, hi}; its input fake-quant is
// ActivationQuant::from_range(lo, hi), the quantisation the exported int8 conv will apply. A
// float layer (grouped, --keep-fp32, above --max-layer-error) runs plain float, as it deploys.
class QatConv : public nn::Module {
 public:
  // Copies src's float weight and bias; range: the calibrated input range of an int8 layer.
  QatConv(const FusedConv& src, std::optional<std::pair<float, float>> range);
  Tensor forward(const Tensor& x) override;
  Tensor forward(const Tensor& x, const Tensor& residual);

  bool is_int8() const { return range_ != nullptr; }
  std::pair<float, float> range() const;  // Error for a float layer
  kernels::ActivationQuant input_quant() const;
  const ops::Conv2dOptions& options() const { return options_; }
  kernels::Activation activation() const { return act_; }

  RangeUpdate range_update = RangeUpdate::ema;
  float range_momentum = 0.01f;
  Tensor& weight;
  Tensor& bias;

 private:
  ops::Conv2dOptions options_;
  kernels::Activation act_;
  Tensor* range_ = nullptr;
};

class QatBasicBlock : public nn::Module {  // relu(conv2(conv1(x)) + shortcut(x)), as folded
 public:
  QatBasicBlock(std::shared_ptr<QatConv> conv1, std::shared_ptr<QatConv> conv2,
                std::shared_ptr<QatConv> shortcut);
  Tensor forward(const Tensor& x) override;
  std::shared_ptr<QatConv> conv1, conv2, shortcut;
};

class QatShuffleUnit : public nn::Module {  // ShuffleNetV2's unit: branches, concat, shuffle
 public:
  QatShuffleUnit(std::shared_ptr<nn::Sequential> branch1, std::shared_ptr<nn::Sequential> branch2);
  Tensor forward(const Tensor& x) override;
  std::shared_ptr<nn::Sequential> branch1, branch2;
};

// head(global_avg_pool(body(x))) like FoldedClassifier, with trainable parameters whose
// state_dict keys are the folded model's. It keeps (outside its state) the float model it came
// from, for the export, and the post-training quantisation it started from.
class QatClassifier : public models::Classifier {
 public:
  QatClassifier(const std::string& type_name, std::shared_ptr<nn::Sequential> body,
                const std::string& head_name, std::shared_ptr<nn::Linear> head);
  Tensor features(const Tensor& x) override;
  Tensor logits(const Tensor& features) override;

  std::shared_ptr<nn::Sequential> body;
  std::shared_ptr<nn::Linear> head;
  std::shared_ptr<nn::Module> float_model;  // the unfolded fp32 classifier (eval mode)
  std::shared_ptr<nn::Module> ptq_model;    // its int8 form by post-training quantisation
  QuantizeReport ptq_report;                // which layers are int8, with their ranges
};

struct QatOptions {
  QuantizeOptions quantize;  // calibration method, --keep-fp32, --max-layer-error: as quantize
  RangeUpdate ranges = RangeUpdate::ema;  // measured better than fixed (docs/compression.md)
  float range_momentum = 0.01f;
};

// The QAT twin of a foldable float classifier. Runs the post-training quantisation `duet
// quantize` runs (quantize_model on the folded model with these calibration batches), keeps it
// as ptq_model / ptq_report, and builds the twin from a fresh fold: the layers PTQ made int8
// get fake quantisation with PTQ's calibrated ranges, the others stay float. The twin is in
// training mode. Usage Error for a family that does not fold.
std::shared_ptr<QatClassifier> make_qat_model(std::shared_ptr<nn::Module> float_model,
                                              const std::vector<Tensor>& calibration_batches,
                                              const QatOptions& options);

// The int8 inference model of the twin's current weights and ranges: a fresh fold of the float
// model, the twin's weights and biases copied in by name, each int8 layer quantised by
// FusedConv::quantize with the twin's range (the same layers as ptq_report). The report says
// which layers are int8, with their ranges; save both with save_quantized_model.
struct Int8Export {
  std::shared_ptr<nn::Module> model;
  QuantizeReport report;
};
Int8Export export_int8(QatClassifier& qat);

}  // namespace duet::compress
