#include "duet/compress/blocked_forward.h"

#include "duet/compress/fused_blocks.h"
#include "duet/compress/fused_conv.h"
#include "duet/kernels/conv2d_blocked.h"
#include "duet/nn/layers.h"
#include "duet/ops/shape_ops.h"
#include "duet/tensor/error.h"

namespace duet::compress {
namespace {

// The identity shortcut of a block whose input is still a plain image batch.
Tensor as_blocked(const Tensor& x) {
  if (x.rank() == 5) return x;
  DUET_CHECK(x.rank() == 4 && x.dtype() == DType::f32, "forward_blocked: expected an F32 [N, C, ",
             "H, W] or blocked input, got ", x.shape().str());
  const Tensor xc = ops::contiguous(x);
  const int64_t n = x.dim(0), c = x.dim(1), h = x.dim(2), w = x.dim(3);
  Tensor y = Tensor::empty({n, kernels::channel_blocks(c), h, w, kernels::kChannelBlock});
  kernels::to_channel_blocked(n, c, h * w, xc.data<float>(), y.data<float>());
  return y;
}

}  // namespace

bool runs_blocked(const nn::Module& m) {
  if (const auto* conv = dynamic_cast<const FusedConv*>(&m)) return conv->runs_blocked();
  if (const auto* block = dynamic_cast<const FusedBasicBlock*>(&m))
    return block->conv1->runs_blocked() && block->conv2->runs_blocked() &&
           (!block->shortcut || block->shortcut->runs_blocked());
  if (dynamic_cast<const nn::Sequential*>(&m)) {
    for (const auto& child : m.children())
      if (!runs_blocked(*child.second)) return false;
    return true;
  }
  return false;
}

Tensor forward_blocked(nn::Module& m, const Tensor& x) {
  if (auto* conv = dynamic_cast<FusedConv*>(&m)) return conv->forward_blocked(x);
  if (auto* block = dynamic_cast<FusedBasicBlock*>(&m)) {
    const Tensor identity = block->shortcut ? block->shortcut->forward_blocked(x) : as_blocked(x);
    return block->conv2->forward_blocked(block->conv1->forward_blocked(x), identity);
  }
  if (dynamic_cast<nn::Sequential*>(&m)) {
    Tensor y = x;
    for (const auto& child : m.children()) y = forward_blocked(*child.second, y);
    return y;
  }
  fail("forward_blocked: a ", m.type_name(), " has no channel-blocked form (check runs_blocked)");
}

Tensor global_avg_pool_blocked(const Tensor& x, int64_t channels) {
  DUET_CHECK(
      x.rank() == 5 && x.dtype() == DType::f32 && x.dim(1) == kernels::channel_blocks(channels) &&
          x.dim(4) == kernels::kChannelBlock,
      "global_avg_pool_blocked: expected blocked F32 [N, ", kernels::channel_blocks(channels),
      ", H, W, ", kernels::kChannelBlock, "] for ", channels, " channels, got ", x.shape().str());
  const Tensor xc = ops::contiguous(x);
  Tensor y = Tensor::empty({x.dim(0), channels});
  kernels::global_avg_pool_blocked(x.dim(0), channels, x.dim(2) * x.dim(3), xc.data<float>(),
                                   y.data<float>());
  return y;
}

}  // namespace duet::compress
