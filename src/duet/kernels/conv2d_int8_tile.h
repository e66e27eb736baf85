// The micro-kernels of the int8 convolution (conv2d_int8.h), one per instruction set, all with
// the same contract. Declarations only, so that the AVX-512 file includes no shared inline code.
#pragma once

#include <cstdint>

namespace duet::kernels::detail {

// acc[j * 16 + k] (int32) for `count` output pixels whose tap-(0, 0) bytes start at
// image + base[j], over every tap group (offsets tap_offsets[g], bytes), for one 16-channel
// block of packed weights. count <= 64.
void int8_block_avx2(const uint8_t* image, const int64_t* base, int64_t count,
                     const int32_t* tap_offsets, int64_t groups4, const int8_t* wblock,
                     int32_t* acc);
void int8_block_vnni(const uint8_t* image, const int64_t* base, int64_t count,
                     const int32_t* tap_offsets, int64_t groups4, const int8_t* wblock,
                     int32_t* acc);
// AVX-512 VNNI (zmm vpdpbusd); only when use_avx512_vnni().
void int8_block_avx512vnni(const uint8_t* image, const int64_t* base, int64_t count,
                           const int32_t* tap_offsets, int64_t groups4, const int8_t* wblock,
                           int32_t* acc);
void int8_block_generic(const uint8_t* image, const int64_t* base, int64_t count,
                        const int32_t* tap_offsets, int64_t groups4, const int8_t* wblock,
                        int32_t* acc);
}  // namespace duet::kernels::detail
