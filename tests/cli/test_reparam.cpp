// `duet reparam` end to end on a tiny train-form RepVGG made here (with non-trivial BatchNorm
// statistics, so every branch matters), its errors (not a RepVGG, already deployed), the deploy
// checkpoint reloading with the same logits, and `duet distill`'s usage errors.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <utility>

#include <gtest/gtest.h>

#include "cli_run.h"
#include "duet/autograd/autograd.h"
#include "duet/models/checkpoint.h"
#include "duet/models/registry.h"
#include "duet/models/repvgg.h"
#include "duet/tensor/rng.h"

namespace duet {
namespace {

namespace fs = std::filesystem;
using cli_test::slurp;
const std::string kDuet = std::string(DUET_BINARY_DIR) + "/duet";

#define REQUIRE_DUET()                                             \
  do {                                                             \
    if (!fs::exists(kDuet)) GTEST_SKIP() << kDuet << " not built"; \
  } while (0)

struct Outcome {
  int code = -1;
  std::string out, err;
};

class TempDir {
 public:
  TempDir() : dir_(fs::temp_directory_path() / ("duet_reparam_" + std::to_string(::getpid()))) {
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::string file(const std::string& name) const { return (dir_ / name).string(); }

 private:
  fs::path dir_;
};

Outcome run_duet(const TempDir& tmp, const std::string& args) {
  const std::string out = tmp.file("stdout.txt"), err = tmp.file("stderr.txt");
  const int status = std::system((kDuet + " " + args + " >" + out + " 2>" + err).c_str());
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, slurp(out), slurp(err)};
}

// A small RepVGG in the training form with random BatchNorm affine parameters and running
// statistics (fresh BNs are identities, which would hide a wrong fold).
nlohmann::json tiny_repvgg_config() {
  return models::RepVGGConfig{0.25, 0.25, {1, 1, 2, 1, 1}, 1, 10, 28, false}.to_json();
}

std::shared_ptr<nn::Module> tiny_repvgg(uint64_t seed) {
  Generator gen(seed);
  auto model = models::build_model(tiny_repvgg_config(), gen);
  autograd::NoGradGuard no_grad;
  for (auto& [name, t] : model->named_parameters())
    if (name.find("bn.") != std::string::npos || name.find("rbr_identity.") != std::string::npos)
      t->copy_from(Tensor::uniform(t->shape(), gen, name.ends_with("weight") ? 0.5f : -0.3f,
                                   name.ends_with("weight") ? 1.5f : 0.3f));
  for (auto& [name, t] : model->named_buffers()) {
    if (name.ends_with("running_mean")) t->copy_from(Tensor::uniform(t->shape(), gen, -0.2f, 0.2f));
    if (name.ends_with("running_var")) t->copy_from(Tensor::uniform(t->shape(), gen, 0.5f, 2.0f));
  }
  model->eval();
  return model;
}

std::vector<float> logits(nn::Module& m, const Tensor& x) {
  autograd::NoGradGuard no_grad;
  m.eval();
  return m.forward(x).to_vector();
}

double max_diff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  double d = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i)
    d = std::max(d, std::fabs(double(a[i]) - double(b[i])));
  return d;
}

TEST(Reparam, DeployCheckpointReloadsWithTheSameLogits) {
  TempDir tmp;
  auto model = tiny_repvgg(3);
  auto& train_form = dynamic_cast<models::RepVGG&>(*model);
  auto deploy = models::reparameterize_repvgg(train_form);
  nlohmann::json config = tiny_repvgg_config();
  config["deploy"] = true;
  models::save_model(tmp.file("deploy.safetensors"), *deploy, config);
  const auto loaded = models::load_model(tmp.file("deploy.safetensors"));
  EXPECT_TRUE(loaded.config.at("deploy").get<bool>());
  auto* reloaded = dynamic_cast<models::RepVGG*>(loaded.model.get());
  ASSERT_NE(reloaded, nullptr);
  EXPECT_TRUE(reloaded->config().deploy);
  EXPECT_EQ(reloaded->blocks().front()->rbr_dense, nullptr);

  Generator gen(11);
  const Tensor x = Tensor::normal({8, 1, 28, 28}, gen);
  const auto want = logits(train_form, x);
  // Same logits as the in-memory deploy model bit for bit, and as the train form within 1e-4.
  EXPECT_EQ(max_diff(logits(*deploy, x), logits(*reloaded, x)), 0.0);
  EXPECT_LE(max_diff(want, logits(*reloaded, x)), 1e-4);
  double scale = 0;
  for (float v : want) scale = std::max(scale, double(std::fabs(v)));
  EXPECT_GT(scale, 1e-2);  // the check compares real signals, not two zeros
}

TEST(Reparam, CommandWritesADeployCheckpointOthersLoad) {
  REQUIRE_DUET();
  TempDir tmp;
  const std::string in = tmp.file("train.safetensors"), out = tmp.file("deploy.safetensors");
  auto model = tiny_repvgg(5);
  models::save_model(in, *model, tiny_repvgg_config());

  Outcome r = run_duet(tmp, "-t 2 reparam -m " + in + " -o " + out + " --bench quick --batch 2");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("parameters"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("MACs per image"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("file size"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("logits check: max |train - deploy|"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("deploy/train throughput"), std::string::npos) << r.out;

  // The written file is a deploy-form RepVGG with the train form's logits.
  const auto loaded = models::load_model(out);
  EXPECT_TRUE(loaded.config.at("deploy").get<bool>());
  Generator gen(2);
  const Tensor x = Tensor::normal({4, 1, 28, 28}, gen);
  EXPECT_LE(max_diff(logits(*model, x), logits(*loaded.model, x)), 1e-4);
  EXPECT_LT(loaded.model->parameter_count(), model->parameter_count());

  r = run_duet(tmp, "info -m " + out);
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("\"deploy\":true"), std::string::npos) << r.out;

  // Already deployed: nothing to merge.
  r = run_duet(tmp, "reparam -m " + out + " -o " + tmp.file("again.safetensors") + " --bench none");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("already in the deploy form"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(tmp.file("again.safetensors")));
}

TEST(Reparam, RefusesModelsWithoutBranches) {
  REQUIRE_DUET();
  TempDir tmp;
  nlohmann::json config = models::preset_config("resnet20");
  config["width"] = 4;
  Generator gen(1);
  auto resnet = models::build_model(config, gen);
  const std::string in = tmp.file("resnet.safetensors");
  models::save_model(in, *resnet, config);
  const Outcome r = run_duet(tmp, "reparam -m " + in + " -o " + tmp.file("x.safetensors"));
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("is a resnet20; only repvgg_* models have branches to merge"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(run_duet(tmp, "reparam -m " + in).code, 2);  // no -o
  EXPECT_EQ(run_duet(tmp, "reparam -m /nonexistent.safetensors -o " + tmp.file("y")).code, 1);
}

TEST(Distill, UsageErrorsExitWith2) {
  REQUIRE_DUET();
  TempDir tmp;
  Outcome r = run_duet(tmp, "distill --arch resnet20 -o " + tmp.file("run"));
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("--teacher"), std::string::npos) << r.err;
  EXPECT_EQ(run_duet(tmp, "train --task generate --teacher x.safetensors -o " + tmp.file("g")).code,
            2);
  EXPECT_EQ(
      run_duet(tmp, "distill --teacher x.safetensors --kd-alpha 1.5 -o " + tmp.file("a")).code, 2);
  EXPECT_EQ(
      run_duet(tmp, "distill --teacher x.safetensors --kd-temperature 0 -o " + tmp.file("t")).code,
      2);
  EXPECT_FALSE(fs::exists(tmp.file("run")));
}

}  // namespace
}  // namespace duet
