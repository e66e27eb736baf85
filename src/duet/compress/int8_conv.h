// The int8 arithmetic of one convolution, apart from any module: per-output-channel symmetric
// weight quantisation, and a ready-to-run kernel (packed weights plus the float epilogue that
// undoes both scales and the activation zero point). FusedConv runs it when quantised; the
// calibrator uses it to measure a layer's int8 error before deciding to quantise that layer.
#pragma once

#include <memory>
#include <vector>

#include "duet/kernels/conv2d_int8.h"
#include "duet/nn/layers.h"
#include "duet/nn/module.h"
#include "duet/ops/conv.h"
#include "duet/tensor/tensor.h"

namespace duet::compress {

// w [K, C, R, S] F32 -> int8 codes (I8, same shape) and scales (F32 [K]) with
// w ~ code * scale[k]: scale[k] = max |w[k]| / M with M = 2^(bits - 1) - 1 (127 for 8 bits, 63
// for 7), so each channel uses the whole range [-M, M]. An all-zero channel gets scale 1 (codes
// 0), never a division by zero. Fewer bits trade precision for speed where a kernel can use
// them: 7-bit weights pair taps in int16 on AVX2 without VNNI (kernels::kPairableWeightMax).
struct QuantizedWeights {
  Tensor codes, scale;
};
inline constexpr int kMinWeightBits = 2, kMaxWeightBits = 8;
QuantizedWeights quantize_weights_per_channel(const Tensor& weight, int bits = kMaxWeightBits);

// y = act(conv_int8(x) + bias [+ residual]) with the int8 weights and input quantisation given.
class Int8ConvKernel {
 public:
  Int8ConvKernel(const Tensor& codes, const Tensor& scale, const Tensor& bias,
                 const kernels::ActivationQuant& input, const ops::Conv2dOptions& options,
                 kernels::Activation act);
  // x [N, C, H, W] F32 contiguous; residual (may be undefined) [N, K, P, Q] F32 contiguous.
  Tensor forward(const Tensor& x, const Tensor& residual) const;
  // The same on channel-blocked activations (FusedConv::forward_blocked): x is blocked
  // [N, ceil(C / 16), H, W, 16] when x_blocked, else [N, C, H, W]; the result and residual are
  // blocked. `plain` is x's logical [N, C, H, W] shape. All contiguous.
  Tensor forward_blocked(const Tensor& x, bool x_blocked, const Shape& plain,
                         const Tensor& residual) const;
  const kernels::ActivationQuant& input() const { return input_; }
  int64_t in_channels() const { return packed_.in_channels; }

 private:
  kernels::Int8ConvWeights packed_;
  kernels::ActivationQuant input_;
  ops::Conv2dOptions options_;
  kernels::Activation act_;
  // Epilogue: y = float(sum of w * (q - zero_point)) * out_scale[k] + bias[k], where out_scale
  // = input scale x weight scale undoes both quantisations.
  std::vector<float> out_scale_, bias_;
};

// The int8 form of a conv module as its state_dict stores it: `weight` holds the I8 codes, and
// the module carries the buffers weight_scale [K], input_scale [1] and input_zero_point [1] (I32).
// FusedConv (folded classifiers) and nn::Conv2d (generators, compress/generator_int8.h) share it.
//
// add_int8_slots: `weight` becomes zero I8 codes and the buffers appear zero-filled, ready for
// load_state_dict (or for store_int8). Error when the weight is not F32 (already int8).
void add_int8_slots(nn::Module& conv, Tensor& weight);
// Writes quantised weights and the input quantisation into slots made by add_int8_slots.
void store_int8(nn::Module& conv, Tensor& weight, const QuantizedWeights& q,
                const kernels::ActivationQuant& input);
// The kernel of the stored int8 state (Error when the slots are missing). `bias` [K] F32, or
// undefined for none.
std::shared_ptr<const Int8ConvKernel> stored_int8_kernel(nn::Module& conv, const Tensor& weight,
                                                         const Tensor& bias,
                                                         const ops::Conv2dOptions& options,
                                                         kernels::Activation act);

// An Int8ConvKernel as an nn::Conv2d's inference stand-in (no activation; a residual only in the
// blocked form).
class Int8InferenceConv final : public nn::InferenceConv {
 public:
  explicit Int8InferenceConv(std::shared_ptr<const Int8ConvKernel> kernel)
      : kernel_(std::move(kernel)) {}
  Tensor forward(const Tensor& x) const override;
  Tensor forward_blocked(const Tensor& x, const Tensor& residual) const override;

 private:
  std::shared_ptr<const Int8ConvKernel> kernel_;
};

}  // namespace duet::compress
