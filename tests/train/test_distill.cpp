// Knowledge distillation: the KD loss against a hand-computed value and finite differences, the
// teacher's checks and input conversion, SHA-256 test vectors, and a distilled run that resumes
// bit-identically but refuses a teacher file that changed.
#include <cmath>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "duet/autograd/autograd.h"
#include "duet/models/checkpoint.h"
#include "duet/models/registry.h"
#include "duet/ops/loss.h"
#include "duet/tensor/error.h"
#include "duet/tensor/rng.h"
#include "duet/train/distill.h"
#include "duet/train/distill_digest.h"
#include "duet/train/trainer.h"
#include "run_fixtures.h"

namespace duet::train {
namespace {

using testing::expect_same_tensors;
using testing::quiet;
using testing::RunDir;

TEST(KdLoss, EqualsAHandComputedValue) {
  // One image, two classes, T = 2, alpha = 0.5, label 0. Teacher logits (2 ln 3, 0): softmax of
  // logits / T is (3/4, 1/4). Student logits (0, 0): (1/2, 1/2) at any temperature.
  // KL = 3/4 ln(3/2) + 1/4 ln(1/2) = 0.1308120; soft term 0.5 * 2^2 * KL = 0.2616241;
  // hard term 0.5 * CE = 0.5 ln 2 = 0.3465736; total 0.6081977.
  const Tensor s = Tensor::from_vector(std::vector<float>{0.0f, 0.0f}, {1, 2});
  const Tensor t = Tensor::from_vector(std::vector<float>{2.0f * std::log(3.0f), 0.0f}, {1, 2});
  const Tensor y = Tensor::from_vector(std::vector<int32_t>{0}, {1});
  EXPECT_NEAR(kd_loss(s, t, y, {2.0f, 0.5f, 0.0f}).item(), 0.6081977, 1e-6);
  // alpha = 1: the soft term alone; alpha = 0: plain cross-entropy (with its label smoothing).
  EXPECT_NEAR(kd_loss(s, t, y, {2.0f, 1.0f, 0.0f}).item(), 4 * 0.1308120, 1e-6);
  EXPECT_NEAR(kd_loss(s, t, y, {2.0f, 0.0f, 0.1f}).item(), ops::cross_entropy(s, y, 0.1f).item(),
              1e-7);
  // A student equal to its teacher has no soft loss.
  EXPECT_NEAR(kd_loss(t, t, y, {4.0f, 1.0f, 0.0f}).item(), 0.0, 1e-6);
}

TEST(KdLoss, GradientMatchesFiniteDifferencesAndSkipsTheTeacher) {
  const int64_t n = 3, k = 5;
  Generator gen(4);
  const Tensor base = Tensor::normal({n, k}, gen, 0.0f, 2.0f);
  Tensor teacher = Tensor::normal({n, k}, gen, 0.0f, 3.0f);
  autograd::set_requires_grad(teacher);
  const Tensor y = Tensor::from_vector(std::vector<int32_t>{1, 4, 0}, {n});
  const KdOptions o{3.0f, 0.7f, 0.05f};

  Tensor s = base.clone();
  autograd::set_requires_grad(s);
  autograd::backward(kd_loss(s, teacher, y, o));
  ASSERT_TRUE(autograd::grad(s).defined());
  EXPECT_FALSE(autograd::grad(teacher).defined());  // the teacher is a constant
  const std::vector<float> g = autograd::grad(s).to_vector();

  // Central differences in double around each element (the loss itself runs in float).
  auto loss_at = [&](int64_t i, double delta) {
    std::vector<float> v = base.to_vector();
    v[static_cast<size_t>(i)] += static_cast<float>(delta);
    autograd::NoGradGuard no_grad;
    return double(kd_loss(Tensor::from_vector(v, {n, k}), teacher, y, o).item());
  };
  const double h = 1e-2;
  double largest = 0;
  for (int64_t i = 0; i < n * k; ++i) {
    const double fd = (loss_at(i, h) - loss_at(i, -h)) / (2 * h);
    EXPECT_NEAR(g[static_cast<size_t>(i)], fd, 2e-3) << "element " << i;
    largest = std::max(largest, std::fabs(fd));
  }
  EXPECT_GT(largest, 1e-2);  // not two zeros
}

TEST(Sha256, KnownVectors) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(sha256_hex(std::string(1000000, 'a')),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

// A small ResNet teacher checkpoint (random weights: what it teaches does not matter here).
std::string save_teacher(const RunDir& dir, const std::string& name, uint64_t seed,
                         int num_classes = 10, nlohmann::json preprocess = nullptr) {
  nlohmann::json config = models::preset_config("resnet20");
  config["depth"] = 8;
  config["width"] = 4;
  config["num_classes"] = num_classes;
  if (!preprocess.is_null()) config["preprocess"] = preprocess;
  Generator gen(seed);
  auto model = models::build_model(config, gen);
  std::filesystem::create_directories(dir.str());
  const std::string path = dir.file(name);
  models::save_model(path, *model, config);
  return path;
}

nlohmann::json student_config(int channels = 1) {
  nlohmann::json c = models::preset_config("resnet20");
  c["in_channels"] = channels;
  return c;
}

TEST(Teacher, RejectsMismatchedClassesAndChannels) {
  RunDir dir("teachers");
  data::NormStats norm{{0.5f}, {0.25f}};
  const std::string five = save_teacher(dir, "five.safetensors", 1, 5);
  try {
    Teacher t(five, student_config(), norm);
    FAIL() << "a 5-class teacher was accepted for 10 classes";
  } catch (const Error& e) {
    EXPECT_EQ(e.exit_code(), 2);
    EXPECT_NE(std::string(e.what()).find("num_classes is 5"), std::string::npos) << e.what();
  }
  const std::string ten = save_teacher(dir, "ten.safetensors", 1);
  data::NormStats rgb{{0.5f, 0.5f, 0.5f}, {0.25f, 0.25f, 0.25f}};
  try {
    Teacher t(ten, student_config(3), rgb);
    FAIL() << "a 1-channel teacher was accepted for 3-channel data";
  } catch (const Error& e) {
    EXPECT_EQ(e.exit_code(), 2);
    EXPECT_NE(std::string(e.what()).find("in_channels is 1"), std::string::npos) << e.what();
  }
}

TEST(Teacher, RenormalisesTheStudentsBatchForItsOwnStats) {
  RunDir dir("renorm");
  const std::string path =
      save_teacher(dir, "t.safetensors", 2, 10, {{"mean", {0.3}}, {"std", {0.4}}});
  const data::NormStats student{{0.5f}, {0.25f}};
  Teacher teacher(path, student_config(), student);
  Generator gen(9);
  const Tensor raw = Tensor::uniform({4, 1, 28, 28}, gen);
  std::vector<float> as_student = raw.to_vector(), as_teacher = raw.to_vector();
  for (float& v : as_student) v = (v - 0.5f) / 0.25f;
  for (float& v : as_teacher) v = (v - 0.3f) / 0.4f;
  const auto loaded = models::load_model(path);
  autograd::NoGradGuard no_grad;
  loaded.model->eval();
  const auto want = loaded.model->forward(Tensor::from_vector(as_teacher, raw.shape())).to_vector();
  const auto got = teacher.logits(Tensor::from_vector(as_student, raw.shape())).to_vector();
  ASSERT_EQ(want.size(), got.size());
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-4) << i;
}

// resnet20 at width 8 on 256 images, distilled from a tiny random teacher.
ClassifyRecipe distill_recipe(const std::string& teacher) {
  ClassifyRecipe r;
  r.model_overrides = {{"width", 8}};
  r.limit = 256;
  r.epochs = 2;
  r.batch = 64;
  r.test_limit = 200;
  r.augment = "crop,flip";
  r.seed = 5;
  r.teacher = teacher;
  return r;
}

TEST(Trainer, DistilledResumeIsBitIdenticalAndRefusesAChangedTeacher) {
  REQUIRE_FASHION_MNIST();
  RunDir teachers("teachers"), straight("straight"), resumed("resumed");
  const std::string teacher = save_teacher(teachers, "t.safetensors", 3);
  const ClassifyRecipe r = distill_recipe(teacher);
  const TrainSummary a = train_classifier(r, quiet(straight.str()));
  EXPECT_TRUE(a.finished);
  EXPECT_TRUE(std::isfinite(a.train_loss));

  TrainRunOptions first = quiet(resumed.str());
  first.stop_after = 1;
  EXPECT_FALSE(train_classifier(r, first).finished);
  const ClassifyRecipe saved = read_checkpoint_recipe(resumed.file("last.safetensors"));
  EXPECT_EQ(saved.teacher, teacher);
  EXPECT_EQ(saved.teacher_sha256, sha256_file(teacher));
  EXPECT_EQ(saved.teacher_bytes, static_cast<int64_t>(std::filesystem::file_size(teacher)));

  // Another file at the same path: the resumed run would learn from different soft targets.
  save_teacher(teachers, "t.safetensors", 4);
  TrainRunOptions again = quiet(resumed.str());
  again.resume = true;
  try {
    train_classifier(saved, again);
    FAIL() << "resumed with a changed teacher";
  } catch (const Error& e) {
    EXPECT_EQ(e.exit_code(), 2);
    EXPECT_NE(std::string(e.what()).find("changed since the run started"), std::string::npos)
        << e.what();
  }
  save_teacher(teachers, "t.safetensors", 3);  // the original bytes again
  EXPECT_TRUE(train_classifier(saved, again).finished);
  EXPECT_GT(
      expect_same_tensors(straight.file("last.safetensors"), resumed.file("last.safetensors")), 0u);
  EXPECT_GT(
      expect_same_tensors(straight.file("model.safetensors"), resumed.file("model.safetensors")),
      0u);

  // The same recipe without a teacher trains a different model (the soft targets matter).
  RunDir alone("alone");
  ClassifyRecipe plain = r;
  plain.teacher.clear();
  train_classifier(plain, quiet(alone.str()));
  const auto fa = io::SafetensorsFile::load(alone.file("model.safetensors"));
  const auto fb = io::SafetensorsFile::load(straight.file("model.safetensors"));
  const auto* e = fa.find("fc.weight");
  ASSERT_NE(e, nullptr);
  const auto x = fa.bytes(*e), z = fb.bytes(*fb.find("fc.weight"));
  ASSERT_EQ(x.size(), z.size());
  EXPECT_NE(std::memcmp(x.data(), z.data(), x.size()), 0);
}

}  // namespace
}  // namespace duet::train
