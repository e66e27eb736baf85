#include "duet/kernels/permute.h"

#include <algorithm>
#include <cstring>
#include <numeric>

#include "duet/kernels/isa.h"
#include "duet/kernels/layout.h"
#include "duet/kernels/nd_iter.h"
#include "duet/tensor/error.h"
#include "duet/tensor/parallel.h"

namespace duet::kernels {

namespace detail {
void transpose_avx2(int64_t rows, int64_t cols, const float* x, int64_t ldx, float* y, int64_t ldy);
}  // namespace detail

namespace {

constexpr int64_t kMinPerThread = 32768;
constexpr int64_t kPiece = 16384;
// Transpose tile: up to 64 output rows x 64 output columns; each destination row of a tile is
// 4 cache lines. When the destination stride is a multiple of a large power of two those rows
// fall into few L1 sets (4 KiB per way) and evict each other, so the tile gets fewer rows.
constexpr int64_t kTileCols = 64;

int64_t tile_rows(int64_t ld_out) {
  const int64_t bytes = (ld_out * int64_t{sizeof(float)}) % 4096;
  const int64_t g = std::gcd(bytes == 0 ? 4096 : bytes, int64_t{4096});
  return std::clamp<int64_t>(4 * 4096 / g, 8, 64);
}

void transpose_generic(int64_t rows, int64_t cols, const float* x, int64_t ldx, float* y,
                       int64_t ldy) {
  // 8x8 sub-blocks keep both the reads and the writes within a few cache lines.
  for (int64_t i0 = 0; i0 < rows; i0 += 8)
    for (int64_t j0 = 0; j0 < cols; j0 += 8) {
      const int64_t i1 = std::min(rows, i0 + 8), j1 = std::min(cols, j0 + 8);
      for (int64_t i = i0; i < i1; ++i)
        for (int64_t j = j0; j < j1; ++j) y[i * ldy + j] = x[j * ldx + i];
    }
}

}  // namespace

void strided_copy(int rank, const int64_t* shape, const int64_t* strides, const float* x,
                  float* out) {
  DUET_CHECK(rank >= 0 && rank <= kMaxRank, "strided_copy: rank ", rank, " not in [0, ", kMaxRank,
             "]");
  detail::NdLayout l;
  l.rank = rank;
  l.ops = 2;  // operand 0: input strides, operand 1: output (contiguous) strides
  int64_t n = 1;
  for (int d = 0; d < rank; ++d) {
    DUET_CHECK(shape[d] >= 0, "strided_copy: negative size ", shape[d], " in dim ", d);
    l.shape[d] = shape[d];
    l.stride[0][d] = strides[d];
  }
  n = contiguous_strides(rank, shape, l.stride[1]);
  if (n == 0) return;
  detail::coalesce(l);
  const int last = l.rank - 1;
  const int64_t inner = l.shape[last], s_in = l.stride[0][last];

  // A stride-1 input dim other than the last: copy as tile transposes over (that dim, last dim).
  int p = -1;
  if (s_in != 1)
    for (int d = 0; d < last; ++d)
      if (l.stride[0][d] == 1) p = d;
  if (p >= 0 && inner > 1) {
    const int64_t rows = l.shape[p], ld_out = l.stride[1][p], tile_h = tile_rows(ld_out);
    detail::NdLayout rest;  // every dim but p and the last
    rest.ops = 2;
    for (int d = 0; d < last; ++d) {
      if (d == p) continue;
      rest.shape[rest.rank] = l.shape[d];
      rest.stride[0][rest.rank] = l.stride[0][d];
      rest.stride[1][rest.rank] = l.stride[1][d];
      ++rest.rank;
    }
    const int64_t ti = (rows + tile_h - 1) / tile_h, tj = (inner + kTileCols - 1) / kTileCols;
    const int64_t tiles = ti * tj;
    const auto tr = isa_at_least(Isa::avx2) ? detail::transpose_avx2 : transpose_generic;
    parallel_for(
        n / (rows * inner) * tiles, std::max<int64_t>(1, kMinPerThread / (tile_h * kTileCols)),
        [&](int64_t u0, int64_t u1) {
          detail::Odometer it(rest, rest.rank, u0 / tiles);
          for (int64_t u = u0; u < u1; ++u) {
            const int64_t t = u % tiles;
            if (u != u0 && t == 0) it.next();
            const int64_t i0 = t / tj * tile_h, j0 = t % tj * kTileCols;
            tr(std::min(tile_h, rows - i0), std::min(kTileCols, inner - j0),
               x + it.off[0] + i0 + j0 * s_in, s_in, out + it.off[1] + i0 * ld_out + j0, ld_out);
          }
        });
    return;
  }

  // Otherwise rows of the output: memcpy when the input row is contiguous, a gather if not.
  const int64_t rows = n / inner;
  const int64_t per_row = (inner + kPiece - 1) / kPiece;
  const int64_t piece = (inner + per_row - 1) / per_row;
  parallel_for(rows * per_row, std::max<int64_t>(1, kMinPerThread / std::min(inner, kPiece)),
               [&](int64_t p0, int64_t p1) {
                 detail::Odometer it(l, last, p0 / per_row);
                 for (int64_t q = p0; q < p1; ++q) {
                   const int64_t c = q % per_row;
                   if (q != p0 && c == 0) it.next();
                   const int64_t lo = c * piece, len = std::min(piece, inner - lo);
                   const float* src = x + it.off[0] + lo * s_in;
                   float* dst = out + q / per_row * inner + lo;
                   if (s_in == 1) {
                     std::memcpy(dst, src, static_cast<size_t>(len) * sizeof(float));
                   } else {
                     for (int64_t j = 0; j < len; ++j) dst[j] = src[j * s_in];
                   }
                 }
               });
}

void permute(int rank, const int64_t* in_shape, const int64_t* perm, const float* x, float* out) {
  DUET_CHECK(rank >= 0 && rank <= kMaxRank, "permute: rank ", rank, " not in [0, ", kMaxRank, "]");
  int64_t in_stride[kMaxRank], shape[kMaxRank], strides[kMaxRank];
  contiguous_strides(rank, in_shape, in_stride);
  bool seen[kMaxRank] = {};
  for (int d = 0; d < rank; ++d) {
    DUET_CHECK(perm[d] >= 0 && perm[d] < rank && !seen[perm[d]], "permute: perm[", d,
               "] = ", perm[d], " is out of range or repeated; expected a permutation of 0..",
               rank - 1);
    seen[perm[d]] = true;
    shape[d] = in_shape[perm[d]];
    strides[d] = in_stride[perm[d]];
  }
  strided_copy(rank, shape, strides, x, out);
}

}  // namespace duet::kernels
