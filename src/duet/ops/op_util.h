// Small helpers shared by op implementations: shape checks whose errors name the op and both
// shapes, and the "make contiguous before calling a kernel" step.
#pragma once

#include <string>

#include "duet/ops/shape_ops.h"
#include "duet/tensor/error.h"
#include "duet/tensor/tensor.h"

namespace duet::ops::detail {

// Throws "<op>: <what> (a [..] vs b [..])" when cond is false.
inline void check_shapes(bool cond, const char* op, const std::string& what, const Tensor& a,
                         const Tensor& b) {
  if (!cond) fail(op, ": ", what, " (", a.shape().str(), " vs ", b.shape().str(), ")");
}

inline void check_f32(const Tensor& t, const char* op, const char* name) {
  if (!t.defined()) fail(op, ": ", name, " is undefined");
  if (t.dtype() != DType::f32) fail(op, ": ", name, " must be F32, got ", dtype_name(t.dtype()));
}

// A normalisation's optional per-channel tensor t (undefined, or F32 [c]) against input x.
inline void check_affine(const Tensor& t, int64_t c, const char* op, const char* name,
                         const Tensor& x) {
  if (!t.defined()) return;
  check_f32(t, op, name);
  check_shapes(t.rank() == 1 && t.dim(0) == c, op,
               str(name, " must have one entry per normalised channel (", c, ")"), t, x);
}

}  // namespace duet::ops::detail
