// AVX2 implicit-GEMM convolution without an im2col buffer. Each (image, group) is copied once
// into a zero-padded scratch plane, after which every operand element of the GEMM is
// xp[base + offset]: the 6x16 micro-kernel broadcasts A straight from the image through six
// base pointers plus a per-k offset table, and reads B from 16-wide packed panels. Forward and
// stride-1 backward-data compute C^T[pixels, channels] (channels fill the 16 lanes exactly for
// 16/32/64 channels), backward-weight computes dW^T[taps, K] with k running over pixels.
// The micro-tile is the one piece that differs per instruction set (conv2d_direct_tile.h): this
// file's 6x16 AVX2 tile, or the AVX-512 ones (8 rows x 32 or 16); everything else serves both.
// The forward also runs on channel-blocked activations (conv2d_blocked.h): a blocked input's
// plane keeps 16 channels per pixel together, and a blocked output takes each 16-channel panel
// of C^T as it is, where the channel-major store has to transpose it.
#include <immintrin.h>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <vector>

#include "duet/kernels/activation_math.h"
#include "duet/kernels/conv2d_direct_parts.h"
#include "duet/kernels/conv2d_direct_tile.h"
#include "duet/kernels/conv2d_impl.h"
#include "duet/kernels/conv2d_layout_avx512.h"
#include "duet/kernels/gemm_epilogue.h"
#include "duet/kernels/isa.h"
#include "duet/kernels/transpose_avx2.h"
#include "duet/tensor/allocator.h"
#include "duet/tensor/parallel.h"

namespace duet::kernels::detail {
namespace direct {

// Jobs per thread so that each thread gets enough work: below that a fork/join (worse, a wait
// for a time slice on a loaded machine) costs more than it saves. 256k multiply-adds with the
// AVX2 tile; 1M with AVX-512, which does them twice as fast (ResNet-20 at batch 1 on 2 threads:
// 0.58 ms against 0.72-0.83 ms at 256k, the same at 2M).
int64_t grain_for(double macs_per_job) {
  const double min_macs = isa_at_least(Isa::avx512) ? 1048576.0 : 262144.0;
  return std::max<int64_t>(1, int64_t(min_macs / std::max(macs_per_job, 1.0)) + 1);
}

// The widest micro-tile the active instruction set runs.
DirectTile active_tile() {
  return isa_at_least(Isa::avx512) ? direct_tile_avx512() : direct_tile_avx2();
}

// Runs the micro-tiles over rows [0, rows) (a multiple of mt.rows; base and c) and all weight
// panels (panel_stride floats apart in pb, 16 columns apart in c). Panels are the outer loop, so
// the weights of one stay in L1 while the rows stream past them.
void run_tiles(const DirectTile& mt, int64_t rows, int64_t panels, int64_t kc,
               const float* const* base, const int32_t* off, const float* pb, int64_t panel_stride,
               float* c, int64_t ldc, bool accumulate) {
  for (int64_t p = 0; p < panels;) {
    const bool wide = p + mt.panels <= panels;
    const DirectTileFn fn = wide ? mt.wide : mt.one;
    for (int64_t i = 0; i < rows; i += mt.rows)
      fn(kc, base + i, off, pb + p * panel_stride, panel_stride, c + i * ldc + p * kNR, ldc,
         accumulate);
    p += wide ? mt.panels : 1;
  }
}

LaneEpilogue lane_epilogue(const Epilogue& e, int64_t at, int64_t channels) {
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const __m256i live = _mm256_cmpgt_epi32(_mm256_set1_epi32(int(channels - at)), lane);
  LaneEpilogue le;
  le.scaled = e.scale != nullptr;
  le.mul = e.scale ? _mm256_maskload_ps(e.scale + at, live) : _mm256_set1_ps(1.0f);
  le.add = _mm256_setzero_ps();
  if (e.shift) le.add = _mm256_maskload_ps(e.shift + at, live);
  if (e.bias) le.add = _mm256_add_ps(le.add, _mm256_maskload_ps(e.bias + at, live));
  le.keep = _mm256_castsi256_ps(live);
  return le;
}

void store_transposed(const float* ct, int64_t ldct, int64_t len, int64_t nk, float* y, int64_t ldy,
                      const Epilogue& e, int64_t ch0, const float* res) {
  if (isa_at_least(Isa::avx512))
    return store_transposed_avx512(ct, ldct, len, nk, y, ldy, e, ch0, res);
  auto scalar = [&](int64_t k, int64_t i) {
    const int64_t ch = ch0 + k;
    float v = ct[i * ldct + k];
    if (e.scale) v *= e.scale[ch];
    if (e.shift) v += e.shift[ch];
    if (e.bias) v += e.bias[ch];
    if (res) v += res[k * ldy + i];
    y[k * ldy + i] = e.act == Activation::none ? v : apply_activation(e.act, v);
  };
  const int64_t i8 = len / 8 * 8;
  for (int64_t k0 = 0; k0 < nk; k0 += 8) {
    const int64_t kn = std::min<int64_t>(8, nk - k0);
    for (int64_t i0 = 0; i0 < i8; i0 += 8) {
      __m256 r[8];
      for (int j = 0; j < 8; ++j) r[j] = _mm256_loadu_ps(ct + (i0 + j) * ldct + k0);
      simd::transpose8(r);
      for (int64_t k = 0; k < kn; ++k) {
        const int64_t ch = ch0 + k0 + k;
        __m256 v = r[k];
        if (e.scale) v = _mm256_mul_ps(v, _mm256_broadcast_ss(e.scale + ch));
        if (e.shift) v = _mm256_add_ps(v, _mm256_broadcast_ss(e.shift + ch));
        if (e.bias) v = _mm256_add_ps(v, _mm256_broadcast_ss(e.bias + ch));
        const int64_t o = (k0 + k) * ldy + i0;
        if (res) v = _mm256_add_ps(v, _mm256_loadu_ps(res + o));
        _mm256_storeu_ps(y + o, gemm_detail::activate_ps(e.act, v));
      }
    }
    for (int64_t k = k0; k < k0 + kn; ++k)
      for (int64_t i = i8; i < len; ++i) scalar(k, i);
  }
}

}  // namespace direct

namespace {

using direct::active_tile;
using direct::Buf;
using direct::grain_for;
using direct::kNR;
using direct::round_up;
using direct::run_jobs;
using direct::run_tiles;
using direct::store_transposed;

// c[6 x 16] (ld ldc) (+)= sum_k A[i, k] * pb[k, 0..16), A[i, k] = base[i][off[k]].
void tile_6x16(int64_t kc, const float* const* base, const int32_t* off, const float* pb,
               int64_t /*panel_stride: one panel*/, float* c, int64_t ldc, bool accumulate) {
  const float *a0 = base[0], *a1 = base[1], *a2 = base[2], *a3 = base[3], *a4 = base[4],
              *a5 = base[5];
  __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
  __m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
#pragma GCC unroll 4
  for (int64_t k = 0; k < kc; ++k, pb += kNR) {
    const int64_t o = off[k];
    const __m256 b0 = _mm256_load_ps(pb), b1 = _mm256_load_ps(pb + 8);
    __m256 av = _mm256_broadcast_ss(a0 + o);
    c00 = _mm256_fmadd_ps(av, b0, c00);
    c01 = _mm256_fmadd_ps(av, b1, c01);
    av = _mm256_broadcast_ss(a1 + o);
    c10 = _mm256_fmadd_ps(av, b0, c10);
    c11 = _mm256_fmadd_ps(av, b1, c11);
    av = _mm256_broadcast_ss(a2 + o);
    c20 = _mm256_fmadd_ps(av, b0, c20);
    c21 = _mm256_fmadd_ps(av, b1, c21);
    av = _mm256_broadcast_ss(a3 + o);
    c30 = _mm256_fmadd_ps(av, b0, c30);
    c31 = _mm256_fmadd_ps(av, b1, c31);
    av = _mm256_broadcast_ss(a4 + o);
    c40 = _mm256_fmadd_ps(av, b0, c40);
    c41 = _mm256_fmadd_ps(av, b1, c41);
    av = _mm256_broadcast_ss(a5 + o);
    c50 = _mm256_fmadd_ps(av, b0, c50);
    c51 = _mm256_fmadd_ps(av, b1, c51);
  }
  const __m256 acc[6][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
  for (int64_t i = 0; i < 6; ++i) {
    float* cp = c + i * ldc;
    __m256 v0 = acc[i][0], v1 = acc[i][1];
    if (accumulate) {
      v0 = _mm256_add_ps(v0, _mm256_loadu_ps(cp));
      v1 = _mm256_add_ps(v1, _mm256_loadu_ps(cp + 8));
    }
    _mm256_storeu_ps(cp, v0);
    _mm256_storeu_ps(cp + 8, v1);
  }
}

// Rows of a pixel tile: a multiple of the micro-tile's rows and of the 8 of the transposing
// store.
int64_t tile_step(int64_t rows) {
  int64_t step = rows;
  while (step % 8) step += rows;
  return step;
}

// The padded plane of one image-group with the image in the interior: Cg x Hp x Wp for
// channel-major input (lanes 1), or ceil(Cg / 16) x Hp x Wp x 16 for channel-blocked input
// (lanes 16, kernels::kChannelBlock), whose channel c sits in block c / 16, lane c % 16.
struct Plane {
  int64_t C = 0, H = 0, W = 0, ph = 0, pw = 0, Hp = 0, Wp = 0, lanes = 1;
  int64_t blocks() const { return (C + lanes - 1) / lanes; }
  int64_t size() const { return blocks() * Hp * Wp * lanes; }
};

// Copies the image into the interior of dst. The border is never written, so zeroing the
// buffer once per thread (clear_plane) keeps it zero for every later image.
void fill_plane(const Plane& pl, const float* src, float* dst) {
  if (pl.lanes > 1) {  // whole blocked rows are contiguous
    const size_t row_bytes = size_t(pl.W * pl.lanes) * sizeof(float);
    for (int64_t b = 0; b < pl.blocks(); ++b)
      for (int64_t h = 0; h < pl.H; ++h)
        std::memcpy(dst + ((b * pl.Hp + h + pl.ph) * pl.Wp + pl.pw) * pl.lanes,
                    src + (b * pl.H + h) * pl.W * pl.lanes, row_bytes);
    return;
  }
  for (int64_t c = 0; c < pl.C; ++c)
    for (int64_t h = 0; h < pl.H; ++h) {
      float* row = dst + (c * pl.Hp + h + pl.ph) * pl.Wp + pl.pw;
      const float* in = src + (c * pl.H + h) * pl.W;
      for (int64_t w = 0; w < pl.W; ++w) row[w] = in[w];
    }
}

void clear_plane(const Plane& pl, float* dst) {
  std::memset(dst, 0, size_t(pl.size()) * sizeof(float));
}

Plane plane_of(const Conv2dShape& s, int64_t lanes = 1) {
  Plane pl;
  pl.lanes = lanes;
  pl.C = s.in_channels / s.groups;
  pl.H = s.in_h;
  pl.W = s.in_w;
  pl.ph = s.pad_h;
  pl.pw = s.pad_w;
  pl.Hp = s.in_h + 2 * s.pad_h;
  pl.Wp = s.in_w + 2 * s.pad_w;
  return pl;
}

// Offsets of taps (c, r, u) in the padded plane, in weight order.
std::vector<int32_t> tap_offsets(const Conv2dShape& s, const Plane& pl) {
  std::vector<int32_t> off;
  off.reserve(size_t(pl.C * s.kernel_h * s.kernel_w));
  for (int64_t c = 0; c < pl.C; ++c)
    for (int64_t r = 0; r < s.kernel_h; ++r)
      for (int64_t u = 0; u < s.kernel_w; ++u)
        off.push_back(int32_t(
            ((c / pl.lanes * pl.Hp + r * s.dilation_h) * pl.Wp + u * s.dilation_w) * pl.lanes +
            c % pl.lanes));
  return off;
}

// Offset of output pixel t's top-left tap in the padded plane.
int64_t pixel_offset(const Conv2dShape& s, const Plane& pl, int64_t t) {
  const int64_t Q = s.out_w();
  return (t / Q) * s.stride_h * pl.Wp + (t % Q) * s.stride_w;
}

// Per-thread scratch holds one padded image-group; beyond 16 MiB of it (huge images) the tiled
// im2col path is the better fit, and the bound keeps every offset within int32.
constexpr int64_t kMaxPlane = int64_t{1} << 22;

bool plane_fits(const Conv2dShape& s, int64_t lanes = 1) {
  const Plane pl = plane_of(s, lanes);
  return pl.size() <= kMaxPlane;
}

// One panel of store_blocked: dst[16 i + j] = epilogue(src[i * ldct + j]) (+ res[16 i + j]),
// with the activation fixed at compile time so the loop has no branches.
template <Activation A>
void store_panel(const float* src, int64_t ldct, int64_t len, float* dst, const float* res,
                 const direct::LaneEpilogue le[2]) {
  for (int64_t i = 0; i < len; ++i, src += ldct, dst += kNR)
    for (int h = 0; h < 2; ++h)
      _mm256_storeu_ps(dst + 8 * h,
                       direct::apply_lane_epilogue<A>(le[h], _mm256_loadu_ps(src + 8 * h),
                                                      res ? res + i * kNR + 8 * h : nullptr));
}

// The channel-blocked store: y[p * ld_panel + 16 i + j] = epilogue(ct[i * ldct + 16 p + j]) for
// panels p < panels and pixels i < len, res (if any) laid out like y. No transpose: a panel of
// C^T already is a channel block. Lanes at or past nk (the last block's padding) are written 0.
void store_blocked(const float* ct, int64_t ldct, int64_t len, int64_t panels, int64_t nk, float* y,
                   int64_t ld_panel, const Epilogue& e, const float* res) {
  for (int64_t p = 0; p < panels; ++p) {
    const direct::LaneEpilogue le[2] = {direct::lane_epilogue(e, p * kNR, nk),
                                        direct::lane_epilogue(e, p * kNR + 8, nk)};
    const float* src = ct + p * kNR;
    float* dst = y + p * ld_panel;
    const float* r = res ? res + p * ld_panel : nullptr;
    switch (e.act) {
      case Activation::none:
        store_panel<Activation::none>(src, ldct, len, dst, r, le);
        break;
      case Activation::relu:
        store_panel<Activation::relu>(src, ldct, len, dst, r, le);
        break;
      case Activation::silu:
        store_panel<Activation::silu>(src, ldct, len, dst, r, le);
        break;
      case Activation::gelu:
        store_panel<Activation::gelu>(src, ldct, len, dst, r, le);
        break;
    }
  }
}

// Weights packed as [group][panel of 16 outputs][tap][16], zero-padded past n_out:
// output o of group g, tap t reads w[g * group_stride + o * out_stride + tap_at[t]].
void pack_weights(int64_t G, int64_t n_out, const std::vector<int64_t>& tap_at, const float* w,
                  int64_t group_stride, int64_t out_stride, float* wt) {
  const int64_t panels = round_up(n_out, kNR) / kNR, taps = int64_t(tap_at.size());
  for (int64_t g = 0; g < G; ++g)
    for (int64_t p = 0; p < panels; ++p) {
      float* d = wt + (g * panels + p) * taps * kNR;
      for (int64_t j = 0; j < kNR; ++j) {
        const int64_t o = p * kNR + j;
        const float* src = w + g * group_stride + o * out_stride;
        for (int64_t t = 0; t < taps; ++t)
          d[t * kNR + j] = o < n_out ? src[tap_at[size_t(t)]] : 0.0f;
      }
    }
}

// How forward_packed reads x and writes y: channel-major (NCHW), or channel-blocked
// (kernels::conv2d_forward_blocked; groups 1 only).
struct IoLayout {
  bool x_blocked = false, y_blocked = false;
};

// The forward pass of shape s over packed weights wt (see pack_weights).
void forward_packed(const Conv2dShape& s, const float* x, const float* wt, float* y,
                    const Epilogue& e, IoLayout io = {}) {
  const Plane pl = plane_of(s, io.x_blocked ? kNR : 1);
  const int64_t G = s.groups, K = s.out_channels, Kg = K / G, C = s.in_channels;
  const int64_t Q = s.out_w(), PQ = s.out_h() * Q, HW = s.in_h * s.in_w;
  const int64_t Kp = round_up(Kg, kNR), panels = Kp / kNR;
  const std::vector<int32_t> off = tap_offsets(s, pl);
  const int64_t taps = int64_t(off.size());
  const DirectTile mt = active_tile();
  const int64_t mr = mt.rows;
  // The C^T tile stays within 32 KiB; its pixel count suits both the micro-tile's rows and the
  // 8x8 transposes of the store.
  const int64_t step = tile_step(mr);
  int64_t tile = std::max<int64_t>(step, 8192 / Kp / step * step);
  tile = std::min(tile, round_up(PQ, mr));
  const int64_t ntiles = (PQ + tile - 1) / tile;
  const int64_t jobs_img = s.batch * G;
  const int nt = num_threads();
  // Few images: split each into tile ranges so every thread has work (each range pads its
  // own copy of the plane, a small cost next to the product).
  const int64_t split = std::min(ntiles, std::max<int64_t>(1, (2 * nt + jobs_img - 1) / jobs_img));
  const double macs_per_job = double(Kg) * double(taps) * double(PQ) / double(split);
  const int64_t jobs = jobs_img * split;
  run_jobs(jobs, grain_for(macs_per_job), [&](auto&& take) {
    Buf xp(pl.size()), ct(round_up(tile, mr) * Kp);
    clear_plane(pl, xp.get());
    std::vector<const float*> base(static_cast<size_t>(round_up(tile, mr)));
    for (int64_t job = take(); job < jobs; job = take()) {
      const int64_t ij = job / split, part = job % split;
      const int64_t n = ij / G, g = ij % G;
      fill_plane(pl, io.x_blocked ? x + n * pl.blocks() * HW * kNR : x + (n * C + g * pl.C) * HW,
                 xp.get());
      const float* wg = wt + g * panels * taps * kNR;
      const int64_t tb = ntiles * part / split, te = ntiles * (part + 1) / split;
      for (int64_t ti = tb; ti < te; ++ti) {
        const int64_t t0 = ti * tile, len = std::min(tile, PQ - t0), rows = round_up(len, mr);
        // Row pointers walk the output pixels (no division per pixel); the tail repeats the last.
        for (int64_t i = 0, r = t0 / Q, q = t0 % Q; i < len; ++i) {
          base[size_t(i)] = xp.get() + (r * s.stride_h * pl.Wp + q * s.stride_w) * pl.lanes;
          if (++q == Q) {
            q = 0;
            ++r;
          }
        }
        for (int64_t i = len; i < rows; ++i) base[size_t(i)] = base[size_t(len - 1)];
        run_tiles(mt, rows, panels, taps, base.data(), off.data(), wg, taps * kNR, ct.get(), Kp,
                  false);
        if (io.y_blocked) {
          const int64_t y_off = (n * panels * PQ + t0) * kNR;
          store_blocked(ct.get(), Kp, len, panels, K, y + y_off, PQ * kNR, e,
                        e.residual ? e.residual + y_off : nullptr);
          continue;
        }
        const int64_t y_off = (n * K + g * Kg) * PQ + t0;
        store_transposed(ct.get(), Kp, len, Kg, y + y_off, PQ, e, g * Kg,
                         e.residual ? e.residual + y_off : nullptr);
      }
    }
  });
}

// Strided backward-data by output phase: the dx pixels h = ah + sh * i (and likewise w) see
// only the taps r with (ah + pad - r * dil) divisible by the stride, each reading dy row
// i + d_r, so every phase is a stride-1 correlation of padded dy with a subset of the taps.
// Phases partition dx, so each pixel is written exactly once (zero when no tap reaches it).
bool backward_data_phases(const Conv2dShape& s, const float* dy, const float* w, float* dx) {
  const int64_t G = s.groups, K = s.out_channels, C = s.in_channels, Kg = K / G, Cg = C / G;
  const int64_t R = s.kernel_h, S = s.kernel_w, RS = R * S, sh = s.stride_h, sw = s.stride_w;
  const int64_t P = s.out_h(), Q = s.out_w(), H = s.in_h, W = s.in_w, PQ = P * Q, HW = H * W;
  const int64_t Cp = round_up(Cg, kNR), panels = Cp / kNR;
  struct Axis {
    std::vector<int64_t> idx, d;  // taps of this phase and their dy offsets
    int64_t count = 0;            // dx pixels of this phase along the axis
  };
  auto axis = [](int64_t a, int64_t pad, int64_t st, int64_t dil, int64_t taps, int64_t size) {
    Axis ax;
    ax.count = a < size ? (size - a + st - 1) / st : 0;
    for (int64_t r = 0; r < taps; ++r) {
      const int64_t v = a + pad - r * dil;
      if (((v % st) + st) % st == 0) {
        ax.idx.push_back(r);
        ax.d.push_back(v / st);
      }
    }
    return ax;
  };
  std::vector<Axis> rows, cols;
  int64_t top = 0, bottom = 0, left = 0, right = 0;
  for (int64_t a = 0; a < sh; ++a) rows.push_back(axis(a, s.pad_h, sh, s.dilation_h, R, H));
  for (int64_t a = 0; a < sw; ++a) cols.push_back(axis(a, s.pad_w, sw, s.dilation_w, S, W));
  for (const Axis& ax : rows)
    for (int64_t d : ax.d) {
      top = std::max(top, -d);
      bottom = std::max(bottom, ax.count - 1 + d - (P - 1));
    }
  for (const Axis& ax : cols)
    for (int64_t d : ax.d) {
      left = std::max(left, -d);
      right = std::max(right, ax.count - 1 + d - (Q - 1));
    }
  Plane pl;
  pl.C = Kg;
  pl.H = P;
  pl.W = Q;
  pl.ph = top;
  pl.pw = left;
  pl.Hp = top + P + bottom;
  pl.Wp = left + Q + right;
  if (pl.size() > kMaxPlane) return false;
  struct Phase {
    int64_t ah, aw, hi, wj, wt_at;
    std::vector<int32_t> off;
  };
  std::vector<Phase> phases;
  int64_t wt_floats = 0;
  for (int64_t ah = 0; ah < sh; ++ah)
    for (int64_t aw = 0; aw < sw; ++aw) {
      const Axis &ra = rows[size_t(ah)], &ca = cols[size_t(aw)];
      Phase ph{ah, aw, ra.count, ca.count, wt_floats, {}};
      if (ph.hi == 0 || ph.wj == 0) continue;
      for (int64_t k = 0; k < Kg; ++k)
        for (size_t ir = 0; ir < ra.idx.size(); ++ir)
          for (size_t iu = 0; iu < ca.idx.size(); ++iu)
            ph.off.push_back(int32_t((k * pl.Hp + ra.d[ir] + top) * pl.Wp + ca.d[iu] + left));
      wt_floats += G * Cp * int64_t(ph.off.size());
      phases.push_back(std::move(ph));
    }
  Buf wt(wt_floats);
  for (const Phase& ph : phases) {
    const Axis &ra = rows[size_t(ph.ah)], &ca = cols[size_t(ph.aw)];
    const int64_t nr = int64_t(ra.idx.size()), nu = int64_t(ca.idx.size());
    std::vector<int64_t> tap_at;
    for (int64_t k = 0; k < Kg; ++k)
      for (int64_t ir = 0; ir < nr; ++ir)
        for (int64_t iu = 0; iu < nu; ++iu)
          tap_at.push_back(k * Cg * RS + ra.idx[size_t(ir)] * S + ca.idx[size_t(iu)]);
    pack_weights(G, Cg, tap_at, w, Kg * Cg * RS, RS, wt.get() + ph.wt_at);
  }
  const DirectTile mt = active_tile();
  const int64_t mr = mt.rows, step = tile_step(mr);
  const int64_t tile = std::max<int64_t>(step, 8192 / Cp / step * step);
  const double macs_per_job = double(Cg) * double(Kg) * double(RS) * double(HW) / double(sh * sw);
  const int64_t jobs = s.batch * G;
  run_jobs(jobs, grain_for(macs_per_job), [&](auto&& take) {
    Buf yp(pl.size()), ct(tile * Cp);
    clear_plane(pl, yp.get());
    std::vector<const float*> base(static_cast<size_t>(tile));  // tile is a multiple of mr
    for (int64_t job = take(); job < jobs; job = take()) {
      const int64_t n = job / G, g = job % G;
      fill_plane(pl, dy + (n * K + g * Kg) * PQ, yp.get());
      float* dxg = dx + (n * C + g * Cg) * HW;
      for (const Phase& ph : phases) {
        const int64_t taps = int64_t(ph.off.size()), npix = ph.hi * ph.wj;
        const float* wg = wt.get() + ph.wt_at + g * Cp * taps;
        for (int64_t t0 = 0; t0 < npix; t0 += tile) {
          const int64_t len = std::min(tile, npix - t0), rows = round_up(len, mr);
          if (taps == 0) {
            std::memset(ct.get(), 0, size_t(rows * Cp) * sizeof(float));
          } else {
            for (int64_t i = 0; i < rows; ++i) {
              const int64_t t = t0 + std::min(i, len - 1);
              base[size_t(i)] = yp.get() + (t / ph.wj) * pl.Wp + t % ph.wj;
            }
            run_tiles(mt, rows, panels, taps, base.data(), ph.off.data(), wg, taps * kNR, ct.get(),
                      Cp, false);
          }
          // Pixel t of the phase is dx pixel (ah + sh * (t / wj), aw + sw * (t % wj)).
          for (int64_t i = 0, pi = t0 / ph.wj, pj = t0 % ph.wj; i < len; ++i) {
            float* d = dxg + (ph.ah + sh * pi) * W + ph.aw + sw * pj;
            const float* src = ct.get() + i * Cp;
            for (int64_t c = 0; c < Cg; ++c) d[c * HW] = src[c];
            if (++pj == ph.wj) {
              pj = 0;
              ++pi;
            }
          }
        }
      }
    }
  });
  return true;
}

// Where the tiled sgemm path is the better choice, measured on the 2-core Zen 3: pointwise
// convolutions (already a plain GEMM, with sgemm's cache blocking), fewer than ~70% of the 16
// lanes live in the channel dimension (3 or 7 channels), or packed weights of a group beyond
// 1 MiB (re-streamed from L3 for every pixel tile here).
bool worth_it(const Conv2dShape& s, int64_t lanes, int64_t weights_per_group) {
  const bool pointwise = s.kernel_h == 1 && s.kernel_w == 1 && s.stride_h == 1 && s.stride_w == 1 &&
                         s.pad_h == 0 && s.pad_w == 0;
  return !pointwise && lanes * 10 >= round_up(lanes, kNR) * 7 &&
         weights_per_group <= (int64_t{1} << 18);
}

}  // namespace

DirectTile direct_tile_avx2() {
  return {6, 1, tile_6x16, tile_6x16};
}

bool direct_forward_avx2(const Conv2dShape& s, const float* x, const float* w, float* y,
                         const Epilogue& e) {
  const int64_t G = s.groups, Kg = s.out_channels / G;
  const int64_t taps = s.in_channels / G * s.kernel_h * s.kernel_w;
  if (!plane_fits(s) || !worth_it(s, s.out_channels / s.groups, 0) || !worth_it(s, Kg, Kg * taps))
    return false;
  Buf wt(G * round_up(Kg, kNR) * taps);
  std::vector<int64_t> tap_at(static_cast<size_t>(taps));
  for (int64_t t = 0; t < taps; ++t) tap_at[size_t(t)] = t;
  pack_weights(G, Kg, tap_at, w, Kg * taps, taps, wt.get());
  forward_packed(s, x, wt.get(), y, e);
  return true;
}

int64_t direct_blocked_packed_size(const Conv2dShape& s) {
  // Blocked output pays no transpose, so every channel count and pointwise convolutions run
  // here too, and so do large weights: the alternative, a round trip through the channel-major
  // convolution, costs more than re-reading a 16-output panel (288 KiB for 512 input channels
  // at 3 x 3) from L2 for each pixel tile (ResNet-18 at 28 x 28, batch 250: 0.89-0.93x ONNX Runtime
  // with its 256- and 512-channel convs here, 0.68x with them declined at 2^18 floats).
  const int64_t size = round_up(s.out_channels, kNR) * s.in_channels * s.kernel_h * s.kernel_w;
  return s.groups == 1 && size <= (int64_t{1} << 22) ? size : 0;
}

void direct_pack_blocked_avx2(const Conv2dShape& s, const float* w, float* packed) {
  const int64_t taps = s.in_channels * s.kernel_h * s.kernel_w;
  std::vector<int64_t> tap_at(static_cast<size_t>(taps));
  for (int64_t t = 0; t < taps; ++t) tap_at[size_t(t)] = t;
  pack_weights(1, s.out_channels, tap_at, w, 0, taps, packed);
}

bool direct_forward_blocked_avx2(const Conv2dShape& s, bool x_blocked, const float* x,
                                 const float* w, const float* packed, float* y, const Epilogue& e) {
  const int64_t size = direct_blocked_packed_size(s);
  if (size == 0 || !plane_fits(s, x_blocked ? kNR : 1)) return false;
  if (packed) {
    forward_packed(s, x, packed, y, e, {x_blocked, true});
    return true;
  }
  Buf wt(size);
  direct_pack_blocked_avx2(s, w, wt.get());
  forward_packed(s, x, wt.get(), y, e, {x_blocked, true});
  return true;
}

bool direct_backward_data_avx2(const Conv2dShape& s, const float* dy, const float* w, float* dx) {
  // Stride 1: dx is the convolution of dy, padded by dilation * (R - 1) - pad, with the
  // flipped weights with in/out channels swapped.
  const int64_t cg = s.in_channels / s.groups;
  if (!worth_it(s, cg, cg * (s.out_channels / s.groups) * s.kernel_h * s.kernel_w)) return false;
  if (s.stride_h != 1 || s.stride_w != 1) {
    return backward_data_phases(s, dy, w, dx);
  }
  const int64_t ph = s.dilation_h * (s.kernel_h - 1) - s.pad_h;
  const int64_t pw = s.dilation_w * (s.kernel_w - 1) - s.pad_w;
  if (ph < 0 || pw < 0) return false;
  Conv2dShape t = s;
  t.in_channels = s.out_channels;
  t.out_channels = s.in_channels;
  t.in_h = s.out_h();
  t.in_w = s.out_w();
  t.pad_h = ph;
  t.pad_w = pw;
  if (!plane_fits(t) || t.out_h() != s.in_h || t.out_w() != s.in_w) return false;
  const int64_t G = s.groups, Kg = s.out_channels / G, Cg = s.in_channels / G;
  const int64_t R = s.kernel_h, S = s.kernel_w, RS = R * S;
  Buf wt(G * round_up(Cg, kNR) * Kg * RS);
  std::vector<int64_t> tap_at;
  for (int64_t k = 0; k < Kg; ++k)
    for (int64_t r = 0; r < R; ++r)
      for (int64_t u = 0; u < S; ++u) tap_at.push_back(k * Cg * RS + (R - 1 - r) * S + (S - 1 - u));
  pack_weights(G, Cg, tap_at, w, Kg * Cg * RS, RS, wt.get());
  forward_packed(t, dy, wt.get(), dx, Epilogue{});
  return true;
}

bool direct_backward_weight_avx2(const Conv2dShape& s, const float* x, const float* dy, float* dw,
                                 float* dbias) {
  if (!plane_fits(s) || !worth_it(s, s.out_channels / s.groups, 0) ||
      round_up(s.out_channels / s.groups, kNR) * s.out_h() * s.out_w() > kMaxPlane)
    return false;
  const Plane pl = plane_of(s);
  const int64_t G = s.groups, K = s.out_channels, Kg = K / G, C = s.in_channels;
  const int64_t PQ = s.out_h() * s.out_w(), HW = s.in_h * s.in_w;
  const int64_t Kp = round_up(Kg, kNR), panels = Kp / kNR;
  const std::vector<int32_t> off = tap_offsets(s, pl);
  const DirectTile mt = active_tile();
  const int64_t mr = mt.rows;
  const int64_t taps = int64_t(off.size()), tap_rows = round_up(taps, mr);
  std::vector<int32_t> pos(static_cast<size_t>(PQ));
  for (int64_t t = 0; t < PQ; ++t) pos[size_t(t)] = int32_t(pixel_offset(s, pl, t));

  // Each chunk (a fixed, contiguous range of (image, group) jobs) sums into its own dW^T
  // partial, and partials are added in chunk order afterwards: the bits depend only on the
  // chunk count (set by the thread count), not on which thread ran a chunk. Four chunks per
  // thread let an idle thread take over the chunks of a preempted one.
  const int64_t jobs = s.batch * G, part_size = G * tap_rows * Kp;
  const int64_t chunks = std::max<int64_t>(
      1, std::min<int64_t>(4 * int64_t(num_threads()),
                           jobs / grain_for(double(Kg) * double(taps) * double(PQ))));
  Buf partial(chunks * part_size);
  std::vector<double> bias_part(size_t(chunks * K), 0.0);
  // Pixels per block: a block of the dy^T panel (block x 16) stays in L1 across tap groups.
  constexpr int64_t kPixBlock = 256;
  run_jobs(chunks, 1, [&](auto&& take) {
    Buf xp(pl.size()), dyt(panels * PQ * kNR);
    clear_plane(pl, xp.get());
    std::vector<const float*> base(static_cast<size_t>(tap_rows));
    for (int64_t chunk = take(); chunk < chunks; chunk = take()) {
      float* acc = partial.get() + chunk * part_size;
      std::memset(acc, 0, size_t(part_size) * sizeof(float));
      for (int64_t job = jobs * chunk / chunks; job < jobs * (chunk + 1) / chunks; ++job) {
        const int64_t n = job / G, g = job % G;
        fill_plane(pl, x + (n * C + g * pl.C) * HW, xp.get());
        for (int64_t i = 0; i < tap_rows; ++i)
          base[size_t(i)] = xp.get() + off[size_t(std::min(i, taps - 1))];
        const float* dyg = dy + (n * K + g * Kg) * PQ;
        // dy^T panels: dyt[p][t][j] = dy[p * 16 + j][t], zero past Kg.
        std::memset(dyt.get(), 0, size_t(panels * PQ * kNR) * sizeof(float));
        for (int64_t k = 0; k < Kg; ++k) {
          const float* src = dyg + k * PQ;
          float* d = dyt.get() + (k / kNR) * PQ * kNR + k % kNR;
          float sum = 0.0f;
          for (int64_t t = 0; t < PQ; ++t) {
            d[t * kNR] = src[t];
            sum += src[t];
          }
          bias_part[size_t(chunk * K + g * Kg + k)] += sum;
        }
        float* accg = acc + g * tap_rows * Kp;
        for (int64_t t0 = 0; t0 < PQ; t0 += kPixBlock) {
          const int64_t len = std::min(kPixBlock, PQ - t0);
          run_tiles(mt, tap_rows, panels, len, base.data(), pos.data() + t0, dyt.get() + t0 * kNR,
                    PQ * kNR, accg, Kp, true);
        }
      }
    }
  });
  if (dbias) {
    for (int64_t k = 0; k < K; ++k) {
      double v = 0;
      for (int64_t c = 0; c < chunks; ++c) v += bias_part[size_t(c * K + k)];
      dbias[k] = float(v);
    }
  }
  for (int64_t g = 0; g < G; ++g)
    for (int64_t k = 0; k < Kg; ++k)
      for (int64_t t = 0; t < taps; ++t) {
        const int64_t i = (g * tap_rows + t) * Kp + k;
        float v = partial.get()[i];
        for (int64_t c = 1; c < chunks; ++c) v += partial.get()[c * part_size + i];
        dw[(g * Kg + k) * taps + t] = v;
      }
  return true;
}

}  // namespace duet::kernels::detail
