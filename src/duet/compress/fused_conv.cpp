#include "duet/compress/fused_conv.h"

#include "duet/autograd/autograd.h"
#include "duet/kernels/conv2d.h"
#include "duet/kernels/conv2d_blocked.h"
#include "duet/nn/profile.h"
#include "duet/ops/shape_ops.h"
#include "duet/tensor/error.h"

namespace duet::compress {
namespace {

Tensor checked_copy(const Tensor& t, const char* what) {
  DUET_CHECK(t.defined() && t.dtype() == DType::f32, "FusedConv: ", what, " must be a defined F32 ",
             "tensor");
  return autograd::detached(t).clone();
}

}  // namespace

FusedConv::FusedConv(const Tensor& w, const Tensor& b, const ops::Conv2dOptions& options,
                     kernels::Activation act)
    : Module("FusedConv"),
      weight(register_parameter("weight", checked_copy(w, "weight"))),
      bias(register_parameter("bias", checked_copy(b, "bias"))),
      options_(options),
      act_(act) {
  DUET_CHECK(weight.rank() == 4 && bias.rank() == 1 && bias.dim(0) == weight.dim(0),
             "FusedConv: expected weight [K, C/groups, R, S] and bias [K], got ",
             weight.shape().str(), " and ", bias.shape().str());
  DUET_CHECK(options.stride >= 1 && options.dilation >= 1 && options.padding >= 0 &&
                 options.groups >= 1 && weight.dim(0) % options.groups == 0,
             "FusedConv: stride and dilation must be >= 1, padding >= 0, and groups (",
             options.groups, ") must divide the ", weight.dim(0), " output channels");
  // Parameters so that state_dict / parameter_count see them, but frozen: nothing trains these.
  autograd::set_requires_grad(weight, false);
  autograd::set_requires_grad(bias, false);
}

Tensor FusedConv::checked_residual(const Tensor& residual, const Shape& out) const {
  if (!residual.defined()) return residual;
  DUET_CHECK(residual.dtype() == DType::f32 && residual.shape() == out,
             "FusedConv: residual must be F32 ", out.str(), " like the output, got ",
             residual.shape().str());
  return ops::contiguous(residual);
}

kernels::Epilogue FusedConv::epilogue(const Tensor& residual) const {
  kernels::Epilogue ep;
  ep.bias = bias.data<float>();
  ep.act = act_;
  if (residual.defined()) ep.residual = residual.data<float>();
  return ep;
}

Tensor FusedConv::forward(const Tensor& x) {
  return forward(x, Tensor());
}

Tensor FusedConv::forward(const Tensor& x_in, const Tensor& residual_in) {
  if (is_training())
    fail("FusedConv: inference only (folded BatchNorm has no batch statistics); call eval() on ",
         "the folded model, or train the unfolded one");
  if (autograd::any_requires_grad({&x_in, &residual_in, &weight, &bias}))  // under grad mode
    fail("FusedConv: inference only, it has no backward; run it under autograd::NoGradGuard ",
         "with inputs that do not require gradients");
  if (on_input) on_input(x_in);
  DUET_CHECK(x_in.defined() && x_in.dtype() == DType::f32 && x_in.rank() == 4,
             "FusedConv: expected an F32 input [N, C, H, W], got ",
             x_in.defined() ? x_in.shape().str() : std::string("an undefined tensor"));
  const kernels::Conv2dShape s = ops::conv2d_shape(x_in.shape(), weight.shape(), options_);
  DUET_CHECK(weight.dim(1) * s.groups == s.in_channels, "FusedConv: input ", x_in.shape().str(),
             " has ", s.in_channels, " channels; weight ", weight.shape().str(), " with groups ",
             s.groups, " expects ", weight.dim(1) * s.groups);
  DUET_CHECK(s.out_h() >= 1 && s.out_w() >= 1, "FusedConv: input ", x_in.shape().str(),
             " is smaller than the dilated kernel ", weight.shape().str());
  const Shape out{s.batch, s.out_channels, s.out_h(), s.out_w()};

  const Tensor x = ops::contiguous(x_in);
  const Tensor residual = checked_residual(residual_in, out);
  kernels::Epilogue ep = epilogue(residual);
  ep.ld_residual = s.out_h() * s.out_w();
  Tensor y;
  if (int8_) {
    y = int8_->forward(x, residual);
  } else {
    y = Tensor::empty(out);
    kernels::conv2d_forward(s, x.data<float>(), weight.data<float>(), y.data<float>(), ep);
  }
  nn::record_layer(this, y,
                   static_cast<double>(y.numel()) * weight.dim(1) * weight.dim(2) * weight.dim(3));
  return y;
}

Tensor FusedConv::packed_blocked(const kernels::Conv2dShape& s) const {
  const std::lock_guard<std::mutex> lock(packed_mutex_);
  const size_t algo = static_cast<size_t>(kernels::blocked_algo(s));
  if (!packed_ready_[algo]) {
    const int64_t size = kernels::blocked_packed_size(s);
    packed_[algo] = size > 0 ? Tensor::empty({size}) : Tensor();
    if (size > 0)
      kernels::pack_blocked_weights(s, weight.data<float>(), packed_[algo].data<float>());
    packed_ready_[algo] = true;
  }
  return packed_[algo];
}

void FusedConv::state_changed() {
  const std::lock_guard<std::mutex> lock(packed_mutex_);
  packed_.fill(Tensor());
  packed_ready_.fill(false);
}

Tensor FusedConv::forward_blocked(const Tensor& x_in, const Tensor& residual_in) {
  DUET_CHECK(runs_blocked(),
             "FusedConv::forward_blocked: a calibrating conv runs channel-major "
             "(forward)");
  if (is_training() || autograd::any_requires_grad({&x_in, &residual_in}))
    fail("FusedConv: inference only; call eval() and run under autograd::NoGradGuard");
  const int64_t c = weight.dim(1) * options_.groups;
  const bool blocked = x_in.defined() && x_in.rank() == 5;
  DUET_CHECK(x_in.defined() && x_in.dtype() == DType::f32 &&
                 (blocked ? x_in.dim(1) == kernels::channel_blocks(c) &&
                                x_in.dim(4) == kernels::kChannelBlock
                          : x_in.rank() == 4 && x_in.dim(1) == c),
             "FusedConv::forward_blocked: expected an F32 input [N, ", c, ", H, W] or blocked [N, ",
             kernels::channel_blocks(c), ", H, W, ", kernels::kChannelBlock, "], got ",
             x_in.defined() ? x_in.shape().str() : std::string("an undefined tensor"));
  const Shape plain = blocked ? Shape{x_in.dim(0), c, x_in.dim(2), x_in.dim(3)} : x_in.shape();
  const kernels::Conv2dShape s = ops::conv2d_shape(plain, weight.shape(), options_);
  DUET_CHECK(s.out_h() >= 1 && s.out_w() >= 1, "FusedConv: input ", plain.str(),
             " is smaller than the dilated kernel ", weight.shape().str());
  const Shape out{s.batch, kernels::channel_blocks(s.out_channels), s.out_h(), s.out_w(),
                  kernels::kChannelBlock};
  const Tensor x = ops::contiguous(x_in);
  const Tensor residual = checked_residual(residual_in, out);
  const kernels::Epilogue ep = epilogue(residual);
  Tensor y;
  if (int8_) {
    y = int8_->forward_blocked(x, blocked, plain, residual);
  } else {
    y = Tensor::empty(out);
    const Tensor packed = packed_blocked(s);
    kernels::conv2d_forward_blocked(s, blocked, x.data<float>(), weight.data<float>(),
                                    y.data<float>(), ep,
                                    packed.defined() ? packed.data<float>() : nullptr);
  }
  nn::record_layer(this, Shape{s.batch, s.out_channels, s.out_h(), s.out_w()},
                   double(s.flops()) / 2.0);
  return y;
}

void FusedConv::quantize(const kernels::ActivationQuant& input, int weight_bits) {
  DUET_CHECK(!is_int8(), "FusedConv::quantize: already int8");
  DUET_CHECK(options_.groups == 1, "FusedConv::quantize: grouped convolutions (groups ",
             options_.groups, ") stay in float");
  const QuantizedWeights q = quantize_weights_per_channel(weight, weight_bits);
  make_int8_slots();
  store_int8(*this, weight, q, input);
  prepare_int8();
}

void FusedConv::make_int8_slots() {
  DUET_CHECK(!is_int8(), "FusedConv::make_int8_slots: already int8");
  add_int8_slots(*this, weight);
}

void FusedConv::prepare_int8() {
  int8_ = stored_int8_kernel(*this, weight, bias, options_, act_);
  state_changed();  // a float packing made before is of no further use
}

Int8ConvKernel FusedConv::int8_kernel(const kernels::ActivationQuant& input,
                                      int weight_bits) const {
  DUET_CHECK(!is_int8(), "FusedConv::int8_kernel: the conv is int8 already");
  const QuantizedWeights q = quantize_weights_per_channel(weight, weight_bits);
  return Int8ConvKernel(q.codes, q.scale, bias, input, options_, act_);
}

}  // namespace duet::compress
