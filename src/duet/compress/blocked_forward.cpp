#include "duet/compress/blocked_forward.h"

#include "duet/compress/fused_blocks.h"
#include "duet/compress/fused_conv.h"
#include "duet/nn/layers.h"
#include "duet/ops/blocked.h"
#include "duet/tensor/error.h"

namespace duet::compress {

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
    const Tensor identity = block->shortcut      ? block->shortcut->forward_blocked(x)
                            : ops::is_blocked(x) ? x
                                                 : ops::to_blocked(x);
    return block->conv2->forward_blocked(block->conv1->forward_blocked(x), identity);
  }
  if (dynamic_cast<nn::Sequential*>(&m)) {
    Tensor y = x;
    for (const auto& child : m.children()) y = forward_blocked(*child.second, y);
    return y;
  }
  fail("forward_blocked: a ", m.type_name(), " has no channel-blocked form (check runs_blocked)");
}

}  // namespace duet::compress
