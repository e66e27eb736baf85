// The weight gradient of a 3x3, stride-1 convolution by Winograd F(m x m, 3x3), m = 4 or 2
// (training). The forward pass computes each m x m output tile as y = A^T [U . V] A with
// U = G g G^T and V = B^T d B (conv2d_winograd_avx2.cpp); transposing those linear maps gives
//   dL/dg = G^T [ sum over tiles of (A dy A^T) . (B^T d B) ] G,
// so the 9 m^2 multiply-adds per tile, input and output channel of the direct weight gradient
// become (m + 2)^2 products summed over every tile of the batch (36 for 144 with F(4x4), 16 for
// 36 with F(2x2)): for each transform point xi a GEMM M[xi][c][k] += sum_t V[xi][t][c] Y[xi][t][k]
// with a long reduction (the tiles) and a small output (C x K). The products run on the direct
// convolution's micro-tiles: the input channels play the rows, read from the transformed inputs,
// and the transformed gradients Y are the 16-wide packed panels (16 -> 16 layers on AVX-512:
// conv2d_winograd_products_avx512.cpp, all 16 rows at once). F(2x2)'s transforms only add,
// subtract and halve, so it differs from the direct weight gradient by rounding alone; F(4x4)'s
// (coefficients up to 5 and 8, G with 1/6 and 1/24) round more, as in the forward pass (the op
// harness compares both variants with the reference; chosen_geometry picks one).
//
// The tiles are split into a fixed number of chunks (set by the thread count), each summing
// into its own M; the chunks' sums are added in chunk order, so the bits do not depend on which
// thread ran a chunk. Within a chunk, passes of `slots` tiles are transformed into scratch, which
// the products then consume.
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "duet/kernels/conv2d_direct_parts.h"
#include "duet/kernels/conv2d_impl.h"
#include "duet/kernels/conv2d_winograd_avx512.h"
#include "duet/kernels/conv2d_winograd_parts.h"
#include "duet/kernels/conv2d_winograd_variants.h"
#include "duet/kernels/isa.h"
#include "duet/kernels/simd_lanes_avx2.h"
#include "duet/tensor/parallel.h"

namespace duet::kernels::detail {
namespace {

using direct::active_tile;
using direct::Buf;
using direct::kNR;
using direct::round_up;
using winograd::block_rows;
using winograd::F2x2;
using winograd::F4x4;
using winograd::transform_block_tile_row;

// Transformed inputs and gradients of one pass: 0.5-2 MiB, 32 times the sums. Longer passes
// mean fewer trips of each product's sums between cache and registers, shorter ones keep V and
// Y nearer. On a Zen 4 (1 MiB L2) 2 MiB was best of 0.25-8 MiB for ResNet-20's and unet-s's
// layers from 32 channels (0.25 MiB: up to 1.6x slower for unet-s's 128- and 256-channel
// layers; 8 MiB: up to 1.7x slower at 16 channels). With 16 channels the sums are small
// (64 KiB), and a pass that stays in L2 wins: 16 -> 16 at 28 x 28, batch 128, 2 threads on a
// Zen 5: 1.24-1.33 ms with 0.5 MiB, 1.45-1.64 ms with 1 and 2 MiB; 32 -> 32 at 14 x 14 is the
// same from 0.5 to 2 MiB, 64 -> 64 at 7 x 7 best at 2 (bench_conv_passes).
constexpr int64_t kMinPassFloats = int64_t{1} << 17, kMaxPassFloats = int64_t{1} << 19;
constexpr int64_t kPassPerSum = 32;
// Per-thread scratch and per-chunk sums beyond these (very wide images or layers) leave the
// shape to the direct kernel.
constexpr int64_t kMaxScratch = int64_t{1} << 24;
constexpr int64_t kMaxSums = int64_t{1} << 22;
// All chunks' sums together stay under this (4 MiB) unless one chunk per thread needs more:
// wide layers run fewer, longer chunks, so that fewer sums are zeroed and added up at the end.
// unet-s's 128 -> 128 at 7 x 7, batch 64 (1 MiB of sums a chunk), 2 threads on a Zen 5: 2.4 ms
// with 4 chunks against 3.0-3.3 ms with the 8 of a 32 MiB bound (runs/s20/layu.cpp).
constexpr int64_t kMaxAllSums = int64_t{1} << 20;

struct Geometry : winograd::TileGrid {
  int64_t m, points;             // the variant's tile edge (2 or 4) and its (m + 2)^2 points
  int64_t Cr;                    // C rounded up to the micro-tile's rows
  int64_t rows_per_pass, slots;  // tile rows and tiles of one pass
  int64_t seg_rows;              // most tile rows of one image in a pass
  // V is tile-major, [tile][xi][Cb * 16] as the input transform writes it (one cache line more
  // per tile keeps the micro-tile's rows apart in L1); Y is [xi][panel][tile][16], the packed
  // panel layout of the micro-tiles, with one cache line more per point: a pass's tiles often
  // make the points a multiple of 4 KiB apart, and a tile's stores to its 36 points then all
  // fell into one L1 set (F(4x4) 32 -> 32 at 14 x 14, batch 128, 2 threads on a Zen 5, medians:
  // AVX2 2.65 ms without the line, 1.74 ms with it; AVX-512 1.49 and 1.14); M (the sums) is
  // [xi][Cr][Kp].
  int64_t v_tile() const { return points * Cb * kNR + kNR; }
  int64_t y_xi() const { return Kp * slots + kNR; }  // one cache line more, as for v_tile
  int64_t y_size() const { return points * y_xi(); }
  int64_t sums() const { return points * Cr * Kp; }
  int64_t x_rows() const { return std::min(H, m * seg_rows + 2); }
  int64_t dy_rows() const { return std::min(P, m * seg_rows); }
  double scratch() const {
    return double(slots) * double(v_tile()) + double(y_size()) +
           double(Cb * kNR) * double(x_rows() * W) + double(Kp) * double(dy_rows() * Q);
  }
};

Geometry geometry(const Conv2dShape& s, int64_t mr, int64_t m) {
  Geometry g{};
  static_cast<winograd::TileGrid&>(g) = winograd::tile_grid(s, m);
  g.m = m;
  g.points = (m + 2) * (m + 2);
  g.Cr = round_up(g.C, mr);
  const int64_t per_row = (g.v_tile() + g.points * g.Kp) * g.TQ;
  const int64_t pass_floats = std::clamp(kPassPerSum * g.sums(), kMinPassFloats, kMaxPassFloats);
  g.rows_per_pass = std::clamp<int64_t>(pass_floats / per_row, 1, s.batch * g.TP);
  g.slots = g.rows_per_pass * g.TQ;
  g.seg_rows = std::min(g.TP, g.rows_per_pass);
  return g;
}

// The transformed output gradients Y = A dy A^T of the tiles of one tile row, all 16 lanes of
// one channel block (conv2d_winograd_variants.h's transform_gradient_tile_row_of, on zmm where
// the CPU has AVX-512).
void transform_gradient_block_row(int64_t m, const float* plane, int64_t rows, int64_t Q,
                                  int64_t h0, int64_t tiles, float* y, int64_t ld_tile,
                                  int64_t ld_xi) {
  if (isa_at_least(Isa::avx512))
    return winograd_gradient_row_avx512(m, plane, rows, Q, h0, tiles, y, ld_tile, ld_xi);
  for (int64_t half = 0; half < kNR; half += 8) {
    if (m == 4)
      winograd::transform_gradient_tile_row_of<F4x4, simd::Lanes8>(plane + half, rows, Q, h0, tiles,
                                                                   y + half, ld_tile, ld_xi);
    else
      winograd::transform_gradient_tile_row_of<F2x2, simd::Lanes8>(plane + half, rows, Q, h0, tiles,
                                                                   y + half, ld_tile, ld_xi);
  }
}

// One thread's scratch for the passes of its chunks.
struct PassScratch {
  Buf v, y, x_rows, dy_rows;
  std::vector<const float*> base;
  std::vector<int32_t> off;
  explicit PassScratch(const Geometry& g)
      : v(g.slots * g.v_tile()),
        y(g.y_size()),
        x_rows(g.Cb * kNR * g.x_rows() * g.W),
        dy_rows(g.Kp * g.dy_rows() * g.Q),
        base(size_t(g.Cr)),
        off(size_t(g.slots)) {
    for (int64_t t = 0; t < g.slots; ++t) off[size_t(t)] = int32_t(t * g.v_tile());
  }
};

// Channel blocks of some rows of one image: block b starts at base + b * block_stride.
struct BlockRows {
  const float* base;
  int64_t block_stride;
};

// Copies `floats` floats of each of `blocks` blocks (block_stride apart) back to back into dst.
void copy_block_rows(const float* src, int64_t blocks, int64_t block_stride, int64_t floats,
                     float* dst) {
  for (int64_t b = 0; b < blocks; ++b)
    std::memcpy(dst + b * floats, src + b * block_stride, size_t(floats) * sizeof(float));
}

// Transforms tile rows [r0, r1) of image n into the pass's tiles t0 and on; adds the image's
// gradient sums per output channel to bias (when not null). Channel-major x and dy are blocked
// into the pass's scratch first, blocked ones (blocked) copied there or read where they are.
void transform_segment(const Geometry& g, const Conv2dShape& s, bool blocked, const float* x,
                       const float* dy, int64_t n, int64_t r0, int64_t r1, int64_t t0,
                       PassScratch& sc, double* bias) {
  // The input rows the tiles' windows reach, inside the image, and the gradient rows they cover.
  const int64_t in0 = std::max<int64_t>(0, g.m * r0 - s.pad_h);
  const int64_t in1 = std::min(g.H, g.m * r1 - s.pad_h + 2);
  const int64_t d0 = g.m * r0, d1 = std::min(g.P, g.m * r1);
  BlockRows xr{sc.x_rows.get(), (in1 - in0) * g.W * kNR};
  BlockRows dyr{sc.dy_rows.get(), (d1 - d0) * g.Q * kNR};
  // Blocked x and dy: the first row of image n's first block.
  const float* x_at = blocked ? x + ((n * g.Cb * g.H) + in0) * g.W * kNR : nullptr;
  const float* dy_at = blocked ? dy + ((n * g.panels * g.P) + d0) * g.Q * kNR : nullptr;
  if (blocked && g.Cb == 1 && g.panels == 1) {
    // One block each: the transforms read the rows where they are.
    xr = {x_at, g.H * g.W * kNR};
    dyr = {dy_at, g.P * g.Q * kNR};
  } else if (blocked) {
    // Several blocks: a plain copy of each block's rows streams them in, where the transforms
    // reading them in place ran up to 1.5x (x) and 3x (dy) slower (32 -> 32 at 28 x 28, batch 64,
    // one thread on a Zen 5: 5.1-7.0 ms in place, 4.3 ms copied; with one block of 16 channels
    // the copy cost 10 %: runs/s20/wg.cpp).
    copy_block_rows(x_at, g.Cb, g.H * g.W * kNR, xr.block_stride, sc.x_rows.get());
    copy_block_rows(dy_at, g.panels, g.P * g.Q * kNR, dyr.block_stride, sc.dy_rows.get());
  } else {
    block_rows(x + n * g.C * g.H * g.W, g.C, g.H, g.W, in0, in1 - in0, sc.x_rows.get());
    block_rows(dy + n * g.K * g.P * g.Q, g.K, g.P, g.Q, d0, d1 - d0, sc.dy_rows.get());
  }
  for (int64_t ty = r0; ty < r1; ++ty) {
    const int64_t t = t0 + (ty - r0) * g.TQ;
    for (int64_t cb = 0; cb < g.Cb; ++cb)
      transform_block_tile_row(g.m, xr.base + cb * xr.block_stride, in1 - in0, g.W,
                               g.m * ty - s.pad_h - in0, -s.pad_w, g.TQ,
                               sc.v.get() + t * g.v_tile() + cb * kNR, g.v_tile(), g.Cb * kNR);
    for (int64_t p = 0; p < g.panels; ++p)
      transform_gradient_block_row(g.m, dyr.base + p * dyr.block_stride, d1 - d0, g.Q,
                                   g.m * ty - d0, g.TQ, sc.y.get() + (p * g.slots + t) * kNR, kNR,
                                   g.y_xi());
  }
  if (!bias) return;
  const int64_t pixels = (d1 - d0) * g.Q;
  for (int64_t p = 0; p < g.panels; ++p) {
    const float* rows = dyr.base + p * dyr.block_stride;
    __m256 lo = _mm256_setzero_ps(), hi = lo;
    for (int64_t i = 0; i < pixels; ++i) {
      lo = _mm256_add_ps(lo, _mm256_loadu_ps(rows + i * kNR));
      hi = _mm256_add_ps(hi, _mm256_loadu_ps(rows + i * kNR + 8));
    }
    alignas(32) float sum[kNR];
    _mm256_store_ps(sum, lo);
    _mm256_store_ps(sum + 8, hi);
    for (int64_t j = 0; j < kNR && p * kNR + j < g.K; ++j) bias[p * kNR + j] += sum[j];
  }
}

// sums[xi][c][k] += sum over the pass's tiles of V[xi][t][c] Y[xi][t][k].
void products(const Geometry& g, const DirectTile& mt, int64_t tiles, PassScratch& sc,
              float* sums) {
  if (g.C == kNR && g.panels == 1 && isa_at_least(Isa::avx512)) {
    for (int64_t xi = 0; xi < g.points; ++xi)
      winograd_weight_products_c16_avx512(tiles, sc.v.get() + xi * kNR, sc.off.data(),
                                          sc.y.get() + xi * g.y_xi(), sums + xi * g.Cr * g.Kp);
    return;
  }
  for (int64_t xi = 0; xi < g.points; ++xi) {
    // Rows past the last channel repeat it (their sums are never read).
    for (int64_t i = 0; i < g.Cr; ++i)
      sc.base[size_t(i)] = sc.v.get() + xi * g.Cb * kNR + std::min(i, g.C - 1);
    direct::run_tiles(mt, g.Cr, g.panels, tiles, sc.base.data(), sc.off.data(),
                      sc.y.get() + xi * g.y_xi(), g.slots * kNR, sums + xi * g.Cr * g.Kp, g.Kp,
                      true);
  }
}

// dw[k][c] = G^T m G for the n x n sums m of variant F (its G: n x 3), in double, rounded once.
template <class F>
void output_transform(const double* m, float* dw) {
  constexpr int64_t n = F::n;
  double t[3][n];  // G^T m
  for (int64_t a = 0; a < 3; ++a)
    for (int64_t j = 0; j < n; ++j) {
      double v = 0;
      for (int64_t i = 0; i < n; ++i) v += F::G[i][a] * m[n * i + j];
      t[a][j] = v;
    }
  for (int64_t a = 0; a < 3; ++a)
    for (int64_t b = 0; b < 3; ++b) {
      double v = 0;
      for (int64_t j = 0; j < n; ++j) v += t[a][j] * F::G[j][b];
      dw[3 * a + b] = float(v);
    }
}

bool geometry_fits(const Geometry& g) {
  return g.scratch() <= double(kMaxScratch) && double(g.sums()) <= double(kMaxSums);
}

// The geometry of shape s's variant, false where none runs here: set_winograd_tile's variant
// where forced, else the one with fewer
// products per image (F(4x4): 36 per 4 x 4 tile, F(2x2): 16 per 2 x 2; ties go to F(2x2)'s
// cheaper transforms), whose sums and scratch fit. F(4x4) has the transforms' larger rounding
// (its G holds 1/6 and 1/24), as the forward pass it mirrors. Against F(2x2) (bench_conv_passes
// --pass weight --tiles 2,4, 2 threads on a Zen 5; docs/benchmarks.md): 0.61-0.88x the time at
// every ResNet-20 (batch 128) and unet-s (batch 64) shape with AVX2; with AVX-512 0.70-0.89x at
// unet-s's shapes except 64 -> 64 at 14 x 14 (1.08x), and even at ResNet-20's.
bool chosen_geometry(const Conv2dShape& s, Geometry& g) {
  if (s.groups != 1 || s.kernel_h != 3 || s.kernel_w != 3 || s.stride_h != 1 || s.stride_w != 1 ||
      s.dilation_h != 1 || s.dilation_w != 1 || s.pad_h > 2 || s.pad_w > 2 || s.out_h() < 1 ||
      s.out_w() < 1 || std::min(s.in_channels, s.out_channels) < kWinogradWeightMinChannels)
    return false;
  const int64_t forced = forced_winograd_tile();
  auto products = [&](int64_t m) {
    return (m + 2) * (m + 2) * ((s.out_h() + m - 1) / m) * ((s.out_w() + m - 1) / m);
  };
  const int64_t preferred = forced != 0 ? forced : products(4) < products(2) ? 4 : 2;
  for (const int64_t m : {preferred, 6 - preferred}) {
    g = geometry(s, active_tile().rows, m);
    if (geometry_fits(g)) return true;
  }
  return false;
}

}  // namespace

bool winograd_weight_gradient_fits(const Conv2dShape& s) {
  Geometry g;
  return chosen_geometry(s, g);
}

bool winograd_backward_weight_avx2(const Conv2dShape& s, bool blocked, const float* x,
                                   const float* dy, float* dw, float* dbias) {
  Geometry g;
  if (!chosen_geometry(s, g)) return false;
  const DirectTile mt = active_tile();
  const int64_t tile_rows = s.batch * g.TP;  // of the whole batch, image after image
  const double macs_per_row = double(g.points * g.TQ) * double(g.C * g.Kp);
  const int64_t threads = num_threads();
  const int64_t most = std::max(threads, kMaxAllSums / g.sums());
  const int64_t chunks = std::clamp<int64_t>(
      std::min(4 * threads, tile_rows / direct::grain_for(macs_per_row)), 1, most);
  Buf sums(chunks * g.sums());
  std::vector<double> bias(dbias ? size_t(chunks * g.K) : 0, 0.0);
  direct::run_jobs(chunks, 1, [&](auto&& take) {
    PassScratch sc(g);
    for (int64_t chunk = take(); chunk < chunks; chunk = take()) {
      float* m = sums.get() + chunk * g.sums();
      std::memset(m, 0, size_t(g.sums()) * sizeof(float));
      double* chunk_bias = dbias ? bias.data() + chunk * g.K : nullptr;
      const int64_t begin = tile_rows * chunk / chunks, end = tile_rows * (chunk + 1) / chunks;
      // Passes of equal length (at most rows_per_pass tile rows): a short last pass would move
      // the whole sums through the micro-tiles for a few tiles.
      const int64_t passes = (end - begin + g.rows_per_pass - 1) / g.rows_per_pass;
      for (int64_t pass = 0, row = begin; pass < passes; ++pass) {
        // One pass, split where one image ends.
        const int64_t pass_end = begin + (end - begin) * (pass + 1) / passes;
        int64_t tiles = 0;
        while (row < pass_end) {
          const int64_t n = row / g.TP, r0 = row % g.TP;
          const int64_t r1 = std::min(g.TP, r0 + pass_end - row);
          transform_segment(g, s, blocked, x, dy, n, r0, r1, tiles, sc, chunk_bias);
          tiles += (r1 - r0) * g.TQ;
          row += r1 - r0;
        }
        products(g, mt, tiles, sc, m);
      }
    }
  });
  // The chunks' sums in chunk order, then the output transform, one input channel a task.
  parallel_for(g.C, 1, [&](int64_t c_begin, int64_t c_end) {
    std::vector<float> m(size_t(g.points * g.K));  // [xi][k]
    for (int64_t c = c_begin; c < c_end; ++c) {
      for (int64_t xi = 0; xi < g.points; ++xi) {
        float* mk = m.data() + xi * g.K;
        const float* first = sums.get() + (xi * g.Cr + c) * g.Kp;
        std::memcpy(mk, first, size_t(g.K) * sizeof(float));
        for (int64_t chunk = 1; chunk < chunks; ++chunk)
          for (int64_t k = 0; k < g.K; ++k) mk[k] += first[chunk * g.sums() + k];
      }
      for (int64_t k = 0; k < g.K; ++k) {
        double mk[F4x4::points];
        for (int64_t xi = 0; xi < g.points; ++xi) mk[xi] = m[size_t(xi * g.K + k)];
        if (g.m == 4)
          output_transform<F4x4>(mk, dw + (k * g.C + c) * 9);
        else
          output_transform<F2x2>(mk, dw + (k * g.C + c) * 9);
      }
    }
  });
  if (dbias)
    for (int64_t k = 0; k < g.K; ++k) {
      double v = 0;
      for (int64_t chunk = 0; chunk < chunks; ++chunk) v += bias[size_t(chunk * g.K + k)];
      dbias[k] = float(v);
    }
  return true;
}

}  // namespace duet::kernels::detail
