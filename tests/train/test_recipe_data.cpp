// The recipe's other data sources on small IDX sets written here (no Fashion-MNIST needed):
// test_data replaces the test split, extra_data joins the training images only (and needs the
// same class names), both round-trip through the recipe JSON (absent when unset, so old recipes
// stay as they were) and a resume with a different value is refused.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "duet/data/dataset.h"
#include "duet/data/idx_write.h"
#include "duet/tensor/error.h"
#include "duet/train/classify_step.h"
#include "duet/train/trainer.h"
#include "run_fixtures.h"

namespace duet::train {
namespace {

namespace fs = std::filesystem;
using testing::quiet;
using testing::RunDir;

const std::vector<std::string> kNames = {"left", "right"};

// n images of 8 x 8 in folder `dir` (created), pixel values from `base`, labels alternating; with
// a meta.json naming the classes when `names` is not empty. Returns the idx: spec.
std::string write_set(const std::string& dir, int64_t n, int base,
                      const std::vector<std::string>& names) {
  fs::create_directories(dir);
  data::Dataset d;
  d.channels = 1, d.height = 8, d.width = 8;
  d.class_names = {"0", "1"};
  d.images = Tensor::empty(Shape{n, 1, 8, 8}, DType::u8);
  d.labels = Tensor::empty(Shape{n}, DType::i32);
  for (int64_t i = 0; i < n; ++i) {
    d.labels.data<int32_t>()[i] = static_cast<int32_t>(i % 2);
    // Class 1 is bright on the right half, class 0 on the left; the image index tags pixel 0.
    for (int64_t p = 0; p < 64; ++p)
      d.images.data<uint8_t>()[i * 64 + p] =
          static_cast<uint8_t>(((p % 8 >= 4) == (i % 2 == 1)) ? 200 : 20);
    d.images.data<uint8_t>()[i * 64] = static_cast<uint8_t>(base + i);
  }
  const std::string im = dir + "/train-images-idx3-ubyte", lb = dir + "/train-labels-idx1-ubyte";
  data::write_idx_dataset(d, im, lb);
  if (!names.empty()) std::ofstream(dir + "/meta.json") << nlohmann::json{{"class_names", names}};
  return "idx:" + im + "," + lb;
}

ClassifyRecipe tiny_recipe(const std::string& data) {
  ClassifyRecipe r;
  r.data = data;
  r.model_overrides = {{"width", 4}};
  r.arch = "resnet20";
  r.epochs = 2;
  r.batch = 8;
  r.seed = 3;
  return r;
}

std::string usage_error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.kind() == ErrorKind::usage ? std::string(e.what())
                                        : std::string("runtime: ") + e.what();
  }
  return "";
}

TEST(RecipeData, JsonRoundTripAndOldRecipesUnchanged) {
  ClassifyRecipe r = tiny_recipe("fashion-mnist");
  const nlohmann::json plain = r.to_json();
  EXPECT_FALSE(plain.contains("test_data"));
  EXPECT_FALSE(plain.contains("extra_data"));
  r.test_data = "fashion-mnist";
  r.extra_data = "idx:a,b";
  const nlohmann::json j = r.to_json();
  EXPECT_EQ(j.at("test_data"), "fashion-mnist");
  EXPECT_EQ(j.at("extra_data"), "idx:a,b");
  const ClassifyRecipe back = ClassifyRecipe::from_json(j);
  EXPECT_EQ(back.test_data, "fashion-mnist");
  EXPECT_EQ(back.extra_data, "idx:a,b");
  EXPECT_EQ(back.to_json(), j);
  // A recipe written before the fields existed reads back with both unset.
  const ClassifyRecipe old = ClassifyRecipe::from_json(plain);
  EXPECT_TRUE(old.test_data.empty() && old.extra_data.empty());
  EXPECT_EQ(old.to_json(), plain);
  EXPECT_THROW(ClassifyRecipe::from_json({{"extra_data", 5}}), Error);
}

TEST(RecipeData, TestDataIsTheTestSplitAndExtraDataJoinsTrainingOnly) {
  RunDir root("sets");
  const std::string a = write_set(root.file("a"), 20, 0, kNames);
  const std::string b = write_set(root.file("b"), 6, 100, kNames);
  const std::string c = write_set(root.file("c"), 10, 150, kNames);

  ClassifyRecipe r = tiny_recipe(a);
  ClassifySetup plain = make_classify_setup(r);
  EXPECT_EQ(plain.test_set.size(), 20);  // an IDX pair is its own test split
  EXPECT_EQ(plain.config.at("class_names"), nlohmann::json(kNames));

  r.test_data = b;
  r.extra_data = c;
  r.val = 4;
  ClassifySetup s = make_classify_setup(r);
  // The test split is b, image for image.
  ASSERT_EQ(s.test_set.size(), 6);
  for (int64_t i = 0; i < 6; ++i) EXPECT_EQ(s.test_set.image(i)[0], 100 + i);
  // Validation comes out of a only; c follows a's remaining 16 images in the training part.
  ASSERT_EQ(s.val_set.size(), 4);
  for (int64_t i = 0; i < 4; ++i) EXPECT_LT(s.val_set.image(i)[0], 20);
  ASSERT_EQ(s.train_set.size(), 16 + 10);
  for (int64_t i = 0; i < 16; ++i) EXPECT_LT(s.train_set.image(i)[0], 20);
  for (int64_t i = 0; i < 10; ++i) {
    EXPECT_EQ(s.train_set.image(16 + i)[0], 150 + i);
    EXPECT_EQ(s.train_set.label(16 + i), i % 2);
  }
  EXPECT_EQ(s.loader->batches_per_epoch(), 4);  // ceil(26 / 8)
  // The normalisation covers the extra images too (they are training data).
  EXPECT_NE(s.norm.mean[0], plain.norm.mean[0]);
}

TEST(RecipeData, ClassNameMismatchesAreUsageErrors) {
  RunDir root("sets");
  const std::string a = write_set(root.file("a"), 12, 0, kNames);
  const std::string unnamed = write_set(root.file("n"), 6, 50, {});
  const std::string other = write_set(root.file("o"), 6, 60, {"right", "left"});
  ClassifyRecipe r = tiny_recipe(a);
  for (const std::string& bad : {unnamed, other}) {
    r.extra_data = bad;
    const std::string msg = usage_error_of([&] { make_classify_setup(r); });
    EXPECT_NE(msg.find("--extra-data " + bad + ": class names ["), std::string::npos) << msg;
    EXPECT_NE(msg.find("[left, right]"), std::string::npos) << msg;
  }
  r.extra_data.clear();
  r.test_data = other;
  const std::string msg = usage_error_of([&] { make_classify_setup(r); });
  EXPECT_NE(msg.find("--test-data " + other + ": class names [right, left]"), std::string::npos)
      << msg;
}

TEST(RecipeData, ResumeRefusesOtherTestOrExtraData) {
  RunDir root("sets"), run("run");
  const std::string a = write_set(root.file("a"), 16, 0, kNames);
  const std::string c = write_set(root.file("c"), 8, 150, kNames);
  const std::string d = write_set(root.file("d"), 8, 170, kNames);
  ClassifyRecipe r = tiny_recipe(a);
  r.extra_data = c;
  TrainRunOptions first = quiet(run.str());
  first.stop_after = 1;
  const TrainSummary s1 = train_classifier(r, first);
  EXPECT_EQ(s1.steps, 3);  // (16 + 8) / 8
  EXPECT_EQ(read_checkpoint_recipe(run.file("last.safetensors")).extra_data, c);

  TrainRunOptions again = quiet(run.str());
  again.resume = true;
  ClassifyRecipe changed = r;
  changed.extra_data = d;
  std::string msg = usage_error_of([&] { train_classifier(changed, again); });
  EXPECT_NE(msg.find("--extra-data"), std::string::npos) << msg;
  changed = r;
  changed.test_data = a;
  msg = usage_error_of([&] { train_classifier(changed, again); });
  EXPECT_NE(msg.find("--test-data"), std::string::npos) << msg;
  // The same recipe resumes and finishes.
  const TrainSummary s2 = train_classifier(r, again);
  EXPECT_TRUE(s2.finished);
  EXPECT_EQ(s2.steps, 6);
}

}  // namespace
}  // namespace duet::train
