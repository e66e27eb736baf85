// reduce compare cases: sum, mean, max (+argmax) over axis sets of <= 6-d tensors, covering the
// inner-reduced and inner-kept loop shapes, the split-the-reduction parallel paths (few outputs,
// long axes) and ties for argmax; plus reduce_to_shape for the broadcast-backward patterns.
#include <cmath>
#include <string>
#include <vector>

#include "../harness/op_harness.h"
#include "duet/kernels/reduce.h"
#include "duet/tensor/error.h"

namespace {

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

void add_reduce(const Dims& shape, std::vector<int> axes_list, bool ties = false) {
  uint32_t axes = 0;
  std::string ax;
  int64_t count = 1;
  for (int a : axes_list) {
    axes |= 1u << a;
    ax += duet::str(a);
    count *= shape[size_t(a)];
  }
  const int64_t n = numel(shape), outputs = n / count;
  const std::string tag = duet::str(dims_label(shape), "/axes", ax, ties ? "/ties" : "");
  auto input = [=] {
    auto x = duet::test::random_vector(size_t(n), 7 + size_t(n));
    // Few distinct values make many ties, so argmax must pick the first occurrence.
    if (ties)
      for (auto& v : x) v = std::round(v * 2.0f);
    return x;
  };
  // Float block sums vs double: error grows like sqrt of the reduction length.
  const double atol = 1e-6 * std::sqrt(double(count)) + 1e-6;
  for (bool mean : {false, true}) {
    duet::test::add_kernel_case(
        {duet::str("reduce/", mean ? "mean/" : "sum/", tag), double(n), atol, 1e-5, [=] {
           auto x = input();
           return [=](bool fast, std::vector<float>& res) {
             res.assign(size_t(outputs), -7.0f);
             namespace k = duet::kernels;
             if (mean)
               (fast ? k::reduce_mean : k::ref::reduce_mean)(int(shape.size()), shape.data(), axes,
                                                             x.data(), res.data());
             else
               (fast ? k::reduce_sum : k::ref::reduce_sum)(int(shape.size()), shape.data(), axes,
                                                           x.data(), res.data());
           };
         }});
  }
  duet::test::add_kernel_case({duet::str("reduce/max/", tag), double(n), 0, 0, [=] {
                                 auto x = input();
                                 return [=](bool fast, std::vector<float>& res) {
                                   std::vector<float> val(static_cast<size_t>(outputs));
                                   std::vector<int64_t> idx(size_t(outputs), -3);
                                   namespace k = duet::kernels;
                                   (fast ? k::reduce_max : k::ref::reduce_max)(
                                       int(shape.size()), shape.data(), axes, x.data(), val.data(),
                                       idx.data());
                                   res = val;
                                   for (int64_t i : idx)
                                     res.push_back(float(i));  // indices < 2^24 are exact
                                 };
                               }});
}

void add_to_shape(const Dims& grad, const Dims& shape) {
  const int64_t n = numel(grad), m = numel(shape);
  duet::test::add_kernel_case(
      {duet::str("reduce/to_shape/", dims_label(grad), "->", dims_label(shape)), double(n),
       1e-6 * std::sqrt(double(n / m)) + 1e-6, 1e-5, [=] {
         auto g = duet::test::random_vector(size_t(n), 17);
         return [=](bool fast, std::vector<float>& res) {
           res.assign(size_t(m), -7.0f);
           namespace k = duet::kernels;
           (fast ? k::reduce_to_shape : k::ref::reduce_to_shape)(int(grad.size()), grad.data(),
                                                                 g.data(), int(shape.size()),
                                                                 shape.data(), res.data());
         };
       }});
}

duet::test::Register reg([] {
  for (int64_t n : {1, 5, 7, 13, 127, 128}) add_reduce({n}, {0});
  add_reduce({5, 7}, {1});
  add_reduce({5, 7}, {0});
  add_reduce({5, 7}, {0, 1});
  add_reduce({13, 127}, {1});
  add_reduce({13, 127}, {0});
  add_reduce({128, 13}, {0});
  add_reduce({2, 24, 5, 7}, {0, 2, 3});  // per-channel (bias / BN statistics)
  add_reduce({2, 24, 5, 7}, {1});
  add_reduce({2, 24, 5, 7}, {2, 3});
  add_reduce({3, 1, 5}, {1});
  add_reduce({7, 13, 5}, {0, 2});
  add_reduce({7, 13, 5}, {1});
  add_reduce({2, 3, 1, 4, 5, 2}, {1, 3, 5});
  add_reduce({2, 3, 1, 4, 5, 2}, {0, 2, 4});
  add_reduce({13, 300}, {1}, true);
  add_reduce({300, 13}, {0}, true);
  add_reduce({1000003}, {0});    // one output: the reduction is split over threads
  add_reduce({3, 100003}, {1});  // few outputs, long rows
  add_reduce({20000, 3}, {0});   // few columns, many rows
  add_reduce({64, 4099}, {0});
  add_reduce({40000, 3}, {0});             // few columns, split over threads (when there are 2+)
  add_reduce({1000, 130}, {0});            // many columns: parallel over column tiles
  add_reduce({8, 16, 32, 32}, {0, 2, 3});  // channel sums of a batch of maps
  add_reduce({4096, 257}, {1});
  add_to_shape({2, 24, 5, 7}, {24, 1, 1});
  add_to_shape({3, 4, 5}, {1, 4, 1});
  add_to_shape({7, 13}, {13});
  add_to_shape({7, 13}, {7, 1});
  add_to_shape({5}, {});
  add_to_shape({2, 3, 4, 5, 6, 7}, {1, 3, 1, 5, 1, 7});
  add_to_shape({13, 5}, {13, 5});
  add_to_shape({8, 64, 32, 32}, {64, 1, 1});
});

}  // namespace
