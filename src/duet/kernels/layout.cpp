#include "duet/kernels/layout.h"

#include "duet/tensor/error.h"

namespace duet::kernels {

int broadcast_shapes(int rank_a, const int64_t* shape_a, int rank_b, const int64_t* shape_b,
                     int64_t* out_shape) {
  DUET_CHECK(rank_a >= 0 && rank_a <= kMaxRank && rank_b >= 0 && rank_b <= kMaxRank,
             "broadcast: ranks ", rank_a, " and ", rank_b, " must be in [0, ", kMaxRank, "]");
  const int rank = rank_a > rank_b ? rank_a : rank_b;
  for (int i = 0; i < rank; ++i) {
    const int ia = i - (rank - rank_a), ib = i - (rank - rank_b);
    const int64_t da = ia >= 0 ? shape_a[ia] : 1, db = ib >= 0 ? shape_b[ib] : 1;
    DUET_CHECK(da == db || da == 1 || db == 1, "broadcast: dim ", i, " has sizes ", da, " and ", db,
               "; expected equal sizes or one of them 1");
    out_shape[i] = da == 1 ? db : da;
  }
  return rank;
}

void broadcast_strides(int rank, const int64_t* shape, int out_rank, const int64_t* out_shape,
                       int64_t* strides) {
  DUET_CHECK(rank >= 0 && rank <= out_rank && out_rank <= kMaxRank, "broadcast: operand rank ",
             rank, " cannot broadcast to output rank ", out_rank, " (max ", kMaxRank, ")");
  int64_t s = 1;
  for (int i = out_rank - 1; i >= 0; --i) {
    const int j = i - (out_rank - rank);
    if (j < 0) {
      strides[i] = 0;
      continue;
    }
    DUET_CHECK(shape[j] == out_shape[i] || shape[j] == 1, "broadcast: operand dim ", j,
               " has size ", shape[j], " but the output has ", out_shape[i]);
    strides[i] = shape[j] == 1 ? 0 : s;
    s *= shape[j];
  }
}

uint32_t broadcast_reduce_axes(int grad_rank, const int64_t* grad_shape, int rank,
                               const int64_t* shape) {
  DUET_CHECK(rank >= 0 && rank <= grad_rank && grad_rank <= kMaxRank, "reduce_to_shape: rank ",
             rank, " cannot come from a broadcast of rank ", grad_rank);
  uint32_t axes = 0;
  for (int d = 0; d < grad_rank; ++d) {
    const int j = d - (grad_rank - rank);
    if (j < 0) {
      axes |= 1u << d;
      continue;
    }
    DUET_CHECK(shape[j] == grad_shape[d] || shape[j] == 1, "reduce_to_shape: dim ", j, " has size ",
               shape[j], " but the gradient has ", grad_shape[d]);
    if (shape[j] == 1 && grad_shape[d] != 1) axes |= 1u << d;
  }
  return axes;
}

int64_t contiguous_strides(int rank, const int64_t* shape, int64_t* strides) {
  int64_t s = 1;
  for (int i = rank - 1; i >= 0; --i) {
    strides[i] = s;
    s *= shape[i];
  }
  return s;
}

}  // namespace duet::kernels
