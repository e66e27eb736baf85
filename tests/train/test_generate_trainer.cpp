// The generation trainer end to end on a small slice of Fashion-MNIST with a narrow UNet: the
// flow-matching loss falls below a fixed bound, sample grids are written, resume is bit-identical,
// and recipes for the wrong architecture or bad values are refused.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "duet/data/image.h"
#include "duet/data/text.h"
#include "duet/tensor/error.h"
#include "duet/train/generate_trainer.h"
#include "run_fixtures.h"

namespace duet::train {
namespace {

using testing::quiet;
using testing::RunDir;
using testing::tiny_generate_recipe;

std::vector<double> logged_losses(const std::string& path) {
  std::ifstream in(path);
  std::vector<double> out;
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) out.push_back(nlohmann::json::parse(line).at("loss").get<double>());
  return out;
}

}  // namespace

TEST(GenerateTrainer, FlowLossFallsAndGridsAreWritten) {
  REQUIRE_FASHION_MNIST();
  RunDir dir("run");
  const GenerateSummary s = train_generator(tiny_generate_recipe(4), quiet(dir.str()));
  EXPECT_TRUE(s.finished);
  const auto losses = logged_losses(dir.file("train_log.jsonl"));
  ASSERT_EQ(losses.size(), 4u);
  // The untrained network predicts zero velocity: loss = E|eps - x0|^2 = 1 + E[x0^2] ~ 1.5 on
  // Fashion-MNIST in [-1, 1]; 32 steps bring it under 0.95 (0.89 measured with 2 threads).
  EXPECT_GT(losses.front(), 1.2);
  EXPECT_LT(losses.back(), 0.95);
  EXPECT_LT(losses.back(), 0.7 * losses.front());
  // The final epoch always leaves a grid: 10 class rows of 8, 28-pixel images with 2-pixel gaps.
  const data::Image grid = data::read_image(dir.file("samples/epoch-4.png"));
  // The class names label the rows in a left margin as wide as the longest name.
  EXPECT_EQ(grid.width, 8 * 30 + 2 + data::text_width("T-shirt/top") + 4);
  EXPECT_EQ(grid.height, 10 * 30 + 2);
  EXPECT_TRUE(std::filesystem::exists(dir.file("metrics.json")));
}

TEST(GenerateTrainer, ResumeIsBitIdentical) {
  REQUIRE_FASHION_MNIST();
  RunDir straight("straight"), resumed("resumed");
  GenerateRecipe r = tiny_generate_recipe(2);
  r.limit = 96;
  r.augment = "flip";
  train_generator(r, quiet(straight.str()));
  TrainRunOptions first = quiet(resumed.str());
  first.stop_after = 1;
  EXPECT_FALSE(train_generator(r, first).finished);
  TrainRunOptions second = quiet(resumed.str());
  second.resume = true;
  GenerateRecipe again = r;
  again.seed = -1;  // taken from the checkpoint
  const GenerateSummary s2 = train_generator(again, second);
  EXPECT_TRUE(s2.finished);
  EXPECT_EQ(s2.seed, 5u);
  EXPECT_GT(testing::expect_same_tensors(straight.file("last.safetensors"),
                                         resumed.file("last.safetensors")),
            50u);
  testing::expect_same_tensors(straight.file("model.safetensors"),
                               resumed.file("model.safetensors"));
}

TEST(GenerateTrainer, RecipeErrors) {
  GenerateRecipe r;
  r.arch = "resnet20";
  EXPECT_THROW(r.validate(), Error);
  r = GenerateRecipe{};
  r.objective = "gan";
  EXPECT_THROW(r.validate(), Error);
  r = GenerateRecipe{};
  r.cfg_dropout = 1.0;
  EXPECT_THROW(r.validate(), Error);
  r = GenerateRecipe{};
  r.epochs = 3;
  r.objective = "ddpm-v";
  const GenerateRecipe back = GenerateRecipe::from_json(r.to_json());
  EXPECT_EQ(back.to_json(), r.to_json());
  EXPECT_THROW(GenerateRecipe::from_json({{"epochs", "many"}}), Error);
}

}  // namespace duet::train
