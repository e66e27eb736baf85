#include "duet/kernels/eltwise.h"

#include <algorithm>

#include "duet/kernels/eltwise_rows.h"
#include "duet/kernels/isa.h"
#include "duet/kernels/nd_iter.h"
#include "duet/tensor/error.h"
#include "duet/tensor/parallel.h"

namespace duet::kernels {
namespace {

// Below this many elements per thread, waking a second thread costs more than it saves.
constexpr int64_t kMinPerThread = 32768;
// Long rows are cut into pieces of at most this many elements so a same-shape op (one row
// after coalescing) still spreads over threads.
constexpr int64_t kPiece = 16384;

template <class F>
void row_loop(int64_t n, const float* a, int64_t sa, const float* b, int64_t sb, float* o, F f) {
  // Separate loops per stride pattern so the compiler vectorises the common ones.
  if (sa == 1 && sb == 1) {
    for (int64_t i = 0; i < n; ++i) o[i] = f(a[i], b[i]);
  } else if (sa == 1 && sb == 0) {
    const float y = *b;
    for (int64_t i = 0; i < n; ++i) o[i] = f(a[i], y);
  } else if (sa == 0 && sb == 1) {
    const float x = *a;
    for (int64_t i = 0; i < n; ++i) o[i] = f(x, b[i]);
  } else {
    for (int64_t i = 0; i < n; ++i) o[i] = f(a[i * sa], b[i * sb]);
  }
}

}  // namespace

namespace detail {
void binary_row_generic(BinaryOp op, int64_t n, const float* a, int64_t sa, const float* b,
                        int64_t sb, float* out) {
  switch (op) {
    case BinaryOp::add:
      row_loop(n, a, sa, b, sb, out, [](float x, float y) { return x + y; });
      break;
    case BinaryOp::sub:
      row_loop(n, a, sa, b, sb, out, [](float x, float y) { return x - y; });
      break;
    case BinaryOp::mul:
      row_loop(n, a, sa, b, sb, out, [](float x, float y) { return x * y; });
      break;
    case BinaryOp::div:
      row_loop(n, a, sa, b, sb, out, [](float x, float y) { return x / y; });
      break;
  }
}
}  // namespace detail

void binary(BinaryOp op, int rank, const int64_t* out_shape, const float* a,
            const int64_t* a_strides, const float* b, const int64_t* b_strides, float* out) {
  DUET_CHECK(rank >= 0 && rank <= kMaxRank, "binary: rank ", rank, " not in [0, ", kMaxRank, "]");
  detail::NdLayout l;
  l.rank = rank;
  l.ops = 2;
  int64_t n = 1;
  for (int d = 0; d < rank; ++d) {
    DUET_CHECK(out_shape[d] >= 0, "binary: negative size ", out_shape[d], " in dim ", d);
    n *= out_shape[d];
    l.shape[d] = out_shape[d];
    l.stride[0][d] = a_strides[d];
    l.stride[1][d] = b_strides[d];
  }
  if (n == 0) return;
  detail::coalesce(l);
  const int last = l.rank - 1;
  const int64_t inner = l.shape[last], sa = l.stride[0][last], sb = l.stride[1][last];
  const int64_t rows = n / inner;
  const int64_t per_row = (inner + kPiece - 1) / kPiece;
  const int64_t piece = (inner + per_row - 1) / per_row;
  const auto row = isa_at_least(Isa::avx2) ? detail::binary_row_avx2 : detail::binary_row_generic;
  const int64_t grain = std::max<int64_t>(1, kMinPerThread / std::min(inner, kPiece));
  parallel_for(rows * per_row, grain, [&](int64_t p0, int64_t p1) {
    detail::Odometer it(l, last, p0 / per_row);
    for (int64_t p = p0; p < p1; ++p) {
      const int64_t c = p % per_row;
      if (p != p0 && c == 0) it.next();
      const int64_t r = p / per_row, lo = c * piece, len = std::min(piece, inner - lo);
      row(op, len, a + it.off[0] + lo * sa, sa, b + it.off[1] + lo * sb, sb, out + r * inner + lo);
    }
  });
}

void axpby(int64_t n, float alpha, const float* x, float beta, float* y) {
  const bool avx2 = isa_at_least(Isa::avx2);
  parallel_for(n, kMinPerThread, [&](int64_t i0, int64_t i1) {
    if (avx2) {
      detail::axpby_avx2(i1 - i0, alpha, x + i0, beta, y + i0);
    } else if (beta == 0.0f) {
      for (int64_t i = i0; i < i1; ++i) y[i] = alpha * x[i];
    } else {
      for (int64_t i = i0; i < i1; ++i) y[i] = alpha * x[i] + beta * y[i];
    }
  });
}

void fill(int64_t n, float value, float* y) {
  parallel_for(n, 4 * kMinPerThread,
               [&](int64_t i0, int64_t i1) { std::fill(y + i0, y + i1, value); });
}

const char* binary_op_name(BinaryOp op) {
  switch (op) {
    case BinaryOp::add:
      return "add";
    case BinaryOp::sub:
      return "sub";
    case BinaryOp::mul:
      return "mul";
    case BinaryOp::div:
      return "div";
  }
  return "binary";
}

}  // namespace duet::kernels
