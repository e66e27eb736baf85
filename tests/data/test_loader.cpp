#include "duet/data/loader.h"

#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "duet/tensor/parallel.h"

namespace duet::data {
namespace {

// n images of c x h x w whose pixels encode (image, position), labels i % classes.
Dataset synthetic(int64_t n, int64_t c, int64_t h, int64_t w, int classes = 3) {
  Dataset d;
  d.channels = c, d.height = h, d.width = w;
  d.images = Tensor::empty(Shape{n, c, h, w}, DType::u8);
  d.labels = Tensor::empty(Shape{n}, DType::i32);
  uint8_t* px = d.images.data<uint8_t>();
  for (int64_t i = 0; i < n * c * h * w; ++i) px[i] = static_cast<uint8_t>((i * 7 + i / 97) % 256);
  for (int64_t i = 0; i < n; ++i) d.labels.data<int32_t>()[i] = static_cast<int32_t>(i % classes);
  for (int k = 0; k < classes; ++k) d.class_names.push_back(str("c", k));
  return d;
}

LoaderConfig augmented(uint64_t seed) {
  LoaderConfig cfg;
  cfg.batch_size = 16;
  cfg.seed = seed;
  cfg.augment.crop_padding = 2;
  cfg.augment.hflip = true;
  cfg.augment.erase_prob = 0.5f;
  cfg.norm.mean = {0.5f, 0.4f, 0.3f};
  cfg.norm.std = {0.25f, 0.2f, 0.3f};
  return cfg;
}

bool same(const Batch& a, const Batch& b) {
  return a.images.shape() == b.images.shape() && a.images.to_vector() == b.images.to_vector() &&
         std::equal(a.labels.data<int32_t>(), a.labels.data<int32_t>() + a.labels.numel(),
                    b.labels.data<int32_t>());
}

std::vector<Batch> run_epoch(Loader& loader, int64_t epoch, int64_t first = 0) {
  std::vector<Batch> out;
  loader.start_epoch(epoch, first);
  Batch b;
  while (loader.next(b)) out.push_back(b);
  return out;
}

TEST(Loader, SameSeedSameBatchesAnyThreadCountAndPrefetch) {
  const Dataset d = synthetic(70, 3, 9, 7);
  Loader a(d, augmented(5));
  LoaderConfig sync = augmented(5);
  sync.prefetch = 0;
  Loader b(d, sync);
  const int saved = num_threads();
  set_num_threads(1);
  const auto ea = run_epoch(a, 3);
  set_num_threads(2);
  const auto eb = run_epoch(b, 3);
  set_num_threads(saved);
  ASSERT_EQ(ea.size(), 5u);  // 70 / 16 rounded up
  ASSERT_EQ(eb.size(), ea.size());
  for (size_t i = 0; i < ea.size(); ++i) EXPECT_TRUE(same(ea[i], eb[i])) << "batch " << i;
  EXPECT_EQ(ea.back().images.dim(0), 70 - 4 * 16);
  EXPECT_EQ(ea[2].index, 2);
  // A different seed or epoch changes the batches.
  Loader c(d, augmented(6));
  EXPECT_FALSE(same(run_epoch(c, 3)[0], ea[0]));
  EXPECT_FALSE(same(run_epoch(a, 4)[0], ea[0]));
}

TEST(Loader, ResumeEqualsUninterruptedRun) {
  const Dataset d = synthetic(50, 3, 6, 6);
  Loader full(d, augmented(11));
  const auto all = run_epoch(full, 2);
  Loader resumed(d, augmented(11));
  const auto tail = run_epoch(resumed, 2, 3);
  ASSERT_EQ(tail.size(), all.size() - 3);
  for (size_t i = 0; i < tail.size(); ++i) EXPECT_TRUE(same(tail[i], all[i + 3]));
  EXPECT_TRUE(same(resumed.make_batch(2, 1), all[1]));
  // Restarting mid-epoch drops the batches prepared for the old position.
  resumed.start_epoch(2, 0);
  Batch b;
  ASSERT_TRUE(resumed.next(b));
  resumed.start_epoch(2, 2);
  ASSERT_TRUE(resumed.next(b));
  EXPECT_TRUE(same(b, all[2]));
}

TEST(Loader, EpochsPastUntilArePlain) {
  const Dataset d = synthetic(40, 3, 8, 8);
  LoaderConfig until = augmented(3);
  until.augment.epochs = 2;  // epochs 0 and 1 augmented, 2 and later plain
  LoaderConfig always = augmented(3);
  LoaderConfig never = augmented(3);
  never.augment = AugmentConfig{};
  Loader a(d, until), b(d, always), c(d, never);
  for (int64_t epoch : {0, 1}) {
    EXPECT_TRUE(same(a.make_batch(epoch, 1), b.make_batch(epoch, 1))) << epoch;
    EXPECT_FALSE(same(a.make_batch(epoch, 1), c.make_batch(epoch, 1))) << epoch;
  }
  for (int64_t epoch : {2, 5}) {
    EXPECT_TRUE(same(a.make_batch(epoch, 1), c.make_batch(epoch, 1))) << epoch;
    EXPECT_FALSE(same(a.make_batch(epoch, 1), b.make_batch(epoch, 1))) << epoch;
  }
  // The unified head's second view follows the same rule.
  const Batch plain_batch = c.make_batch(2, 0);
  EXPECT_EQ(augment_normalised(plain_batch.images, until.augment, until.norm, 9, 2, 0).to_vector(),
            plain_batch.images.to_vector());
  EXPECT_NE(augment_normalised(plain_batch.images, until.augment, until.norm, 9, 1, 0).to_vector(),
            plain_batch.images.to_vector());
}

TEST(Loader, EpochIsAPermutationAndDropLast) {
  const Dataset d = synthetic(37, 1, 2, 2, 37);
  LoaderConfig cfg;
  cfg.batch_size = 8;
  cfg.seed = 1;
  Loader l(d, cfg);
  std::multiset<int> seen;
  for (const Batch& b : run_epoch(l, 0))
    for (int64_t j = 0; j < b.labels.numel(); ++j) seen.insert(b.labels.data<int32_t>()[j]);
  std::multiset<int> expected;
  for (int i = 0; i < 37; ++i) expected.insert(i);
  EXPECT_EQ(seen, expected);
  EXPECT_NE(l.epoch_order(0), l.epoch_order(1));
  cfg.drop_last = true;
  Loader dl(d, cfg);
  EXPECT_EQ(dl.batches_per_epoch(), 4);
  const auto batches = run_epoch(dl, 0);
  ASSERT_EQ(batches.size(), 4u);
  for (const Batch& b : batches) EXPECT_EQ(b.images.dim(0), 8);
  // No shuffle: dataset order, pixels / 255.
  cfg.shuffle = false, cfg.drop_last = false;
  Loader plain(d, cfg);
  const Batch first = plain.make_batch(0, 0);
  EXPECT_EQ(first.labels.data<int32_t>()[3], 3);
  EXPECT_FLOAT_EQ(first.images.data<float>()[5], d.images.data<uint8_t>()[5] / 255.0f);
}

TEST(Loader, WorkerErrorRethrownOnCaller) {
  const Dataset d = synthetic(40, 3, 4, 4);
  LoaderConfig cfg = augmented(1);
  cfg.prefetch = 3;
  // The hook runs on the background thread; batch 1 fails there.
  cfg.on_batch = [](Batch& b) {
    if (b.index == 1) throw Error("hook failed on batch 1");
    b.images.data<float>()[0] = 42.0f;
  };
  Loader l(d, cfg);
  l.start_epoch(0);
  Batch b;
  ASSERT_TRUE(l.next(b));
  EXPECT_EQ(b.images.data<float>()[0], 42.0f);
  try {
    l.next(b);
    ADD_FAILURE() << "expected the worker's error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "hook failed on batch 1");
  }
  EXPECT_FALSE(l.next(b));  // the epoch ends at a failed batch
  l.start_epoch(0, 2);      // and a restart past it works
  ASSERT_TRUE(l.next(b));
  EXPECT_EQ(b.index, 2);

  EXPECT_THROW(l.start_epoch(0, 99), Error);
  EXPECT_THROW(l.make_batch(0, 3), Error);  // 40 / 16 -> batches 0..2
  Loader fresh(d, augmented(1));
  EXPECT_THROW(fresh.next(b), Error);  // next before start_epoch
  LoaderConfig bad = augmented(1);
  bad.norm.mean = {0.5f};  // 1 channel of stats for 3-channel images
  EXPECT_THROW(Loader(d, bad), Error);
}

TEST(Loader, DestroyWhileBatchesPending) {
  const Dataset d = synthetic(200, 3, 8, 8);
  for (int i = 0; i < 20; ++i) {
    Loader l(d, augmented(static_cast<uint64_t>(i)));
    l.start_epoch(0);
    if (i % 2) {
      Batch b;
      ASSERT_TRUE(l.next(b));
    }
  }  // each destructor must stop and join the worker mid-epoch
}

TEST(Augment, KnownFacts) {
  const int64_t c = 2, h = 5, w = 7, n = c * h * w;
  std::vector<float> img(static_cast<size_t>(n)), out(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) img[static_cast<size_t>(i)] = static_cast<float>(i) + 0.5f;
  // Flip twice = identity; flip once mirrors each row.
  std::vector<float> f = img;
  hflip(f.data(), c, h, w);
  EXPECT_EQ(f[0], img[w - 1]);
  EXPECT_NE(f, img);
  hflip(f.data(), c, h, w);
  EXPECT_EQ(f, img);
  // Crop with padding 0 at full size = identity; padding 2 at the centre too.
  crop_padded(img.data(), out.data(), c, h, w, 0, 0, 0);
  EXPECT_EQ(out, img);
  crop_padded(img.data(), out.data(), c, h, w, 2, 2, 2);
  EXPECT_EQ(out, img);
  // Corner offset: shifted content, zeros where the padding shows.
  crop_padded(img.data(), out.data(), c, h, w, 2, 0, 4);  // source = dest + (-2, +2)
  EXPECT_EQ(out[0], 0.0f);
  EXPECT_EQ(out[static_cast<size_t>(2 * w)], img[2]);
  EXPECT_EQ(out[static_cast<size_t>(2 * w + w - 1)], 0.0f);
  EXPECT_THROW(crop_padded(img.data(), out.data(), c, h, w, 1, 3, 0), Error);
  // Erased region is zero, the rest untouched.
  std::vector<float> e = img;
  erase(e.data(), c, h, w, 1, 2, 3, 4);
  for (int64_t ch = 0; ch < c; ++ch)
    for (int64_t y = 0; y < h; ++y)
      for (int64_t x = 0; x < w; ++x) {
        const size_t i = static_cast<size_t>((ch * h + y) * w + x);
        const bool inside = y >= 1 && y < 4 && x >= 2 && x < 6;
        EXPECT_EQ(e[i], inside ? 0.0f : img[i]);
      }
}

TEST(Augment, DrawsAreKeyedAndErasedSamplesAreZero) {
  AugmentConfig cfg;
  cfg.crop_padding = 4;
  cfg.hflip = true;
  cfg.erase_prob = 1.0f;
  int flips = 0, erased = 0;
  for (uint64_t i = 0; i < 200; ++i) {
    const AugmentDraw a = draw_augment(cfg, 32, 32, 9, 1, i);
    const AugmentDraw b = draw_augment(cfg, 32, 32, 9, 1, i);
    EXPECT_EQ(a.crop_top, b.crop_top);
    EXPECT_EQ(a.erase_left, b.erase_left);
    EXPECT_GE(a.crop_top, 0);
    EXPECT_LE(a.crop_left, 8);
    flips += a.flip;
    if (a.erase) {
      ++erased;
      EXPECT_GE(a.erase_top, 0);
      EXPECT_LE(a.erase_top + a.erase_h, 32);
      EXPECT_LE(a.erase_left + a.erase_w, 32);
    }
  }
  EXPECT_GT(flips, 60);
  EXPECT_LT(flips, 140);
  EXPECT_GT(erased, 150);
  // A full sample: erased pixels are exactly 0 after normalisation.
  const Dataset d = synthetic(1, 3, 32, 32);
  AugmentDraw draw = draw_augment(cfg, 32, 32, 9, 1, 0);
  draw.erase = true, draw.erase_top = 3, draw.erase_left = 4, draw.erase_h = 5, draw.erase_w = 6;
  std::vector<float> out(3 * 32 * 32), scratch(3 * 32 * 32);
  NormStats st{{0.1f, 0.2f, 0.3f}, {0.5f, 0.5f, 0.5f}};
  make_sample(d.image(0), out.data(), scratch.data(), 3, 32, 32, cfg, st, draw);
  for (int64_t ch = 0; ch < 3; ++ch)
    for (int64_t y = 3; y < 8; ++y)
      for (int64_t x = 4; x < 10; ++x)
        EXPECT_EQ(out[static_cast<size_t>((ch * 32 + y) * 32 + x)], 0.0f);
}

TEST(Augment, NormStatsOnKnownSet) {
  // Two 1 x 1 x 2 RGB images: channel 0 values {0, 255, 255, 0} -> mean 0.5, std 0.5;
  // channel 1 all 51 -> mean 0.2, std 0; channel 2 {0, 0, 0, 255} -> mean 0.25, std sqrt(3)/4.
  Dataset d;
  d.channels = 3, d.height = 1, d.width = 2;
  d.images = Tensor::empty(Shape{2, 3, 1, 2}, DType::u8);
  const uint8_t px[] = {0, 255, 51, 51, 0, 0, 255, 0, 51, 51, 0, 255};
  std::copy(px, px + 12, d.images.data<uint8_t>());
  d.labels = Tensor::from_vector(std::vector<int32_t>{0, 0}, Shape{2});
  d.class_names = {"x"};
  const NormStats st = compute_norm_stats(d);
  ASSERT_EQ(st.mean.size(), 3u);
  EXPECT_NEAR(st.mean[0], 0.5, 1e-6);
  EXPECT_NEAR(st.std[0], 0.5, 1e-6);
  EXPECT_NEAR(st.mean[1], 0.2, 1e-6);
  EXPECT_NEAR(st.std[1], 0.0, 1e-6);
  EXPECT_NEAR(st.mean[2], 0.25, 1e-6);
  EXPECT_NEAR(st.std[2], std::sqrt(3.0) / 4.0, 1e-6);
}

}  // namespace
}  // namespace duet::data

namespace duet::data {
namespace {

// The unified trainer's second view of a finished batch equals what the loader would have made
// from the raw pixels with the same draws: augment_normalised is make_sample after un-normalising.
TEST(Augment, SecondViewOfANormalisedBatchEqualsMakeSample) {
  const Dataset d = synthetic(5, 3, 12, 10);
  LoaderConfig plain;
  plain.batch_size = 5;
  plain.shuffle = false;
  plain.prefetch = 0;
  plain.norm = {{0.5f, 0.4f, 0.3f}, {0.25f, 0.2f, 0.3f}};
  Loader loader(d, plain);
  const Batch b = loader.make_batch(0, 0);

  AugmentConfig cfg;
  cfg.crop_padding = 3;
  cfg.hflip = true;
  cfg.erase_prob = 0.5f;
  const uint64_t seed = 17, epoch = 2, first = 40;
  const Tensor view = augment_normalised(b.images, cfg, plain.norm, seed, epoch, first);
  ASSERT_EQ(view.shape(), b.images.shape());
  const int64_t size = 3 * 12 * 10;
  std::vector<float> want(static_cast<size_t>(size)), scratch(static_cast<size_t>(size));
  int changed = 0;
  for (int64_t i = 0; i < 5; ++i) {
    const AugmentDraw draw = draw_augment(cfg, 12, 10, seed, epoch, first + i);
    make_sample(d.image(i), want.data(), scratch.data(), 3, 12, 10, cfg, plain.norm, draw);
    const float* got = view.data<float>() + i * size;
    const float* before = b.images.data<float>() + i * size;
    for (int64_t p = 0; p < size; ++p) {
      EXPECT_NEAR(got[p], want[static_cast<size_t>(p)], 1e-5f) << "image " << i << " pixel " << p;
      changed += got[p] != before[p];
    }
  }
  EXPECT_GT(changed, 0);  // the view is not the batch itself
  // No augmentation: the view is the batch (up to the round trip through pixel / 255).
  const Tensor same_view = augment_normalised(b.images, AugmentConfig{}, plain.norm, 1, 0, 0);
  const auto a = same_view.to_vector(), o = b.images.to_vector();
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], o[i], 1e-5f);
}

}  // namespace
}  // namespace duet::data
