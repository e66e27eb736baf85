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

}  // namespace duet::ops::detail
