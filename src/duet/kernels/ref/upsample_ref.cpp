// Reference nearest upsampling: each output pixel reads (or sends its gradient to) the input
// pixel at (oh / scale_h, ow / scale_w).
#include "duet/kernels/upsample.h"
#include "duet/tensor/error.h"

namespace duet::kernels::ref {

void upsample_nearest2d_forward(int64_t n, int64_t c, int64_t h, int64_t w, int64_t scale_h,
                                int64_t scale_w, const float* x, float* y) {
  DUET_CHECK(n >= 1 && c >= 1 && h >= 1 && w >= 1 && scale_h >= 1 && scale_w >= 1,
             "upsample_nearest2d_forward: invalid shape or scale");
  const int64_t oh = h * scale_h, ow = w * scale_w;
  for (int64_t pl = 0; pl < n * c; ++pl)
    for (int64_t i = 0; i < oh; ++i)
      for (int64_t j = 0; j < ow; ++j)
        y[(pl * oh + i) * ow + j] = x[(pl * h + i / scale_h) * w + j / scale_w];
}

void upsample_nearest2d_backward(int64_t n, int64_t c, int64_t h, int64_t w, int64_t scale_h,
                                 int64_t scale_w, const float* dy, float* dx) {
  DUET_CHECK(n >= 1 && c >= 1 && h >= 1 && w >= 1 && scale_h >= 1 && scale_w >= 1,
             "upsample_nearest2d_backward: invalid shape or scale");
  const int64_t oh = h * scale_h, ow = w * scale_w;
  for (int64_t k = 0; k < n * c * h * w; ++k) dx[k] = 0;
  for (int64_t pl = 0; pl < n * c; ++pl)
    for (int64_t i = 0; i < oh; ++i)
      for (int64_t j = 0; j < ow; ++j)
        dx[(pl * h + i / scale_h) * w + j / scale_w] += dy[(pl * oh + i) * ow + j];
}

}  // namespace duet::kernels::ref
