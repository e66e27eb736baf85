// concat compare cases: forward and backward (split) against the element-by-element twin, with
// inner sizes 1 and odd, single-element inputs, and a null gradient slot in the backward.
#include <string>
#include <vector>

#include "../harness/op_harness.h"
#include "duet/kernels/concat.h"
#include "duet/tensor/error.h"

namespace {

void add_concat(int64_t outer, int64_t inner, const std::vector<int64_t>& sizes) {
  int64_t total = 0;
  std::string tag = duet::str(outer, "x{");
  for (size_t i = 0; i < sizes.size(); ++i) {
    total += sizes[i];
    tag += duet::str(i ? "," : "", sizes[i]);
  }
  tag += duet::str("}x", inner);
  const int64_t n = int64_t(sizes.size());
  duet::test::add_kernel_case(
      {duet::str("concat/fwd/", tag), double(outer * total * inner), 0, 0, [=] {
         std::vector<std::vector<float>> parts;
         for (size_t i = 0; i < sizes.size(); ++i)
           parts.push_back(duet::test::random_vector(size_t(outer * sizes[i] * inner), 40 + i));
         return [=](bool fast, std::vector<float>& res) {
           std::vector<const float*> ptrs;
           for (const auto& p : parts) ptrs.push_back(p.data());
           res.assign(size_t(outer * total * inner), -7.0f);
           (fast ? duet::kernels::concat : duet::kernels::ref::concat)(n, ptrs.data(), sizes.data(),
                                                                       outer, inner, res.data());
         };
       }});
  duet::test::add_kernel_case(
      {duet::str("concat/bwd/", tag), double(outer * total * inner), 0, 0, [=] {
         auto g = duet::test::random_vector(size_t(outer * total * inner), 50);
         return [=](bool fast, std::vector<float>& res) {
           std::vector<std::vector<float>> grads;
           std::vector<float*> ptrs;
           for (size_t i = 0; i < sizes.size(); ++i) {
             grads.emplace_back(size_t(outer * sizes[i] * inner), -7.0f);
             // The second input needs no gradient: its slot is null and must be skipped.
             ptrs.push_back(i == 1 ? nullptr : grads.back().data());
           }
           (fast ? duet::kernels::concat_backward : duet::kernels::ref::concat_backward)(
               n, g.data(), sizes.data(), outer, inner, ptrs.data());
           res.clear();
           for (const auto& v : grads) res.insert(res.end(), v.begin(), v.end());
         };
       }});
}

duet::test::Register reg([] {
  add_concat(2, 35, {3, 13, 1});
  add_concat(1, 1, {5, 127});
  add_concat(7, 1, {1, 1, 1});
  add_concat(3, 128, {7, 24});
  add_concat(5, 13, {0, 7, 1});
  add_concat(8, 1024, {64, 64});
  add_concat(1, 127, {1});
});

}  // namespace
