// Single-precision GEMM with a fused epilogue, the workhorse under convolutions, linear layers
// and attention. Row-major: C[M,N] = epilogue(alpha * op(A)[M,K] * op(B)[K,N] + beta * C).
// The fast path packs panels and runs an AVX-512 or AVX2/FMA micro-kernel (portable fallback
// when active_isa() is generic); it uses all threads unless called inside a parallel region, where
// it runs serially so callers can parallelise over images or heads themselves.
#pragma once

#include <cstdint>

namespace duet::kernels {

enum class Trans : uint8_t { no, yes };
enum class Activation : uint8_t { none, relu, silu, gelu };  // gelu: exact erf form (PyTorch's)
enum class ChannelAxis : uint8_t { row, col };  // which index of C is the channel: M (conv) or N

// Applied per element after the product, in this order:
//   y = y * scale[c] + shift[c];  y += bias[c];  y += residual[i, j];  y = act(y)
// Null pointers skip a stage; c is the row index (axis row) or column index (axis col).
struct Epilogue {
  ChannelAxis axis = ChannelAxis::row;
  const float* scale = nullptr;
  const float* shift = nullptr;
  const float* bias = nullptr;
  const float* residual = nullptr;  // M x N with leading dimension ld_residual
  int64_t ld_residual = 0;
  Activation act = Activation::none;

  bool empty() const { return !scale && !shift && !bias && !residual && act == Activation::none; }
};

void sgemm(Trans trans_a, Trans trans_b, int64_t m, int64_t n, int64_t k, float alpha,
           const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
           int64_t ldc, const Epilogue& epilogue = {});

// The scalar activation every kernel agrees on (epilogues, activation kernels, references).
float apply_activation(Activation act, float x);

namespace ref {
// Plain triple loop in double accumulation; the twin the fast path is tested against.
void sgemm(Trans trans_a, Trans trans_b, int64_t m, int64_t n, int64_t k, float alpha,
           const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
           int64_t ldc, const Epilogue& epilogue = {});
}  // namespace ref

}  // namespace duet::kernels
