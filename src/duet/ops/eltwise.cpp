#include "duet/ops/eltwise.h"

#include "duet/autograd/autograd.h"
#include "duet/kernels/eltwise.h"
#include "duet/kernels/layout.h"
#include "duet/kernels/reduce.h"
#include "duet/ops/op_util.h"

namespace duet::ops {
namespace {

using kernels::BinaryOp;

// out = a (op) b with broadcasting; a and b contiguous.
Tensor binary_raw(BinaryOp op, const Tensor& a, const Tensor& b, const Shape& out_shape) {
  Tensor out = Tensor::empty(out_shape);
  int64_t sa[kMaxDims], sb[kMaxDims];
  kernels::broadcast_strides(a.rank(), a.shape().data(), out_shape.rank(), out_shape.data(), sa);
  kernels::broadcast_strides(b.rank(), b.shape().data(), out_shape.rank(), out_shape.data(), sb);
  kernels::binary(op, out_shape.rank(), out_shape.data(), a.data<float>(), sa, b.data<float>(), sb,
                  out.data<float>());
  return out;
}

// Sums a gradient of the broadcast shape back to an operand's shape (identity when equal).
Tensor reduce_to(const Tensor& g, const Shape& shape) {
  if (g.shape() == shape) return g;
  Tensor out = Tensor::empty(shape);
  kernels::reduce_to_shape(g.rank(), g.shape().data(), g.data<float>(), shape.rank(), shape.data(),
                           out.data<float>());
  return out;
}

Tensor negate(const Tensor& g) {
  Tensor out = Tensor::empty(g.shape());
  kernels::axpby(g.numel(), -1.0f, g.data<float>(), 0.0f, out.data<float>());
  return out;
}

Tensor binary(BinaryOp op, const Tensor& a_in, const Tensor& b_in) {
  const char* name = kernels::binary_op_name(op);
  detail::check_f32(a_in, name, "a");
  detail::check_f32(b_in, name, "b");
  const Shape out_shape = broadcast_shape(a_in.shape(), b_in.shape(), name);
  const Tensor a = contiguous(a_in), b = contiguous(b_in);
  Tensor y = binary_raw(op, a, b, out_shape);
  autograd::record(
      y, name, {a_in, b_in},
      [op, a = autograd::detached(a), b = autograd::detached(b), out_shape](const Tensor& g_in) {
        const Tensor g = contiguous(g_in);
        switch (op) {
          case BinaryOp::add:
            return std::vector<Tensor>{reduce_to(g, a.shape()), reduce_to(g, b.shape())};
          case BinaryOp::sub:
            return std::vector<Tensor>{reduce_to(g, a.shape()), negate(reduce_to(g, b.shape()))};
          case BinaryOp::mul:
            return std::vector<Tensor>{
                reduce_to(binary_raw(BinaryOp::mul, g, b, out_shape), a.shape()),
                reduce_to(binary_raw(BinaryOp::mul, g, a, out_shape), b.shape())};
          case BinaryOp::div: {
            // d(a/b)/db = -(a/b) / b: reuse g * (a / b) / b.
            const Tensor ga = binary_raw(BinaryOp::div, g, b, out_shape);
            const Tensor q = binary_raw(BinaryOp::div, a, b, out_shape);
            const Tensor gb = binary_raw(BinaryOp::mul, ga, q, out_shape);
            return std::vector<Tensor>{reduce_to(ga, a.shape()), negate(reduce_to(gb, b.shape()))};
          }
        }
        return std::vector<Tensor>{};
      });
  return y;
}

// y = alpha * x + beta, elementwise.
Tensor affine_scalar(const Tensor& x_in, float alpha, float beta, const char* name) {
  detail::check_f32(x_in, name, "input");
  const Tensor x = contiguous(x_in);
  Tensor y = Tensor::empty(x.shape());
  kernels::fill(y.numel(), beta, y.data<float>());
  kernels::axpby(y.numel(), alpha, x.data<float>(), 1.0f, y.data<float>());
  autograd::record(y, name, {x_in}, [alpha](const Tensor& g_in) {
    const Tensor g = contiguous(g_in);
    Tensor dx = Tensor::empty(g.shape());
    kernels::axpby(g.numel(), alpha, g.data<float>(), 0.0f, dx.data<float>());
    return std::vector<Tensor>{dx};
  });
  return y;
}

}  // namespace

Shape broadcast_shape(const Shape& a, const Shape& b, const char* op) {
  int64_t out[kMaxDims];
  int rank = 0;
  try {
    rank = kernels::broadcast_shapes(a.rank(), a.data(), b.rank(), b.data(), out);
  } catch (const Error&) {
    fail(op, ": shapes ", a.str(), " and ", b.str(), " do not broadcast");
  }
  return Shape(std::vector<int64_t>(out, out + rank));
}

Tensor add(const Tensor& a, const Tensor& b) {
  return binary(BinaryOp::add, a, b);
}
Tensor sub(const Tensor& a, const Tensor& b) {
  return binary(BinaryOp::sub, a, b);
}
Tensor mul(const Tensor& a, const Tensor& b) {
  return binary(BinaryOp::mul, a, b);
}
Tensor div(const Tensor& a, const Tensor& b) {
  return binary(BinaryOp::div, a, b);
}
Tensor add_scalar(const Tensor& a, float s) {
  return affine_scalar(a, 1.0f, s, "add_scalar");
}
Tensor mul_scalar(const Tensor& a, float s) {
  return affine_scalar(a, s, 0.0f, "mul_scalar");
}

}  // namespace duet::ops
