// The channel-blocked batch norm's passes on 16-lane AVX-512 vectors: a block is one zmm
// (norm_blocked_rows.h).
#include "duet/kernels/simd_lanes_avx512.h"  // first: it brings <immintrin.h>

#include "duet/kernels/norm_blocked_rows.h"

namespace duet::kernels::detail {

const BlockedNormRows& blocked_norm_rows_avx512() {
  static const BlockedNormRows rows = BlockedNormPasses<simd::Lanes16>::table();
  return rows;
}

}  // namespace duet::kernels::detail
