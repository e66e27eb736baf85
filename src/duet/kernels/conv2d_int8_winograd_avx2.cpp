// AVX2 parts of the int8 Winograd F(2x2, 3x3) convolution (conv2d_int8_winograd.h): the input
// transform 16 (or 8, or 4) channels at a time in int16 lanes, and per 16-channel block the
// products (vpmaddwd: a tile's channel pair against 8 output channels' pair of V, into int32)
// and the output transform. Same integers as the scalar twins in conv2d_int8_winograd.cpp.
// Called only when isa_at_least(Isa::avx2).
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "duet/kernels/conv2d_int8.h"
#include "duet/kernels/conv2d_int8_winograd.h"

namespace duet::kernels::detail {
namespace {

// int16 lanes of 16, 8 or 4 channels: widening loads of u8 codes and the adds of the transform.
struct Lanes16 {
  using V = __m256i;
  static constexpr int64_t kChannels = 16;
  static V load(const uint8_t* p) {
    return _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  }
  static void store(int16_t* p, V v) { _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), v); }
  static V add(V a, V b) { return _mm256_add_epi16(a, b); }
  static V sub(V a, V b) { return _mm256_sub_epi16(a, b); }
};
struct Lanes8 {
  using V = __m128i;
  static constexpr int64_t kChannels = 8;
  static V load(const uint8_t* p) {
    return _mm_cvtepu8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
  }
  static void store(int16_t* p, V v) { _mm_storeu_si128(reinterpret_cast<__m128i*>(p), v); }
  static V add(V a, V b) { return _mm_add_epi16(a, b); }
  static V sub(V a, V b) { return _mm_sub_epi16(a, b); }
};
struct Lanes4 : Lanes8 {
  static constexpr int64_t kChannels = 4;
  static V load(const uint8_t* p) {
    int32_t bytes;
    std::memcpy(&bytes, p, 4);
    return _mm_cvtepu8_epi16(_mm_cvtsi32_si128(bytes));
  }
  static void store(int16_t* p, V v) { _mm_storel_epi64(reinterpret_cast<__m128i*>(p), v); }
};

// U = B^T d B of one tile's kChannels channels: pixel (i, j) of the window at
// p00 + i * row_bytes + j * pixel_bytes; position xi goes to out + xi * u_stride.
template <class L>
[[gnu::always_inline]] inline void transform_channels(const uint8_t* p00, int64_t row_bytes,
                                                      int64_t pixel_bytes, int16_t* out,
                                                      int64_t u_stride) {
  using V = typename L::V;
  V x[4][4];  // B^T d, column by column
  for (int j = 0; j < 4; ++j) {
    const uint8_t* p = p00 + j * pixel_bytes;
    const V d0 = L::load(p), d1 = L::load(p + row_bytes);
    const V d2 = L::load(p + 2 * row_bytes), d3 = L::load(p + 3 * row_bytes);
    x[0][j] = L::sub(d0, d2);
    x[1][j] = L::add(d1, d2);
    x[2][j] = L::sub(d2, d1);
    x[3][j] = L::sub(d1, d3);
  }
  for (int i = 0; i < 4; ++i) {  // (B^T d) B
    int16_t* o = out + i * 4 * u_stride;
    L::store(o, L::sub(x[i][0], x[i][2]));
    L::store(o + u_stride, L::add(x[i][1], x[i][2]));
    L::store(o + 2 * u_stride, L::sub(x[i][2], x[i][1]));
    L::store(o + 3 * u_stride, L::sub(x[i][1], x[i][3]));
  }
}

void transform_tile(const uint8_t* p00, int64_t row_bytes, int64_t C4, int16_t* out,
                    int64_t u_stride) {
  int64_t c = 0;
  for (; c + 16 <= C4; c += 16)
    transform_channels<Lanes16>(p00 + c, row_bytes, C4, out + c, u_stride);
  if (c + 8 <= C4) {
    transform_channels<Lanes8>(p00 + c, row_bytes, C4, out + c, u_stride);
    c += 8;
  }
  if (c < C4) transform_channels<Lanes4>(p00 + c, row_bytes, C4, out + c, u_stride);  // 4 left
}

constexpr int kTileBlock = 6;  // tiles per product pass: 12 accumulators + 2 weight vectors

// One channel pair c2 of MR tiles against 16 output channels: the products added into lo / hi,
// or (kFirst) written there, which saves the first pair's adds and the zeroing.
template <int MR, bool kFirst>
[[gnu::always_inline]] inline void pair_products(const int16_t* ut, int64_t C4, const int16_t* v,
                                                 int64_t c2, __m256i (&lo)[MR], __m256i (&hi)[MR]) {
  const __m256i w0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(v + c2 * 32));
  const __m256i w1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(v + c2 * 32 + 16));
  for (int i = 0; i < MR; ++i) {
    int32_t pair;
    std::memcpy(&pair, ut + i * C4 + 2 * c2, 4);
    const __m256i a = _mm256_set1_epi32(pair);
    const __m256i p0 = _mm256_madd_epi16(a, w0), p1 = _mm256_madd_epi16(a, w1);
    lo[i] = kFirst ? p0 : _mm256_add_epi32(lo[i], p0);
    hi[i] = kFirst ? p1 : _mm256_add_epi32(hi[i], p1);
  }
}

// M[xi][i][16] = sum over channel pairs of U(tile t0 + i, xi) V(xi) for MR tiles, then the output
// transform of each tile into acc.
template <int MR>
void tile_block(const int16_t* u, const int16_t* vblock, int64_t C4, const WinogradTiles& tiles,
                int64_t t0, int32_t* acc) {
  const int64_t u_stride = tiles.count * C4, pairs = C4 / 2;  // C4 >= 4: at least two pairs
  alignas(32) int32_t m[kWinogradPositions][MR][kInt8BlockK];
  for (int64_t xi = 0; xi < kWinogradPositions; ++xi) {
    const int16_t* ut = u + xi * u_stride + t0 * C4;
    const int16_t* v = vblock + xi * pairs * kInt8BlockK * 2;
    __m256i lo[MR], hi[MR];
    pair_products<MR, true>(ut, C4, v, 0, lo, hi);
    for (int64_t c2 = 1; c2 < pairs; ++c2) pair_products<MR, false>(ut, C4, v, c2, lo, hi);
    for (int i = 0; i < MR; ++i) {
      _mm256_store_si256(reinterpret_cast<__m256i*>(m[xi][i]), lo[i]);
      _mm256_store_si256(reinterpret_cast<__m256i*>(m[xi][i] + 8), hi[i]);
    }
  }
  for (int i = 0; i < MR; ++i) {
    const int64_t t = t0 + i;
    const int64_t row0 = 2 * (t / tiles.tiles_w), col0 = 2 * (t % tiles.tiles_w);
    for (int h = 0; h < 2; ++h) {  // 8 output channels at a time
      __m256i r[2][4];             // A^T m
      for (int j = 0; j < 4; ++j) {
        auto at = [&](int row) {
          return _mm256_load_si256(reinterpret_cast<const __m256i*>(m[row * 4 + j][i] + 8 * h));
        };
        const __m256i m0 = at(0), m1 = at(1), m2 = at(2), m3 = at(3);
        r[0][j] = _mm256_add_epi32(_mm256_add_epi32(m0, m1), m2);
        r[1][j] = _mm256_sub_epi32(_mm256_sub_epi32(m1, m2), m3);
      }
      for (int a = 0; a < 2 && row0 + a < tiles.P; ++a) {
        int32_t* row = acc + ((row0 + a) * tiles.Q + col0) * kInt8BlockK + 8 * h;
        // (A^T m A) / 4: a multiple of 4, so the arithmetic shift is the exact division.
        const __m256i y0 = _mm256_add_epi32(_mm256_add_epi32(r[a][0], r[a][1]), r[a][2]);
        _mm256_store_si256(reinterpret_cast<__m256i*>(row), _mm256_srai_epi32(y0, 2));
        if (col0 + 1 < tiles.Q) {
          const __m256i y1 = _mm256_sub_epi32(_mm256_sub_epi32(r[a][1], r[a][2]), r[a][3]);
          _mm256_store_si256(reinterpret_cast<__m256i*>(row + kInt8BlockK),
                             _mm256_srai_epi32(y1, 2));
        }
      }
    }
  }
}

}  // namespace

void winograd_int8_input_avx2(const uint8_t* image, int64_t Hp, int64_t Wp, int64_t C4,
                              const WinogradTiles& tiles, int16_t* u) {
  const int64_t u_stride = tiles.count * C4, row_bytes = Wp * C4;
  std::vector<uint8_t> edge;  // a window reaching past the image, zeros outside it
  for (int64_t t = 0; t < tiles.count; ++t) {
    const int64_t row0 = 2 * (t / tiles.tiles_w), col0 = 2 * (t % tiles.tiles_w);
    const uint8_t* p00 = image + (row0 * Wp + col0) * C4;
    if (row0 + 4 <= Hp && col0 + 4 <= Wp) {
      transform_tile(p00, row_bytes, C4, u + t * C4, u_stride);
      continue;
    }
    edge.assign(size_t(16 * C4), 0);
    const int64_t rows = std::min<int64_t>(4, Hp - row0), cols = std::min<int64_t>(4, Wp - col0);
    for (int64_t i = 0; i < rows; ++i)
      std::memcpy(edge.data() + i * 4 * C4, p00 + i * row_bytes, size_t(cols * C4));
    transform_tile(edge.data(), 4 * C4, C4, u + t * C4, u_stride);
  }
}

void winograd_int8_block_avx2(const int16_t* u, const int16_t* vblock, int64_t C4,
                              const WinogradTiles& tiles, int32_t* acc) {
  int64_t t = 0;
  for (; t + kTileBlock <= tiles.count; t += kTileBlock)
    tile_block<kTileBlock>(u, vblock, C4, tiles, t, acc);
  switch (tiles.count - t) {
    case 5:
      return tile_block<5>(u, vblock, C4, tiles, t, acc);
    case 4:
      return tile_block<4>(u, vblock, C4, tiles, t, acc);
    case 3:
      return tile_block<3>(u, vblock, C4, tiles, t, acc);
    case 2:
      return tile_block<2>(u, vblock, C4, tiles, t, acc);
    case 1:
      return tile_block<1>(u, vblock, C4, tiles, t, acc);
    default:
      return;
  }
}

}  // namespace duet::kernels::detail
