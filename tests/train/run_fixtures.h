// Shared by the trainer tests: a fresh run folder per test, quiet run options, the Fashion-MNIST
// guard, and a byte-for-byte comparison of two checkpoints.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <string>

#include "duet/data/dataset.h"
#include "duet/io/safetensors.h"
#include "duet/train/generate_trainer.h"
#include "duet/train/trainer.h"

namespace duet::train::testing {

class RunDir {
 public:
  explicit RunDir(const std::string& tag) {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = std::filesystem::temp_directory_path() /
            ("duet_trainer_" + std::to_string(::getpid()) + "_" + info->name() + "_" + tag);
    std::filesystem::remove_all(path_);
  }
  ~RunDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  RunDir(const RunDir&) = delete;
  RunDir& operator=(const RunDir&) = delete;
  std::string str() const { return path_.string(); }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

// Run options that print nothing (tests keep their output for failures).
inline TrainRunOptions quiet(const std::string& dir) {
  TrainRunOptions o;
  o.out_dir = dir;
  o.progress = false;
  return o;
}

// A generation recipe that trains in seconds: unet-xs narrowed to 8/16 channels (about 70k
// parameters) on the first 256 images, no warm-up, a short EMA, no grids until the end.
inline GenerateRecipe tiny_generate_recipe(int64_t epochs) {
  GenerateRecipe r;
  r.model_overrides = {{"channels", {8, 16}}};
  r.limit = 256;
  r.epochs = epochs;
  r.batch = 32;
  r.lr = 3e-3;
  r.warmup_epochs = 0.0;
  r.ema_decay = 0.9;
  r.sample_every = 0;
  r.sample_steps = 1;
  r.seed = 5;
  return r;
}

inline bool have_fashion_mnist() {
  return std::filesystem::exists(data::fashion_mnist_dir() + "/train-images-idx3-ubyte.gz") ||
         std::filesystem::exists(data::fashion_mnist_dir() + "/train-images-idx3-ubyte");
}

#define REQUIRE_FASHION_MNIST()                                                   \
  do {                                                                            \
    if (!::duet::train::testing::have_fashion_mnist())                            \
      GTEST_SKIP() << "Fashion-MNIST not found in " << data::fashion_mnist_dir(); \
  } while (0)

// Every tensor of `a` equals the one of the same name in `b`, byte for byte (and the name sets
// are equal); returns how many tensors were compared.
inline size_t expect_same_tensors(const std::string& a, const std::string& b) {
  const auto fa = io::SafetensorsFile::load(a), fb = io::SafetensorsFile::load(b);
  EXPECT_EQ(fa.entries().size(), fb.entries().size());
  size_t compared = 0;
  for (const auto& e : fa.entries()) {
    const auto* o = fb.find(e.name);
    if (o == nullptr) {
      ADD_FAILURE() << e.name << " missing from " << b;
      continue;
    }
    const auto x = fa.bytes(e), y = fb.bytes(*o);
    EXPECT_EQ(x.size(), y.size()) << e.name;
    if (x.size() == y.size()) {
      EXPECT_EQ(std::memcmp(x.data(), y.data(), x.size()), 0) << e.name << " differs";
    }
    ++compared;
  }
  return compared;
}

}  // namespace duet::train::testing
