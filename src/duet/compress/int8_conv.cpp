#include "duet/compress/int8_conv.h"

#include <algorithm>
#include <cmath>

#include "duet/kernels/conv2d_blocked.h"
#include "duet/ops/blocked.h"
#include "duet/ops/shape_ops.h"
#include "duet/tensor/error.h"

namespace duet::compress {

QuantizedWeights quantize_weights_per_channel(const Tensor& weight, int bits) {
  DUET_CHECK(bits >= kMinWeightBits && bits <= kMaxWeightBits,
             "quantize_weights_per_channel: weight bits must be in [", kMinWeightBits, ", ",
             kMaxWeightBits, "], got ", bits);
  const float max_code = float((1 << (bits - 1)) - 1);
  DUET_CHECK(weight.defined() && weight.dtype() == DType::f32 && weight.rank() == 4 &&
                 weight.is_contiguous(),
             "quantize_weights_per_channel: expected a contiguous F32 [K, C, R, S] weight");
  const int64_t K = weight.dim(0), per = weight.numel() / K;
  QuantizedWeights q{Tensor::empty(weight.shape(), DType::i8), Tensor::empty(Shape{K})};
  const float* w = weight.data<float>();
  int8_t* codes = q.codes.data<int8_t>();
  float* scale = q.scale.data<float>();
  for (int64_t k = 0; k < K; ++k) {
    float amax = 0.0f;
    for (int64_t i = 0; i < per; ++i) {
      const float v = w[k * per + i];
      DUET_CHECK(std::isfinite(v), "quantize_weights_per_channel: weight of output channel ", k,
                 " is not finite");
      amax = std::max(amax, std::fabs(v));
    }
    scale[k] = amax > 0.0f ? amax / max_code : 1.0f;
    const float inv = 1.0f / scale[k];
    for (int64_t i = 0; i < per; ++i) {
      const float c = std::nearbyint(w[k * per + i] * inv);
      codes[k * per + i] = static_cast<int8_t>(std::clamp(c, -max_code, max_code));
    }
  }
  return q;
}

Int8ConvKernel::Int8ConvKernel(const Tensor& codes, const Tensor& scale, const Tensor& bias,
                               const kernels::ActivationQuant& input,
                               const ops::Conv2dOptions& options, kernels::Activation act)
    : input_(input), options_(options), act_(act) {
  DUET_CHECK(
      codes.defined() && codes.dtype() == DType::i8 && codes.rank() == 4 && codes.is_contiguous(),
      "Int8ConvKernel: expected contiguous I8 weights [K, C, R, S]");
  const int64_t K = codes.dim(0);
  DUET_CHECK(scale.dtype() == DType::f32 && scale.numel() == K && bias.dtype() == DType::f32 &&
                 bias.numel() == K,
             "Int8ConvKernel: weight scale and bias must be F32 [", K, "]");
  DUET_CHECK(options.groups == 1, "Int8ConvKernel: grouped convolutions stay in float");
  DUET_CHECK(input.scale > 0.0f && std::isfinite(input.scale) && input.zero_point >= 0 &&
                 input.zero_point < kernels::kActivationLevels,
             "Int8ConvKernel: input scale must be positive and the zero point in [0, 127], got ",
             input.scale, " and ", input.zero_point);
  packed_ = kernels::pack_int8_conv_weights(codes.data<int8_t>(), K, codes.dim(1), codes.dim(2),
                                            codes.dim(3));
  out_scale_.resize(size_t(K));
  bias_.assign(bias.data<float>(), bias.data<float>() + K);
  for (int64_t k = 0; k < K; ++k) out_scale_[size_t(k)] = input.scale * scale.data<float>()[k];
}

Tensor Int8ConvKernel::forward(const Tensor& x, const Tensor& residual) const {
  const kernels::Conv2dShape s = ops::conv2d_shape(
      x.shape(),
      Shape{packed_.out_channels, packed_.in_channels, packed_.kernel_h, packed_.kernel_w},
      options_);
  Tensor y = Tensor::empty(Shape{s.batch, s.out_channels, s.out_h(), s.out_w()});
  kernels::Epilogue e;
  e.scale = out_scale_.data();
  e.bias = bias_.data();
  e.act = act_;
  if (residual.defined()) {
    e.residual = residual.data<float>();
    e.ld_residual = s.out_h() * s.out_w();
  }
  kernels::conv2d_int8_forward(s, x.data<float>(), input_, packed_, y.data<float>(), e);
  return y;
}

Tensor Int8ConvKernel::forward_blocked(const Tensor& x, bool x_blocked, const Shape& plain,
                                       const Tensor& residual) const {
  const kernels::Conv2dShape s = ops::conv2d_shape(
      plain, Shape{packed_.out_channels, packed_.in_channels, packed_.kernel_h, packed_.kernel_w},
      options_);
  Tensor y = Tensor::empty(Shape{s.batch, kernels::channel_blocks(s.out_channels), s.out_h(),
                                 s.out_w(), kernels::kChannelBlock});
  DUET_CHECK(!residual.defined() || residual.shape() == y.shape(), "int8 conv: residual ",
             residual.defined() ? residual.shape().str() : std::string(), " for a blocked output ",
             y.shape().str());
  kernels::Epilogue e;
  e.scale = out_scale_.data();
  e.bias = bias_.data();
  e.act = act_;
  if (residual.defined()) e.residual = residual.data<float>();
  kernels::conv2d_int8_forward_blocked(s, x_blocked, x.data<float>(), input_, packed_,
                                       y.data<float>(), e);
  return y;
}

void add_int8_slots(nn::Module& conv, Tensor& weight) {
  DUET_CHECK(weight.dtype() == DType::f32, conv.type_name(), ": the weight is int8 already");
  weight = Tensor::zeros(weight.shape(), DType::i8);
  conv.register_buffer("weight_scale", Tensor::zeros(Shape{weight.dim(0)}));
  conv.register_buffer("input_scale", Tensor::zeros(Shape{1}));
  conv.register_buffer("input_zero_point", Tensor::zeros(Shape{1}, DType::i32));
}

namespace {

struct Int8Buffers {
  Tensor *weight_scale = nullptr, *input_scale = nullptr, *input_zero_point = nullptr;
};

Int8Buffers int8_buffers(nn::Module& conv, const Tensor& weight) {
  Int8Buffers b;
  for (auto& [name, t] : conv.named_buffers()) {
    if (name == "weight_scale") b.weight_scale = t;
    if (name == "input_scale") b.input_scale = t;
    if (name == "input_zero_point") b.input_zero_point = t;
  }
  DUET_CHECK(weight.dtype() == DType::i8 && b.weight_scale && b.input_scale && b.input_zero_point,
             conv.type_name(), ": no int8 state (quantise it, or add_int8_slots before loading)");
  return b;
}

}  // namespace

void store_int8(nn::Module& conv, Tensor& weight, const QuantizedWeights& q,
                const kernels::ActivationQuant& input) {
  const Int8Buffers b = int8_buffers(conv, weight);
  DUET_CHECK(q.codes.shape() == weight.shape(), "store_int8: codes ", q.codes.shape().str(),
             " for weight ", weight.shape().str());
  weight = q.codes;
  *b.weight_scale = q.scale;
  b.input_scale->data<float>()[0] = input.scale;
  b.input_zero_point->data<int32_t>()[0] = input.zero_point;
}

std::shared_ptr<const Int8ConvKernel> stored_int8_kernel(nn::Module& conv, const Tensor& weight,
                                                         const Tensor& bias,
                                                         const ops::Conv2dOptions& options,
                                                         kernels::Activation act) {
  const Int8Buffers b = int8_buffers(conv, weight);
  kernels::ActivationQuant q;
  q.scale = b.input_scale->data<float>()[0];
  DUET_CHECK(std::isfinite(q.scale) && q.scale > 0.0f, conv.type_name(),
             ": stored input_scale must be a positive number, got ", q.scale);
  q.inv_scale = 1.0f / q.scale;
  q.zero_point = b.input_zero_point->data<int32_t>()[0];
  DUET_CHECK(q.zero_point >= 0 && q.zero_point < kernels::kActivationLevels, conv.type_name(),
             ": stored input_zero_point must be in [0, 127], got ", q.zero_point);
  const Tensor no_bias = Tensor::zeros(Shape{weight.dim(0)});
  return std::make_shared<const Int8ConvKernel>(weight, *b.weight_scale,
                                                bias.defined() ? bias : no_bias, q, options, act);
}

Tensor Int8InferenceConv::forward(const Tensor& x) const {
  return kernel_->forward(ops::contiguous(x), Tensor());
}

Tensor Int8InferenceConv::forward_blocked(const Tensor& x, const Tensor& residual) const {
  const bool blocked = ops::is_blocked(x);
  DUET_CHECK(blocked || x.rank() == 4, "int8 conv: expected a blocked or [N, C, H, W] input, got ",
             x.shape().str());
  const int64_t c = kernel_->in_channels();
  const Shape plain = blocked ? Shape{x.dim(0), c, x.dim(2), x.dim(3)} : x.shape();
  return kernel_->forward_blocked(ops::contiguous(x), blocked, plain,
                                  residual.defined() ? ops::contiguous(residual) : Tensor());
}

}  // namespace duet::compress
