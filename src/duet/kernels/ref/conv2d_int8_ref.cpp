// Reference twin of the int8 convolution: quantise every input element with the same scalar
// rule, accumulate w * (q - zero_point) over every in-bounds tap in int32 (padding is x = 0),
// then the int8 epilogue (int8_scaled_sum, residual, activation). Slow on purpose; the packed
// kernels are tested against it bit for bit (the integer part is exact in both).
#include "duet/kernels/conv2d_impl.h"
#include "duet/kernels/conv2d_int8.h"
#include "duet/kernels/gemm_epilogue.h"
#include "duet/tensor/error.h"

namespace duet::kernels::ref {

void conv2d_int8_forward(const Conv2dShape& s, const float* x, const ActivationQuant& xq,
                         const int8_t* w, float* y, const Epilogue& e) {
  detail::check_conv2d_shape(s);
  DUET_CHECK(s.groups == 1, "conv2d_int8: groups must be 1, got ", s.groups);
  DUET_CHECK(!e.shift, "conv2d_int8: the epilogue takes scale and bias, not shift");
  const int64_t P = s.out_h(), Q = s.out_w(), C = s.in_channels;
  for (int64_t n = 0; n < s.batch; ++n)
    for (int64_t k = 0; k < s.out_channels; ++k)
      for (int64_t p = 0; p < P; ++p)
        for (int64_t q = 0; q < Q; ++q) {
          int32_t acc = 0;
          for (int64_t c = 0; c < C; ++c)
            for (int64_t r = 0; r < s.kernel_h; ++r)
              for (int64_t t = 0; t < s.kernel_w; ++t) {
                const int64_t h = p * s.stride_h - s.pad_h + r * s.dilation_h;
                const int64_t v = q * s.stride_w - s.pad_w + t * s.dilation_w;
                if (h < 0 || h >= s.in_h || v < 0 || v >= s.in_w) continue;
                const int32_t qx =
                    quantize_activation(x[((n * C + c) * s.in_h + h) * s.in_w + v], xq);
                acc += int32_t(w[((k * C + c) * s.kernel_h + r) * s.kernel_w + t]) *
                       (qx - xq.zero_point);
              }
          const int64_t at = ((n * s.out_channels + k) * P + p) * Q + q;
          float v = int8_scaled_sum(e, acc, k);
          if (e.residual) v += e.residual[at];
          y[at] = gemm_detail::activate(e.act, v);
        }
}

}  // namespace duet::kernels::ref
