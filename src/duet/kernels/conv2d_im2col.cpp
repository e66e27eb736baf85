// Tile packers for implicit-GEMM convolution. Both walk the same (row, output-row segment)
// structure so the in-bounds column range of each segment is computed once, leaving the inner
// loops branch-free (contiguous copies when stride_w == 1).
#include <algorithm>
#include <cstddef>
#include <cstring>
#include <vector>

#include "duet/kernels/conv2d_impl.h"

namespace duet::kernels::detail {
namespace {

// Output columns q with 0 <= q * stride + off < width, as [lo, hi).
inline void valid_q(int64_t off, int64_t stride, int64_t width, int64_t& lo, int64_t& hi) {
  lo = off >= 0 ? 0 : (-off + stride - 1) / stride;
  hi = (width - 1 - off) < 0 ? 0 : (width - 1 - off) / stride + 1;
}

// One output-row piece of a pixel tile: pixels [j, j + n) of the tile are columns [q0, q0 + n)
// of output row p. Computed once per tile, then reused by every (c, r, u) row.
struct Segment {
  int64_t p, q0, n, j;
};

// Calls seg(row, segment, src, qlo, qhi, off) for every output-row segment of the tile; src is the
// input row offset (-1 when the row is padding), [qlo, qhi) the in-bounds columns of the segment.
template <class Seg>
void walk_tile(const Conv2dShape& s, int64_t t0, int64_t len, Seg&& seg) {
  const int64_t Q = s.out_w(), Cg = s.in_channels / s.groups;
  // A tile covers at most len / Q + 2 output rows; small tiles keep this on the stack.
  constexpr int64_t kStackSegs = 64;
  Segment stack_segs[kStackSegs];
  std::vector<Segment> heap_segs;
  Segment* segs = stack_segs;
  if (len / Q + 2 > kStackSegs) {
    heap_segs.resize(size_t(len / Q + 2));
    segs = heap_segs.data();
  }
  int64_t nseg = 0;
  for (int64_t j = 0, t = t0; j < len; ++nseg) {
    const int64_t p = t / Q, q0 = t % Q, n = std::min(Q - q0, len - j);
    segs[nseg] = {p, q0, n, j};
    j += n;
    t += n;
  }
  int64_t row = 0;
  for (int64_t c = 0; c < Cg; ++c)
    for (int64_t r = 0; r < s.kernel_h; ++r) {
      const int64_t h_off = r * s.dilation_h - s.pad_h;
      for (int64_t u = 0; u < s.kernel_w; ++u, ++row) {
        const int64_t off = u * s.dilation_w - s.pad_w;
        int64_t vlo, vhi;
        valid_q(off, s.stride_w, s.in_w, vlo, vhi);
        for (int64_t i = 0; i < nseg; ++i) {
          const Segment& sg = segs[i];
          const int64_t h = sg.p * s.stride_h + h_off;
          const bool inside = h >= 0 && h < s.in_h;
          const int64_t qlo = std::clamp(vlo, sg.q0, sg.q0 + sg.n);
          const int64_t qhi = std::clamp(vhi, qlo, sg.q0 + sg.n);
          seg(row, sg, inside ? (c * s.in_h + h) * s.in_w : int64_t{-1}, qlo, qhi, off);
        }
      }
    }
}

}  // namespace

void im2col_tile(const Conv2dShape& s, const float* xg, int64_t t0, int64_t len, float* col,
                 int64_t ld) {
  const int64_t sw = s.stride_w;
  walk_tile(
      s, t0, len,
      [&](int64_t row, const Segment& sg, int64_t src, int64_t qlo, int64_t qhi, int64_t off) {
        float* d = col + row * ld + sg.j;  // d[q - q0] is column q
        const int64_t q0 = sg.q0, q1 = sg.q0 + sg.n;
        if (src < 0) {
          for (int64_t i = 0; i < sg.n; ++i) d[i] = 0.0f;
          return;
        }
        const float* x = xg + src;  // column q reads x[q * sw + off]
        for (int64_t q = q0; q < qlo; ++q) d[q - q0] = 0.0f;
        if (sw == 1) {
          const float* xs = x + (qlo + off);
          float* ds = d + (qlo - q0);
          for (int64_t i = 0; i < qhi - qlo; ++i) ds[i] = xs[i];
        } else {
          for (int64_t q = qlo; q < qhi; ++q) d[q - q0] = x[q * sw + off];
        }
        for (int64_t q = qhi; q < q1; ++q) d[q - q0] = 0.0f;
      });
}

void col2im_tile_add(const Conv2dShape& s, const float* col, int64_t t0, int64_t len, int64_t ld,
                     float* dxg) {
  const int64_t sw = s.stride_w;
  walk_tile(
      s, t0, len,
      [&](int64_t row, const Segment& sg, int64_t src, int64_t qlo, int64_t qhi, int64_t off) {
        if (src < 0 || qhi <= qlo) return;
        const float* c = col + row * ld + sg.j + (qlo - sg.q0);
        float* x = dxg + src + (qlo * sw + off);
        const int64_t n = qhi - qlo;
        if (sw == 1) {
          for (int64_t i = 0; i < n; ++i) x[i] += c[i];
        } else {
          for (int64_t i = 0; i < n; ++i) x[i * sw] += c[i];
        }
      });
}

}  // namespace duet::kernels::detail
