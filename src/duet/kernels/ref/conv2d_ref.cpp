// Reference twins of the conv2d kernels: direct loops over every (image, channel, pixel, tap) with
// double accumulation. Slow on purpose; the fast paths in conv2d.cpp are tested against these.
#include <cstddef>
#include <vector>

#include "duet/kernels/conv2d.h"
#include "duet/kernels/conv2d_impl.h"

namespace duet::kernels::ref {

void conv2d_forward(const Conv2dShape& s, const float* x, const float* w, float* y,
                    const Epilogue& e) {
  detail::check_conv2d_shape(s);
  const int64_t P = s.out_h(), Q = s.out_w(), Cg = s.in_channels / s.groups,
                Kg = s.out_channels / s.groups;
  for (int64_t n = 0; n < s.batch; ++n)
    for (int64_t k = 0; k < s.out_channels; ++k)
      for (int64_t p = 0; p < P; ++p)
        for (int64_t q = 0; q < Q; ++q) {
          const int64_t g = k / Kg;
          double acc = 0;
          for (int64_t c = 0; c < Cg; ++c)
            for (int64_t r = 0; r < s.kernel_h; ++r)
              for (int64_t t = 0; t < s.kernel_w; ++t) {
                const int64_t h = p * s.stride_h - s.pad_h + r * s.dilation_h;
                const int64_t v = q * s.stride_w - s.pad_w + t * s.dilation_w;
                if (h < 0 || h >= s.in_h || v < 0 || v >= s.in_w) continue;
                const int64_t ci = g * Cg + c;
                acc += double(x[((n * s.in_channels + ci) * s.in_h + h) * s.in_w + v]) *
                       double(w[((k * Cg + c) * s.kernel_h + r) * s.kernel_w + t]);
              }
          const int64_t i = ((n * s.out_channels + k) * P + p) * Q + q;
          if (e.scale) acc *= e.scale[k];
          if (e.shift) acc += e.shift[k];
          if (e.bias) acc += e.bias[k];
          if (e.residual) acc += e.residual[i];
          y[i] = apply_activation(e.act, float(acc));
        }
}

void conv2d_backward_data(const Conv2dShape& s, const float* dy, const float* w, float* dx) {
  detail::check_conv2d_shape(s);
  const int64_t P = s.out_h(), Q = s.out_w(), Cg = s.in_channels / s.groups,
                Kg = s.out_channels / s.groups;
  std::vector<double> acc(size_t(s.batch * s.in_channels * s.in_h * s.in_w), 0.0);
  for (int64_t n = 0; n < s.batch; ++n)
    for (int64_t k = 0; k < s.out_channels; ++k)
      for (int64_t p = 0; p < P; ++p)
        for (int64_t q = 0; q < Q; ++q) {
          const double g = dy[((n * s.out_channels + k) * P + p) * Q + q];
          for (int64_t c = 0; c < Cg; ++c)
            for (int64_t r = 0; r < s.kernel_h; ++r)
              for (int64_t t = 0; t < s.kernel_w; ++t) {
                const int64_t h = p * s.stride_h - s.pad_h + r * s.dilation_h;
                const int64_t v = q * s.stride_w - s.pad_w + t * s.dilation_w;
                if (h < 0 || h >= s.in_h || v < 0 || v >= s.in_w) continue;
                const int64_t ci = (k / Kg) * Cg + c;
                acc[size_t(((n * s.in_channels + ci) * s.in_h + h) * s.in_w + v)] +=
                    g * double(w[((k * Cg + c) * s.kernel_h + r) * s.kernel_w + t]);
              }
        }
  for (size_t i = 0; i < acc.size(); ++i) dx[i] = float(acc[i]);
}

void conv2d_backward_weight(const Conv2dShape& s, const float* x, const float* dy, float* dw,
                            float* dbias) {
  detail::check_conv2d_shape(s);
  const int64_t P = s.out_h(), Q = s.out_w(), Cg = s.in_channels / s.groups,
                Kg = s.out_channels / s.groups;
  const int64_t taps = Cg * s.kernel_h * s.kernel_w;
  std::vector<double> acc(size_t(s.out_channels * taps), 0.0), bacc(size_t(s.out_channels), 0.0);
  for (int64_t n = 0; n < s.batch; ++n)
    for (int64_t k = 0; k < s.out_channels; ++k)
      for (int64_t p = 0; p < P; ++p)
        for (int64_t q = 0; q < Q; ++q) {
          const double g = dy[((n * s.out_channels + k) * P + p) * Q + q];
          bacc[size_t(k)] += g;
          for (int64_t c = 0; c < Cg; ++c)
            for (int64_t r = 0; r < s.kernel_h; ++r)
              for (int64_t t = 0; t < s.kernel_w; ++t) {
                const int64_t h = p * s.stride_h - s.pad_h + r * s.dilation_h;
                const int64_t v = q * s.stride_w - s.pad_w + t * s.dilation_w;
                if (h < 0 || h >= s.in_h || v < 0 || v >= s.in_w) continue;
                const int64_t ci = (k / Kg) * Cg + c;
                acc[size_t(((k * Cg + c) * s.kernel_h + r) * s.kernel_w + t)] +=
                    g * double(x[((n * s.in_channels + ci) * s.in_h + h) * s.in_w + v]);
              }
        }
  for (size_t i = 0; i < acc.size(); ++i) dw[i] = float(acc[i]);
  if (dbias)
    for (int64_t k = 0; k < s.out_channels; ++k) dbias[k] = float(bacc[size_t(k)]);
}

}  // namespace duet::kernels::ref
