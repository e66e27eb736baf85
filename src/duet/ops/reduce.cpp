#include "duet/ops/reduce.h"

#include "duet/autograd/autograd.h"
#include "duet/kernels/eltwise.h"
#include "duet/kernels/layout.h"
#include "duet/kernels/reduce.h"
#include "duet/ops/op_util.h"

namespace duet::ops {
namespace {

// Sum or mean over `axes`; backward broadcasts the gradient back (scaled by 1/count for mean).
Tensor reduce(const Tensor& x_in, const std::vector<int>& axes, bool keepdim, bool mean,
              const char* name) {
  detail::check_f32(x_in, name, "input");
  const Tensor x = contiguous(x_in);
  uint32_t mask = 0;
  for (int a : axes) mask |= 1u << x.shape().normalize_axis(a);
  if (axes.empty()) mask = (1u << x.rank()) - 1;  // no axes: reduce everything
  std::vector<int64_t> kept, kept_keepdim;
  int64_t count = 1;
  for (int d = 0; d < x.rank(); ++d) {
    if (mask & (1u << d)) {
      count *= x.dim(d);
      kept_keepdim.push_back(1);
    } else {
      kept.push_back(x.dim(d));
      kept_keepdim.push_back(x.dim(d));
    }
  }
  const Shape keep_shape(kept_keepdim);
  Tensor y = Tensor::empty(keepdim ? keep_shape : Shape(kept));
  (mean ? kernels::reduce_mean : kernels::reduce_sum)(x.rank(), x.shape().data(), mask,
                                                      x.data<float>(), y.data<float>());
  const float scale = mean ? 1.0f / static_cast<float>(std::max<int64_t>(count, 1)) : 1.0f;
  autograd::record(y, name, {x_in}, [keep_shape, shape = x.shape(), scale](const Tensor& g_in) {
    const Tensor g = contiguous(g_in);
    Tensor dx = Tensor::empty(shape);
    int64_t gs[kMaxDims], zero[kMaxDims] = {};
    kernels::broadcast_strides(keep_shape.rank(), keep_shape.data(), shape.rank(), shape.data(),
                               gs);
    // dx = g (broadcast) * scale, as a binary op against a stride-0 scalar.
    kernels::binary(kernels::BinaryOp::mul, shape.rank(), shape.data(), g.data<float>(), gs, &scale,
                    zero, dx.data<float>());
    return std::vector<Tensor>{dx};
  });
  return y;
}

}  // namespace

Tensor sum(const Tensor& x, const std::vector<int>& axes, bool keepdim) {
  return reduce(x, axes, keepdim, false, "sum");
}
Tensor mean(const Tensor& x, const std::vector<int>& axes, bool keepdim) {
  return reduce(x, axes, keepdim, true, "mean");
}
Tensor sum_all(const Tensor& x) {
  return reduce(x, {}, false, false, "sum");
}
Tensor mean_all(const Tensor& x) {
  return reduce(x, {}, false, true, "mean");
}

}  // namespace duet::ops
