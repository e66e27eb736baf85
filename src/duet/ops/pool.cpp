#include "duet/ops/pool.h"

#include "duet/autograd/autograd.h"
#include "duet/kernels/pool.h"
#include "duet/kernels/upsample.h"
#include "duet/ops/blocked.h"
#include "duet/ops/op_util.h"

namespace duet::ops {
namespace {

kernels::Pool2dShape pool_shape(const Tensor& x, int64_t kernel, int64_t stride, int64_t padding,
                                const char* op) {
  detail::check_f32(x, op, "input");
  DUET_CHECK(x.rank() == 4, op, ": expected input [N, C, H, W], got ", x.shape().str());
  DUET_CHECK(kernel >= 1 && stride >= 1 && padding >= 0 && 2 * padding <= kernel, op, ": kernel ",
             kernel, ", stride ", stride, ", padding ", padding,
             " (need kernel >= 1, stride >= 1, 0 <= padding <= kernel / 2)");
  kernels::Pool2dShape s;
  s.batch = x.dim(0);
  s.channels = x.dim(1);
  s.in_h = x.dim(2);
  s.in_w = x.dim(3);
  s.kernel_h = s.kernel_w = kernel;
  s.stride_h = s.stride_w = stride;
  s.pad_h = s.pad_w = padding;
  DUET_CHECK(s.out_h() >= 1 && s.out_w() >= 1, op, ": input ", x.shape().str(),
             " is smaller than the kernel ", kernel);
  return s;
}

}  // namespace

Tensor max_pool2d(const Tensor& x_in, int64_t kernel, int64_t stride, int64_t padding) {
  const auto s = pool_shape(x_in, kernel, stride, padding, "max_pool2d");
  const Tensor x = contiguous(x_in);
  Tensor y = Tensor::empty({s.batch, s.channels, s.out_h(), s.out_w()});
  Tensor indices = Tensor::empty(y.shape(), DType::i32);
  kernels::max_pool2d_forward(s, x.data<float>(), y.data<float>(), indices.data<int32_t>());
  autograd::record(y, "max_pool2d", {x_in}, [s, indices, shape = x.shape()](const Tensor& g_in) {
    const Tensor g = contiguous(g_in);
    Tensor dx = Tensor::empty(shape);
    kernels::max_pool2d_backward(s, g.data<float>(), indices.data<int32_t>(), dx.data<float>());
    return std::vector<Tensor>{dx};
  });
  return y;
}

Tensor avg_pool2d(const Tensor& x_in, int64_t kernel, int64_t stride, int64_t padding) {
  const auto s = pool_shape(x_in, kernel, stride, padding, "avg_pool2d");
  const Tensor x = contiguous(x_in);
  Tensor y = Tensor::empty({s.batch, s.channels, s.out_h(), s.out_w()});
  kernels::avg_pool2d_forward(s, x.data<float>(), y.data<float>());
  autograd::record(y, "avg_pool2d", {x_in}, [s, shape = x.shape()](const Tensor& g_in) {
    const Tensor g = contiguous(g_in);
    Tensor dx = Tensor::empty(shape);
    kernels::avg_pool2d_backward(s, g.data<float>(), dx.data<float>());
    return std::vector<Tensor>{dx};
  });
  return y;
}

Tensor global_avg_pool2d(const Tensor& x_in) {
  detail::check_f32(x_in, "global_avg_pool2d", "input");
  DUET_CHECK(x_in.rank() == 4, "global_avg_pool2d: expected input [N, C, H, W], got ",
             x_in.shape().str());
  const Tensor x = contiguous(x_in);
  const int64_t n = x.dim(0), c = x.dim(1), hw = x.dim(2) * x.dim(3);
  Tensor y = Tensor::empty({n, c});
  kernels::global_avg_pool_forward(n, c, hw, x.data<float>(), y.data<float>());
  autograd::record(y, "global_avg_pool2d", {x_in},
                   [n, c, hw, shape = x.shape()](const Tensor& g_in) {
                     const Tensor g = contiguous(g_in);
                     Tensor dx = Tensor::empty(shape);
                     kernels::global_avg_pool_backward(n, c, hw, g.data<float>(), dx.data<float>());
                     return std::vector<Tensor>{dx};
                   });
  return y;
}

Tensor upsample_nearest2d(const Tensor& x_in, int64_t factor) {
  detail::check_f32(x_in, "upsample_nearest2d", "input");
  const bool blocked = is_blocked(x_in);
  DUET_CHECK(x_in.rank() == 4 || blocked,
             "upsample_nearest2d: expected input [N, C, H, W] or channel-blocked, got ",
             x_in.shape().str());
  DUET_CHECK(factor >= 1, "upsample_nearest2d: factor must be >= 1, got ", factor);
  const Tensor x = contiguous(x_in);
  const int64_t n = x.dim(0), c = x.dim(1), h = x.dim(2), w = x.dim(3);
  Shape out_shape = x.shape();
  out_shape[2] = h * factor;
  out_shape[3] = w * factor;
  Tensor y = Tensor::empty(out_shape);
  if (blocked)  // c counts the blocks here: planes of 16-lane pixels
    kernels::upsample_nearest2d_blocked_forward(n * c, h, w, factor, factor, x.data<float>(),
                                                y.data<float>());
  else
    kernels::upsample_nearest2d_forward(n, c, h, w, factor, factor, x.data<float>(),
                                        y.data<float>());
  autograd::record(y, "upsample_nearest2d", {x_in},
                   [n, c, h, w, factor, blocked, shape = x.shape()](const Tensor& g_in) {
                     const Tensor g = contiguous(g_in);
                     Tensor dx = Tensor::empty(shape);
                     if (blocked)
                       kernels::upsample_nearest2d_blocked_backward(
                           n * c, h, w, factor, factor, g.data<float>(), dx.data<float>());
                     else
                       kernels::upsample_nearest2d_backward(n, c, h, w, factor, factor,
                                                            g.data<float>(), dx.data<float>());
                     return std::vector<Tensor>{dx};
                   });
  return y;
}

}  // namespace duet::ops
