// eltwise compare cases: broadcasting binary add/sub/mul/div (same shape, scalar, row, column,
// channel, two-sided, 6-d, transposed operand) plus axpby and fill, fast path vs reference twin,
// on lengths that hit SIMD tails (1, 5, 7, 13, 127, 128) and sizes that split over threads.
#include <string>
#include <vector>

#include "../harness/op_harness.h"
#include "duet/kernels/eltwise.h"
#include "duet/tensor/error.h"

namespace {

using duet::kernels::BinaryOp;
using Dims = std::vector<int64_t>;

std::string dims_label(const Dims& d) {
  std::string s = "[";
  for (size_t i = 0; i < d.size(); ++i) s += duet::str(i ? "," : "", d[i]);
  return s + "]";
}

int64_t numel(const Dims& d) {
  int64_t n = 1;
  for (int64_t x : d) n *= x;
  return n;
}

// a and b contiguous, broadcast against each other.
void add_broadcast(const Dims& a, const Dims& b) {
  for (BinaryOp op : {BinaryOp::add, BinaryOp::sub, BinaryOp::mul, BinaryOp::div}) {
    int64_t out[duet::kernels::kMaxRank];
    const int rank =
        duet::kernels::broadcast_shapes(int(a.size()), a.data(), int(b.size()), b.data(), out);
    const Dims od(out, out + rank);
    const std::string name =
        duet::str("eltwise/", binary_op_name(op), "/", dims_label(a), "x", dims_label(b));
    duet::test::add_kernel_case(
        {name, double(numel(od)), 1e-6, 1e-6, [=] {
           auto xa = duet::test::random_vector(size_t(numel(a)), 11 + a.size());
           // Divisors kept away from zero so the quotient is well conditioned.
           auto xb = duet::test::random_vector(size_t(numel(b)), 29 + b.size(), 0.5f, 1.5f);
           Dims sa(od.size()), sb(od.size());
           duet::kernels::broadcast_strides(int(a.size()), a.data(), rank, od.data(), sa.data());
           duet::kernels::broadcast_strides(int(b.size()), b.data(), rank, od.data(), sb.data());
           return [=](bool fast, std::vector<float>& res) {
             res.assign(size_t(numel(od)), -7.0f);
             (fast ? duet::kernels::binary : duet::kernels::ref::binary)(
                 op, rank, od.data(), xa.data(), sa.data(), xb.data(), sb.data(), res.data());
           };
         }});
  }
}

// a read through a transposed view: out [r, c] from a buffer laid out [c, r].
void add_transposed(int64_t r, int64_t c) {
  const std::string name = duet::str("eltwise/mul/transposed_a/", r, "x", c);
  duet::test::add_kernel_case({name, double(r * c), 1e-6, 1e-6, [=] {
                                 auto xa = duet::test::random_vector(size_t(r * c), 3);
                                 auto xb = duet::test::random_vector(size_t(c), 4);
                                 return [=](bool fast, std::vector<float>& res) {
                                   const int64_t shape[2] = {r, c}, sa[2] = {1, r}, sb[2] = {0, 1};
                                   res.assign(size_t(r * c), 0.0f);
                                   (fast ? duet::kernels::binary : duet::kernels::ref::binary)(
                                       BinaryOp::mul, 2, shape, xa.data(), sa, xb.data(), sb,
                                       res.data());
                                 };
                               }});
}

void add_unary(int64_t n) {
  for (float beta : {0.0f, 0.75f}) {
    duet::test::add_kernel_case({duet::str("eltwise/axpby/beta", int(beta * 100), "/", n),
                                 3.0 * double(n), 1e-6, 1e-6, [=] {
                                   auto x = duet::test::random_vector(size_t(n), 5);
                                   auto y0 = duet::test::random_vector(size_t(n), 6);
                                   return [=](bool fast, std::vector<float>& res) {
                                     res = y0;
                                     (fast ? duet::kernels::axpby : duet::kernels::ref::axpby)(
                                         n, -1.25f, x.data(), beta, res.data());
                                   };
                                 }});
  }
  duet::test::add_kernel_case({duet::str("eltwise/fill/", n), 0, 0, 0, [=] {
                                 return [=](bool fast, std::vector<float>& res) {
                                   res.assign(size_t(n), 0.0f);
                                   (fast ? duet::kernels::fill : duet::kernels::ref::fill)(
                                       n, 2.5f, res.data());
                                 };
                               }});
}

duet::test::Register reg([] {
  // same shape
  for (int64_t n : {1, 5, 7, 13, 127, 128}) add_broadcast({n}, {n});
  add_broadcast({3, 127}, {3, 127});
  add_broadcast({1 << 18}, {1 << 18});
  // scalar (rank 0 and [1]) on either side
  add_broadcast({13}, {});
  add_broadcast({}, {7});
  add_broadcast({2, 3, 5}, {1});
  add_broadcast({}, {});
  // row (last dim) and column
  add_broadcast({7, 13}, {13});
  add_broadcast({5, 127}, {1, 127});
  add_broadcast({7, 13}, {7, 1});
  add_broadcast({128, 5}, {128, 1});
  // channel (NCHW bias-like), on either side
  add_broadcast({2, 24, 5, 7}, {1, 24, 1, 1});
  add_broadcast({3, 1, 1}, {2, 3, 13, 13});
  add_broadcast({1, 7, 127}, {7, 1});
  add_broadcast({4, 64, 32, 32}, {1, 64, 1, 1});
  // both-sided and 6-d
  add_broadcast({3, 1, 5}, {1, 4, 1});
  add_broadcast({1, 13}, {7, 1});
  add_broadcast({2, 1, 3, 1, 5, 1}, {1, 4, 1, 6, 1, 2});
  add_transposed(13, 7);
  add_transposed(128, 127);
  for (int64_t n : {1, 5, 7, 13, 127, 128, 100003}) add_unary(n);
});

}  // namespace
