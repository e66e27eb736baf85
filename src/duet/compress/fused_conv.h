// FusedConv: the inference-only convolution that folding produces. One kernels::conv2d_forward
// call computes act(conv(x, w) + bias [+ residual]) with bias, residual add and activation in the
// GEMM epilogue, so a conv + BatchNorm + ReLU (+ shortcut add) costs one pass over the output.
#pragma once

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

  const ops::Conv2dOptions& options() const { return options_; }
  kernels::Activation activation() const { return act_; }

  Tensor& weight;
  Tensor& bias;

 private:
  ops::Conv2dOptions options_;
  kernels::Activation act_;
};

}  // namespace duet::compress
