// Reference twins of reduce.h: visit every input element in row-major order and accumulate in
// double into its output slot.
#include <cmath>
#include <limits>
#include <vector>

#include "duet/kernels/reduce.h"
#include "duet/tensor/error.h"

namespace duet::kernels::ref {
namespace {

// Maps each input element to (output index, linear index within the reduced dims) and calls
// fn(element, out_index, reduced_index); returns the output count and reduced count.
template <class Fn>
void walk(int rank, const int64_t* shape, uint32_t axes, const float* x, int64_t& outputs,
          int64_t& count, Fn&& fn) {
  DUET_CHECK(rank >= 0 && rank <= kMaxRank, "reduce: rank ", rank, " not in [0, 6]");
  DUET_CHECK((axes >> rank) == 0, "reduce: axes mask has bits at or above rank ", rank);
  outputs = 1;
  count = 1;
  for (int d = 0; d < rank; ++d) (axes >> d & 1 ? count : outputs) *= shape[d];
  const int64_t n = outputs * count;
  for (int64_t i = 0; i < n; ++i) {
    int64_t rest = i, o = 0, r = 0, om = 1, rm = 1;
    for (int d = rank - 1; d >= 0; --d) {
      const int64_t k = rest % shape[d];
      rest /= shape[d];
      if (axes >> d & 1) {
        r += k * rm;
        rm *= shape[d];
      } else {
        o += k * om;
        om *= shape[d];
      }
    }
    fn(x[i], o, r);
  }
}

}  // namespace

void reduce_sum(int rank, const int64_t* shape, uint32_t axes, const float* x, float* out) {
  int64_t outputs = 1, count = 1;
  std::vector<double> acc;
  for (int d = 0; d < rank; ++d) outputs *= (axes >> d & 1) ? 1 : shape[d];
  acc.assign(static_cast<size_t>(outputs), 0.0);
  walk(rank, shape, axes, x, outputs, count,
       [&](float v, int64_t o, int64_t) { acc[static_cast<size_t>(o)] += v; });
  for (int64_t o = 0; o < outputs; ++o) out[o] = static_cast<float>(acc[static_cast<size_t>(o)]);
}

void reduce_mean(int rank, const int64_t* shape, uint32_t axes, const float* x, float* out) {
  int64_t outputs = 1, count = 1;
  std::vector<double> acc;
  for (int d = 0; d < rank; ++d) outputs *= (axes >> d & 1) ? 1 : shape[d];
  acc.assign(static_cast<size_t>(outputs), 0.0);
  walk(rank, shape, axes, x, outputs, count,
       [&](float v, int64_t o, int64_t) { acc[static_cast<size_t>(o)] += v; });
  for (int64_t o = 0; o < outputs; ++o)
    out[o] = static_cast<float>(count == 0 ? std::numeric_limits<double>::quiet_NaN()
                                           : acc[static_cast<size_t>(o)] / double(count));
}

void reduce_max(int rank, const int64_t* shape, uint32_t axes, const float* x, float* out,
                int64_t* argmax) {
  int64_t outputs = 1, count = 1;
  for (int d = 0; d < rank; ++d) (axes >> d & 1 ? count : outputs) *= shape[d];
  DUET_CHECK(count > 0 || outputs == 0, "reduce_max: cannot take the max over an empty axis");
  std::vector<float> best(static_cast<size_t>(outputs));
  std::vector<int64_t> where(static_cast<size_t>(outputs), -1);
  walk(rank, shape, axes, x, outputs, count, [&](float v, int64_t o, int64_t r) {
    const size_t k = static_cast<size_t>(o);
    if (where[k] < 0 || v > best[k] || (std::isnan(v) && !std::isnan(best[k]))) {
      best[k] = v;
      where[k] = r;
    }
  });
  for (int64_t o = 0; o < outputs; ++o) {
    out[o] = best[static_cast<size_t>(o)];
    if (argmax) argmax[o] = where[static_cast<size_t>(o)];
  }
}

void reduce_to_shape(int grad_rank, const int64_t* grad_shape, const float* grad, int rank,
                     const int64_t* shape, float* out) {
  reduce_sum(grad_rank, grad_shape, broadcast_reduce_axes(grad_rank, grad_shape, rank, shape), grad,
             out);
}

}  // namespace duet::kernels::ref
