// The int8 convolution's micro-kernel with AVX-VNNI: vpdpbusd adds four u8 x s8 products into
// each int32 lane in one instruction (the three of the AVX2 path: vpmaddubsw, vpmaddwd, vpaddd).
// Integer results are identical to the AVX2 and reference paths. Called only when
// use_avx_vnni() is true.
#include "duet/kernels/conv2d_int8.h"
#include "duet/kernels/conv2d_int8_block.h"

namespace duet::kernels::detail {
namespace {

struct VnniDot {
  static __m256i accumulate(__m256i acc, __m256i a, __m256i w) {
    return _mm256_dpbusd_avx_epi32(acc, a, w);
  }
};

}  // namespace

void int8_block_vnni(const uint8_t* image, const int64_t* base, int64_t count,
                     const int32_t* tap_offsets, int64_t groups4, const int8_t* wblock,
                     int32_t* acc) {
  int8_block_rows<VnniDot>(image, base, count, tap_offsets, groups4, wblock, acc);
}

}  // namespace duet::kernels::detail
