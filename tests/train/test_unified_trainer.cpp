// Joint training of the unified model (`duet train --task unified`) end to end on a slice of
// Fashion-MNIST with a narrow network: the classifier-only baseline (generate weight 0) learns far
// above chance and draws no grids, a joint run logs both losses and resumes bit-identically (its
// augmented classification views included), and bad recipes are refused.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "duet/tensor/error.h"
#include "duet/train/generate_trainer.h"
#include "run_fixtures.h"

namespace duet::train {
namespace {

using testing::quiet;
using testing::RunDir;

// The tiny generation recipe as a unified run, its head scored on 1,000 test images.
GenerateRecipe tiny_unified(int64_t epochs, int64_t limit) {
  GenerateRecipe r = testing::tiny_generate_recipe(epochs);
  r.task = "unified";
  r.arch = "unified-xs";
  r.limit = limit;
  r.seed = 7;
  r.test_limit = 1000;
  return r;
}

std::vector<nlohmann::json> log_lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<nlohmann::json> out;
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) out.push_back(nlohmann::json::parse(line));
  return out;
}

}  // namespace

TEST(UnifiedTrainer, ClassifierOnlyBaselineLearns) {
  REQUIRE_FASHION_MNIST();
  RunDir dir("cls");
  GenerateRecipe r = tiny_unified(2, 1024);
  r.model_overrides = nlohmann::json::object();  // unified-xs itself: its encoder is cheap
  r.generate_weight = 0.0;
  r.ema_decay = 0.0;
  r.batch = 16;
  r.lr = 1e-3;
  const GenerateSummary s = train_generator(r, quiet(dir.str()));
  ASSERT_TRUE(s.finished);
  const auto log = log_lines(dir.file("train_log.jsonl"));
  ASSERT_EQ(log.size(), 2u);
  for (const auto& l : log) EXPECT_EQ(l.at("generate_loss").get<double>(), 0.0);
  // Cross-entropy starts near ln 10 = 2.30 and falls; 128 steps on 1,024 images reach four times
  // the 10 % of chance on the first 1,000 test images (49.1 % measured with 2 threads).
  EXPECT_GT(log.front().at("classify_loss").get<double>(), 1.0);
  EXPECT_LT(log.back().at("classify_loss").get<double>(),
            0.8 * log.front().at("classify_loss").get<double>());
  EXPECT_GT(s.test_accuracy, 0.40) << log.back().dump();
  EXPECT_DOUBLE_EQ(log.back().at("test_acc").get<double>(), s.test_accuracy);
  // A classifier-only run draws no sample grids.
  EXPECT_FALSE(std::filesystem::exists(dir.file("samples")));
  std::ifstream metrics(dir.file("metrics.json"));
  EXPECT_DOUBLE_EQ(nlohmann::json::parse(metrics).at("test_acc").get<double>(), s.test_accuracy);
}

TEST(UnifiedTrainer, JointRunLogsBothLossesAndResumesBitIdentically) {
  REQUIRE_FASHION_MNIST();
  RunDir straight("straight"), resumed("resumed");
  const GenerateRecipe r = tiny_unified(2, 96);
  train_generator(r, quiet(straight.str()));
  const auto log = log_lines(straight.file("train_log.jsonl"));
  ASSERT_EQ(log.size(), 2u);
  for (const auto& l : log) {
    // The untrained UNet predicts zero velocity (MSE about 1.5); the head starts near ln 10.
    EXPECT_GT(l.at("generate_loss").get<double>(), 0.3);
    EXPECT_GT(l.at("classify_loss").get<double>(), 0.3);
    EXPECT_NEAR(l.at("loss").get<double>(),
                l.at("generate_loss").get<double>() + l.at("classify_loss").get<double>(), 1e-4);
  }
  TrainRunOptions first = quiet(resumed.str());
  first.stop_after = 1;
  EXPECT_FALSE(train_generator(r, first).finished);
  TrainRunOptions second = quiet(resumed.str());
  second.resume = true;
  EXPECT_TRUE(train_generator(r, second).finished);
  EXPECT_GT(testing::expect_same_tensors(straight.file("last.safetensors"),
                                         resumed.file("last.safetensors")),
            50u);
  GenerateRecipe other = r;
  other.task = "generate";
  other.arch = "unet-xs";
  second.out_dir = resumed.str();
  EXPECT_THROW(train_generator(other, second), Error);  // a unified run resumes as unified only
}

TEST(UnifiedTrainer, RecipeErrors) {
  GenerateRecipe r = tiny_unified(1, 0);
  r.arch = "unet-xs";  // not unified
  EXPECT_THROW(r.validate(), Error);
  r = tiny_unified(1, 0);
  r.task = "generate";  // a unified arch needs --task unified
  EXPECT_THROW(r.validate(), Error);
  r = tiny_unified(1, 0);
  r.generate_weight = 0.0;
  r.classify_weight = 0.0;
  EXPECT_THROW(r.validate(), Error);
  r = tiny_unified(1, 0);
  r.classify_weight = -1.0;
  EXPECT_THROW(r.validate(), Error);
  r = tiny_unified(1, 0);
  r.classify_augment = "rotate";
  EXPECT_THROW(r.validate(), Error);
  r = tiny_unified(1, 0);
  r.reflow_pairs = "pairs.safetensors";
  EXPECT_THROW(r.validate(), Error);
  r = tiny_unified(1, 0);
  r.task = "dream";
  EXPECT_THROW(r.validate(), Error);
  // The unified fields round-trip; a plain generation recipe does not carry them.
  r = tiny_unified(1, 0);
  r.classify_weight = 0.25;
  r.classify_augment = "flip";
  EXPECT_EQ(GenerateRecipe::from_json(r.to_json()).to_json(), r.to_json());
  EXPECT_FALSE(GenerateRecipe{}.to_json().contains("classify_weight"));
}

}  // namespace duet::train
