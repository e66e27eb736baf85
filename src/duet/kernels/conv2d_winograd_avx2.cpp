// Winograd convolution of 3x3 stride-1 layers in its two variants (conv2d_winograd_variants.h):
// F(2x2, 3x3) and F(4x4, 3x3), chosen per shape by winograd_tile. Each m x m block of output
// pixels (a tile) comes from an n x n input window, n = m + 2, and the n^2 products per tile are
// n^2 independent GEMMs (one per transform point xi): M[xi][tile][k] = sum_c V[xi][tile][c]
// U[xi][c][k], which run on the direct convolution's micro-tiles (conv2d_direct_tile.h), the
// transformed tiles playing the pixels and the transformed weights the packed panels, or with
// AVX-512 for the common layer widths on conv2d_winograd_products_avx512.cpp's kernels. The
// transforms work on whole 16-channel blocks: two 8-lane halves here, one zmm in the AVX-512
// twins (conv2d_winograd_avx512.cpp), which the drivers below call where the CPU has AVX-512.
// - Channel-blocked activations (inference, training of the ResNets and UNets) need no
//   reshuffling, and the output transform applies the epilogue (scale, bias, residual,
//   activation) on its way into the blocked output.
// - Channel-major activations (sampling, unfolded networks, training with the layout off) are
//   blocked a chunk of rows at a time into scratch, and the products are transposed into
//   the output with the epilogue by the direct kernel's store. The weight gradient
//   (conv2d_winograd_weight_avx2.cpp) shares the F(2x2, 3x3) input transform and the row
//   blocking.
// The op harness compares both variants with the reference twin.
#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "duet/kernels/conv2d_blocked.h"
#include "duet/kernels/conv2d_direct_parts.h"
#include "duet/kernels/conv2d_impl.h"
#include "duet/kernels/conv2d_layout_avx512.h"
#include "duet/kernels/conv2d_winograd_avx512.h"
#include "duet/kernels/conv2d_winograd_parts.h"
#include "duet/kernels/conv2d_winograd_variants.h"
#include "duet/kernels/isa.h"
#include "duet/kernels/packed_weights.h"
#include "duet/kernels/simd_lanes_avx2.h"
#include "duet/kernels/transpose_avx2.h"
#include "duet/tensor/error.h"
#include "duet/tensor/parallel.h"

namespace duet::kernels::detail {

namespace winograd {

using direct::kNR;
using direct::round_up;

void transform_block_tile_row(int64_t m, const float* plane, int64_t H, int64_t W, int64_t h0,
                              int64_t w0, int64_t tiles, float* v, int64_t ld_tile, int64_t ld_xi) {
  if (isa_at_least(Isa::avx512))
    return winograd_input_row_avx512(m, plane, H, W, h0, w0, tiles, v, ld_tile, ld_xi);
  for (int64_t half = 0; half < kNR; half += 8) {
    if (m == 4)
      transform_tile_row_of<F4x4, simd::Lanes8>(plane + half, H, W, h0, w0, tiles, v + half,
                                                ld_tile, ld_xi);
    else
      transform_tile_row_of<F2x2, simd::Lanes8>(plane + half, H, W, h0, w0, tiles, v + half,
                                                ld_tile, ld_xi);
  }
}

TileGrid tile_grid(const Conv2dShape& s, int64_t m) {
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
  g.TP = (g.P + m - 1) / m;
  g.TQ = (g.Q + m - 1) / m;
  return g;
}

// 8 channels x 8 pixels at a time through a transpose.
namespace {

template <bool kPrologue>
void block_rows_impl(const float* x, int64_t C, int64_t H, int64_t W, int64_t row0, int64_t rows,
                     float* dst, const Prologue& p) {
  const int64_t n = rows * W, n8 = n / 8 * 8;
  for (int64_t c0 = 0; c0 < round_up(C, kNR); c0 += 8) {
    float* d = dst + c0 / kNR * n * kNR + c0 % kNR;
    const int64_t live = std::clamp<int64_t>(C - c0, 0, 8);
    const float* src[8];
    float a[8], b[8];  // the prologue's map of each of the 8 channels
    for (int64_t j = 0; j < 8; ++j) {
      const int64_t c = std::min(c0 + j, C - 1);
      src[j] = x + (c * H + row0) * W;
      a[j] = kPrologue && p.scale ? p.scale[c] : 1.0f;
      b[j] = kPrologue && p.shift ? p.shift[c] : 0.0f;
    }
    for (int64_t i = 0; i < n8; i += 8) {
      __m256 r[8];
      for (int64_t j = 0; j < 8; ++j) {
        r[j] = j < live ? _mm256_loadu_ps(src[j] + i) : _mm256_setzero_ps();
        if (kPrologue && j < live)
          r[j] = gemm_detail::activate_ps(
              p.act, _mm256_fmadd_ps(r[j], _mm256_set1_ps(a[j]), _mm256_set1_ps(b[j])));
      }
      simd::transpose8(r);
      for (int64_t j = 0; j < 8; ++j) _mm256_storeu_ps(d + (i + j) * kNR, r[j]);
    }
    for (int64_t i = n8; i < n; ++i)
      for (int64_t j = 0; j < 8; ++j)
        d[i * kNR + j] = j >= live   ? 0.0f
                         : kPrologue ? apply_activation(p.act, src[j][i] * a[j] + b[j])
                                     : src[j][i];
  }
}

}  // namespace

void block_rows(const float* x, int64_t C, int64_t H, int64_t W, int64_t row0, int64_t rows,
                float* dst, const Prologue* prologue) {
  if (isa_at_least(Isa::avx512)) return block_rows_avx512(x, C, H, W, row0, rows, dst, prologue);
  if (prologue)
    block_rows_impl<true>(x, C, H, W, row0, rows, dst, *prologue);
  else
    block_rows_impl<false>(x, C, H, W, row0, rows, dst, Prologue{});
}

}  // namespace winograd

namespace {

using direct::active_tile;
using direct::Buf;
using direct::kNR;
using direct::LaneEpilogue;
using direct::round_up;
using winograd::block_rows;
using winograd::F2x2;
using winograd::F4x4;

// Scratch bound per thread (transformed inputs of one chunk of tiles); beyond it (images
// thousands of pixels wide) the shape goes through the channel-major convolution instead.
constexpr int64_t kMaxScratch = int64_t{1} << 24;

template <class F>
struct Geometry : winograd::TileGrid {
  // A chunk (one job) is a run of rows_per_chunk tile rows of the batch, image after image, so
  // that the tiles of small maps (7x7: 4 tiles of 4x4 per image) fill whole micro-tiles; it
  // touches at most `segments` images. slots: the tiles its scratch holds.
  int64_t rows_per_chunk, jobs, segments, slots;
  // V (transformed inputs) and M (products) are tile-major, [tile][xi][channels], so that the
  // transforms stream through them; one cache line more than the points per tile keeps the
  // micro-tile's rows (tiles) out of each other's L1 sets.
  int64_t v_tile() const { return F::points * Cb * kNR + kNR; }
  int64_t m_tile() const { return F::points * Kp + kNR; }
};

// The share of a chunk's micro-tile rows past its last tile that geometry accepts before it
// lets a chunk outgrow its cache budget.
constexpr double kMaxEmptyRows = 1.0 / 8;

template <class F>
Geometry<F> geometry(const Conv2dShape& s, int64_t mr) {
  Geometry<F> g{};
  static_cast<winograd::TileGrid&>(g) = winograd::tile_grid(s, F::m);
  const int64_t total_rows = s.batch * g.TP;
  // Chunks whose V and M (points x C and points x Kp floats a tile) stay near 128 KiB each, in
  // L2 between the transforms and the products: up to `most` tile rows. Of the row counts
  // between half that and all of it, the one that leaves the fewest micro-tile rows empty.
  const int64_t budget =
      std::max<int64_t>(1, 2048 * F2x2::points / F::points / std::max(g.Cb * kNR, g.Kp));
  const int64_t most = std::max(budget / g.TQ, (mr + g.TQ - 1) / g.TQ);
  auto waste = [&](int64_t r) {  // empty micro-tile rows per tile
    return double(round_up(r * g.TQ, mr) - r * g.TQ) / double(r * g.TQ);
  };
  g.rows_per_chunk = most;
  for (int64_t r = most; r >= std::max<int64_t>(1, most / 2); --r)
    if (waste(r) < waste(g.rows_per_chunk)) g.rows_per_chunk = r;
  // Wide layers get few tiles a chunk, and a tile row that fills its micro-tiles badly then
  // wastes much of the products (unet-s's 96 -> 32 at 28 x 28: one row of 7 tiles in 12 micro-tile
  // rows, 8.5 ms forward at batch 64 on AVX2). Such chunks grow, up to 4x the budget, to the
  // first row count that leaves at most 1/8 of the rows empty (the same layer: 4 rows, 5.7 ms).
  for (int64_t r = most + 1; waste(g.rows_per_chunk) > kMaxEmptyRows && r <= 4 * most; ++r)
    if (waste(r) < waste(g.rows_per_chunk)) g.rows_per_chunk = r;
  // Few images: more, smaller chunks so that every thread has one.
  const int64_t threads = num_threads();
  g.rows_per_chunk =
      std::clamp<int64_t>(g.rows_per_chunk, 1, std::max<int64_t>(1, total_rows / threads));
  g.jobs = (total_rows + g.rows_per_chunk - 1) / g.rows_per_chunk;
  g.segments = std::min(s.batch, (g.rows_per_chunk + g.TP - 2) / g.TP + 1);
  g.slots = round_up(g.rows_per_chunk * g.TQ, mr);
  return g;
}

// The epilogue of each 8 lanes of the output channels (Kp / 8 of them).
std::vector<LaneEpilogue> lane_epilogues(const Epilogue& e, int64_t Kp, int64_t K) {
  std::vector<LaneEpilogue> out;
  for (int64_t at = 0; at < Kp; at += 8) out.push_back(direct::lane_epilogue(e, at, K));
  return out;
}

struct ChunkScratch {
  float* v;  // [slots][points][Cb][16], tiles v_tile() apart
  float* m;  // [slots][points][Kp], tiles m_tile() apart
  std::vector<const float*> base;
};

// Where a segment reads its input: channel blocks [Cb][rows][W][16], `rows` image rows from
// row0 on (the whole blocked image, or the rows a channel-major chunk blocked into scratch).
struct InputRows {
  const float* x;
  int64_t rows, row0;
};

// Where a segment's outputs go: output pixel p (p0 and on), channel k at
// y[k / 16 * ld_block + (p - p0) * ld_pixel + k % 16], residual (if any) laid out alike.
struct OutputPixels {
  float* y;
  const float* res;
  int64_t ld_block, ld_pixel, p0;
};

// The part of a chunk in one image: its tile rows [r0, r1).
struct Segment {
  int64_t n, r0, r1;
  InputRows in;
  OutputPixels out;
};

// Calls f(n, r0, r1) for each image n that global tile rows [g0, g1) reach, with its rows.
template <class Fn>
void for_each_segment(int64_t TP, int64_t g0, int64_t g1, Fn&& f) {
  for (int64_t n = g0 / TP; n * TP < g1; ++n)
    f(n, std::max(g0, n * TP) - n * TP, std::min(g1, (n + 1) * TP) - n * TP);
}

// Output transform and epilogue of a segment's tiles, which sit in M from slot `slot0` on.
template <class F, Activation A>
void store_tiles(const Geometry<F>& g, const ChunkScratch& sc, const std::vector<LaneEpilogue>& le,
                 const Segment& seg, int64_t slot0) {
  constexpr int64_t m = F::m;
  const OutputPixels& out = seg.out;
  for (int64_t ty = seg.r0; ty < seg.r1; ++ty) {
    const int64_t out_rows = std::min<int64_t>(m, g.P - m * ty);
    for (int64_t tx = 0; tx < g.TQ; ++tx) {
      const float* m0 = sc.m + (slot0 + (ty - seg.r0) * g.TQ + tx) * g.m_tile();
      const int64_t out_cols = std::min<int64_t>(m, g.Q - m * tx);
      const int64_t p = (m * ty) * g.Q + m * tx - out.p0;  // the tile's top-left pixel
      for (int64_t lane = 0; lane < g.Kp; lane += 8) {
        __m256 y[m][m];
        winograd::transform_output_of<F, simd::Lanes8>(m0 + lane, g.Kp, y);
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

// One chunk: the input transform of its segments' tiles (slot after slot), the products,
// the output transform and epilogue e (le: e's 8-lane form for the AVX2 store, built once per
// convolution by the caller; the AVX-512 store builds its own 16-lane form from e).
template <class F>
void run_chunk(const Geometry<F>& g, const Conv2dShape& s, const DirectTile& mt,
               const std::vector<int32_t>& off, const std::vector<Segment>& segments,
               const float* u, const Epilogue& e, const std::vector<LaneEpilogue>& le,
               ChunkScratch& sc) {
  int64_t tiles = 0;
  for (const Segment& seg : segments)
    for (int64_t ty = seg.r0; ty < seg.r1; ++ty, tiles += g.TQ)
      for (int64_t cb = 0; cb < g.Cb; ++cb)
        winograd::transform_block_tile_row(F::m, seg.in.x + cb * seg.in.rows * g.W * kNR,
                                           seg.in.rows, g.W, F::m * ty - s.pad_h - seg.in.row0,
                                           -s.pad_w, g.TQ, sc.v + tiles * g.v_tile() + cb * kNR,
                                           g.v_tile(), g.Cb * kNR);
  // AVX-512 kernels take the common layer shapes; the direct micro-tiles take the others.
  bool done = false;
  if (isa_at_least(Isa::avx512)) {
    if (g.C == kNR && g.panels == 1) {
      winograd_products_c16_avx512(F::points, tiles, sc.v, u, sc.m);
      done = true;
    } else {
      done = winograd_products_wide_avx512({F::points, g.C, g.panels, tiles, sc.v, u, sc.m});
    }
  }
  const int64_t rows = round_up(tiles, mt.rows);
  for (int64_t xi = 0; xi < F::points && !done; ++xi) {
    // Rows past the last tile repeat it (their products are never read).
    for (int64_t i = 0; i < rows; ++i)
      sc.base[size_t(i)] = sc.v + std::min(i, tiles - 1) * g.v_tile() + xi * g.Cb * kNR;
    direct::run_tiles(mt, rows, g.panels, g.C, sc.base.data(), off.data(),
                      u + xi * g.panels * g.C * kNR, g.C * kNR, sc.m + xi * g.Kp, g.m_tile(),
                      false);
  }
  int64_t slot0 = 0;
  for (const Segment& seg : segments) {
    if (isa_at_least(Isa::avx512)) {
      const OutputPixels& out = seg.out;
      winograd_store_tiles_avx512({F::m, sc.m + slot0 * g.m_tile(), g.m_tile(), g.Kp, g.K, g.TQ,
                                   g.P, g.Q, seg.r0, seg.r1, out.y, out.res, out.ld_block,
                                   out.ld_pixel, out.p0, &e});
      slot0 += (seg.r1 - seg.r0) * g.TQ;
      continue;
    }
    switch (e.act) {
      case Activation::none:
        store_tiles<F, Activation::none>(g, sc, le, seg, slot0);
        break;
      case Activation::relu:
        store_tiles<F, Activation::relu>(g, sc, le, seg, slot0);
        break;
      case Activation::silu:
        store_tiles<F, Activation::silu>(g, sc, le, seg, slot0);
        break;
      case Activation::gelu:
        store_tiles<F, Activation::gelu>(g, sc, le, seg, slot0);
        break;
    }
    slot0 += (seg.r1 - seg.r0) * g.TQ;
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
template <class F>
bool scratch_fits(const Geometry<F>& g) {
  return double(g.slots) * double(std::max(g.v_tile(), g.m_tile())) <= double(kMaxScratch);
}

// Calls f(F2x2{}) or f(F4x4{}) for tile edge m (2 or 4).
template <class Fn>
auto with_variant(int64_t m, Fn&& f) {
  return m == 4 ? f(F4x4{}) : f(F2x2{});
}

// set_winograd_tile's choice, first from $DUET_WINOGRAD_TILE (2 or 4; anything else: by size),
// so that any command can be timed with either variant.
std::atomic<int64_t>& forced_tile() {
  static std::atomic<int64_t> m{[]() -> int64_t {
    const char* env = std::getenv("DUET_WINOGRAD_TILE");
    const std::string v = env ? env : "";
    return v == "2" ? 2 : v == "4" ? 4 : 0;
  }()};
  return m;
}

// The 3x3 stride-1 shapes Winograd takes at all, before the variant is chosen.
bool winograd_shape(const Conv2dShape& s) {
  return s.groups == 1 && s.kernel_h == 3 && s.kernel_w == 3 && s.stride_h == 1 &&
         s.stride_w == 1 && s.dilation_h == 1 && s.dilation_w == 1 &&
         s.in_channels >= kWinogradMinChannels && s.pad_h <= 2 && s.pad_w <= 2 && s.out_h() >= 1 &&
         s.out_w() >= 1;
}

int64_t tiles_per_image(const Conv2dShape& s, int64_t m) {
  return (s.out_h() + m - 1) / m * ((s.out_w() + m - 1) / m);
}

// The packed weights of variant m (the transformed filters of every channel pair).
int64_t packed_floats(const Conv2dShape& s, int64_t m) {
  return (m + 2) * (m + 2) * round_up(s.out_channels, kNR) * s.in_channels;
}

// Bound on the packed weights (16 MiB), which training packs on every call.
constexpr int64_t kMaxPacked = int64_t{1} << 22;

}  // namespace

int64_t forced_winograd_tile() {
  return forced_tile().load(std::memory_order_relaxed);
}

void set_winograd_tile(int64_t m) {
  DUET_CHECK(m == 0 || m == 2 || m == 4, "set_winograd_tile: expected 0, 2 or 4, got ", m);
  forced_tile().store(m, std::memory_order_relaxed);
}

int64_t winograd_tile(const Conv2dShape& s, WinogradLayout layout) {
  if (!winograd_shape(s)) return 0;
  // Fewer tiles than the micro-tile's rows leave most of each product empty (ResNet-18's 4x4
  // maps at batch 1: 11.7 ms with them here, 10.9 ms without any Winograd).
  if (tiles_per_image(s, 2) < kWinogradMinTiles || packed_floats(s, 2) > kMaxPacked) return 0;
  const int64_t forced = forced_tile().load(std::memory_order_relaxed);
  const int64_t tiles4 = s.batch * tiles_per_image(s, 4);
  const bool f4 = forced != 0
                      ? forced == 4
                      : tiles4 >= (layout == WinogradLayout::blocked ? kWinogradMinTiles4Blocked
                                                                     : kWinogradMinTiles4);
  return f4 && packed_floats(s, 4) <= kMaxPacked ? 4 : 2;
}

int64_t winograd_packed_size(const Conv2dShape& s) {
  const int64_t m = winograd_tile(s, WinogradLayout::blocked);
  return m == 0 ? 0 : packed_floats(s, m);
}

namespace {

// U = G g G^T of every filter, for variant F.
template <class F>
void pack_filters(const Conv2dShape& s, const float* w, float* packed) {
  const int64_t C = s.in_channels, K = s.out_channels, Kp = round_up(K, kNR);
  const int64_t panels = Kp / kNR;
  // Training packs on every call (256 -> 128 channels: 1.2 ms on one Zen 4 core, next to an
  // 8.6 ms convolution at batch 64), so the work is shared out by (panel, input channel) items
  // of 16 filters each, 1024 filters a thread at least: split by panels alone, unet-s's 64- and
  // 128-channel layers (4 and 8 panels) packed on one thread while the others waited.
  constexpr int64_t kGrain = 1024 / kNR;
  parallel_for(panels * C, kGrain, [&](int64_t begin, int64_t end) {
    alignas(64) float g[9][kNR];
    alignas(64) float u[F::points * kNR];
    for (int64_t item = begin; item < end; ++item) {
      const int64_t panel = item / C, c = item % C;
      // The panel's 16 filters side by side (zero past K), then the 16-wide transform.
      for (int64_t l = 0; l < kNR; ++l) {
        const int64_t k = panel * kNR + l;
        for (int64_t t = 0; t < 9; ++t) g[t][l] = k < K ? w[(k * C + c) * 9 + t] : 0.0f;
      }
      winograd::transform_filters_of<F>(g, u);
      for (int64_t xi = 0; xi < F::points; ++xi)
        std::copy_n(u + xi * kNR, kNR, packed + ((xi * panels + panel) * C + c) * kNR);
    }
  });
}

}  // namespace

void winograd_pack_avx2(const Conv2dShape& s, const float* w, float* packed) {
  with_variant(winograd_tile(s, WinogradLayout::blocked),
               [&](auto variant) { pack_filters<decltype(variant)>(s, w, packed); });
}

bool winograd_forward_blocked_avx2(const Conv2dShape& s, bool x_blocked, const float* x,
                                   const float* w, const float* packed, float* y,
                                   const Epilogue& e) {
  const int64_t size = winograd_packed_size(s);
  if (size == 0) return false;
  return with_variant(winograd_tile(s, WinogradLayout::blocked), [&](auto variant) {
    using F = decltype(variant);
    const DirectTile mt = active_tile();
    const Geometry<F> g = geometry<F>(s, mt.rows);
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
    const int64_t PQ = g.P * g.Q;
    const double macs_per_job = double(F::points * g.rows_per_chunk * g.TQ) * double(g.C * g.Kp);
    direct::run_jobs(g.jobs, direct::grain_for(macs_per_job), [&](auto&& take) {
      Buf v(v_size), m(m_size);
      ChunkScratch sc{v.get(), m.get(), std::vector<const float*>(size_t(g.slots))};
      std::vector<Segment> segments;
      for (int64_t job = take(); job < g.jobs; job = take()) {
        segments.clear();
        const int64_t g0 = job * g.rows_per_chunk;
        for_each_segment(
            g.TP, g0, std::min(g0 + g.rows_per_chunk, s.batch * g.TP),
            [&](int64_t n, int64_t r0, int64_t r1) {
              const int64_t y_at = n * g.panels * PQ * kNR;
              segments.push_back({n, r0, r1, InputRows{x + n * g.Cb * HW * kNR, g.H, 0},
                                  OutputPixels{y + y_at, e.residual ? e.residual + y_at : nullptr,
                                               PQ * kNR, kNR, 0}});
            });
        run_chunk(g, s, mt, off, segments, packed, e, le, sc);
      }
    });
    return true;
  });
}

bool winograd_channel_major_fits(const Conv2dShape& s) {
  const int64_t m = winograd_tile(s, WinogradLayout::channel_major);
  const int64_t min_channels =
      m == 4 ? kWinogradChannelMajorMinChannels4 : kWinogradChannelMajorMinChannels;
  if (m == 0 || std::min(s.in_channels, s.out_channels) < min_channels) return false;
  return with_variant(m, [&](auto variant) {
    return scratch_fits(geometry<decltype(variant)>(s, active_tile().rows));
  });
}

bool winograd_input_gradient_shape(const Conv2dShape& s, Conv2dShape& t) {
  return s.kernel_h == 3 && s.kernel_w == 3 && input_gradient_as_forward(s, t) &&
         winograd_channel_major_fits(t);
}

bool winograd_forward_avx2(const Conv2dShape& s, const float* x, const float* w, float* y,
                           const Epilogue& e, const WinogradExtras& extras) {
  const Prologue* prologue = extras.prologue;
  const float* image_bias = extras.image_bias;
  if (!winograd_channel_major_fits(s)) return false;
  with_variant(winograd_tile(s, WinogradLayout::channel_major), [&](auto variant) {
    using F = decltype(variant);
    constexpr int64_t M = F::m;
    const DirectTile mt = active_tile();
    const Geometry<F> g = geometry<F>(s, mt.rows);
    const int64_t packed_size = packed_floats(s, M);
    auto pack = [&](float* dst) { pack_filters<F>(s, w, dst); };
    // The packing depends on the variant and on how the weights split into K x C filters.
    const int64_t packing = g.C * 8 + M;
    const float* u = extras.cache_weights ? kernels::detail::cached_packed_weights(
                                                w, g.K * g.C * 9, packing, packed_size, pack)
                                          : nullptr;
    Buf own(u ? 0 : packed_size);
    if (!u) {
      pack(own.get());
      u = own.get();
    }
    const std::vector<int32_t> off = channel_offsets(g.C);
    const std::vector<LaneEpilogue> identity = lane_epilogues(Epilogue{}, g.Kp, g.K);
    const int64_t HW = g.H * g.W, PQ = g.P * g.Q;
    // Each segment blocks the input rows its windows reach (at most M rows a tile row and 2).
    const int64_t in_rows = M * g.rows_per_chunk + 2 * g.segments;
    const double macs_per_job = double(F::points * g.rows_per_chunk * g.TQ) * double(g.C * g.Kp);
    direct::run_jobs(g.jobs, direct::grain_for(macs_per_job), [&](auto&& take) {
      Buf v(g.slots * g.v_tile()), m(g.slots * g.m_tile());
      Buf xr(g.Cb * in_rows * g.W * kNR), yr(M * g.rows_per_chunk * g.Q * g.Kp);
      Buf bias(image_bias ? g.K : 0);  // the epilogue's bias plus the image's
      ChunkScratch sc{v.get(), m.get(), std::vector<const float*>(size_t(g.slots))};
      std::vector<Segment> segments;
      for (int64_t job = take(); job < g.jobs; job = take()) {
        segments.clear();
        int64_t x_at = 0, y_at = 0;  // where the next segment's rows and products go
        const int64_t g0 = job * g.rows_per_chunk;
        for_each_segment(
            g.TP, g0, std::min(g0 + g.rows_per_chunk, s.batch * g.TP),
            [&](int64_t n, int64_t r0, int64_t r1) {
              // The input rows these tile rows' windows reach, inside the image.
              const int64_t in0 = std::max<int64_t>(0, M * r0 - s.pad_h);
              const int64_t in1 = std::min(g.H, M * r1 - s.pad_h + 2);
              Prologue image_prologue;
              if (prologue) {
                image_prologue = *prologue;
                if (prologue->scale) image_prologue.scale += n * g.C;
                if (prologue->shift) image_prologue.shift += n * g.C;
              }
              block_rows(x + n * g.C * HW, g.C, g.H, g.W, in0, in1 - in0, xr.get() + x_at,
                         prologue ? &image_prologue : nullptr);
              const int64_t p0 = M * r0 * g.Q;
              segments.push_back({n, r0, r1, InputRows{xr.get() + x_at, in1 - in0, in0},
                                  OutputPixels{yr.get() + y_at, nullptr, kNR, g.Kp, p0}});
              x_at += g.Cb * (in1 - in0) * g.W * kNR;
              y_at += (std::min(g.P, M * r1) * g.Q - p0) * g.Kp;
            });
        run_chunk(g, s, mt, off, segments, u, Epilogue{}, identity, sc);
        // The products leave in pixel-major scratch without the epilogue, which
        // store_transposed applies on the way into channel-major y.
        for (const Segment& seg : segments) {
          const int64_t p0 = seg.out.p0, p1 = std::min(g.P, M * seg.r1) * g.Q;
          const int64_t at = seg.n * g.K * PQ + p0;
          Epilogue image_e = e;
          if (image_bias) {
            for (int64_t k = 0; k < g.K; ++k)
              bias.get()[k] = (e.bias ? e.bias[k] : 0.0f) + image_bias[seg.n * g.K + k];
            image_e.bias = bias.get();
          }
          direct::store_transposed(seg.out.y, g.Kp, p1 - p0, g.K, y + at, PQ, image_e, 0,
                                   e.residual ? e.residual + at : nullptr);
        }
      }
    });
    return true;
  });
  return true;
}

void image_to_blocked_avx2(int64_t c, int64_t hw, const float* x, float* xb) {
  block_rows(x, c, 1, hw, 0, 1, xb);  // one row of hw pixels
}

void image_from_blocked_avx2(int64_t c, int64_t hw, const float* xb, float* x) {
  for (int64_t b = 0; b * kNR < c; ++b)
    direct::store_transposed(xb + b * hw * kNR, kNR, hw, std::min(kNR, c - b * kNR),
                             x + b * kNR * hw, hw, Epilogue{}, 0, nullptr);
}

bool winograd_backward_data_avx2(const Conv2dShape& s, const float* dy, const float* w, float* dx) {
  Conv2dShape t;
  if (!winograd_input_gradient_shape(s, t)) return false;
  const int64_t C = s.in_channels, K = s.out_channels;
  Buf wt(C * K * 9);
  parallel_for(C, std::max<int64_t>(1, 4096 / K), [&](int64_t c_begin, int64_t c_end) {
    for (int64_t c = c_begin; c < c_end; ++c)
      for (int64_t k = 0; k < K; ++k)
        for (int64_t r = 0; r < 9; ++r) wt.get()[(c * K + k) * 9 + r] = w[(k * C + c) * 9 + 8 - r];
  });
  return winograd_forward_avx2(t, dy, wt.get(), dx, Epilogue{});
}

}  // namespace duet::kernels::detail
