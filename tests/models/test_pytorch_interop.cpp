// ResNet-20 checkpoints cross between PyTorch and duet by state_dict name, both ways
// (tests/golden/resnet20_interop.py): PyTorch's eval-mode logits are reproduced by duet, and a
// duet checkpoint reproduces duet's logits when PyTorch loads it.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>

#include "../harness/tensor_compare.h"
#include "duet/autograd/autograd.h"
#include "duet/io/safetensors.h"
#include "duet/io/tensor_io.h"
#include "duet/models/registry.h"

using namespace duet;

namespace {

using duet::test::max_abs_diff;

const std::string kGolden =
    std::string(DUET_SOURCE_DIR) + "/tests/golden/resnet20_pytorch.safetensors";

bool have_torch() {
  return std::system("/usr/bin/python3 -c 'import torch' > /dev/null 2>&1") == 0;
}

}  // namespace

TEST(PyTorchInterop, PyTorchCheckpointGivesPyTorchLogits) {
  const auto file = io::SafetensorsFile::load(kGolden);
  const auto config = nlohmann::json::parse(file.metadata().at("duet.config"));
  auto tensors = io::tensors_from_file(file);
  const Tensor input = tensors.at("input"), logits = tensors.at("logits");
  tensors.erase("input");
  tensors.erase("logits");
  Generator gen(0);
  auto model = models::build_model(config, gen);
  model->load_state_dict(tensors);
  model->eval();
  autograd::NoGradGuard no_grad;
  EXPECT_LE(max_abs_diff(model->forward(input), logits), 1e-4);
}

TEST(PyTorchInterop, DuetCheckpointGivesDuetLogitsInPyTorch) {
  if (!have_torch()) GTEST_SKIP() << "/usr/bin/python3 with torch is not installed";
  Generator gen(21);
  auto model = models::build_model(models::preset_config("resnet20"), gen);
  // A few training-mode forwards give the BatchNorms non-trivial running statistics.
  Generator data(3);
  for (int i = 0; i < 3; ++i) model->forward(Tensor::normal({8, 1, 28, 28}, data, 0.5f, 2.0f));
  model->eval();
  const Tensor input = Tensor::normal({4, 1, 28, 28}, data);
  Tensor logits;
  {
    autograd::NoGradGuard no_grad;
    logits = model->forward(input);
  }
  std::vector<std::pair<std::string, Tensor>> entries;
  for (auto& [name, t] : model->state_dict()) entries.emplace_back(name, t);
  entries.emplace_back("input", input);
  entries.emplace_back("logits", logits);
  const auto path = std::filesystem::temp_directory_path() / "duet_resnet20_for_torch.safetensors";
  io::save_tensors(path.string(), entries);
  const std::string cmd = "/usr/bin/python3 " + std::string(DUET_SOURCE_DIR) +
                          "/tests/golden/resnet20_interop.py check " + path.string();
  EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
  std::filesystem::remove(path);
}
