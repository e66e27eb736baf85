// Batches of (image, its paired noise, label) triples held in memory as f32: the training data
// of a reflow (gen/reflow_pairs.h), where each image must stay with the noise it came from.
// Shuffled per epoch from a seed like data::Loader, so a batch is a pure function of (seed, epoch,
// index) and a resumed run sees what an uninterrupted one would.
#pragma once

#include <cstdint>
#include <vector>

#include "duet/data/loader.h"

namespace duet::data {

class PairLoader final : public BatchSource {
 public:
  // images and noise: f32 [N, C, H, W] of one shape; labels: i32 [N]. Keeps references to the
  // storage. Throws on mismatched shapes or a bad batch size.
  PairLoader(Tensor images, Tensor noise, Tensor labels, int64_t batch_size, uint64_t seed,
             bool drop_last);

  int64_t size() const { return labels_.dim(0); }
  int64_t batches_per_epoch() const override;
  void start_epoch(int64_t epoch, int64_t first_batch) override;
  using BatchSource::start_epoch;
  bool next(Batch& out) override;

 private:
  Tensor images_, noise_, labels_;
  int64_t batch_size_;
  uint64_t seed_;
  bool drop_last_;
  int64_t epoch_ = 0, next_ = 0;
  std::vector<int64_t> order_;
};

}  // namespace duet::data
