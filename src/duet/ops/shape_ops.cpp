#include "duet/ops/shape_ops.h"

#include <numeric>

#include "duet/autograd/autograd.h"
#include "duet/kernels/concat.h"
#include "duet/kernels/permute.h"
#include "duet/ops/op_util.h"

namespace duet::ops {
namespace {

// Differentiable view: `make` builds the view from x; backward reshapes the gradient to x's
// shape via `undo`, which receives the contiguous gradient.
template <class Make, class Undo>
Tensor view_op(const Tensor& x, const char* name, Make make, Undo undo) {
  Tensor y = make(autograd::detached(x));
  autograd::record(y, name, {x},
                   [undo](const Tensor& g) { return std::vector<Tensor>{undo(contiguous(g))}; });
  return y;
}

}  // namespace

Tensor contiguous(const Tensor& x) {
  if (x.is_contiguous()) return x;
  detail::check_f32(x, "contiguous", "input");
  Tensor y = Tensor::empty(x.shape());
  kernels::strided_copy(x.rank(), x.shape().data(), x.strides().data(), x.data<float>(),
                        y.data<float>());
  // Gradient of a copy is the identity; it flows back to the strided view's own node.
  autograd::record(y, "contiguous", {x}, [](const Tensor& g) { return std::vector<Tensor>{g}; });
  return y;
}

Tensor reshape(const Tensor& x_in, const std::vector<int64_t>& dims) {
  const Tensor x = contiguous(x_in);
  const Shape in_shape = x.shape();
  return view_op(
      x, "reshape", [&](const Tensor& t) { return t.reshape_infer(dims); },
      [in_shape](const Tensor& g) { return g.reshape(in_shape); });
}

Tensor flatten(const Tensor& x, int start_axis) {
  const int a = x.shape().normalize_axis(start_axis);
  std::vector<int64_t> dims;
  for (int d = 0; d < a; ++d) dims.push_back(x.dim(d));
  dims.push_back(-1);
  return reshape(x, dims);
}

Tensor permute(const Tensor& x, const std::vector<int>& order) {
  std::vector<int> inverse(order.size());
  (void)x.permute(order);  // validates the order before it is inverted
  for (size_t i = 0; i < order.size(); ++i)
    inverse[static_cast<size_t>(x.shape().normalize_axis(order[i]))] = static_cast<int>(i);
  return view_op(
      x, "permute", [&](const Tensor& t) { return t.permute(order); },
      [inverse](const Tensor& g) { return contiguous(g.permute(inverse)); });
}

Tensor transpose(const Tensor& x, int a, int b) {
  std::vector<int> order(static_cast<size_t>(x.rank()));
  std::iota(order.begin(), order.end(), 0);
  std::swap(order[static_cast<size_t>(x.shape().normalize_axis(a))],
            order[static_cast<size_t>(x.shape().normalize_axis(b))]);
  return permute(x, order);
}

Tensor slice(const Tensor& x, int axis, int64_t begin, int64_t end) {
  const int a = x.shape().normalize_axis(axis);
  const Shape in_shape = x.shape();
  return view_op(
      x, "slice", [&](const Tensor& t) { return t.slice(a, begin, end); },
      [in_shape, a, begin, end](const Tensor& g) {
        // Scatter the gradient into zeros of the input's shape: one block per outer index.
        Tensor dx = Tensor::zeros(in_shape);
        const int64_t outer =
            std::accumulate(in_shape.data(), in_shape.data() + a, int64_t{1}, std::multiplies<>());
        const int64_t inner = in_shape.numel() / std::max<int64_t>(outer * in_shape[a], 1);
        const int64_t len = end - begin;
        const float* src = g.data<float>();
        float* dst = dx.data<float>();
        for (int64_t o = 0; o < outer; ++o)
          std::copy(src + o * len * inner, src + (o + 1) * len * inner,
                    dst + (o * in_shape[a] + begin) * inner);
        return dx;
      });
}

Tensor concat(const std::vector<Tensor>& xs_in, int axis) {
  DUET_CHECK(!xs_in.empty(), "concat: no inputs");
  const Tensor& first = xs_in.front();
  const int a = first.shape().normalize_axis(axis);
  std::vector<Tensor> xs;
  std::vector<const float*> ptrs;
  std::vector<int64_t> sizes;
  Shape out_shape = first.shape();
  out_shape[a] = 0;
  for (const Tensor& t : xs_in) {
    detail::check_f32(t, "concat", "input");
    bool same = t.rank() == first.rank();
    for (int d = 0; same && d < t.rank(); ++d) same = d == a || t.dim(d) == first.dim(d);
    detail::check_shapes(same, "concat", str("inputs must match except along axis ", a), first, t);
    xs.push_back(contiguous(t));
    ptrs.push_back(xs.back().data<float>());
    sizes.push_back(t.dim(a));
    out_shape[a] += t.dim(a);
  }
  const int64_t outer =
      std::accumulate(out_shape.data(), out_shape.data() + a, int64_t{1}, std::multiplies<>());
  const int64_t inner =
      out_shape.numel() / std::max<int64_t>(outer * std::max<int64_t>(out_shape[a], 1), 1);
  Tensor y = Tensor::empty(out_shape);
  kernels::concat(static_cast<int64_t>(xs.size()), ptrs.data(), sizes.data(), outer, inner,
                  y.data<float>());
  std::vector<Shape> shapes;
  for (const Tensor& t : xs) shapes.push_back(t.shape());
  autograd::record(y, "concat", xs_in, [shapes, sizes, outer, inner](const Tensor& g_in) {
    const Tensor g = contiguous(g_in);
    std::vector<Tensor> grads;
    std::vector<float*> outs;
    for (const Shape& s : shapes) {
      grads.push_back(Tensor::empty(s));
      outs.push_back(grads.back().data<float>());
    }
    kernels::concat_backward(static_cast<int64_t>(shapes.size()), g.data<float>(), sizes.data(),
                             outer, inner, outs.data());
    return grads;
  });
  return y;
}

}  // namespace duet::ops
