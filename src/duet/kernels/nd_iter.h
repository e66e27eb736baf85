// Internal helpers for kernels that walk an N-d index space with per-operand strides: dim
// coalescing (so a broadcast or a transposed view collapses to the fewest, longest loops) and an
// odometer over the outer dims that keeps operand offsets up to date without divisions.
#pragma once

#include <cstdint>

#include "duet/kernels/layout.h"

namespace duet::kernels::detail {

// Up to three strided operands over one index space; the output of the kernels using this is
// contiguous, so only the operands constrain which dims can merge.
struct NdLayout {
  int rank = 0;
  int ops = 0;
  int64_t shape[kMaxRank] = {};
  int64_t stride[3][kMaxRank] = {};
};

// Drops size-1 dims and merges dim i into dim i+1 wherever every operand walks them as one
// (stride[i] == stride[i+1] * shape[i+1]). Leaves rank >= 1 unless some dim is 0.
inline void coalesce(NdLayout& l) {
  NdLayout c;
  c.ops = l.ops;
  for (int i = 0; i < l.rank; ++i) {
    if (l.shape[i] == 1) continue;
    bool merge = c.rank > 0;
    for (int o = 0; o < l.ops && merge; ++o)
      merge = c.stride[o][c.rank - 1] == l.stride[o][i] * l.shape[i];
    if (merge) {
      c.shape[c.rank - 1] *= l.shape[i];
      for (int o = 0; o < l.ops; ++o) c.stride[o][c.rank - 1] = l.stride[o][i];
    } else {
      c.shape[c.rank] = l.shape[i];
      for (int o = 0; o < l.ops; ++o) c.stride[o][c.rank] = l.stride[o][i];
      ++c.rank;
    }
  }
  if (c.rank == 0) {  // every dim was 1: one element
    c.rank = 1;
    c.shape[0] = 1;
    for (int o = 0; o < l.ops; ++o) c.stride[o][0] = 0;
  }
  l = c;
}

// Walks the first `dims` dims of a layout in row-major order starting at a linear position,
// keeping each operand's element offset.
struct Odometer {
  const NdLayout* l;
  int dims;
  int64_t idx[kMaxRank] = {};
  int64_t off[3] = {};

  Odometer(const NdLayout& layout, int ndims, int64_t start) : l(&layout), dims(ndims) {
    for (int d = dims - 1; d >= 0; --d) {
      idx[d] = start % l->shape[d];
      start /= l->shape[d];
      for (int o = 0; o < l->ops; ++o) off[o] += idx[d] * l->stride[o][d];
    }
  }
  void next() {
    for (int d = dims - 1; d >= 0; --d) {
      for (int o = 0; o < l->ops; ++o) off[o] += l->stride[o][d];
      if (++idx[d] < l->shape[d]) return;
      for (int o = 0; o < l->ops; ++o) off[o] -= idx[d] * l->stride[o][d];
      idx[d] = 0;
    }
  }
};

}  // namespace duet::kernels::detail
