// The direct gradients of channel-blocked convolutions on 16-lane AVX-512 vectors
// (conv2d_blocked_grad_rows.h).
#include "duet/kernels/simd_lanes_avx512.h"  // first: it brings <immintrin.h>

#include "duet/kernels/conv2d_blocked_grad_rows.h"

namespace duet::kernels::detail {

const BlockedConvGradRows& blocked_conv_grad_rows_avx512() {
  static const BlockedConvGradRows rows = BlockedConvGrads<simd::Lanes16>::table();
  return rows;
}

}  // namespace duet::kernels::detail
