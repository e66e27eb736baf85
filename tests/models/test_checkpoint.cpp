// Checkpoints: a saved model reloads bit-identically through its stored config, and bad files
// are rejected with the file named.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "duet/autograd/autograd.h"
#include "duet/models/checkpoint.h"
#include "duet/models/registry.h"
#include "duet/ops/activation.h"

using namespace duet;

TEST(Checkpoint, RoundTripGivesIdenticalLogits) {
  const auto dir = std::filesystem::temp_directory_path() / "duet_test_checkpoint";
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "resnet20.safetensors").string();
  Generator gen(11);
  const auto config = models::preset_config("resnet20");
  auto model = models::build_model(config, gen);
  model->eval();
  models::save_model(path, *model, config);
  auto loaded = models::load_model(path);
  loaded.model->eval();
  EXPECT_EQ(loaded.config, config);
  autograd::NoGradGuard no_grad;
  Generator data(5);
  const Tensor x = Tensor::normal({2, 1, 28, 28}, data);
  EXPECT_EQ(model->forward(x).to_vector(), loaded.model->forward(x).to_vector());
  std::filesystem::remove_all(dir);
}

TEST(Checkpoint, RejectsFilesWithoutConfig) {
  const auto path =
      (std::filesystem::temp_directory_path() / "duet_not_a_model.safetensors").string();
  {
    std::ofstream f(path, std::ios::binary);
    const std::string header = "{}      ";
    const uint64_t n = header.size();
    f.write(reinterpret_cast<const char*>(&n), 8);
    f << header;
  }
  try {
    models::load_model(path);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("duet.config"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
  std::filesystem::remove(path);
}
