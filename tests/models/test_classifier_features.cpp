// Penultimate features of every classifier family (models::Classifier): the head applied to the
// features gives forward's logits, the features have the head's input width, the head is the
// linear layer named by the PyTorch key (checked by a direct matrix product), and for the CIFAR
// ResNet the features are the spatial mean of the last stage, recomputed from its parts.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "duet/autograd/autograd.h"
#include "duet/models/classifier.h"
#include "duet/models/registry.h"
#include "duet/models/resnet.h"
#include "duet/ops/activation.h"

using namespace duet;

namespace {

struct Case {
  const char* name;
  nlohmann::json config;
  const char* head;  // state_dict prefix of the final linear layer
};

std::vector<Case> cases() {
  return {
      {"resnet", {{"family", "resnet"}, {"depth", 8}, {"width", 4}}, "fc"},
      {"imagenet_resnet", {{"family", "imagenet_resnet"}, {"width", 4}, {"image_size", 16}}, "fc"},
      {"shufflenet_v2",
       {{"family", "shufflenet_v2"}, {"width_mult", 0.5}, {"image_size", 16}},
       "fc"},
      {"repvgg",
       {{"family", "repvgg"},
        {"a", 0.25},
        {"b", 0.25},
        {"blocks", {1, 1, 1, 1, 1}},
        {"image_size", 16}},
       "linear"},
      {"repvgg-deploy",
       {{"family", "repvgg"},
        {"a", 0.25},
        {"b", 0.25},
        {"blocks", {1, 1, 1, 1, 1}},
        {"image_size", 16},
        {"deploy", true}},
       "linear"},
      {"vit",
       {{"family", "vit"},
        {"patch", 4},
        {"dim", 16},
        {"depth", 2},
        {"heads", 2},
        {"image_size", 16}},
       "head"},
  };
}

}  // namespace

TEST(ClassifierFeatures, HeadOfFeaturesIsForwardForEveryFamily) {
  autograd::NoGradGuard no_grad;
  for (const auto& c : cases()) {
    SCOPED_TRACE(c.name);
    Generator gen(3);
    auto module = models::build_model(c.config, gen);
    auto* clf = dynamic_cast<models::Classifier*>(module.get());
    ASSERT_NE(clf, nullptr);
    clf->eval();
    const int64_t s = c.config.value("image_size", 28);
    Generator xg(4);
    const Tensor x = Tensor::normal(Shape{3, 1, s, s}, xg);
    const Tensor f = clf->features(x);
    const auto state = clf->state_dict();
    const Tensor& w = state.at(std::string(c.head) + ".weight");  // [classes, F]
    const Tensor& b = state.at(std::string(c.head) + ".bias");
    ASSERT_EQ(f.rank(), 2);
    EXPECT_EQ(f.dim(0), 3);
    EXPECT_EQ(f.dim(1), w.dim(1));

    const Tensor logits = clf->forward(x);
    EXPECT_EQ(clf->logits(f).to_vector(), logits.to_vector());
    // The head by hand, in double: logits = f W^T + b.
    const auto fv = f.to_vector(), wv = w.to_vector(), bv = b.to_vector(), lv = logits.to_vector();
    const int64_t k = w.dim(0), F = w.dim(1);
    ASSERT_EQ(logits.dim(1), k);
    double max_err = 0.0, max_abs = 0.0;
    for (int64_t n = 0; n < 3; ++n)
      for (int64_t j = 0; j < k; ++j) {
        double acc = bv[static_cast<size_t>(j)];
        for (int64_t i = 0; i < F; ++i)
          acc += double(fv[static_cast<size_t>(n * F + i)]) * wv[static_cast<size_t>(j * F + i)];
        max_err = std::max(max_err, std::fabs(acc - lv[static_cast<size_t>(n * k + j)]));
        max_abs = std::max(max_abs, std::fabs(acc));
      }
    EXPECT_LE(max_err, 1e-5 * std::max(1.0, max_abs));
    EXPECT_GT(max_abs, 0.0);
  }
}

TEST(ClassifierFeatures, CifarResNetFeaturesAreTheMeanOfTheLastStage) {
  autograd::NoGradGuard no_grad;
  Generator gen(5);
  models::CifarResNet net(gen, models::ResNetConfig{.depth = 8, .width = 4});
  net.eval();
  Generator xg(6);
  const Tensor x = Tensor::normal(Shape{2, 1, 12, 12}, xg);
  const Tensor last = net.layer3->forward(
      net.layer2->forward(net.layer1->forward(ops::relu(net.bn1->forward(net.conv1->forward(x))))));
  ASSERT_EQ(last.shape(), (Shape{2, 16, 3, 3}));
  const auto lv = last.to_vector(), fv = net.features(x).to_vector();
  ASSERT_EQ(fv.size(), 2u * 16u);
  for (size_t nc = 0; nc < fv.size(); ++nc) {
    double mean = 0.0;
    for (size_t p = 0; p < 9; ++p) mean += lv[nc * 9 + p];
    EXPECT_NEAR(fv[nc], mean / 9.0, 1e-6);
    EXPECT_GE(fv[nc], 0.0f);  // a mean of ReLU outputs
  }
}
