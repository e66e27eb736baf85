#include "duet/ops/blocked.h"

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <string>

#include "duet/autograd/autograd.h"
#include "duet/kernels/conv2d_blocked.h"
#include "duet/kernels/isa.h"
#include "duet/kernels/norm_blocked.h"
#include "duet/ops/op_util.h"

namespace duet::ops {
namespace {

using kernels::channel_blocks;
using kernels::kChannelBlock;

Shape blocked_shape(int64_t n, int64_t c, int64_t h, int64_t w) {
  return Shape({n, channel_blocks(c), h, w, kChannelBlock});
}

void check_blocked(const Tensor& x, int64_t channels, const char* op, const char* name) {
  detail::check_f32(x, op, name);
  if (!is_blocked(x) || x.dim(1) != channel_blocks(channels))
    fail(op, ": expected ", name, " blocked as [N, ", channel_blocks(channels), ", H, W, ",
         kChannelBlock, "] for ", channels, " channels, got ", x.shape().str());
}

const float* ptr_or_null(const Tensor& t) {
  return t.defined() ? t.data<float>() : nullptr;
}

float* mutable_ptr_or_null(Tensor& t) {
  return t.defined() ? t.data<float>() : nullptr;
}

std::atomic<bool>& blocked_training_flag() {
  static std::atomic<bool> on{[] {
    const char* env = std::getenv("DUET_LAYOUT");
    return !(env && std::string(env) == "nchw");
  }()};
  return on;
}

}  // namespace

bool use_blocked_training() {
  return blocked_training_flag().load(std::memory_order_relaxed) &&
         kernels::isa_at_least(kernels::Isa::avx2);
}

void set_blocked_training(bool on) {
  blocked_training_flag().store(on, std::memory_order_relaxed);
}

bool is_blocked(const Tensor& x) {
  return x.defined() && x.dtype() == DType::f32 && x.rank() == 5 && x.dim(4) == kChannelBlock;
}

Tensor to_blocked(const Tensor& x_in) {
  detail::check_f32(x_in, "to_blocked", "input");
  DUET_CHECK(x_in.rank() == 4, "to_blocked: expected input [N, C, H, W], got ", x_in.shape().str());
  const Tensor x = contiguous(x_in);
  const int64_t n = x.dim(0), c = x.dim(1), hw = x.dim(2) * x.dim(3);
  Tensor y = Tensor::empty(blocked_shape(n, c, x.dim(2), x.dim(3)));
  kernels::to_channel_blocked(n, c, hw, x.data<float>(), y.data<float>());
  autograd::record(y, "to_blocked", {x_in}, [shape = x.shape(), n, c, hw](const Tensor& g_in) {
    const Tensor g = contiguous(g_in);
    Tensor dx = Tensor::empty(shape);
    kernels::from_channel_blocked(n, c, hw, g.data<float>(), dx.data<float>());
    return std::vector<Tensor>{dx};
  });
  return y;
}

Tensor from_blocked(const Tensor& x_in, int64_t channels) {
  check_blocked(x_in, channels, "from_blocked", "input");
  const Tensor x = contiguous(x_in);
  const int64_t n = x.dim(0), h = x.dim(2), w = x.dim(3);
  Tensor y = Tensor::empty({n, channels, h, w});
  kernels::from_channel_blocked(n, channels, h * w, x.data<float>(), y.data<float>());
  autograd::record(
      y, "from_blocked", {x_in}, [shape = x.shape(), n, channels, h, w](const Tensor& g_in) {
        const Tensor g = contiguous(g_in);
        Tensor dx = Tensor::empty(shape);
        kernels::to_channel_blocked(n, channels, h * w, g.data<float>(), dx.data<float>());
        return std::vector<Tensor>{dx};
      });
  return y;
}

Tensor conv2d_blocked(const Tensor& x_in, const Tensor& weight_in, const Tensor& bias,
                      const Conv2dOptions& o, const Tensor& residual_in) {
  detail::check_f32(x_in, "conv2d_blocked", "input");
  detail::check_f32(weight_in, "conv2d_blocked", "weight");
  DUET_CHECK(o.groups == 1, "conv2d_blocked: groups must be 1, got ", o.groups);
  DUET_CHECK(weight_in.rank() == 4, "conv2d_blocked: expected weight [K, C, R, S], got ",
             weight_in.shape().str());
  const int64_t channels = weight_in.dim(1);
  const bool x_blocked = x_in.rank() == 5;
  if (x_blocked)
    check_blocked(x_in, channels, "conv2d_blocked", "input");
  else
    detail::check_shapes(x_in.rank() == 4 && x_in.dim(1) == channels, "conv2d_blocked",
                         "expected a blocked input or [N, C, H, W] with the weight's C", x_in,
                         weight_in);
  // The channel-major shape the blocks hold.
  const Shape plain({x_in.dim(0), channels, x_in.dim(2), x_in.dim(3)});
  const kernels::Conv2dShape shape = conv2d_shape(plain, weight_in.shape(), o);
  DUET_CHECK(o.stride >= 1 && o.dilation >= 1 && o.padding >= 0,
             "conv2d_blocked: stride and dilation must be >= 1, padding >= 0");
  DUET_CHECK(shape.out_h() >= 1 && shape.out_w() >= 1, "conv2d_blocked: input ", plain.str(),
             " is smaller than the dilated kernel ", weight_in.shape().str());
  if (bias.defined())
    detail::check_shapes(bias.rank() == 1 && bias.dim(0) == shape.out_channels, "conv2d_blocked",
                         "bias must be [out_channels]", bias, weight_in);
  const Shape y_shape =
      blocked_shape(shape.batch, shape.out_channels, shape.out_h(), shape.out_w());
  if (residual_in.defined())
    detail::check_shapes(residual_in.dtype() == DType::f32 && residual_in.shape() == y_shape,
                         "conv2d_blocked", "the residual must be F32 and blocked like the output",
                         residual_in, weight_in);
  const Tensor x = contiguous(x_in), w = contiguous(weight_in);
  const Tensor residual = residual_in.defined() ? contiguous(residual_in) : Tensor();
  Tensor y = Tensor::empty(y_shape);
  kernels::Epilogue ep;
  ep.bias = ptr_or_null(bias);
  ep.residual = ptr_or_null(residual);
  kernels::conv2d_forward_blocked(shape, x_blocked, x.data<float>(), w.data<float>(),
                                  y.data<float>(), ep);
  const bool has_bias = bias.defined();
  autograd::record(y, "conv2d_blocked", {x_in, weight_in, bias, residual_in},
                   [x = autograd::detached(x), w = autograd::detached(w), shape, x_blocked,
                    has_bias, need_dx = autograd::requires_grad(x_in),
                    need_dw = autograd::requires_grad(weight_in) ||
                              (has_bias && autograd::requires_grad(bias))](const Tensor& g_in) {
                     const Tensor g = contiguous(g_in);
                     Tensor dx, dw, db;
                     if (need_dx) {
                       dx = Tensor::empty(x.shape());
                       if (x_blocked) {
                         kernels::conv2d_backward_data_blocked(shape, g.data<float>(),
                                                               w.data<float>(), dx.data<float>());
                       } else {  // the image's gradient, channel-major like the image
                         Tensor gc = Tensor::empty(
                             {shape.batch, shape.out_channels, shape.out_h(), shape.out_w()});
                         kernels::from_channel_blocked(shape.batch, shape.out_channels,
                                                       shape.out_h() * shape.out_w(),
                                                       g.data<float>(), gc.data<float>());
                         kernels::conv2d_backward_data(shape, gc.data<float>(), w.data<float>(),
                                                       dx.data<float>());
                       }
                     }
                     if (need_dw) {
                       dw = Tensor::empty(w.shape());
                       db = has_bias ? Tensor::empty({shape.out_channels}) : Tensor();
                       kernels::conv2d_backward_weight_blocked(
                           shape, x_blocked, x.data<float>(), g.data<float>(), dw.data<float>(),
                           has_bias ? db.data<float>() : nullptr);
                     }
                     return std::vector<Tensor>{dx, dw, db, g};  // the residual's: g itself
                   });
  return y;
}

Tensor batch_norm_blocked(const Tensor& x_in, const Tensor& weight, const Tensor& bias,
                          Tensor& running_mean, Tensor& running_var, bool training, float momentum,
                          float eps, const BatchNormTail& tail) {
  const Tensor* sized = weight.defined()         ? &weight
                        : bias.defined()         ? &bias
                        : running_mean.defined() ? &running_mean
                                                 : &running_var;
  DUET_CHECK(sized->defined() && sized->rank() == 1,
             "batch_norm_blocked: needs a weight, bias or running statistics of shape [C]");
  const int64_t c = sized->dim(0);
  check_blocked(x_in, c, "batch_norm_blocked", "input");
  const int64_t n = x_in.dim(0), hw = x_in.dim(2) * x_in.dim(3);
  detail::check_batch_norm_args("batch_norm_blocked", x_in, c, weight, bias, running_mean,
                                running_var, tail);
  const Tensor x = contiguous(x_in);
  const Tensor residual = tail.residual.defined() ? contiguous(tail.residual) : Tensor();
  const kernels::NormTail kernel_tail{ptr_or_null(residual), tail.relu, kernels::ActFn::relu};
  Tensor y = Tensor::empty(x.shape());
  Tensor mean = Tensor::empty({c}), invstd = Tensor::empty({c});
  // A ReLU without residual: the backward finds its mask from x and the factors applied here,
  // so it reads neither y nor a masked gradient (one tensor written and two read fewer).
  const bool relu_from_x = tail.relu && !residual.defined();
  Tensor applied_scale = relu_from_x ? Tensor::empty({c}) : Tensor();
  Tensor applied_shift = relu_from_x ? Tensor::empty({c}) : Tensor();
  const kernels::AppliedAffine applied{mutable_ptr_or_null(applied_scale),
                                       mutable_ptr_or_null(applied_shift)};
  if (training) {
    DUET_CHECK(n * hw > 1, "batch_norm_blocked: training needs more than one value per channel, ",
               "got input ", x_in.shape().str());
    kernels::batch_norm_blocked_forward_train(
        n, c, hw, x.data<float>(), ptr_or_null(weight), ptr_or_null(bias), eps, momentum,
        running_mean.defined() ? running_mean.data<float>() : nullptr,
        running_var.defined() ? running_var.data<float>() : nullptr, y.data<float>(),
        mean.data<float>(), invstd.data<float>(), kernel_tail, applied);
  } else {
    DUET_CHECK(running_mean.defined() && running_var.defined(),
               "batch_norm_blocked: eval mode needs running statistics");
    kernels::batch_norm_blocked_forward_eval(n, c, hw, x.data<float>(), ptr_or_null(weight),
                                             ptr_or_null(bias), running_mean.data<float>(),
                                             running_var.data<float>(), eps, y.data<float>(),
                                             kernel_tail, applied);
    mean = running_mean.clone();
    for (int64_t i = 0; i < c; ++i)
      invstd.data<float>()[i] = 1.0f / std::sqrt(running_var.data<float>()[i] + eps);
  }
  const bool has_w = weight.defined(), has_b = bias.defined(), relu = tail.relu;
  const bool need_params = autograd::requires_grad(weight) || autograd::requires_grad(bias);
  autograd::record(
      y, "batch_norm_blocked", {x_in, weight, bias, tail.residual},
      [x = autograd::detached(x), w = autograd::detached(weight), mean, invstd, n, c, hw, training,
       has_w, has_b, need_params, applied_scale, applied_shift,
       y_out = relu && !relu_from_x ? autograd::detached(y) : Tensor()](const Tensor& g_in) {
        Tensor g = contiguous(g_in);
        Tensor dx = Tensor::empty(x.shape());
        Tensor dgamma = Tensor::empty({c}), dbeta = Tensor::empty({c});
        // With a residual, the ReLU's gradient mask comes from the output (y > 0 where it
        // passed) and the kernel hands back the masked gradient for the residual.
        Tensor masked = y_out.defined() ? Tensor::empty(g.shape()) : Tensor();
        kernels::ReluGradMask mask{ptr_or_null(y_out), mutable_ptr_or_null(masked),
                                   ptr_or_null(applied_scale), ptr_or_null(applied_shift)};
        kernels::batch_norm_blocked_backward(
            n, c, hw, x.data<float>(), g.data<float>(), ptr_or_null(w), mean.data<float>(),
            invstd.data<float>(), dx.data<float>(), need_params ? dgamma.data<float>() : nullptr,
            need_params ? dbeta.data<float>() : nullptr, mask, training);
        if (masked.defined()) g = std::move(masked);
        return std::vector<Tensor>{dx, has_w && need_params ? dgamma : Tensor(),
                                   has_b && need_params ? dbeta : Tensor(), g};
      });
  return y;
}

Tensor group_norm_blocked(const Tensor& x_in, int64_t c, int64_t groups, const Tensor& weight,
                          const Tensor& bias, float eps, NormActivation act,
                          const Tensor& shift_in) {
  check_blocked(x_in, c, "group_norm_blocked", "input");
  DUET_CHECK(groups > 0 && c % groups == 0, "group_norm_blocked: ", c, " channels of input ",
             x_in.shape().str(), " are not divisible into ", groups, " groups");
  detail::check_affine(weight, c, "group_norm_blocked", "weight", x_in);
  detail::check_affine(bias, c, "group_norm_blocked", "bias", x_in);
  const int64_t n = x_in.dim(0), hw = x_in.dim(2) * x_in.dim(3);
  if (shift_in.defined())
    detail::check_shapes(shift_in.dtype() == DType::f32 && shift_in.shape() == Shape({n, c}),
                         "group_norm_blocked", "the shift must be F32 [N, channels]", x_in,
                         shift_in);
  const kernels::Activation kact = act == NormActivation::relu   ? kernels::Activation::relu
                                   : act == NormActivation::silu ? kernels::Activation::silu
                                   : act == NormActivation::gelu ? kernels::Activation::gelu
                                                                 : kernels::Activation::none;
  const Tensor x = contiguous(x_in);
  const Tensor shift = shift_in.defined() ? contiguous(shift_in) : Tensor();
  Tensor y = Tensor::empty(x.shape());
  Tensor save_mean = Tensor::empty({n, groups}), save_rstd = Tensor::empty({n, groups});
  kernels::group_norm_blocked_forward(
      n, c, hw, groups, x.data<float>(), ptr_or_null(shift), ptr_or_null(weight), ptr_or_null(bias),
      eps, kact, y.data<float>(), save_mean.data<float>(), save_rstd.data<float>());
  const bool has_w = weight.defined(), has_b = bias.defined();
  const bool need_params = autograd::requires_grad(weight) || autograd::requires_grad(bias);
  const bool need_shift = autograd::requires_grad(shift_in);
  autograd::record(
      y, "group_norm_blocked", {x_in, weight, bias, shift_in},
      [x = autograd::detached(x), shift = autograd::detached(shift), w = autograd::detached(weight),
       b = autograd::detached(bias), save_mean, save_rstd, n, c, hw, groups, kact, has_w, has_b,
       need_params, need_shift](const Tensor& g_in) {
        const Tensor g = contiguous(g_in);
        Tensor dx = Tensor::empty(x.shape());
        Tensor dshift = need_shift ? Tensor::empty({n, c}) : Tensor();
        Tensor dgamma = need_params ? Tensor::empty({c}) : Tensor();
        Tensor dbeta = need_params ? Tensor::empty({c}) : Tensor();
        kernels::group_norm_blocked_backward(
            n, c, hw, groups, x.data<float>(), ptr_or_null(shift), g.data<float>(), ptr_or_null(w),
            ptr_or_null(b), kact, save_mean.data<float>(), save_rstd.data<float>(),
            dx.data<float>(), need_shift ? dshift.data<float>() : nullptr,
            need_params ? dgamma.data<float>() : nullptr,
            need_params ? dbeta.data<float>() : nullptr);
        return std::vector<Tensor>{dx, has_w ? dgamma : Tensor(), has_b ? dbeta : Tensor(), dshift};
      });
  return y;
}

Tensor global_avg_pool2d_blocked(const Tensor& x_in, int64_t channels) {
  check_blocked(x_in, channels, "global_avg_pool2d_blocked", "input");
  const Tensor x = contiguous(x_in);
  const int64_t n = x.dim(0), hw = x.dim(2) * x.dim(3);
  Tensor y = Tensor::empty({n, channels});
  kernels::global_avg_pool_blocked(n, channels, hw, x.data<float>(), y.data<float>());
  autograd::record(y, "global_avg_pool2d_blocked", {x_in},
                   [n, channels, hw, shape = x.shape()](const Tensor& g_in) {
                     const Tensor g = contiguous(g_in);
                     Tensor dx = Tensor::empty(shape);
                     kernels::global_avg_pool_blocked_backward(n, channels, hw, g.data<float>(),
                                                               dx.data<float>());
                     return std::vector<Tensor>{dx};
                   });
  return y;
}

}  // namespace duet::ops
