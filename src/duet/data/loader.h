// Batches for training: f32 images [B, C, H, W] (normalised, augmented) and int32 labels [B],
// shuffled per epoch from a seed. A batch is a pure function of (seed, epoch, batch index), so a
// resumed run sees exactly the batches an uninterrupted one would. A background thread prepares
// the next batches while the caller trains.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "duet/data/augment.h"
#include "duet/data/dataset.h"

namespace duet::data {

struct Batch {
  Tensor images;  // f32 [B, C, H, W]
  Tensor labels;  // i32 [B]
  // Optional f32 [B, C, H, W]: noise paired with each image (a reflow's training pairs,
  // data/pair_loader.h); undefined when the trainer draws its own.
  Tensor noise;
  // Optional f32 [B, C, H, W]: a second, independently augmented view of `images` for a
  // classification loss next to a generative one (a unified run); undefined otherwise.
  Tensor classify_images;
  int64_t epoch = 0, index = 0;
};

// What a training loop iterates: the batches of an epoch, restartable at any batch so that a
// resumed run sees what an uninterrupted one would.
class BatchSource {
 public:
  virtual ~BatchSource() = default;
  virtual int64_t batches_per_epoch() const = 0;
  // Begins (or restarts) `epoch` at batch `first_batch`: the resume point of a checkpoint.
  virtual void start_epoch(int64_t epoch, int64_t first_batch) = 0;
  void start_epoch(int64_t epoch) { start_epoch(epoch, 0); }
  // The next batch of the current epoch; false once the epoch is exhausted.
  virtual bool next(Batch& out) = 0;
};

struct LoaderConfig {
  int64_t batch_size = 128;
  bool shuffle = true;     // off: dataset order every epoch
  bool drop_last = false;  // drop a final batch smaller than batch_size
  uint64_t seed = 0;
  AugmentConfig augment;  // default: no augmentation
  NormStats norm;         // empty: pixels / 255 without normalisation
  int prefetch = 2;       // batches prepared ahead on a background thread; 0: on the caller
  // Optional extra step on each finished batch (mixup, say), run on the preparing thread. It must
  // depend only on the batch (its epoch and index included) to keep runs resumable; what it
  // throws reaches the caller of next().
  std::function<void(Batch&)> on_batch;
};

class Loader final : public BatchSource {
 public:
  // Keeps its own reference to the data set's storage. Throws on a bad config.
  Loader(Dataset data, LoaderConfig config);
  ~Loader();  // stops and joins the background thread
  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;

  int64_t batches_per_epoch() const override;
  const Dataset& dataset() const { return data_; }
  const LoaderConfig& config() const { return cfg_; }

  // Begins (or restarts) `epoch` at batch `first_batch`: the resume point of a checkpoint.
  void start_epoch(int64_t epoch, int64_t first_batch) override;
  using BatchSource::start_epoch;
  // The next batch of the current epoch; false once the epoch is exhausted. Rethrows, on the
  // caller's thread, any error the background thread hit while preparing this batch.
  bool next(Batch& out) override;

  // Batch `index` of `epoch`, built on the calling thread: what next() yields at that position.
  Batch make_batch(int64_t epoch, int64_t index) const;
  // Dataset indices in the order epoch `epoch` visits them.
  std::vector<int64_t> epoch_order(int64_t epoch) const;

 private:
  struct Slot {
    int64_t index = 0;
    Batch batch;
    std::exception_ptr error;
  };
  Batch build(const std::vector<int64_t>& order, int64_t epoch, int64_t index, bool parallel) const;
  void worker_loop();

  Dataset data_;
  LoaderConfig cfg_;

  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  bool active_ = false;      // an epoch is being iterated
  uint64_t generation_ = 0;  // bumped by start_epoch so stale work is dropped
  int64_t epoch_ = 0, next_produce_ = 0, next_consume_ = 0, end_ = 0;
  std::shared_ptr<const std::vector<int64_t>> order_;
  std::deque<Slot> ready_;
  std::thread worker_;
};

}  // namespace duet::data
