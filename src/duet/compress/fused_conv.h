// FusedConv: the inference-only convolution that folding produces. One kernels::conv2d_forward
// call computes act(conv(x, w) + bias [+ residual]) with bias, residual add and activation in the
// GEMM epilogue, so a conv + BatchNorm + ReLU (+ shortcut add) costs one pass over the output.
#pragma once

#include <array>
#include <functional>
#include <memory>
#include <mutex>

#include "duet/compress/int8_conv.h"
#include "duet/kernels/conv2d_blocked.h"
#include "duet/kernels/gemm.h"
#include "duet/nn/module.h"
#include "duet/ops/conv.h"

namespace duet::compress {

class FusedConv : public nn::Module {
 public:
  // weight [K, C / groups, R, S] and bias [K] are copied; they never require gradients.
  FusedConv(const Tensor& weight, const Tensor& bias, const ops::Conv2dOptions& options,
            kernels::Activation act = kernels::Activation::none);

  // act(conv(x) + bias). Eval mode only, and no input may require gradients under grad mode:
  // there is no backward, so both throw duet::Error instead of training silently wrong.
  Tensor forward(const Tensor& x) override;
  // act(conv(x) + bias + residual); residual has the output's shape [N, K, P, Q].
  Tensor forward(const Tensor& x, const Tensor& residual);

  // The same on channel-blocked activations (kernels/conv2d_blocked.h): x is blocked
  // [N, ceil(C / 16), H, W, 16], or a plain [N, C, H, W] (a network's input); the result and the
  // residual are blocked [N, ceil(K / 16), P, Q, 16]. Float weights are packed for the kernel
  // at the first call and kept (see state_changed).
  Tensor forward_blocked(const Tensor& x, const Tensor& residual = Tensor());
  // Drops the packed weights; load_state_dict calls it, and so must code that writes `weight`.
  void state_changed() override;
  // Whether forward_blocked may run: float or int8, without a calibration hook (calibration
  // looks at channel-major inputs).
  bool runs_blocked() const { return !on_input; }

  const ops::Conv2dOptions& options() const { return options_; }
  kernels::Activation activation() const { return act_; }

  // int8 (compress/quantize.h). quantize() replaces `weight` by its per-output-channel int8
  // codes (I8, same shape) and adds the buffers weight_scale [K], input_scale [1] and
  // input_zero_point [1] (I32), so the module saves and loads like any other; from then on
  // forward runs the int8 kernel. Grouped convolutions cannot be quantised (Error).
  // weight_bits: as quantize_weights_per_channel.
  void quantize(const kernels::ActivationQuant& input, int weight_bits = kMaxWeightBits);
  // For loading an int8 checkpoint: the tensors quantize() would create, zero-filled, for
  // load_state_dict to fill; then prepare_int8() builds the kernel from them.
  void make_int8_slots();
  void prepare_int8();
  bool is_int8() const { return int8_ != nullptr; }
  // The int8 kernel of this conv's current float weights and bias with the given input
  // quantisation, without changing the module (the calibrator's per-layer error check).
  Int8ConvKernel int8_kernel(const kernels::ActivationQuant& input,
                             int weight_bits = kMaxWeightBits) const;

  // Calibration: when set, called with every input before the convolution runs.
  std::function<void(const Tensor&)> on_input;

  Tensor& weight;
  Tensor& bias;

 private:
  ops::Conv2dOptions options_;
  kernels::Activation act_;
  std::shared_ptr<const Int8ConvKernel> int8_;
  // The residual as the epilogue reads it: undefined, or F32 shaped `out` (Error otherwise),
  // made contiguous; and the epilogue of bias, activation and that residual.
  Tensor checked_residual(const Tensor& residual, const Shape& out) const;
  kernels::Epilogue epilogue(const Tensor& residual) const;
  // kernels::pack_blocked_weights of weight for shape s, made on the first call that needs the
  // form kernels::blocked_algo(s) picks (under the mutex: the chunks of a batch call
  // forward_blocked from several threads) and kept per form, so that shapes taking different
  // forms (a batch's last, smaller chunk; batch 1 after a large batch) do not repack each other's
  // weights on every call; undefined where there is none.
  Tensor packed_blocked(const kernels::Conv2dShape& s) const;
  static constexpr size_t kBlockedAlgos = size_t(kernels::BlockedAlgo::winograd4) + 1;
  mutable std::mutex packed_mutex_;
  mutable std::array<Tensor, kBlockedAlgos> packed_;
  mutable std::array<bool, kBlockedAlgos> packed_ready_{};
};

}  // namespace duet::compress
