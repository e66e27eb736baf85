// Winograd F(2x2, 3x3) convolution (Lavin & Gray, "Fast Algorithms for Convolutional Neural
// Networks", 2016). Each 2x2 block of output pixels (a tile) comes from a 4x4 input window d:
// y = A^T [(G g G^T) . (B^T d B)] A, so the 36 multiply-adds per output channel and input
// channel of a direct 3x3 tile become 16 products in a transformed space: 2.25x fewer, paid for
// with additions in the input and output transforms. The 16 products per tile are 16
// independent GEMMs (one per transform point xi): M[xi][tile][k] = sum_c V[xi][tile][c]
// U[xi][c][k], which run on the direct convolution's micro-tiles (conv2d_direct_tile.h), the
// transformed tiles playing the pixels and the transformed weights the packed panels. The
// transforms work on whole 16-channel blocks (two 8-lane halves).
// - Channel-blocked activations (inference) need no reshuffling, and the output transform
//   applies the epilogue (scale, bias, residual, activation) on its way into the blocked output.
// - Channel-major activations (training's forward pass and input gradient, unfolded networks)
//   are blocked a chunk of rows at a time into scratch, and the products are transposed into
//   the output with the epilogue by the direct kernel's store. The weight gradient
//   (conv2d_winograd_weight_avx2.cpp) shares the input transform and the row blocking.
// The transforms only add, subtract and halve, so the result differs from the direct
// convolution by rounding alone (the op harness compares it with the reference twin).
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "duet/kernels/conv2d_blocked.h"
#include "duet/kernels/conv2d_direct_parts.h"
#include "duet/kernels/conv2d_impl.h"
#include "duet/kernels/conv2d_winograd_parts.h"
#include "duet/kernels/transpose_avx2.h"
#include "duet/tensor/parallel.h"

namespace duet::kernels::detail {

namespace winograd {

using direct::kNR;
using direct::round_up;

namespace {

// B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1] applied to four values (a column of a window, or
// a row of B^T d), 8 lanes each.
inline void transform_4(const __m256 d[4], __m256 t[4]) {
  t[0] = _mm256_sub_ps(d[0], d[2]);
  t[1] = _mm256_add_ps(d[1], d[2]);
  t[2] = _mm256_sub_ps(d[2], d[1]);
  t[3] = _mm256_sub_ps(d[1], d[3]);
}

}  // namespace

// Neighbouring windows share two columns, so the vertical pass (B^T d) runs once per column and
// slides along; pixels in the padding read as zero, and no address outside the plane is formed.
void transform_tile_row(const float* plane, int64_t H, int64_t W, int64_t h0, int64_t w0,
                        int64_t tiles, float* v, int64_t ld_tile, int64_t ld_xi) {
  bool row_in[4];
  for (int i = 0; i < 4; ++i) row_in[i] = h0 + i >= 0 && h0 + i < H;
  auto column = [&](int64_t w, __m256 t[4]) {
    __m256 d[4];
    for (int i = 0; i < 4; ++i)
      d[i] = row_in[i] && w >= 0 && w < W ? _mm256_loadu_ps(plane + ((h0 + i) * W + w) * kNR)
                                          : _mm256_setzero_ps();
    transform_4(d, t);
  };
  __m256 c0[4], c1[4], c2[4], c3[4];  // B^T d of the window's four columns
  column(w0, c0);
  column(w0 + 1, c1);
  for (int64_t tx = 0; tx < tiles; ++tx, v += ld_tile) {
    column(w0 + 2 * tx + 2, c2);
    column(w0 + 2 * tx + 3, c3);
    for (int i = 0; i < 4; ++i) {
      const __m256 row[4] = {c0[i], c1[i], c2[i], c3[i]};
      __m256 out[4];
      transform_4(row, out);
      for (int j = 0; j < 4; ++j) _mm256_storeu_ps(v + (4 * i + j) * ld_xi, out[j]);
    }
    for (int i = 0; i < 4; ++i) {
      c0[i] = c2[i];
      c1[i] = c3[i];
    }
  }
}

TileGrid tile_grid(const Conv2dShape& s) {
  TileGrid g;
  g.C = s.in_channels;
  g.K = s.out_channels;
  g.Cb = channel_blocks(g.C);
  g.Kp = round_up(g.K, kNR);
  g.panels = g.Kp / kNR;
  g.H = s.in_h;
  g.W = s.in_w;
  g.P = s.out_h();
  g.Q = s.out_w();
  g.TP = (g.P + 1) / 2;
  g.TQ = (g.Q + 1) / 2;
  return g;
}

// 8 channels x 8 pixels at a time through a transpose.
void block_rows(const float* x, int64_t C, int64_t H, int64_t W, int64_t row0, int64_t rows,
                float* dst) {
  const int64_t n = rows * W, n8 = n / 8 * 8;
  for (int64_t c0 = 0; c0 < round_up(C, kNR); c0 += 8) {
    float* d = dst + c0 / kNR * n * kNR + c0 % kNR;
    const int64_t live = std::clamp<int64_t>(C - c0, 0, 8);
    const float* src[8];
    for (int64_t j = 0; j < 8; ++j) src[j] = x + (std::min(c0 + j, C - 1) * H + row0) * W;
    for (int64_t i = 0; i < n8; i += 8) {
      __m256 r[8];
      for (int64_t j = 0; j < 8; ++j)
        r[j] = j < live ? _mm256_loadu_ps(src[j] + i) : _mm256_setzero_ps();
      simd::transpose8(r);
      for (int64_t j = 0; j < 8; ++j) _mm256_storeu_ps(d + (i + j) * kNR, r[j]);
    }
    for (int64_t i = n8; i < n; ++i)
      for (int64_t j = 0; j < 8; ++j) d[i * kNR + j] = j < live ? src[j][i] : 0.0f;
  }
}

}  // namespace winograd

namespace {

using direct::active_tile;
using direct::Buf;
using direct::kNR;
using direct::LaneEpilogue;
using direct::round_up;
using winograd::block_rows;
using winograd::kPoints;
using winograd::transform_tile_row;

// Scratch bound per thread (transformed inputs of one chunk of tiles); beyond it (images
// thousands of pixels wide) the shape goes through the channel-major convolution instead.
constexpr int64_t kMaxScratch = int64_t{1} << 24;

struct Geometry : winograd::TileGrid {
  int64_t rows_per_chunk, chunks_per_image, slots;  // slots: tiles a chunk's scratch holds
  // V (transformed inputs) and M (products) are tile-major, [tile][xi][channels], so that the
  // transforms stream through them; one cache line more than the 16 points per tile keeps the
  // micro-tile's rows (tiles) out of each other's L1 sets.
  int64_t v_tile() const { return kPoints * Cb * kNR + kNR; }
  int64_t m_tile() const { return kPoints * Kp + kNR; }
};

Geometry geometry(const Conv2dShape& s, int64_t mr) {
  Geometry g{};
  static_cast<winograd::TileGrid&>(g) = winograd::tile_grid(s);
  // A chunk of whole tile rows whose V and M (16 x C and 16 x Kp floats a tile) stay near
  // 128 KiB each, in L2 between the transforms and the products.
  const int64_t per_chunk = std::max<int64_t>(1, 2048 / std::max(g.Cb * kNR, g.Kp));
  g.rows_per_chunk = std::clamp<int64_t>(per_chunk / g.TQ, 1, g.TP);
  g.chunks_per_image = (g.TP + g.rows_per_chunk - 1) / g.rows_per_chunk;
  // Few images: more, smaller chunks so that every thread has one.
  const int64_t want = (num_threads() + s.batch - 1) / s.batch;
  if (g.chunks_per_image < want) {
    g.chunks_per_image = std::min(g.TP, want);
    g.rows_per_chunk = (g.TP + g.chunks_per_image - 1) / g.chunks_per_image;
    g.chunks_per_image = (g.TP + g.rows_per_chunk - 1) / g.rows_per_chunk;
  }
  g.slots = round_up(g.rows_per_chunk * g.TQ, mr);
  return g;
}

// The 2x2 outputs of one tile, 8 lanes: Y = A^T m A with A^T = [1 1 1 0; 0 1 -1 -1] and
// m[i][j] = m0[(4 i + j) * ld_xi].
void transform_output(const float* m0, int64_t ld_xi, __m256 y[2][2]) {
  __m256 s[2][4];
  for (int j = 0; j < 4; ++j) {
    const __m256 a = _mm256_loadu_ps(m0 + j * ld_xi), b = _mm256_loadu_ps(m0 + (4 + j) * ld_xi),
                 c = _mm256_loadu_ps(m0 + (8 + j) * ld_xi),
                 d = _mm256_loadu_ps(m0 + (12 + j) * ld_xi);
    s[0][j] = _mm256_add_ps(_mm256_add_ps(a, b), c);
    s[1][j] = _mm256_sub_ps(_mm256_sub_ps(b, c), d);
  }
  for (int i = 0; i < 2; ++i) {
    y[i][0] = _mm256_add_ps(_mm256_add_ps(s[i][0], s[i][1]), s[i][2]);
    y[i][1] = _mm256_sub_ps(_mm256_sub_ps(s[i][1], s[i][2]), s[i][3]);
  }
}

// The epilogue of each 8 lanes of the output channels (Kp / 8 of them).
std::vector<LaneEpilogue> lane_epilogues(const Epilogue& e, int64_t Kp, int64_t K) {
  std::vector<LaneEpilogue> out;
  for (int64_t at = 0; at < Kp; at += 8) out.push_back(direct::lane_epilogue(e, at, K));
  return out;
}

struct ChunkScratch {
  float* v;  // [slots][16][Cb][16], tiles v_tile() apart
  float* m;  // [slots][16][Kp], tiles m_tile() apart
  std::vector<const float*> base;
};

// Where a chunk reads its input: channel blocks [Cb][rows][W][16], `rows` image rows from row0 on
// (the whole blocked image, or the rows a channel-major chunk blocked into scratch).
struct InputRows {
  const float* x;
  int64_t rows, row0;
};

// Where a chunk's outputs go: output pixel p (p0 and on), channel k at
// y[k / 16 * ld_block + (p - p0) * ld_pixel + k % 16], residual (if any) laid out alike.
struct OutputPixels {
  float* y;
  const float* res;
  int64_t ld_block, ld_pixel, p0;
};

// Output transform and epilogue of tile rows [r0, r1).
template <Activation A>
void store_tiles(const Geometry& g, const ChunkScratch& sc, const std::vector<LaneEpilogue>& le,
                 const OutputPixels& out, int64_t r0, int64_t r1) {
  for (int64_t ty = r0; ty < r1; ++ty) {
    const int64_t out_rows = std::min<int64_t>(2, g.P - 2 * ty);
    for (int64_t tx = 0; tx < g.TQ; ++tx) {
      const float* m0 = sc.m + ((ty - r0) * g.TQ + tx) * g.m_tile();
      const int64_t out_cols = std::min<int64_t>(2, g.Q - 2 * tx);
      const int64_t p = (2 * ty) * g.Q + 2 * tx - out.p0;  // the tile's top-left pixel
      for (int64_t lane = 0; lane < g.Kp; lane += 8) {
        __m256 y[2][2];
        transform_output(m0 + lane, g.Kp, y);
        const LaneEpilogue& ep = le[size_t(lane / 8)];
        const int64_t lane_at = lane / kNR * out.ld_block + lane % kNR;
        for (int64_t a = 0; a < out_rows; ++a)
          for (int64_t b = 0; b < out_cols; ++b) {
            const int64_t at = lane_at + (p + a * g.Q + b) * out.ld_pixel;
            _mm256_storeu_ps(out.y + at, direct::apply_lane_epilogue<A>(
                                             ep, y[a][b], out.res ? out.res + at : nullptr));
          }
      }
    }
  }
}

// Tile rows [r0, r1) of one image: input transform, the 16 products, output transform and
// epilogue.
void run_chunk(const Geometry& g, const Conv2dShape& s, const DirectTile& mt,
               const std::vector<int32_t>& off, const InputRows& in, const float* u,
               const OutputPixels& out, Activation act, const std::vector<LaneEpilogue>& le,
               int64_t r0, int64_t r1, ChunkScratch& sc) {
  const int64_t tiles = (r1 - r0) * g.TQ, rows = round_up(tiles, mt.rows);
  for (int64_t ty = r0; ty < r1; ++ty)
    for (int64_t cb = 0; cb < g.Cb; ++cb)
      for (int64_t half = 0; half < kNR; half += 8)
        transform_tile_row(in.x + cb * in.rows * g.W * kNR + half, in.rows, g.W,
                           2 * ty - s.pad_h - in.row0, -s.pad_w, g.TQ,
                           sc.v + (ty - r0) * g.TQ * g.v_tile() + cb * kNR + half, g.v_tile(),
                           g.Cb * kNR);
  for (int64_t xi = 0; xi < kPoints; ++xi) {
    // Rows past the last tile repeat it (their products are never read).
    for (int64_t i = 0; i < rows; ++i)
      sc.base[size_t(i)] = sc.v + std::min(i, tiles - 1) * g.v_tile() + xi * g.Cb * kNR;
    direct::run_tiles(mt, rows, g.panels, g.C, sc.base.data(), off.data(),
                      u + xi * g.panels * g.C * kNR, g.C * kNR, sc.m + xi * g.Kp, g.m_tile(),
                      false);
  }
  switch (act) {
    case Activation::none:
      return store_tiles<Activation::none>(g, sc, le, out, r0, r1);
    case Activation::relu:
      return store_tiles<Activation::relu>(g, sc, le, out, r0, r1);
    case Activation::silu:
      return store_tiles<Activation::silu>(g, sc, le, out, r0, r1);
    case Activation::gelu:
      return store_tiles<Activation::gelu>(g, sc, le, out, r0, r1);
  }
}

// Within a tile's point, channel c sits at c (blocks of 16 back to back).
std::vector<int32_t> channel_offsets(int64_t C) {
  std::vector<int32_t> off(static_cast<size_t>(C));
  for (int64_t c = 0; c < C; ++c) off[size_t(c)] = int32_t(c);
  return off;
}

// The scratch a thread needs for chunks of g, false when it passes kMaxScratch (checked in
// double first: for absurd widths the int64 products could overflow).
bool scratch_fits(const Geometry& g) {
  return double(g.slots) * double(std::max(g.v_tile(), g.m_tile())) <= double(kMaxScratch);
}

}  // namespace

int64_t winograd_packed_size(const Conv2dShape& s) {
  bool fits = s.groups == 1 && s.kernel_h == 3 && s.kernel_w == 3 && s.stride_h == 1 &&
              s.stride_w == 1 && s.dilation_h == 1 && s.dilation_w == 1 &&
              s.in_channels >= kWinogradMinChannels && s.pad_h <= 2 && s.pad_w <= 2;
  // Fewer tiles than the micro-tile's rows leave most of each product empty (ResNet-18's 4x4
  // maps at batch 1: 11.7 ms with them here, 10.9 ms without any Winograd).
  fits = fits && s.out_h() >= 1 && s.out_w() >= 1 &&
         (s.out_h() + 1) / 2 * ((s.out_w() + 1) / 2) >= kWinogradMinTiles;
  const int64_t size = kPoints * round_up(s.out_channels, kNR) * s.in_channels;
  return fits && size <= (int64_t{1} << 22) ? size : 0;
}

void winograd_pack_avx2(const Conv2dShape& s, const float* w, float* packed) {
  const int64_t C = s.in_channels, K = s.out_channels, Kp = round_up(K, kNR);
  const int64_t panels = Kp / kNR;
  // Training packs on every call (256 -> 128 channels: 1.2 ms on one Zen 4 core, next to an
  // 8.6 ms convolution at batch 64), so the output-channel panels of large layers are shared
  // out, about 16 K filters per thread at least.
  const int64_t grain = std::max<int64_t>(1, 16384 / (kNR * C));
  parallel_for(panels, grain, [&](int64_t panel_begin, int64_t panel_end) {
    for (int64_t k = panel_begin * kNR; k < panel_end * kNR; ++k)
      for (int64_t c = 0; c < C; ++c) {
        // U = G g G^T, G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1], in double, rounded once.
        double u[4][4] = {};
        if (k < K) {
          const float* g = w + (k * C + c) * 9;
          double gg[4][3];
          for (int j = 0; j < 3; ++j) {
            gg[0][j] = g[j];
            gg[1][j] = 0.5 * (double(g[j]) + g[3 + j] + g[6 + j]);
            gg[2][j] = 0.5 * (double(g[j]) - g[3 + j] + g[6 + j]);
            gg[3][j] = g[6 + j];
          }
          for (int i = 0; i < 4; ++i) {
            u[i][0] = gg[i][0];
            u[i][1] = 0.5 * (gg[i][0] + gg[i][1] + gg[i][2]);
            u[i][2] = 0.5 * (gg[i][0] - gg[i][1] + gg[i][2]);
            u[i][3] = gg[i][2];
          }
        }
        for (int64_t xi = 0; xi < kPoints; ++xi)
          packed[((xi * panels + k / kNR) * C + c) * kNR + k % kNR] = float(u[xi / 4][xi % 4]);
      }
  });
}

bool winograd_forward_blocked_avx2(const Conv2dShape& s, bool x_blocked, const float* x,
                                   const float* w, const float* packed, float* y,
                                   const Epilogue& e) {
  const int64_t size = winograd_packed_size(s);
  if (size == 0) return false;
  const DirectTile mt = active_tile();
  const Geometry g = geometry(s, mt.rows);
  if (!scratch_fits(g)) return false;
  const int64_t v_size = g.slots * g.v_tile(), m_size = g.slots * g.m_tile();
  Buf own(packed ? 0 : size);
  if (!packed) {
    winograd_pack_avx2(s, w, own.get());
    packed = own.get();
  }
  // A network's input image arrives channel-major: block it once (zeroing the padding lanes).
  const int64_t HW = g.H * g.W;
  Buf xb(x_blocked ? 0 : s.batch * g.Cb * HW * kNR);
  if (!x_blocked) {
    to_channel_blocked(s.batch, g.C, HW, x, xb.get());
    x = xb.get();
  }
  const std::vector<int32_t> off = channel_offsets(g.C);
  const std::vector<LaneEpilogue> le = lane_epilogues(e, g.Kp, g.K);
  const int64_t PQ = g.P * g.Q, jobs = s.batch * g.chunks_per_image;
  const double macs_per_job = double(kPoints * g.rows_per_chunk * g.TQ) * double(g.C * g.Kp);
  direct::run_jobs(jobs, direct::grain_for(macs_per_job), [&](auto&& take) {
    Buf v(v_size), m(m_size);
    ChunkScratch sc{v.get(), m.get(), std::vector<const float*>(size_t(g.slots))};
    for (int64_t job = take(); job < jobs; job = take()) {
      const int64_t n = job / g.chunks_per_image, chunk = job % g.chunks_per_image;
      const int64_t r0 = chunk * g.rows_per_chunk, r1 = std::min(g.TP, r0 + g.rows_per_chunk);
      const int64_t y_at = n * g.panels * PQ * kNR;
      const InputRows in{x + n * g.Cb * HW * kNR, g.H, 0};
      const OutputPixels out{y + y_at, e.residual ? e.residual + y_at : nullptr, PQ * kNR, kNR, 0};
      run_chunk(g, s, mt, off, in, packed, out, e.act, le, r0, r1, sc);
    }
  });
  return true;
}

bool winograd_channel_major_fits(const Conv2dShape& s) {
  return winograd_packed_size(s) > 0 &&
         std::min(s.in_channels, s.out_channels) >= kWinogradChannelMajorMinChannels &&
         scratch_fits(geometry(s, active_tile().rows));
}

bool winograd_input_gradient_shape(const Conv2dShape& s, Conv2dShape& t) {
  // dx is the convolution of dy, padded by 2 - pad, with the flipped 3x3 filters and the in
  // and out channels swapped (as direct_backward_data_avx2 does it).
  if (s.kernel_h != 3 || s.kernel_w != 3 || s.stride_h != 1 || s.stride_w != 1 || s.pad_h > 2 ||
      s.pad_w > 2)
    return false;
  t = s;
  t.in_channels = s.out_channels;
  t.out_channels = s.in_channels;
  t.in_h = s.out_h();
  t.in_w = s.out_w();
  t.pad_h = 2 - s.pad_h;
  t.pad_w = 2 - s.pad_w;
  return t.out_h() == s.in_h && t.out_w() == s.in_w && winograd_channel_major_fits(t);
}

bool winograd_forward_avx2(const Conv2dShape& s, const float* x, const float* w, float* y,
                           const Epilogue& e) {
  if (!winograd_channel_major_fits(s)) return false;
  const DirectTile mt = active_tile();
  const Geometry g = geometry(s, mt.rows);
  Buf packed(winograd_packed_size(s));
  winograd_pack_avx2(s, w, packed.get());
  const std::vector<int32_t> off = channel_offsets(g.C);
  // The products leave in pixel-major scratch without the epilogue, which store_transposed
  // applies on the way into channel-major y.
  const std::vector<LaneEpilogue> identity = lane_epilogues(Epilogue{}, g.Kp, g.K);
  const int64_t HW = g.H * g.W, PQ = g.P * g.Q, jobs = s.batch * g.chunks_per_image;
  const int64_t max_in_rows = std::min(g.H, 2 * g.rows_per_chunk + 2);
  const double macs_per_job = double(kPoints * g.rows_per_chunk * g.TQ) * double(g.C * g.Kp);
  direct::run_jobs(jobs, direct::grain_for(macs_per_job), [&](auto&& take) {
    Buf v(g.slots * g.v_tile()), m(g.slots * g.m_tile());
    Buf xr(g.Cb * max_in_rows * g.W * kNR), yr(2 * g.rows_per_chunk * g.Q * g.Kp);
    ChunkScratch sc{v.get(), m.get(), std::vector<const float*>(size_t(g.slots))};
    for (int64_t job = take(); job < jobs; job = take()) {
      const int64_t n = job / g.chunks_per_image, chunk = job % g.chunks_per_image;
      const int64_t r0 = chunk * g.rows_per_chunk, r1 = std::min(g.TP, r0 + g.rows_per_chunk);
      // The input rows these tile rows' windows reach, inside the image.
      const int64_t in0 = std::max<int64_t>(0, 2 * r0 - s.pad_h);
      const int64_t in1 = std::min(g.H, 2 * r1 - s.pad_h + 2);
      block_rows(x + n * g.C * HW, g.C, g.H, g.W, in0, in1 - in0, xr.get());
      const int64_t p0 = 2 * r0 * g.Q, p1 = std::min(g.P, 2 * r1) * g.Q;
      run_chunk(g, s, mt, off, InputRows{xr.get(), in1 - in0, in0}, packed.get(),
                OutputPixels{yr.get(), nullptr, kNR, g.Kp, p0}, Activation::none, identity, r0, r1,
                sc);
      const int64_t y_at = n * g.K * PQ + p0;
      direct::store_transposed(yr.get(), g.Kp, p1 - p0, g.K, y + y_at, PQ, e, 0,
                               e.residual ? e.residual + y_at : nullptr);
    }
  });
  return true;
}

bool winograd_backward_data_avx2(const Conv2dShape& s, const float* dy, const float* w, float* dx) {
  Conv2dShape t;
  if (!winograd_input_gradient_shape(s, t)) return false;
  const int64_t C = s.in_channels, K = s.out_channels;
  Buf wt(C * K * 9);
  for (int64_t c = 0; c < C; ++c)
    for (int64_t k = 0; k < K; ++k)
      for (int64_t r = 0; r < 9; ++r) wt.get()[(c * K + k) * 9 + r] = w[(k * C + c) * 9 + 8 - r];
  return winograd_forward_avx2(t, dy, wt.get(), dx, Epilogue{});
}

}  // namespace duet::kernels::detail
