// Grad rows of the op harness for the channel-blocked ops (ops/blocked.h). Each case takes
// channel-major inputs through to_blocked, the op, and from_blocked (or the pooled features), so
// the layout moves' gradients are checked on the way; channel counts of 3, 5 and 20 leave padding
// lanes, 16 fills a block and takes the Winograd kernels on an 8 x 8 image.
#include "duet/ops/blocked.h"
#include "duet/ops/pool.h"
#include "duet/ops/shape_ops.h"
#include "grad_check.h"
#include "op_harness.h"

namespace duet::test {
namespace {

using In = const std::vector<Tensor>&;

Register reg([] {
  struct ConvRow {
    const char* name;
    Shape x, w;
    ops::Conv2dOptions o;
    bool bias;
  };
  const ConvRow convs[] = {
      {"blocked/conv2d/3x3-pad1", {2, 3, 6, 5}, {4, 3, 3, 3}, {1, 1, 1, 1}, true},
      {"blocked/conv2d/3x3-stride2", {2, 3, 7, 7}, {5, 3, 3, 3}, {2, 1, 1, 1}, false},
      {"blocked/conv2d/1x1", {2, 20, 4, 4}, {3, 20, 1, 1}, {1, 0, 1, 1}, true},
      {"blocked/conv2d/1x1-stride2", {1, 4, 5, 5}, {20, 4, 1, 1}, {2, 0, 1, 1}, false},
      {"blocked/conv2d/winograd", {1, 16, 8, 8}, {16, 16, 3, 3}, {1, 1, 1, 1}, true},
  };
  for (const ConvRow& row : convs) {
    std::vector<Shape> shapes{row.x, row.w};
    if (row.bias) shapes.push_back({row.w[0]});
    const ops::Conv2dOptions o = row.o;
    const int64_t k = row.w[0];
    add_grad_case_random(row.name, shapes, [o, k](In x) {
      const Tensor y =
          ops::conv2d_blocked(ops::to_blocked(x[0]), x[1], x.size() > 2 ? x[2] : Tensor(), o);
      return ops::from_blocked(y, k);
    });
  }
  // The network's first layer: a channel-major image in, blocked out; dx is channel-major.
  add_grad_case_random("blocked/conv2d/image", {{2, 3, 6, 5}, {4, 3, 3, 3}}, [](In x) {
    return ops::from_blocked(ops::conv2d_blocked(x[0], x[1], Tensor(), {1, 1, 1, 1}), 4);
  });

  // The residual added in the convolution's store.
  add_grad_case_random(
      "blocked/conv2d/residual", {{2, 16, 6, 6}, {20, 16, 3, 3}, {2, 20, 6, 6}}, [](In x) {
        return ops::from_blocked(ops::conv2d_blocked(ops::to_blocked(x[0]), x[1], Tensor(),
                                                     {1, 1, 1, 1}, ops::to_blocked(x[2])),
                                 20);
      });
  // Group norm: 5-channel groups straddle the block boundary at 20 channels; 8 groups of 4 at 32.
  for (const auto& [c, groups] : {std::pair<int64_t, int64_t>{20, 4}, {32, 8}, {3, 1}})
    for (const ops::NormActivation act : {ops::NormActivation::none, ops::NormActivation::silu}) {
      const std::string name = "blocked/group_norm/c" + std::to_string(c) + "g" +
                               std::to_string(groups) +
                               (act == ops::NormActivation::silu ? "/silu" : "");
      add_grad_case_random(name, {{2, c, 3, 4}, {c}, {c}}, [c, groups, act](In x) {
        return ops::from_blocked(
            ops::group_norm_blocked(ops::to_blocked(x[0]), c, groups, x[1], x[2], 1e-5f, act), c);
      });
      add_grad_case_random(
          name + "/shift", {{2, c, 3, 4}, {c}, {c}, {2, c}}, [c, groups, act](In x) {
            return ops::from_blocked(ops::group_norm_blocked(ops::to_blocked(x[0]), c, groups, x[1],
                                                             x[2], 1e-5f, act, x[3]),
                                     c);
          });
    }
  add_grad_case_random("blocked/upsample_nearest2d", {{2, 20, 3, 2}}, [](In x) {
    return ops::from_blocked(ops::upsample_nearest2d(ops::to_blocked(x[0]), 2), 20);
  });
  // Blocked tensors of 16-multiple channel counts concatenate along the block dimension.
  add_grad_case_random("blocked/concat", {{2, 16, 3, 3}, {2, 32, 3, 3}}, [](In x) {
    return ops::from_blocked(ops::concat({ops::to_blocked(x[0]), ops::to_blocked(x[1])}, 1), 48);
  });

  GradCheckOptions relu_kink;
  relu_kink.eps = 1e-3;
  for (int64_t c : {3, 20}) {
    const std::string tag = "/c" + std::to_string(c);
    const Shape xs{4, c, 3, 2};
    auto bn = [c](In x, bool training, bool relu, bool residual) {
      Tensor rm = training ? Tensor::zeros({c}) : Tensor::full({c}, 0.2f);
      Tensor rv = training ? Tensor::ones({c}) : Tensor::full({c}, 0.5f);
      const Tensor r = residual ? ops::to_blocked(x[3]) : Tensor();
      return ops::from_blocked(ops::batch_norm_blocked(ops::to_blocked(x[0]), x[1], x[2], rm, rv,
                                                       training, 0.1f, 1e-5f, {r, relu}),
                               c);
    };
    add_grad_case_random("blocked/batch_norm/train" + tag, {xs, {c}, {c}},
                         [bn](In x) { return bn(x, true, false, false); });
    add_grad_case_random(
        "blocked/batch_norm/train/relu" + tag, {xs, {c}, {c}},
        [bn](In x) { return bn(x, true, true, false); }, relu_kink);
    add_grad_case_random(
        "blocked/batch_norm/train/add_relu" + tag, {xs, {c}, {c}, xs},
        [bn](In x) { return bn(x, true, true, true); }, relu_kink);
    add_grad_case_random("blocked/batch_norm/eval" + tag, {xs, {c}, {c}},
                         [bn](In x) { return bn(x, false, false, false); });
    add_grad_case_random(
        "blocked/batch_norm/eval/add_relu" + tag, {xs, {c}, {c}, xs},
        [bn](In x) { return bn(x, false, true, true); }, relu_kink);
    add_grad_case_random("blocked/global_avg_pool2d" + tag, {{2, c, 3, 3}}, [c](In x) {
      return ops::global_avg_pool2d_blocked(ops::to_blocked(x[0]), c);
    });
  }
});

}  // namespace
}  // namespace duet::test
