// AVX2 parts of the int8 Winograd convolutions, F(2x2, 3x3) and F(4x4, 3x3)
// (conv2d_int8_winograd.h): the input transform 16 (or 8, or 4) channels at a time in int16
// lanes, and per 16-channel block the products (vpmaddwd: a tile's channel pair against 8 output
// channels' pair of V, into int32) and the output transform. Same integers as the scalar twins in
// conv2d_int8_winograd.cpp (F(4x4)'s float output transform within one, see there). Called only
// when isa_at_least(Isa::avx2).
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "duet/kernels/conv2d_int8.h"
#include "duet/kernels/conv2d_int8_lanes_avx2.h"
#include "duet/kernels/conv2d_int8_winograd.h"
#include "duet/kernels/conv2d_int8_winograd_blocks.h"

namespace duet::kernels::detail {
namespace {

using int8_lanes::Lanes16;
using int8_lanes::Lanes4;
using int8_lanes::Lanes8;

// vpmaddwd: int16 pairs into int32, then vpaddd.
struct MaddDot {
  static __m256i accumulate(__m256i acc, __m256i a, __m256i w) {
    return _mm256_add_epi32(acc, _mm256_madd_epi16(a, w));
  }
};

// B^T d of n vectors (n = 4 for F(2x2), 6 for F(4x4); conv2d_winograd_variants.h's matrices).
struct Input2 {
  static constexpr int n = 4;
  template <class L>
  static void apply(const typename L::V d[4], typename L::V t[4]) {
    t[0] = L::sub(d[0], d[2]);
    t[1] = L::add(d[1], d[2]);
    t[2] = L::sub(d[2], d[1]);
    t[3] = L::sub(d[1], d[3]);
  }
};
struct Input4 {
  static constexpr int n = 6;
  template <class L>
  static void apply(const typename L::V d[6], typename L::V t[6]) {
    using V = typename L::V;
    const V d42 = L::sub(d[4], d[2]), d31 = L::template shl<1>(L::sub(d[3], d[1]));
    t[0] = L::add(L::sub(L::template shl<2>(L::sub(d[0], d[2])), d[2]), d[4]);
    t[1] = L::sub(L::add(d[3], d[4]), L::template shl<2>(L::add(d[1], d[2])));
    t[2] = L::add(L::sub(d[4], d[3]), L::template shl<2>(L::sub(d[1], d[2])));
    t[3] = L::add(d42, d31);
    t[4] = L::sub(d42, d31);
    t[5] = L::add(L::sub(L::template shl<2>(L::sub(d[1], d[3])), d[3]), d[5]);
  }
};

// U = B^T d B of one tile's kChannels channels: pixel (i, j) of the window at
// p00 + i * row_bytes + j * pixel_bytes; position xi goes to out + xi * u_stride.
template <class In, class L>
[[gnu::always_inline]] inline void transform_channels(const uint8_t* p00, int64_t row_bytes,
                                                      int64_t pixel_bytes, int16_t* out,
                                                      int64_t u_stride) {
  using V = typename L::V;
  constexpr int n = In::n;
  V x[n][n];  // B^T d, column by column
  for (int j = 0; j < n; ++j) {
    V d[n], t[n];
    for (int i = 0; i < n; ++i) d[i] = L::load(p00 + i * row_bytes + j * pixel_bytes);
    In::template apply<L>(d, t);
    for (int i = 0; i < n; ++i) x[i][j] = t[i];
  }
  for (int i = 0; i < n; ++i) {  // (B^T d) B
    V t[n];
    In::template apply<L>(x[i], t);
    for (int j = 0; j < n; ++j) L::store(out + (i * n + j) * u_stride, t[j]);
  }
}

template <class In>
void transform_tile(const uint8_t* p00, int64_t row_bytes, int64_t C4, int16_t* out,
                    int64_t u_stride) {
  int64_t c = 0;
  for (; c + 16 <= C4; c += 16)
    transform_channels<In, Lanes16>(p00 + c, row_bytes, C4, out + c, u_stride);
  if (c + 8 <= C4) {
    transform_channels<In, Lanes8>(p00 + c, row_bytes, C4, out + c, u_stride);
    c += 8;
  }
  if (c < C4) transform_channels<In, Lanes4>(p00 + c, row_bytes, C4, out + c, u_stride);
}

template <class In>
void input_tiles(const uint8_t* image, int64_t Hp, int64_t Wp, int64_t C4,
                 const WinogradTiles& tiles, int16_t* u) {
  constexpr int n = In::n;
  const int64_t u_stride = tiles.count * C4, row_bytes = Wp * C4, edge = tiles.edge;
  std::vector<uint8_t> window;  // a window reaching past the image, zeros outside it
  for (int64_t t = 0; t < tiles.count; ++t) {
    const int64_t row0 = edge * (t / tiles.tiles_w), col0 = edge * (t % tiles.tiles_w);
    const uint8_t* p00 = image + (row0 * Wp + col0) * C4;
    if (row0 + n <= Hp && col0 + n <= Wp) {
      transform_tile<In>(p00, row_bytes, C4, u + t * C4, u_stride);
      continue;
    }
    window.assign(size_t(n * n * C4), 0);
    const int64_t rows = std::min<int64_t>(n, Hp - row0), cols = std::min<int64_t>(n, Wp - col0);
    for (int64_t i = 0; i < rows; ++i)
      std::memcpy(window.data() + i * n * C4, p00 + i * row_bytes, size_t(cols * C4));
    transform_tile<In>(window.data(), n * C4, C4, u + t * C4, u_stride);
  }
}

}  // namespace

void winograd_int8_input_avx2(const uint8_t* image, int64_t Hp, int64_t Wp, int64_t C4,
                              const WinogradTiles& tiles, int16_t* u) {
  if (tiles.edge == 4)
    input_tiles<Input4>(image, Hp, Wp, C4, tiles, u);
  else
    input_tiles<Input2>(image, Hp, Wp, C4, tiles, u);
}

void winograd_int8_block_avx2(const int16_t* u, const int16_t* vblock, int64_t C4,
                              const WinogradTiles& tiles, int32_t* acc) {
  int8_winograd::run_block<int8_winograd::Form2<MaddDot>>(u, vblock, nullptr, C4, tiles, acc);
}

void winograd4_int8_block_avx2(const int16_t* u, const int16_t* vblock, const float* sblock,
                               int64_t C4, const WinogradTiles& tiles, int32_t* acc) {
  int8_winograd::run_block<int8_winograd::Form4<MaddDot>>(u, vblock, sblock, C4, tiles, acc);
}

}  // namespace duet::kernels::detail
