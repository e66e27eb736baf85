// Fast conv2d: implicit GEMM over tiles of output pixels. For each (image, group, pixel tile) an
// im2col tile of (C/g * R * S) x T floats is packed into per-thread scratch and multiplied by the
// weights through sgemm (serial inside our parallel_for), with the epilogue fused into the store.
// 1x1 stride-1 unpadded convolutions skip the packing (the image already is the im2col matrix),
// depthwise convolutions run direct loops (conv2d_depthwise.cpp). With AVX2, 3x3 stride-1
// convolutions first try Winograd: the forward pass and the input gradient by F(4x4, 3x3) from
// 16 channels where the batch has 32 tiles of 4x4, else by F(2x2, 3x3) from 32
// (conv2d_winograd_avx2.cpp), the weight gradient by F(2x2, 3x3) from 16
// (conv2d_winograd_weight_avx2.cpp); then all three passes try
// conv2d_direct_avx2.cpp (implicit GEMM read straight from a padded image copy); the tiled
// sgemm path below is the portable one and the fallback for shapes they decline. Where the CPU
// has AVX-512, the micro-tiles, the Winograd transforms and the channel-major layout moves run
// on zmm (conv2d_direct_avx512.cpp, conv2d_winograd_avx512.cpp, conv2d_layout_avx512.cpp).
#include <algorithm>
#include <cstddef>
#include <cstring>
#include <limits>
#include <vector>

#include "duet/kernels/conv2d.h"
#include "duet/kernels/conv2d_blocked.h"
#include "duet/kernels/conv2d_impl.h"
#include "duet/kernels/isa.h"
#include "duet/tensor/allocator.h"
#include "duet/tensor/error.h"
#include "duet/tensor/parallel.h"

namespace duet::kernels {
namespace detail {

void check_conv2d_shape(const Conv2dShape& s) {
  DUET_CHECK(s.batch >= 0, "conv2d: batch must be >= 0, got ", s.batch);
  DUET_CHECK(s.in_channels >= 1 && s.out_channels >= 1 && s.in_h >= 1 && s.in_w >= 1,
             "conv2d: channels and input sizes must be >= 1, got C=", s.in_channels,
             " K=", s.out_channels, " H=", s.in_h, " W=", s.in_w);
  DUET_CHECK(s.kernel_h >= 1 && s.kernel_w >= 1, "conv2d: kernel must be >= 1x1, got ", s.kernel_h,
             "x", s.kernel_w);
  DUET_CHECK(s.stride_h >= 1 && s.stride_w >= 1 && s.dilation_h >= 1 && s.dilation_w >= 1,
             "conv2d: stride and dilation must be >= 1");
  DUET_CHECK(s.pad_h >= 0 && s.pad_w >= 0, "conv2d: padding must be >= 0");
  DUET_CHECK(s.groups >= 1 && s.in_channels % s.groups == 0 && s.out_channels % s.groups == 0,
             "conv2d: groups=", s.groups, " must divide in_channels=", s.in_channels,
             " and out_channels=", s.out_channels);
  constexpr int64_t kLimit = int64_t{1} << 31;  // per-dimension bound keeps every product in int64
  for (int64_t v : {s.batch, s.in_channels, s.out_channels, s.in_h, s.in_w, s.kernel_h, s.kernel_w,
                    s.stride_h, s.stride_w, s.pad_h, s.pad_w, s.dilation_h, s.dilation_w})
    DUET_CHECK(v < kLimit, "conv2d: size ", v, " is too large");
  DUET_CHECK(s.in_h + 2 * s.pad_h >= s.dilation_h * (s.kernel_h - 1) + 1 &&
                 s.in_w + 2 * s.pad_w >= s.dilation_w * (s.kernel_w - 1) + 1,
             "conv2d: dilated kernel ", s.kernel_h, "x", s.kernel_w, " does not fit the padded ",
             s.in_h, "x", s.in_w, " input");
  const double elems = double(s.batch) * double(std::max(s.in_channels, s.out_channels)) *
                       double(std::max(s.in_h * s.in_w, s.out_h() * s.out_w()));
  DUET_CHECK(elems < 9.0e18, "conv2d: tensor sizes overflow");
}

}  // namespace detail

namespace {

struct Geo {
  int64_t C, K, G, Cg, Kg, HW, P, Q, PQ, taps, tile, ntiles;
  int64_t imgs;    // > 1: small images, a tile is this many whole images side by side
  int64_t blocks;  // image blocks per group when imgs > 1
  bool pointwise;  // 1x1, stride 1, no padding: the image is its own im2col matrix
};

Geo geometry(const Conv2dShape& s) {
  Geo g{};
  g.C = s.in_channels;
  g.K = s.out_channels;
  g.G = s.groups;
  g.Cg = g.C / g.G;
  g.Kg = g.K / g.G;
  g.HW = s.in_h * s.in_w;
  g.P = s.out_h();
  g.Q = s.out_w();
  g.PQ = g.P * g.Q;
  g.taps = g.Cg * s.kernel_h * s.kernel_w;
  g.pointwise = s.kernel_h == 1 && s.kernel_w == 1 && s.stride_h == 1 && s.stride_w == 1 &&
                s.pad_h == 0 && s.pad_w == 0;
  // Keep the packed tile around 256 KiB so it stays in L2 (512 KiB on Zen 3); a multiple of 16
  // pixels matches the micro-kernel width.
  constexpr int64_t kTileFloats = 64 * 1024;
  int64_t t = std::max<int64_t>(64, kTileFloats / g.taps / 16 * 16);
  t = std::min<int64_t>(t, 1024);
  if (t >= g.PQ)
    t = g.PQ;
  else
    t = (g.PQ + (g.PQ + t - 1) / t - 1) / ((g.PQ + t - 1) / t);  // balance the last tile
  g.tile = std::max<int64_t>(1, t);
  g.ntiles = (g.PQ + g.tile - 1) / g.tile;
  // A 7x7 image gives the GEMM only 49 columns, a poor fit for 16-wide micro-panels; batching a
  // few images per tile restores the width at the cost of one cheap copy of the output. Pointwise
  // convolutions keep reading the image in place (their GEMM is too shallow to hide a copy).
  constexpr int64_t kMinColumns = 128;
  g.imgs =
      g.PQ < kMinColumns && !g.pointwise ? std::min(s.batch, (kMinColumns + g.PQ - 1) / g.PQ) : 1;
  g.imgs = std::max<int64_t>(g.imgs, 1);
  g.blocks = (s.batch + g.imgs - 1) / g.imgs;
  return g;
}

bool is_depthwise(const Conv2dShape& s) {
  return s.groups > 1 && s.groups == s.in_channels && s.groups == s.out_channels;
}

using Scratch = memory::FloatScratch;

void check_pointers(const char* pass, const void* a, const void* b, const void* c) {
  DUET_CHECK(a && b && c, "conv2d ", pass, ": null buffer");
}

// The GEMM epilogue's stages, in its order, for outputs computed into a scratch block.
void epilogue_row(const Epilogue& e, int64_t ch, const float* src, float* dst, int64_t y_off,
                  int64_t len) {
  const float scale = e.scale ? e.scale[ch] : 1.0f, shift = e.shift ? e.shift[ch] : 0.0f;
  const float bias = e.bias ? e.bias[ch] : 0.0f;
  const float* res = e.residual ? e.residual + y_off : nullptr;
  for (int64_t i = 0; i < len; ++i) {
    float v = src[i] * scale + shift;
    v += bias;
    if (res) v += res[i];
    dst[i] = e.act == Activation::none ? v : apply_activation(e.act, v);
  }
}

// Packs images [n0, n0 + nb) of group grp side by side: col is taps x (nb * PQ).
void im2col_images(const Conv2dShape& s, const Geo& g, const float* x, int64_t n0, int64_t nb,
                   int64_t grp, float* col) {
  for (int64_t b = 0; b < nb; ++b)
    detail::im2col_tile(s, x + ((n0 + b) * g.C + grp * g.Cg) * g.HW, 0, g.PQ, col + b * g.PQ,
                        nb * g.PQ);
}

// Gathers dy of images [n0, n0 + nb), group grp, into Kg x (nb * PQ).
void gather_dy(const Geo& g, const float* dy, int64_t n0, int64_t nb, int64_t grp, float* out) {
  for (int64_t b = 0; b < nb; ++b)
    for (int64_t k = 0; k < g.Kg; ++k)
      std::memcpy(out + k * nb * g.PQ + b * g.PQ, dy + ((n0 + b) * g.K + grp * g.Kg + k) * g.PQ,
                  size_t(g.PQ) * sizeof(float));
}

void forward_small(const Conv2dShape& s, const Geo& g, const float* x, const float* w, float* y,
                   const Epilogue& e) {
  parallel_for(g.G * g.blocks, 1, [&](int64_t begin, int64_t end) {
    Scratch col(g.taps * g.imgs * g.PQ), out(g.Kg * g.imgs * g.PQ);
    for (int64_t job = begin; job < end; ++job) {
      const int64_t grp = job % g.G, n0 = job / g.G * g.imgs, nb = std::min(g.imgs, s.batch - n0);
      const int64_t cols = nb * g.PQ;
      im2col_images(s, g, x, n0, nb, grp, col.get());
      sgemm(Trans::no, Trans::no, g.Kg, cols, g.taps, 1.0f, w + grp * g.Kg * g.taps, g.taps,
            col.get(), cols, 0.0f, out.get(), cols);
      for (int64_t b = 0; b < nb; ++b)
        for (int64_t k = 0; k < g.Kg; ++k) {
          const int64_t y_off = ((n0 + b) * g.K + grp * g.Kg + k) * g.PQ;
          epilogue_row(e, grp * g.Kg + k, out.get() + k * cols + b * g.PQ, y + y_off, y_off, g.PQ);
        }
    }
  });
}

void backward_data_small(const Conv2dShape& s, const Geo& g, const float* dy, const float* w,
                         float* dx) {
  parallel_for(g.G * g.blocks, 1, [&](int64_t begin, int64_t end) {
    Scratch dyt(g.Kg * g.imgs * g.PQ), col(g.taps * g.imgs * g.PQ);
    for (int64_t job = begin; job < end; ++job) {
      const int64_t grp = job % g.G, n0 = job / g.G * g.imgs, nb = std::min(g.imgs, s.batch - n0);
      const int64_t cols = nb * g.PQ;
      gather_dy(g, dy, n0, nb, grp, dyt.get());
      sgemm(Trans::yes, Trans::no, g.taps, cols, g.Kg, 1.0f, w + grp * g.Kg * g.taps, g.taps,
            dyt.get(), cols, 0.0f, col.get(), cols);
      for (int64_t b = 0; b < nb; ++b) {
        float* dxg = dx + ((n0 + b) * g.C + grp * g.Cg) * g.HW;
        std::memset(dxg, 0, size_t(g.Cg * g.HW) * sizeof(float));
        detail::col2im_tile_add(s, col.get() + b * g.PQ, 0, g.PQ, cols, dxg);
      }
    }
  });
}

}  // namespace

bool conv2d_takes_winograd(const Conv2dShape& s, ConvPass pass) {
  if (!isa_at_least(Isa::avx2) || !use_winograd()) return false;
  Conv2dShape t;
  switch (pass) {
    case ConvPass::forward:
      return detail::winograd_channel_major_fits(s);
    case ConvPass::input_gradient:
      return detail::winograd_input_gradient_shape(s, t);
    case ConvPass::weight_gradient:
      return detail::winograd_weight_gradient_fits(s);
  }
  return false;
}

void conv2d_forward(const Conv2dShape& s, const float* x, const float* w, float* y,
                    const Epilogue& e) {
  detail::check_conv2d_shape(s);
  if (s.batch == 0) return;
  check_pointers("forward", x, w, y);
  if (is_depthwise(s)) return detail::depthwise_forward(s, x, w, y, e);
  if (isa_at_least(Isa::avx2) && use_winograd() &&
      detail::winograd_forward_avx2(s, x, w, y, e, detail::WinogradExtras{nullptr, nullptr, true}))
    return;
  if (isa_at_least(Isa::avx2) && detail::direct_forward_avx2(s, x, w, y, e)) return;
  const Geo g = geometry(s);
  if (g.imgs > 1) return forward_small(s, g, x, w, y, e);
  const int64_t jobs = s.batch * g.G * g.ntiles;
  parallel_for(jobs, 1, [&](int64_t begin, int64_t end) {
    Scratch col(g.pointwise ? 1 : g.taps * g.tile);
    for (int64_t job = begin; job < end; ++job) {
      const int64_t n = job / (g.G * g.ntiles), grp = job / g.ntiles % g.G;
      const int64_t t0 = job % g.ntiles * g.tile, len = std::min(g.tile, g.PQ - t0);
      const float* xg = x + (n * g.C + grp * g.Cg) * g.HW;
      const int64_t y_off = (n * g.K + grp * g.Kg) * g.PQ + t0;
      Epilogue eg = e;
      eg.axis = ChannelAxis::row;
      if (e.scale) eg.scale = e.scale + grp * g.Kg;
      if (e.shift) eg.shift = e.shift + grp * g.Kg;
      if (e.bias) eg.bias = e.bias + grp * g.Kg;
      if (e.residual) {
        eg.residual = e.residual + y_off;
        eg.ld_residual = g.PQ;
      }
      const float* b = xg + t0;
      int64_t ldb = g.HW;
      if (!g.pointwise) {
        detail::im2col_tile(s, xg, t0, len, col.get(), len);
        b = col.get();
        ldb = len;
      }
      sgemm(Trans::no, Trans::no, g.Kg, len, g.taps, 1.0f, w + grp * g.Kg * g.taps, g.taps, b, ldb,
            0.0f, y + y_off, g.PQ, eg);
    }
  });
}

void conv2d_backward_data(const Conv2dShape& s, const float* dy, const float* w, float* dx) {
  detail::check_conv2d_shape(s);
  if (s.batch == 0) return;
  check_pointers("backward_data", dy, w, dx);
  if (is_depthwise(s)) return detail::depthwise_backward_data(s, dy, w, dx);
  if (isa_at_least(Isa::avx2) && use_winograd() &&
      detail::winograd_backward_data_avx2(s, dy, w, dx))
    return;
  if (isa_at_least(Isa::avx2) && detail::direct_backward_data_avx2(s, dy, w, dx)) return;
  const Geo g = geometry(s);
  if (g.imgs > 1) return backward_data_small(s, g, dy, w, dx);
  if (g.pointwise) {
    // dx tile = W_g^T dy tile; tiles are disjoint so they parallelise freely.
    parallel_for(s.batch * g.G * g.ntiles, 1, [&](int64_t begin, int64_t end) {
      for (int64_t job = begin; job < end; ++job) {
        const int64_t n = job / (g.G * g.ntiles), grp = job / g.ntiles % g.G;
        const int64_t t0 = job % g.ntiles * g.tile, len = std::min(g.tile, g.PQ - t0);
        sgemm(Trans::yes, Trans::no, g.Cg, len, g.Kg, 1.0f, w + grp * g.Kg * g.taps, g.taps,
              dy + (n * g.K + grp * g.Kg) * g.PQ + t0, g.PQ, 0.0f,
              dx + (n * g.C + grp * g.Cg) * g.HW + t0, g.HW);
      }
    });
    return;
  }
  // Tiles of one image-group scatter into overlapping dx pixels, so each (image, group) is one
  // job and its tiles run in order on the same thread.
  parallel_for(s.batch * g.G, 1, [&](int64_t begin, int64_t end) {
    Scratch col(g.taps * g.tile);
    for (int64_t job = begin; job < end; ++job) {
      const int64_t n = job / g.G, grp = job % g.G;
      float* dxg = dx + (n * g.C + grp * g.Cg) * g.HW;
      std::memset(dxg, 0, size_t(g.Cg * g.HW) * sizeof(float));
      for (int64_t t0 = 0; t0 < g.PQ; t0 += g.tile) {
        const int64_t len = std::min(g.tile, g.PQ - t0);
        sgemm(Trans::yes, Trans::no, g.taps, len, g.Kg, 1.0f, w + grp * g.Kg * g.taps, g.taps,
              dy + (n * g.K + grp * g.Kg) * g.PQ + t0, g.PQ, 0.0f, col.get(), len);
        detail::col2im_tile_add(s, col.get(), t0, len, len, dxg);
      }
    }
  });
}

void conv2d_backward_weight(const Conv2dShape& s, const float* x, const float* dy, float* dw,
                            float* dbias) {
  detail::check_conv2d_shape(s);
  const Geo g = geometry(s);
  DUET_CHECK(dw, "conv2d backward_weight: null dw");
  if (s.batch == 0) {
    std::memset(dw, 0, size_t(g.K * g.taps) * sizeof(float));
    if (dbias) std::memset(dbias, 0, size_t(g.K) * sizeof(float));
    return;
  }
  check_pointers("backward_weight", x, dy, dw);
  if (is_depthwise(s)) {
    if (dbias) {
      // One channel per task, images summed in order: deterministic without a reduction.
      parallel_for(g.K, 1, [&](int64_t begin, int64_t end) {
        for (int64_t k = begin; k < end; ++k) {
          double acc = 0;
          for (int64_t n = 0; n < s.batch; ++n) {
            const float* d = dy + (n * g.K + k) * g.PQ;
            float part = 0.0f;
            for (int64_t i = 0; i < g.PQ; ++i) part += d[i];
            acc += part;
          }
          dbias[k] = float(acc);
        }
      });
    }
    return detail::depthwise_backward_weight(s, x, dy, dw);
  }
  if (isa_at_least(Isa::avx2) && use_winograd() &&
      detail::winograd_backward_weight_avx2(s, false, x, dy, dw, dbias))
    return;
  if (isa_at_least(Isa::avx2) && detail::direct_backward_weight_avx2(s, x, dy, dw, dbias)) return;

  // Each chunk of jobs accumulates into its own partial dw; the partials are then summed in
  // chunk order, so a given thread count always yields the same bits. A job is one
  // (image, group, tile), or one (group, block of whole images) for small images.
  const bool small = g.imgs > 1;
  const int64_t jobs = small ? g.G * g.blocks : s.batch * g.G * g.ntiles, dw_size = g.K * g.taps;
  const int64_t chunks = std::max<int64_t>(1, std::min<int64_t>(num_threads(), jobs));
  Scratch partial(chunks > 1 ? chunks * dw_size : 1);
  // Bias partials ride along in the same chunks: one fork/join for the whole pass matters on a
  // loaded machine, where every barrier can wait out a scheduler slice.
  std::vector<double> bias_part(dbias ? size_t(chunks * g.K) : 0, 0.0);
  auto add_bias = [&](int64_t chunk, int64_t grp, const float* rows, int64_t ld, int64_t cols) {
    if (!dbias) return;
    for (int64_t k = 0; k < g.Kg; ++k) {
      float sum = 0.0f;
      for (int64_t i = 0; i < cols; ++i) sum += rows[k * ld + i];
      bias_part[size_t(chunk * g.K + grp * g.Kg + k)] += sum;
    }
  };
  parallel_for(chunks, 1, [&](int64_t cbegin, int64_t cend) {
    const int64_t cols_max = small ? g.imgs * g.PQ : g.tile;
    Scratch col(g.pointwise && !small ? 1 : g.taps * cols_max);
    Scratch dyt(small ? g.Kg * cols_max : 1);
    for (int64_t chunk = cbegin; chunk < cend; ++chunk) {
      float* acc = chunks > 1 ? partial.get() + chunk * dw_size : dw;
      std::memset(acc, 0, size_t(dw_size) * sizeof(float));
      for (int64_t job = jobs * chunk / chunks; job < jobs * (chunk + 1) / chunks; ++job) {
        if (small) {
          const int64_t grp = job % g.G, n0 = job / g.G * g.imgs;
          const int64_t nb = std::min(g.imgs, s.batch - n0), cols = nb * g.PQ;
          gather_dy(g, dy, n0, nb, grp, dyt.get());
          add_bias(chunk, grp, dyt.get(), cols, cols);
          im2col_images(s, g, x, n0, nb, grp, col.get());
          sgemm(Trans::no, Trans::yes, g.Kg, g.taps, cols, 1.0f, dyt.get(), cols, col.get(), cols,
                1.0f, acc + grp * g.Kg * g.taps, g.taps);
          continue;
        }
        const int64_t n = job / (g.G * g.ntiles), grp = job / g.ntiles % g.G;
        const int64_t t0 = job % g.ntiles * g.tile, len = std::min(g.tile, g.PQ - t0);
        const float* xg = x + (n * g.C + grp * g.Cg) * g.HW;
        add_bias(chunk, grp, dy + (n * g.K + grp * g.Kg) * g.PQ + t0, g.PQ, len);
        const float* b = xg + t0;
        int64_t ldb = g.HW;
        if (!g.pointwise) {
          detail::im2col_tile(s, xg, t0, len, col.get(), len);
          b = col.get();
          ldb = len;
        }
        sgemm(Trans::no, Trans::yes, g.Kg, g.taps, len, 1.0f,
              dy + (n * g.K + grp * g.Kg) * g.PQ + t0, g.PQ, b, ldb, 1.0f,
              acc + grp * g.Kg * g.taps, g.taps);
      }
    }
  });
  if (dbias) {
    for (int64_t k = 0; k < g.K; ++k) {
      double v = 0;
      for (int64_t c = 0; c < chunks; ++c) v += bias_part[size_t(c * g.K + k)];
      dbias[k] = float(v);
    }
  }
  if (chunks > 1) {
    parallel_for(dw_size, 1 << 16, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        float v = partial.get()[i];
        for (int64_t c = 1; c < chunks; ++c) v += partial.get()[c * dw_size + i];
        dw[i] = v;
      }
    });
  }
}

}  // namespace duet::kernels
