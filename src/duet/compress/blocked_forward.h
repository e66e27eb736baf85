// Channel-blocked inference through a folded body (kernels/conv2d_blocked.h): a chain of
// FusedConvs keeps its activations blocked from the first conv to the global pooling, so no
// layer pays the transposing store of a channel-major output. One mechanism for every folded
// family whose body is made of FusedConv, FusedBasicBlock and Sequential (ResNet-20/32/56,
// RepVGG), float or int8; a body with anything else (max-pool stems, ShuffleNet units) or a
// calibration hook runs channel-major as before.
#pragma once

#include "duet/nn/module.h"

namespace duet::compress {

// Whether every layer of m can run on blocked activations.
bool runs_blocked(const nn::Module& m);

// m's forward on channel-blocked activations: x is blocked [N, ceil(C / 16), H, W, 16] or a plain
// [N, C, H, W] image batch; returns blocked. Requires runs_blocked(m).
Tensor forward_blocked(nn::Module& m, const Tensor& x);

// The pooled features of a blocked body: ops::global_avg_pool2d_blocked (ops/blocked.h).

}  // namespace duet::compress
