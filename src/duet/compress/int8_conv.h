// The int8 arithmetic of one convolution, apart from any module: per-output-channel symmetric
// weight quantisation, and a ready-to-run kernel (packed weights plus the float epilogue that
// undoes both scales and the activation zero point). FusedConv runs it when quantised; the
// calibrator uses it to measure a layer's int8 error before deciding to quantise that layer.
#pragma once

#include <vector>

#include "duet/kernels/conv2d_int8.h"
#include "duet/ops/conv.h"
#include "duet/tensor/tensor.h"

namespace duet::compress {

// w [K, C, R, S] F32 -> int8 codes (I8, same shape) and scales (F32 [K]) with
// w ~ code * scale[k]: scale[k] = max |w[k]| / 127, so each channel uses the whole range. An
// all-zero channel gets scale 1 (codes 0), never a division by zero.
struct QuantizedWeights {
  Tensor codes, scale;
};
QuantizedWeights quantize_weights_per_channel(const Tensor& weight);

// y = act(conv_int8(x) + bias [+ residual]) with the int8 weights and input quantisation given.
class Int8ConvKernel {
 public:
  Int8ConvKernel(const Tensor& codes, const Tensor& scale, const Tensor& bias,
                 const kernels::ActivationQuant& input, const ops::Conv2dOptions& options,
                 kernels::Activation act);
  // x [N, C, H, W] F32 contiguous; residual (may be undefined) [N, K, P, Q] F32 contiguous.
  Tensor forward(const Tensor& x, const Tensor& residual) const;
  const kernels::ActivationQuant& input() const { return input_; }

 private:
  kernels::Int8ConvWeights packed_;
  kernels::ActivationQuant input_;
  ops::Conv2dOptions options_;
  kernels::Activation act_;
  // Epilogue: y = float(sum of w * (q - zero_point)) * out_scale[k] + bias[k], where out_scale
  // = input scale x weight scale undoes both quantisations.
  std::vector<float> out_scale_, bias_;
};

}  // namespace duet::compress
