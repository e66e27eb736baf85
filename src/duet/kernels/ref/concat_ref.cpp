// Reference twins of concat.h: element by element.
#include "duet/kernels/concat.h"

namespace duet::kernels::ref {

void concat(int64_t num_inputs, const float* const* inputs, const int64_t* axis_sizes,
            int64_t outer, int64_t inner, float* out) {
  int64_t total = 0;
  for (int64_t i = 0; i < num_inputs; ++i) total += axis_sizes[i];
  int64_t off = 0;
  for (int64_t i = 0; i < num_inputs; ++i) {
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t a = 0; a < axis_sizes[i]; ++a)
        for (int64_t j = 0; j < inner; ++j)
          out[(o * total + off + a) * inner + j] = inputs[i][(o * axis_sizes[i] + a) * inner + j];
    off += axis_sizes[i];
  }
}

void concat_backward(int64_t num_inputs, const float* grad_out, const int64_t* axis_sizes,
                     int64_t outer, int64_t inner, float* const* grads) {
  int64_t total = 0;
  for (int64_t i = 0; i < num_inputs; ++i) total += axis_sizes[i];
  int64_t off = 0;
  for (int64_t i = 0; i < num_inputs; ++i) {
    if (grads[i])
      for (int64_t o = 0; o < outer; ++o)
        for (int64_t a = 0; a < axis_sizes[i]; ++a)
          for (int64_t j = 0; j < inner; ++j)
            grads[i][(o * axis_sizes[i] + a) * inner + j] =
                grad_out[(o * total + off + a) * inner + j];
    off += axis_sizes[i];
  }
}

}  // namespace duet::kernels::ref
