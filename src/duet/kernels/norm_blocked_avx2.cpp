// The channel-blocked batch norm's passes on 8-lane AVX2 vectors (norm_blocked_rows.h).
#include "duet/kernels/simd_lanes_avx2.h"  // first: it brings <immintrin.h>

#include "duet/kernels/norm_blocked_rows.h"

namespace duet::kernels::detail {

const BlockedNormRows& blocked_norm_rows_avx2() {
  static const BlockedNormRows rows = BlockedNormPasses<simd::Lanes8>::table();
  return rows;
}

}  // namespace duet::kernels::detail
