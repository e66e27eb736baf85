// The direct gradients of channel-blocked convolutions on 8-lane AVX2 vectors
// (conv2d_blocked_grad_rows.h).
#include "duet/kernels/simd_lanes_avx2.h"  // first: it brings <immintrin.h>

#include "duet/kernels/conv2d_blocked_grad_rows.h"

namespace duet::kernels::detail {

const BlockedConvGradRows& blocked_conv_grad_rows_avx2() {
  static const BlockedConvGradRows rows = BlockedConvGrads<simd::Lanes8>::table();
  return rows;
}

}  // namespace duet::kernels::detail
