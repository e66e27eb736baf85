// embedding compare cases: gather forward and deterministic scatter-add backward, with repeated
// indices, dims on SIMD tails, and sizes large enough to split over threads.
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "../harness/op_harness.h"
#include "duet/kernels/embedding.h"
#include "duet/tensor/error.h"

namespace {

void add_embedding(int64_t count, int64_t vocab, int64_t dim) {
  const std::string tag = duet::str(count, "_v", vocab, "_d", dim);
  auto indices = [=] {
    std::mt19937 gen(unsigned(count * 31 + vocab));
    std::uniform_int_distribution<int32_t> pick(0, int32_t(vocab - 1));
    std::vector<int32_t> idx(static_cast<size_t>(count));
    for (auto& i : idx) i = pick(gen);
    return idx;
  };
  duet::test::add_kernel_case({duet::str("embedding/fwd/", tag), double(count * dim), 0, 0, [=] {
                                 auto idx = indices();
                                 auto w = duet::test::random_vector(size_t(vocab * dim), 80);
                                 return [=](bool fast, std::vector<float>& res) {
                                   res.assign(size_t(count * dim), -7.0f);
                                   (fast ? duet::kernels::embedding_forward
                                         : duet::kernels::ref::embedding_forward)(
                                       count, idx.data(), vocab, dim, w.data(), res.data());
                                 };
                               }});
  duet::test::add_kernel_case({duet::str("embedding/bwd/", tag), double(count * dim),
                               // float sums of count / vocab rows per table row on average
                               2e-6 * std::sqrt(double(count) / double(vocab)) + 1e-6, 1e-5, [=] {
                                 auto idx = indices();
                                 auto g = duet::test::random_vector(size_t(count * dim), 81);
                                 return [=](bool fast, std::vector<float>& res) {
                                   res.assign(size_t(vocab * dim), -7.0f);
                                   (fast ? duet::kernels::embedding_backward
                                         : duet::kernels::ref::embedding_backward)(
                                       count, idx.data(), vocab, dim, g.data(), res.data());
                                 };
                               }});
}

duet::test::Register reg([] {
  add_embedding(1, 1, 1);
  add_embedding(13, 7, 5);
  add_embedding(127, 13, 24);
  add_embedding(128, 1000, 128);
  add_embedding(5000, 50, 64);
  add_embedding(3, 10, 127);
});

}  // namespace
