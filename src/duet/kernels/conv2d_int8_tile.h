// The micro-kernels of the int8 convolution (conv2d_int8.h), one per instruction set, all with
// the same contract. Declarations only, so that the AVX-512 file includes no shared inline code.
#pragma once

#include <cstdint>

namespace duet::kernels {
struct Epilogue;
}

namespace duet::kernels::detail {

// acc[j * 16 + k] (int32) for `count` output pixels whose tap-(0, 0) bytes start at
// image + base[j], over every tap group (offsets tap_offsets[g], bytes), for one 16-channel
// block of packed weights. count <= 64.
void int8_block_avx2(const uint8_t* image, const int64_t* base, int64_t count,
                     const int32_t* tap_offsets, int64_t groups4, const int8_t* wblock,
                     int32_t* acc);
// The same with two tap groups summed in int16 before widening: exact only for weights within
// +-kPairableWeightMax (Int8ConvWeights::taps_pair_in_int16).
void int8_block_avx2_paired(const uint8_t* image, const int64_t* base, int64_t count,
                            const int32_t* tap_offsets, int64_t groups4, const int8_t* wblock,
                            int32_t* acc);
void int8_block_vnni(const uint8_t* image, const int64_t* base, int64_t count,
                     const int32_t* tap_offsets, int64_t groups4, const int8_t* wblock,
                     int32_t* acc);
// AVX-512 VNNI (zmm vpdpbusd); only when use_avx512_vnni().
void int8_block_avx512vnni(const uint8_t* image, const int64_t* base, int64_t count,
                           const int32_t* tap_offsets, int64_t groups4, const int8_t* wblock,
                           int32_t* acc);
// The same for an image of 16-byte pixels (channels4 == 16, which the caller guarantees; other
// widths give wrong sums): pixels in runs 16 bytes apart (a row at stride 1) go four at a time
// into one vector. Same integers as int8_block_avx512vnni.
void int8_block_quads_avx512vnni(const uint8_t* image, const int64_t* base, int64_t count,
                                 const int32_t* tap_offsets, int64_t groups4, const int8_t* wblock,
                                 int32_t* acc);
// Two blocks at once (kb and kb + 1, whose packed weights follow at wblock + groups4 * 64), the
// sums of block kb + t into acc_t: the same integers as two int8_block_avx512vnni calls.
void int8_block_pair_avx512vnni(const uint8_t* image, const int64_t* base, int64_t count,
                                const int32_t* tap_offsets, int64_t groups4, const int8_t* wblock,
                                int32_t* acc0, int32_t* acc1);
void int8_block_generic(const uint8_t* image, const int64_t* base, int64_t count,
                        const int32_t* tap_offsets, int64_t groups4, const int8_t* wblock,
                        int32_t* acc);

// AVX-512 (conv2d_int8_avx512.cpp), channel-blocked activations, only when
// isa_at_least(Isa::avx512). The interior of quantize_blocked_to_padded_nhwc for `blocks` whole
// 16-channel blocks (the caller fills the padding and quantises a partial last block).
void quantize_blocked_interior_avx512(const float* x, int64_t blocks, int64_t h, int64_t w,
                                      int64_t pad_h, int64_t pad_w, int64_t channels4,
                                      float inv_scale, int32_t zero_point, uint8_t* out);
// int8_store_blocked_avx2's contract; false (nothing written) for activations other than none
// and relu, which the AVX2 store then handles.
bool int8_store_blocked_avx512(const int32_t* acc, int64_t count, int64_t kn,
                               const int32_t* zero_point_sums, const Epilogue& e, int64_t k0,
                               const float* residual, float* yb);
}  // namespace duet::kernels::detail
