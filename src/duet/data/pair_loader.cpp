#include "duet/data/pair_loader.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "duet/data/dataset.h"
#include "duet/tensor/error.h"

namespace duet::data {

PairLoader::PairLoader(Tensor images, Tensor noise, Tensor labels, int64_t batch_size,
                       uint64_t seed, bool drop_last)
    : images_(std::move(images)),
      noise_(std::move(noise)),
      labels_(std::move(labels)),
      batch_size_(batch_size),
      seed_(seed),
      drop_last_(drop_last) {
  DUET_CHECK(images_.dtype() == DType::f32 && noise_.dtype() == DType::f32 &&
                 labels_.dtype() == DType::i32 && images_.is_contiguous() &&
                 noise_.is_contiguous() && labels_.is_contiguous(),
             "pair loader: expected contiguous f32 images and noise and i32 labels");
  DUET_CHECK(images_.rank() >= 2 && images_.shape() == noise_.shape(), "pair loader: images ",
             images_.shape().str(), " and noise ", noise_.shape().str(),
             " must be [N, ...] of one shape");
  DUET_CHECK(labels_.rank() == 1 && labels_.dim(0) == images_.dim(0), "pair loader: labels ",
             labels_.shape().str(), " for ", images_.dim(0), " pairs");
  DUET_CHECK(batch_size_ >= 1, "pair loader: batch size ", batch_size_, " must be >= 1");
}

int64_t PairLoader::batches_per_epoch() const {
  return drop_last_ ? std::max<int64_t>(size() / batch_size_, 1)
                    : (size() + batch_size_ - 1) / batch_size_;
}

void PairLoader::start_epoch(int64_t epoch, int64_t first_batch) {
  DUET_CHECK(epoch >= 0, "pair loader: epoch ", epoch, " must be >= 0");
  DUET_CHECK(first_batch >= 0 && first_batch <= batches_per_epoch(), "pair loader: resume batch ",
             first_batch, " is out of range [0, ", batches_per_epoch(), "]");
  epoch_ = epoch;
  next_ = first_batch;
  order_ = seeded_permutation(size(), seed_, static_cast<uint64_t>(epoch));
}

bool PairLoader::next(Batch& out) {
  if (order_.empty() || next_ >= batches_per_epoch()) return false;
  const int64_t begin = next_ * batch_size_;
  const int64_t b = std::min(batch_size_, size() - begin);
  const int64_t per = images_.numel() / size();
  Shape shape = images_.shape();
  shape[0] = b;
  out = Batch{};
  out.epoch = epoch_, out.index = next_;
  out.images = Tensor::empty(shape);
  out.noise = Tensor::empty(shape);
  out.labels = Tensor::empty(Shape{b}, DType::i32);
  for (int64_t j = 0; j < b; ++j) {
    const int64_t i = order_[static_cast<size_t>(begin + j)];
    std::memcpy(out.images.data<float>() + j * per, images_.data<float>() + i * per,
                sizeof(float) * per);
    std::memcpy(out.noise.data<float>() + j * per, noise_.data<float>() + i * per,
                sizeof(float) * per);
    out.labels.data<int32_t>()[j] = labels_.data<int32_t>()[i];
  }
  ++next_;
  return true;
}

}  // namespace duet::data
