// Grad rows of the op harness: products (matmul, bmm, linear) and conv2d in its variants.
#include "duet/ops/conv.h"
#include "duet/ops/conv_fused.h"
#include "duet/ops/linear.h"
#include "grad_check.h"
#include "op_harness.h"

namespace duet::test {
namespace {

using In = const std::vector<Tensor>&;

Register reg([] {
  add_grad_case_random("matmul/3x5x4", {{3, 5}, {5, 4}},
                       [](In x) { return ops::matmul(x[0], x[1]); });
  add_grad_case_random("matmul/batched-lead/2x3x7x5", {{2, 3, 7}, {7, 5}},
                       [](In x) { return ops::matmul(x[0], x[1]); });
  add_grad_case_random("bmm/2x3x4x5", {{2, 3, 4}, {2, 4, 5}},
                       [](In x) { return ops::bmm(x[0], x[1]); });
  add_grad_case_random("linear/bias", {{4, 7}, {5, 7}, {5}},
                       [](In x) { return ops::linear(x[0], x[1], x[2]); });
  add_grad_case_random("linear/3d-nobias", {{2, 3, 6}, {4, 6}},
                       [](In x) { return ops::linear(x[0], x[1], Tensor()); });

  struct ConvRow {
    const char* name;
    Shape x, w;
    ops::Conv2dOptions o;
    bool bias;
  };
  const ConvRow rows[] = {
      {"conv2d/3x3-pad1", {2, 3, 6, 5}, {4, 3, 3, 3}, {1, 1, 1, 1}, true},
      {"conv2d/3x3-stride2", {2, 3, 7, 7}, {5, 3, 3, 3}, {2, 1, 1, 1}, false},
      {"conv2d/1x1", {2, 7, 4, 4}, {3, 7, 1, 1}, {1, 0, 1, 1}, true},
      {"conv2d/1x1-stride2", {1, 4, 5, 5}, {6, 4, 1, 1}, {2, 0, 1, 1}, false},
      {"conv2d/dilation2", {1, 2, 7, 7}, {3, 2, 3, 3}, {1, 2, 2, 1}, true},
      {"conv2d/groups2", {2, 4, 5, 5}, {6, 2, 3, 3}, {1, 1, 1, 2}, true},
      {"conv2d/depthwise", {2, 3, 5, 6}, {3, 1, 3, 3}, {1, 1, 1, 3}, true},
      {"conv2d/5x5", {1, 2, 6, 6}, {2, 2, 5, 5}, {1, 2, 1, 1}, false},
  };
  for (const auto& r : rows) {
    std::vector<Shape> shapes{r.x, r.w};
    if (r.bias) shapes.push_back({r.w[0]});
    const auto o = r.o;
    add_grad_case_random(r.name, shapes, [o](In x) {
      return ops::conv2d(x[0], x[1], x.size() > 2 ? x[2] : Tensor(), o);
    });
  }

  // conv2d_add: the convolution with a per-image bias [N, K] and a residual added in its store
  // (every input differentiated; without either addend it is conv2d).
  struct ConvAddRow {
    const char* name;
    Shape x, w;
    ops::Conv2dOptions o;
    bool image_bias, residual;
  };
  const ConvAddRow add_rows[] = {
      {"conv2d_add/3x3-pad1-both", {2, 3, 6, 5}, {4, 3, 3, 3}, {1, 1, 1, 1}, true, true},
      {"conv2d_add/3x3-pad1-image-bias", {2, 4, 5, 5}, {3, 4, 3, 3}, {1, 1, 1, 1}, true, false},
      {"conv2d_add/1x1-residual", {2, 5, 4, 3}, {6, 5, 1, 1}, {1, 0, 1, 1}, false, true},
      {"conv2d_add/3x3-stride2-both", {1, 3, 7, 7}, {2, 3, 3, 3}, {2, 1, 1, 1}, true, true},
  };
  for (const auto& r : add_rows) {
    const ops::Conv2dOptions o = r.o;
    const int64_t n = r.x[0], k = r.w[0];
    const int64_t p = (r.x[2] + 2 * o.padding - r.w[2]) / o.stride + 1;
    const int64_t q = (r.x[3] + 2 * o.padding - r.w[3]) / o.stride + 1;
    std::vector<Shape> shapes{r.x, r.w, {k}};
    if (r.image_bias) shapes.push_back({n, k});
    if (r.residual) shapes.push_back({n, k, p, q});
    const bool image_bias = r.image_bias, residual = r.residual;
    add_grad_case_random(r.name, shapes, [o, image_bias, residual](In x) {
      size_t at = 3;
      const Tensor ib = image_bias ? x[at++] : Tensor();
      const Tensor res = residual ? x[at++] : Tensor();
      return ops::conv2d_add(x[0], x[1], x[2], o, ib, res);
    });
  }
});

}  // namespace
}  // namespace duet::test
