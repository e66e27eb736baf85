// Reflow end to end: the pairs are seeded and survive a save/load round trip, malformed pair files
// are refused with the file and field named, the training draw uses each image's own noise, and a
// student trained on a small trained teacher's pairs lands closer to the teacher's many-step
// images in one Euler step than the teacher itself does (its paths got straighter). Resume
// refuses a changed pair file.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "../harness/error_capture.h"
#include "../harness/tiny_unet.h"
#include "duet/gen/guidance.h"
#include "duet/gen/reflow_pairs.h"
#include "duet/io/tensor_io.h"
#include "duet/models/checkpoint.h"
#include "duet/models/registry.h"
#include "duet/tensor/error.h"
#include "duet/train/generate_trainer.h"
#include "run_fixtures.h"

namespace duet::train {
namespace {

using testing::quiet;
using testing::RunDir;

using duet::test::error_of;

gen::ReflowPairOptions pair_options(int64_t count) {
  gen::ReflowPairOptions o;
  o.count = count;
  o.cfg = 2.0;
  o.sample = gen::sample_options(gen::Objective::flow, "heun", 8);
  o.seed = 11;
  o.batch = 16;
  return o;
}

// Mean squared distance between two image batches.
double mse(const Tensor& a, const Tensor& b) {
  const auto x = a.to_vector(), y = b.to_vector();
  double s = 0;
  for (size_t i = 0; i < x.size(); ++i) s += (double(x[i]) - y[i]) * (double(x[i]) - y[i]);
  return s / static_cast<double>(x.size());
}

// One Euler step from the pairs' noise at the given guidance: where a 1-step sampler lands.
Tensor one_step(models::UNet& unet, const gen::ReflowPairs& p, double cfg) {
  const std::vector<int32_t> labels(p.labels.data<int32_t>(), p.labels.data<int32_t>() + p.size());
  Generator unused(0);
  unet.eval();
  return gen::sample(gen::guided_predictor(unet, labels, cfg), gen::Objective::flow, p.noise,
                     gen::sample_options(gen::Objective::flow, "euler", 1), unused);
}

}  // namespace

TEST(Reflow, TrainingDrawUsesThePairedNoise) {
  Generator g(3);
  const Tensor x0 = Tensor::normal(Shape{4, 1, 3, 3}, g);
  const Tensor noise = Tensor::normal(Shape{4, 1, 3, 3}, g);
  const gen::TrainingDraw d =
      gen::draw_training_example(gen::Objective::flow, gen::TimeSampling::uniform, x0, g, &noise);
  const auto x = x0.to_vector(), z = noise.to_vector(), xt = d.x_t.to_vector(),
             target = d.target.to_vector(), t = d.t.to_vector();
  for (size_t i = 0; i < x.size(); ++i) {
    const float ti = t[i / 9];
    EXPECT_EQ(target[i], z[i] - x[i]);
    EXPECT_NEAR(xt[i], (1 - ti) * x[i] + ti * z[i], 1e-6);
  }
  const Tensor wrong = Tensor::zeros(Shape{4, 1, 3, 2});
  EXPECT_THROW(
      gen::draw_training_example(gen::Objective::flow, gen::TimeSampling::uniform, x0, g, &wrong),
      Error);
}

TEST(Reflow, PairsAreSeededAndRoundTrip) {
  Generator init(2);
  auto model = models::build_model(duet::test::tiny_unet_config(3, 8), init);
  auto& unet = static_cast<models::UNet&>(*model);
  const std::vector<std::string> names = {"a", "b", "c"};
  const gen::ReflowPairs small =
      gen::make_reflow_pairs(unet, gen::Objective::flow, names, pair_options(5));
  const gen::ReflowPairs large =
      gen::make_reflow_pairs(unet, gen::Objective::flow, names, pair_options(9));
  ASSERT_EQ(small.size(), 5);
  const auto zs = small.noise.to_vector(), zl = large.noise.to_vector();
  for (size_t i = 0; i < zs.size(); ++i) ASSERT_EQ(zs[i], zl[i]) << i;  // a prefix of the larger
  for (int64_t i = 0; i < large.size(); ++i) EXPECT_EQ(large.labels.data<int32_t>()[i], i % 3);
  // The image is where the teacher's sampler takes the pair's noise.
  Generator unused(0);
  const std::vector<int32_t> labels = {0, 1, 2, 0, 1};
  const Tensor direct = gen::sample(gen::guided_predictor(unet, labels, 2.0), gen::Objective::flow,
                                    small.noise, pair_options(5).sample, unused);
  EXPECT_LT(mse(direct, small.images), 1e-10);

  RunDir dir("pairs");
  std::filesystem::create_directories(dir.str());
  gen::ReflowPairs saved = small;
  saved.provenance = {{"teacher", "t.safetensors"}, {"steps", 8}};
  gen::save_reflow_pairs(dir.file("p.safetensors"), saved);
  const gen::ReflowPairs back = gen::load_reflow_pairs(dir.file("p.safetensors"));
  EXPECT_EQ(back.class_names, names);
  EXPECT_EQ(back.provenance, saved.provenance);
  EXPECT_EQ(back.noise.to_vector(), small.noise.to_vector());
  EXPECT_EQ(back.images.to_vector(), small.images.to_vector());
  EXPECT_EQ(back.labels.shape(), small.labels.shape());
}

TEST(Reflow, MalformedPairFilesAreRefusedByName) {
  RunDir dir("bad");
  std::filesystem::create_directories(dir.str());
  const std::string path = dir.file("p.safetensors");
  const Tensor z = Tensor::zeros(Shape{2, 1, 2, 2});
  auto write = [&](const Tensor& images, const Tensor& labels, const std::string& meta) {
    std::map<std::string, std::string> m;
    if (!meta.empty()) m["duet.reflow"] = meta;
    io::save_tensors(path, {{"noise", z}, {"images", images}, {"labels", labels}}, m);
  };
  const std::string names = R"({"class_names": ["a", "b"]})";
  const Tensor good_labels = Tensor::from_vector(std::vector<int32_t>{0, 1}, Shape{2});

  write(z, good_labels, "");
  EXPECT_NE(error_of([&] { gen::load_reflow_pairs(path); }).find("duet.reflow"), std::string::npos);
  write(z, Tensor::from_vector(std::vector<int32_t>{0, 2}, Shape{2}), names);
  const std::string label_error = error_of([&] { gen::load_reflow_pairs(path); });
  EXPECT_NE(label_error.find(path), std::string::npos);
  EXPECT_NE(label_error.find("labels[1] = 2"), std::string::npos);
  write(Tensor::zeros(Shape{2, 1, 2, 3}), good_labels, names);
  EXPECT_NE(error_of([&] { gen::load_reflow_pairs(path); }).find("'images'"), std::string::npos);
  write(Tensor::full(Shape{2, 1, 2, 2}, std::nanf("")), good_labels, names);
  EXPECT_NE(error_of([&] { gen::load_reflow_pairs(path); }).find("non-finite"), std::string::npos);
  write(z, good_labels, names);
  EXPECT_EQ(gen::load_reflow_pairs(path).size(), 2);

  gen::ReflowPairOptions o = pair_options(4);
  o.sample = gen::sample_options(gen::Objective::ddpm_eps, "ddim", 4);
  EXPECT_NE(error_of([&] { gen::validate(o, gen::Objective::ddpm_eps); }).find("flow"),
            std::string::npos);
}

TEST(Reflow, StudentReachesTheTeachersImagesInOneStep) {
  REQUIRE_FASHION_MNIST();
  // A small teacher that has learnt something: 3 epochs on 256 images.
  RunDir teacher_dir("teacher"), student_dir("student");
  GenerateRecipe t = testing::tiny_generate_recipe(3);
  t.ema_decay = 0.0;
  train_generator(t, quiet(teacher_dir.str()));
  const std::string teacher_path = teacher_dir.file("model.safetensors");
  models::LoadedModel teacher = models::load_model(teacher_path);
  auto& teacher_unet = static_cast<models::UNet&>(*teacher.model);

  const gen::ReflowPairs pairs = gen::make_reflow_pairs(
      teacher_unet, gen::Objective::flow, teacher.config.at("class_names"), pair_options(64));
  std::filesystem::create_directories(student_dir.str());
  const std::string pairs_path = student_dir.file("pairs.safetensors");
  gen::save_reflow_pairs(pairs_path, pairs);

  GenerateRecipe s;
  s.init = teacher_path;
  s.reflow_pairs = pairs_path;
  s.epochs = 40;
  s.batch = 16;
  s.lr = 2e-3;
  s.warmup_epochs = 0.0;
  s.time_sampling = "uniform";
  s.cfg_dropout = 0.0;
  s.ema_decay = 0.0;
  s.sample_every = 0;
  s.sample_steps = 1;
  s.seed = 6;
  EXPECT_TRUE(train_generator(s, quiet(student_dir.str() + "/run")).finished);
  models::LoadedModel student = models::load_model(student_dir.file("run/model.safetensors"));
  auto& student_unet = static_cast<models::UNet&>(*student.model);

  // The teacher's own single step lands on the average of its paths' ends; the student, trained
  // on straight lines from each noise to its image, lands near that image.
  const double teacher_err = mse(one_step(teacher_unet, pairs, 2.0), pairs.images);
  const double student_err = mse(one_step(student_unet, pairs, 1.0), pairs.images);
  EXPECT_LT(student_err, 0.7 * teacher_err)
      << "teacher " << teacher_err << " student " << student_err;

  // The pairs are part of the run: resuming with other pairs is refused.
  gen::ReflowPairs other = pairs;
  other.noise = Tensor::zeros(pairs.noise.shape());
  gen::save_reflow_pairs(pairs_path, other);
  TrainRunOptions again = quiet(student_dir.str() + "/run");
  again.resume = true;
  s.epochs = 41;
  const std::string resume_error = error_of([&] { train_generator(s, again); });
  EXPECT_NE(resume_error.find("--reflow-pairs"), std::string::npos) << resume_error;

  // A generator trained for another objective cannot be the starting point of a flow run.
  GenerateRecipe wrong = s;
  wrong.objective = "ddpm-eps";
  const std::string objective_error =
      error_of([&] { train_generator(wrong, quiet(student_dir.str() + "/wrong")); });
  EXPECT_NE(objective_error.find("--objective"), std::string::npos) << objective_error;
}

}  // namespace duet::train
