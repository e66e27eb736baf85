#include "duet/data/loader.h"

#include "duet/tensor/parallel.h"

namespace duet::data {

Loader::Loader(Dataset data, LoaderConfig config)
    : data_(std::move(data)), cfg_(std::move(config)) {
  validate(data_, "loader");
  DUET_CHECK(cfg_.batch_size > 0, "loader: batch size ", cfg_.batch_size, " must be positive");
  DUET_CHECK(cfg_.prefetch >= 0, "loader: prefetch ", cfg_.prefetch, " must be >= 0");
  DUET_CHECK(cfg_.augment.crop_padding >= 0, "loader: crop padding must be >= 0");
  DUET_CHECK(cfg_.augment.erase_prob >= 0.0f && cfg_.augment.erase_prob <= 1.0f,
             "loader: erase probability ", cfg_.augment.erase_prob, " outside [0, 1]");
  DUET_CHECK(cfg_.augment.erase_area_min > 0.0f &&
                 cfg_.augment.erase_area_min <= cfg_.augment.erase_area_max &&
                 cfg_.augment.erase_area_max < 1.0f,
             "loader: erase area range [", cfg_.augment.erase_area_min, ", ",
             cfg_.augment.erase_area_max, "] must lie in (0, 1)");
  DUET_CHECK(cfg_.augment.erase_ratio_min > 0.0f &&
                 cfg_.augment.erase_ratio_min <= cfg_.augment.erase_ratio_max,
             "loader: erase aspect ratio range must be positive and ordered");
  DUET_CHECK(
      cfg_.norm.mean.empty() || (static_cast<int64_t>(cfg_.norm.mean.size()) == data_.channels &&
                                 cfg_.norm.std.size() == cfg_.norm.mean.size()),
      "loader: normalisation stats have ", cfg_.norm.mean.size(), " channels; the images have ",
      data_.channels);
  DUET_CHECK(batches_per_epoch() > 0, "loader: ", data_.size(), " images make no batch of ",
             cfg_.batch_size, " with drop_last");
  if (cfg_.prefetch > 0) worker_ = std::thread([this] { worker_loop(); });
}

Loader::~Loader() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (worker_.joinable()) worker_.join();
}

int64_t Loader::batches_per_epoch() const {
  const int64_t n = data_.size(), b = cfg_.batch_size;
  return cfg_.drop_last ? n / b : (n + b - 1) / b;
}

std::vector<int64_t> Loader::epoch_order(int64_t epoch) const {
  if (cfg_.shuffle)
    return seeded_permutation(data_.size(), cfg_.seed, static_cast<uint64_t>(epoch));
  std::vector<int64_t> order(static_cast<size_t>(data_.size()));
  for (int64_t i = 0; i < data_.size(); ++i) order[static_cast<size_t>(i)] = i;
  return order;
}

Batch Loader::build(const std::vector<int64_t>& order, int64_t epoch, int64_t index,
                    bool parallel) const {
  DUET_CHECK(index >= 0 && index < batches_per_epoch(), "loader: batch ", index,
             " is out of range [0, ", batches_per_epoch(), ")");
  const int64_t begin = index * cfg_.batch_size;
  const int64_t b = std::min(cfg_.batch_size, data_.size() - begin);
  const int64_t c = data_.channels, h = data_.height, w = data_.width, chw = c * h * w;
  Batch out;
  out.epoch = epoch, out.index = index;
  out.images = Tensor::empty(Shape{b, c, h, w}, DType::f32);
  out.labels = Tensor::empty(Shape{b}, DType::i32);
  float* img = out.images.data<float>();
  int32_t* lab = out.labels.data<int32_t>();
  // Each sample depends only on (seed, epoch, its dataset index), so any split of the batch over
  // threads gives the same bytes.
  const AugmentConfig plain;
  const AugmentConfig& aug = cfg_.augment.active(epoch) ? cfg_.augment : plain;
  auto fill = [&](int64_t j0, int64_t j1) {
    std::vector<float> scratch(static_cast<size_t>(chw));
    for (int64_t j = j0; j < j1; ++j) {
      const int64_t i = order[static_cast<size_t>(begin + j)];
      const AugmentDraw draw =
          aug.any() ? draw_augment(aug, h, w, cfg_.seed, static_cast<uint64_t>(epoch),
                                   static_cast<uint64_t>(i))
                    : AugmentDraw{};
      make_sample(data_.image(i), img + j * chw, scratch.data(), c, h, w, aug, cfg_.norm, draw);
      lab[j] = data_.label(i);
    }
  };
  if (parallel)
    parallel_for(b, 8, fill);
  else
    fill(0, b);
  if (cfg_.on_batch) cfg_.on_batch(out);
  return out;
}

Batch Loader::make_batch(int64_t epoch, int64_t index) const {
  return build(epoch_order(epoch), epoch, index, true);
}

void Loader::start_epoch(int64_t epoch, int64_t first_batch) {
  DUET_CHECK(epoch >= 0, "loader: epoch ", epoch, " must be >= 0");
  DUET_CHECK(first_batch >= 0 && first_batch <= batches_per_epoch(), "loader: resume batch ",
             first_batch, " is out of range [0, ", batches_per_epoch(), "]");
  auto order = std::make_shared<const std::vector<int64_t>>(epoch_order(epoch));
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++generation_;
    ready_.clear();
    order_ = std::move(order);
    epoch_ = epoch;
    next_produce_ = next_consume_ = first_batch;
    end_ = batches_per_epoch();
    active_ = true;
  }
  cv_.notify_all();
}

bool Loader::next(Batch& out) {
  std::unique_lock<std::mutex> lock(mu_);
  DUET_CHECK(order_ != nullptr, "loader: next() called before start_epoch()");
  if (next_consume_ >= end_) return false;
  if (cfg_.prefetch == 0) {
    const int64_t index = next_consume_++, epoch = epoch_;
    const auto order = order_;
    lock.unlock();
    out = build(*order, epoch, index, true);
    return true;
  }
  cv_.wait(lock, [&] { return !ready_.empty() || stop_; });
  DUET_CHECK(!stop_, "loader: stopped");
  Slot slot = std::move(ready_.front());
  ready_.pop_front();
  ++next_consume_;
  if (slot.error) {
    active_ = false;
    next_consume_ = end_;  // the epoch cannot continue past a failed batch
  }
  lock.unlock();
  cv_.notify_all();
  if (slot.error) std::rethrow_exception(slot.error);
  out = std::move(slot.batch);
  return true;
}

void Loader::worker_loop() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] {
      return stop_ || (active_ && next_produce_ < end_ &&
                       static_cast<int64_t>(ready_.size()) < cfg_.prefetch);
    });
    if (stop_) return;
    const uint64_t gen = generation_;
    const int64_t index = next_produce_++, epoch = epoch_;
    const auto order = order_;
    lock.unlock();
    Slot slot;
    slot.index = index;
    try {
      // Serial: the caller's training step owns the thread pool while we work.
      slot.batch = build(*order, epoch, index, false);
    } catch (...) {
      slot.error = std::current_exception();
    }
    lock.lock();
    if (gen != generation_) continue;  // start_epoch() moved on; drop the stale batch
    if (slot.error) next_produce_ = end_;
    ready_.push_back(std::move(slot));
    cv_.notify_all();
  }
}

}  // namespace duet::data
