#include "duet/kernels/concat.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "duet/tensor/error.h"
#include "duet/tensor/parallel.h"

namespace duet::kernels {
namespace {

// Both directions are the same block copy: for each (outer row, input) a contiguous run of
// axis_sizes[i] * inner floats moves between the input and its slot in the output row.
template <bool Forward>
void copy_blocks(int64_t num_inputs, const float* const* parts, float* const* parts_out,
                 const int64_t* axis_sizes, int64_t outer, int64_t inner, const float* whole_in,
                 float* whole_out, const char* what) {
  DUET_CHECK(num_inputs >= 0 && outer >= 0 && inner >= 0, what, ": negative size (inputs ",
             num_inputs, ", outer ", outer, ", inner ", inner, ")");
  std::vector<int64_t> offset(static_cast<size_t>(num_inputs) + 1, 0);
  for (int64_t i = 0; i < num_inputs; ++i) {
    DUET_CHECK(axis_sizes[i] >= 0, what, ": input ", i, " has negative axis size ", axis_sizes[i]);
    offset[static_cast<size_t>(i) + 1] = offset[static_cast<size_t>(i)] + axis_sizes[i] * inner;
  }
  const int64_t row = offset.back();
  if (row == 0 || outer == 0) return;
  const int64_t grain = std::max<int64_t>(1, 65536 / row);
  parallel_for(outer * num_inputs, grain, [&](int64_t u0, int64_t u1) {
    for (int64_t u = u0; u < u1; ++u) {
      const int64_t o = u / num_inputs, i = u % num_inputs;
      const size_t si = static_cast<size_t>(i);
      const int64_t len = offset[si + 1] - offset[si];
      if (len == 0) continue;
      if constexpr (Forward) {
        std::memcpy(whole_out + o * row + offset[si], parts[i] + o * len,
                    static_cast<size_t>(len) * sizeof(float));
      } else {
        if (!parts_out[i]) continue;
        std::memcpy(parts_out[i] + o * len, whole_in + o * row + offset[si],
                    static_cast<size_t>(len) * sizeof(float));
      }
    }
  });
}

}  // namespace

void concat(int64_t num_inputs, const float* const* inputs, const int64_t* axis_sizes,
            int64_t outer, int64_t inner, float* out) {
  copy_blocks<true>(num_inputs, inputs, nullptr, axis_sizes, outer, inner, nullptr, out, "concat");
}

void concat_backward(int64_t num_inputs, const float* grad_out, const int64_t* axis_sizes,
                     int64_t outer, int64_t inner, float* const* grads) {
  copy_blocks<false>(num_inputs, nullptr, grads, axis_sizes, outer, inner, grad_out, nullptr,
                     "concat_backward");
}

}  // namespace duet::kernels
