// Pointwise activations over n contiguous floats, forward and backward, for the ops layer's
// relu/silu/gelu/sigmoid/tanh. The fast path is AVX2 (vector exp/erf) split over threads; the
// scalar meaning of relu/silu/gelu is gemm.h's apply_activation, shared with the GEMM epilogue.
#pragma once

#include <cstdint>

namespace duet::kernels {

// Separate from gemm.h's Activation (which the GEMM epilogue fuses): these are the standalone
// pointwise ops, including the two that no epilogue needs.
enum class ActFn : uint8_t { relu, silu, gelu, sigmoid, tanh };  // gelu: exact erf form

// y = act(x). Overwrites y; y may alias x.
void activation_forward(ActFn act, int64_t n, const float* x, float* y);
// dx = dy * act'(x). relu/silu/gelu read x; sigmoid/tanh read the forward output y when it is
// given (cheaper) and recompute it from x when y is null. Overwrites dx; dx may alias dy.
void activation_backward(ActFn act, int64_t n, const float* x, const float* y, const float* dy,
                         float* dx);

namespace ref {
void activation_forward(ActFn act, int64_t n, const float* x, float* y);
void activation_backward(ActFn act, int64_t n, const float* x, const float* y, const float* dy,
                         float* dx);
}  // namespace ref

}  // namespace duet::kernels
