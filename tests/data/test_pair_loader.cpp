// The reflow pair loader: every batch keeps each image with its own noise and label, an epoch
// visits every pair once, the order follows the seed, and restarting an epoch at batch k yields
// what an uninterrupted pass yields there (what --resume relies on).
#include <gtest/gtest.h>

#include <set>
#include <vector>

#include "duet/data/pair_loader.h"
#include "duet/tensor/error.h"

namespace duet::data {
namespace {

// Pair i: an image filled with i, noise filled with -i - 0.5, label i mod 3.
PairLoader make_loader(int64_t n, int64_t batch, uint64_t seed, bool drop_last) {
  std::vector<float> images, noise;
  std::vector<int32_t> labels;
  for (int64_t i = 0; i < n; ++i) {
    images.insert(images.end(), 4, static_cast<float>(i));
    noise.insert(noise.end(), 4, -static_cast<float>(i) - 0.5f);
    labels.push_back(static_cast<int32_t>(i % 3));
  }
  return PairLoader(Tensor::from_vector(images, Shape{n, 1, 2, 2}),
                    Tensor::from_vector(noise, Shape{n, 1, 2, 2}),
                    Tensor::from_vector(labels, Shape{n}), batch, seed, drop_last);
}

std::vector<int64_t> ids_of(const Batch& b) {
  std::vector<int64_t> ids;
  for (int64_t j = 0; j < b.labels.numel(); ++j)
    ids.push_back(int64_t(b.images.data<float>()[j * 4]));
  return ids;
}

}  // namespace

TEST(PairLoader, KeepsEachImageWithItsNoiseAndLabel) {
  PairLoader loader = make_loader(10, 4, 7, false);
  EXPECT_EQ(loader.batches_per_epoch(), 3);
  loader.start_epoch(0);
  std::multiset<int64_t> seen;
  Batch b;
  while (loader.next(b)) {
    ASSERT_TRUE(b.noise.defined());
    ASSERT_EQ(b.noise.shape(), b.images.shape());
    for (int64_t j = 0; j < b.labels.numel(); ++j) {
      const float id = b.images.data<float>()[j * 4];
      for (int k = 0; k < 4; ++k) {
        EXPECT_EQ(b.images.data<float>()[j * 4 + k], id);
        EXPECT_EQ(b.noise.data<float>()[j * 4 + k], -id - 0.5f);
      }
      EXPECT_EQ(b.labels.data<int32_t>()[j], static_cast<int32_t>(int64_t(id) % 3));
      seen.insert(int64_t(id));
    }
  }
  EXPECT_EQ(seen.size(), 10u);
  EXPECT_EQ(std::set<int64_t>(seen.begin(), seen.end()).size(), 10u);  // each pair once
}

TEST(PairLoader, OrderFollowsSeedAndEpochAndResumes) {
  PairLoader a = make_loader(12, 4, 1, true), b = make_loader(12, 4, 1, true),
             c = make_loader(12, 4, 2, true);
  Batch x, y;
  std::vector<std::vector<int64_t>> epoch0, epoch1;
  a.start_epoch(0);
  while (a.next(x)) epoch0.push_back(ids_of(x));
  a.start_epoch(1);
  while (a.next(x)) epoch1.push_back(ids_of(x));
  EXPECT_NE(epoch0, epoch1);  // reshuffled each epoch
  c.start_epoch(0);
  ASSERT_TRUE(c.next(y));
  EXPECT_NE(ids_of(y), epoch0[0]);  // another seed, another order
  b.start_epoch(1, 2);              // resume at batch 2 of epoch 1
  ASSERT_TRUE(b.next(y));
  EXPECT_EQ(ids_of(y), epoch1[2]);
  EXPECT_EQ(y.index, 2);
  EXPECT_FALSE(b.next(y));
}

TEST(PairLoader, RejectsMismatchedShapes) {
  EXPECT_THROW(PairLoader(Tensor::zeros(Shape{3, 1, 2, 2}), Tensor::zeros(Shape{3, 1, 2, 3}),
                          Tensor::zeros(Shape{3}, DType::i32), 2, 0, false),
               Error);
  EXPECT_THROW(PairLoader(Tensor::zeros(Shape{3, 1, 2, 2}), Tensor::zeros(Shape{3, 1, 2, 2}),
                          Tensor::zeros(Shape{2}, DType::i32), 2, 0, false),
               Error);
}

}  // namespace duet::data
