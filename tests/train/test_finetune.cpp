// Fine-tuning (`--init CHECKPOINT`, what `duet prune` runs after cutting channels): the run starts
// from the checkpoint's network, weights and normalisation; the data must match it; the file is
// recorded by SHA-256 and a changed file refuses --resume.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>

#include "../harness/error_capture.h"
#include "duet/models/checkpoint.h"
#include "duet/models/registry.h"
#include "duet/tensor/error.h"
#include "duet/tensor/rng.h"
#include "duet/train/classify_step.h"
#include "run_fixtures.h"

namespace duet::train {
namespace {

using testing::quiet;
using testing::RunDir;

// A narrow, explicitly-sized ResNet-8 checkpoint for Fashion-MNIST with its own normalisation.
nlohmann::json write_start(const std::string& path, int num_classes = 10) {
  nlohmann::json c = models::preset_config("resnet20");
  c["depth"] = 8;
  c["width"] = 8;
  c["stage_widths"] = {6, 12, 20};
  c["block_widths"] = {5, 9, 17};
  c["num_classes"] = num_classes;
  c["preprocess"] = {{"mean", {0.25}}, {"std", {0.5}}};
  Generator gen(11);
  auto m = models::build_model(c, gen);
  models::save_model(path, *m, c);
  return c;
}

ClassifyRecipe finetune_recipe(const std::string& init) {
  ClassifyRecipe r;
  r.init = init;
  r.limit = 256;
  r.epochs = 1;
  r.batch = 64;
  r.test_limit = 100;
  r.seed = 3;
  return r;
}

// A usage error (exit code 2), not a runtime one or none.
bool usage_error(const std::function<void()>& f) {
  return duet::test::exit_code(f) == 2;
}

TEST(FineTune, StartsFromTheCheckpoint) {
  REQUIRE_FASHION_MNIST();
  RunDir dir("start");
  std::filesystem::create_directories(dir.str());
  const std::string start = dir.file("start.safetensors");
  const nlohmann::json config = write_start(start);
  ClassifySetup s = make_classify_setup(finetune_recipe(start), false);
  EXPECT_EQ(s.config.at("stage_widths"), config.at("stage_widths"));
  ASSERT_EQ(s.norm.mean.size(), 1u);
  EXPECT_FLOAT_EQ(s.norm.mean[0], 0.25f);  // the checkpoint's, not the data's (about 0.29)
  EXPECT_FLOAT_EQ(s.norm.std[0], 0.5f);
  const auto want = models::load_model(start).model->state_dict();
  for (auto& [name, t] : s.model->state_dict()) {
    ASSERT_TRUE(want.count(name)) << name;
    if (t.dtype() != DType::f32) continue;
    EXPECT_EQ(t.to_vector(), want.at(name).to_vector()) << name;
  }
}

TEST(FineTune, RunRecordsTheFileAndResumeRefusesAChangedOne) {
  REQUIRE_FASHION_MNIST();
  RunDir dir("run");
  std::filesystem::create_directories(dir.str());
  const std::string start = dir.file("start.safetensors");
  write_start(start);
  ClassifyRecipe r = finetune_recipe(start);
  r.epochs = 2;
  TrainRunOptions o = quiet(dir.file("out"));
  o.stop_after = 1;
  const TrainSummary first = train_classifier(r, o);
  EXPECT_EQ(first.epochs_done, 1);
  const ClassifyRecipe saved = read_checkpoint_recipe(dir.file("out/last.safetensors"));
  EXPECT_EQ(saved.init, start);
  EXPECT_EQ(saved.init_sha256.size(), 64u);
  EXPECT_EQ(saved.init_bytes, int64_t(std::filesystem::file_size(start)));
  // The trained file keeps the checkpoint's explicit widths.
  EXPECT_EQ(models::load_model(dir.file("out/model.safetensors")).config.at("block_widths"),
            nlohmann::json({5, 9, 17}));

  {  // the same network, but no longer the same file
    std::ofstream append(start, std::ios::app | std::ios::binary);
    append << ' ';
  }
  TrainRunOptions again = quiet(dir.file("out"));
  again.resume = true;
  EXPECT_TRUE(usage_error([&] { train_classifier(r, again); }));
}

TEST(FineTune, UsageErrors) {
  REQUIRE_FASHION_MNIST();
  RunDir dir("errors");
  std::filesystem::create_directories(dir.str());
  const std::string start = dir.file("five.safetensors");
  write_start(start, 5);  // Fashion-MNIST has 10 classes
  EXPECT_TRUE(usage_error([&] { make_classify_setup(finetune_recipe(start), false); }));
  ClassifyRecipe r = finetune_recipe(start);
  r.model_overrides = {{"width", 4}};
  EXPECT_TRUE(usage_error([&] { r.validate(); }));
  // A generator is not a starting point for a classifier.
  nlohmann::json g = models::preset_config("unet-xs");
  g["channels"] = {8, 16, 32};
  Generator gen(0);
  auto unet = models::build_model(g, gen);
  const std::string gen_path = dir.file("gen.safetensors");
  models::save_model(gen_path, *unet, g);
  EXPECT_TRUE(usage_error([&] { make_classify_setup(finetune_recipe(gen_path), false); }));
}

}  // namespace
}  // namespace duet::train
