// The int8 Winograd F(4x4, 3x3) block with AVX-VNNI: vpdpwssd adds a tile's channel pair of
// int16 products into each int32 lane in one instruction (vpmaddwd and vpaddd on plain AVX2).
// The integer sums are the AVX2 block's; called only when use_avx_vnni() is true.
#include "duet/kernels/conv2d_int8_winograd_blocks.h"

namespace duet::kernels::detail {
namespace {

struct DpwssdDot {
  static __m256i accumulate(__m256i acc, __m256i a, __m256i w) {
    return _mm256_dpwssd_avx_epi32(acc, a, w);
  }
};

}  // namespace

void winograd4_int8_block_vnni(const int16_t* u, const int16_t* vblock, const float* sblock,
                               int64_t C4, const WinogradTiles& tiles, int32_t* acc) {
  int8_winograd::run_block<int8_winograd::Form4<DpwssdDot>>(u, vblock, sblock, C4, tiles, acc);
}

}  // namespace duet::kernels::detail
