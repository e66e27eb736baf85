// ResNet-18 (small and ImageNet stems) and ShuffleNetV2 0.5x against their PyTorch twins
// (tests/golden/make_models_golden_m1.py): from the same weights, loaded strictly by state_dict
// name, the train- and eval-mode logits, the input gradient and a few parameter gradients of
// loss = sum(logits^2) must match. Also: checkpoints of both families round-trip, the channel
// shuffle is the expected permutation, and configs are validated.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "duet/autograd/autograd.h"
#include "duet/io/safetensors.h"
#include "duet/io/tensor_io.h"
#include "duet/models/checkpoint.h"
#include "duet/models/imagenet_resnet.h"
#include "duet/models/registry.h"
#include "duet/models/shufflenet_v2.h"
#include "duet/ops/eltwise.h"
#include "duet/ops/reduce.h"

using namespace duet;

namespace {

const std::string kGolden = std::string(DUET_SOURCE_DIR) + "/tests/golden/models_m1.safetensors";

struct Golden {
  nlohmann::json config;
  std::map<std::string, Tensor> state;  // the model's state_dict
  std::map<std::string, Tensor> other;  // input, train.*, eval.*, after.*
};

// The entries of one model (prefix stripped), split into its state_dict and the rest.
Golden load_golden(const std::string& prefix) {
  const auto file = io::SafetensorsFile::load(kGolden);
  Golden g;
  g.config = nlohmann::json::parse(file.metadata().at(prefix + "config"));
  for (auto& [name, t] : io::tensors_from_file(file, {.floats_to_f32 = true})) {
    if (name.rfind(prefix, 0) != 0) continue;
    const std::string key = name.substr(prefix.size());
    const bool other = key == "input" || key.rfind("train.", 0) == 0 ||
                       key.rfind("eval.", 0) == 0 || key.rfind("after.", 0) == 0;
    (other ? g.other : g.state)[key] = t;
  }
  return g;
}

// |actual - expected| <= 1e-4 * max(1, max |expected|) everywhere: absolute for values of order
// one, relative to the tensor's scale for larger ones. The reference must not be all zeros.
void expect_close(const Tensor& actual, const Tensor& expected, const std::string& what) {
  ASSERT_TRUE(actual.defined()) << what;
  ASSERT_EQ(actual.shape(), expected.shape()) << what;
  const auto a = actual.to_vector(), e = expected.to_vector();
  double scale = 0, diff = 0;
  for (size_t i = 0; i < e.size(); ++i) {
    scale = std::max(scale, std::fabs(double(e[i])));
    diff = std::max(diff, std::fabs(double(a[i]) - e[i]));
  }
  EXPECT_GT(scale, 1e-3) << what << ": reference is ~zero, the comparison would prove nothing";
  EXPECT_LE(diff, 1e-4 * std::max(1.0, scale)) << what << " (max |reference| " << scale << ")";
}

// One forward + backward of loss = sum(logits^2) in the given mode, checked against the golden.
void check_mode(const std::string& prefix, bool train) {
  Golden g = load_golden(prefix);
  Generator gen(0);
  auto model = models::build_model(g.config, gen);
  model->load_state_dict(g.state);  // strict: every key, no extras, same shapes
  model->train(train);
  Tensor x = g.other.at("input").clone();
  autograd::set_requires_grad(x);
  const Tensor logits = model->forward(x);
  autograd::backward(ops::sum_all(ops::mul(logits, logits)));

  const std::string mode = train ? "train." : "eval.";
  expect_close(logits, g.other.at(mode + "logits"), prefix + mode + "logits");
  expect_close(autograd::grad(x), g.other.at(mode + "grad.input"), prefix + mode + "grad.input");
  auto params = model->named_parameters();
  int checked = 0;
  for (auto& [name, p] : params) {
    auto it = g.other.find(mode + "grad." + name);
    if (it == g.other.end()) continue;
    expect_close(autograd::grad(*p), it->second, prefix + it->first);
    ++checked;
  }
  EXPECT_GE(checked, 4) << prefix << mode;
  if (!train) return;
  // The train-mode forward moved the BatchNorm running statistics the same way PyTorch did.
  auto state = model->state_dict();
  for (auto& [key, expected] : g.other) {
    if (key.rfind("after.", 0) != 0) continue;
    const Tensor& actual = state.at(key.substr(6));
    if (actual.dtype() == DType::i64) {
      EXPECT_EQ(*actual.data<int64_t>(), *expected.data<int64_t>()) << prefix << key;
    } else {
      expect_close(actual, expected, prefix + key);
    }
  }
}

}  // namespace

TEST(ModelsGolden, ResNet18SmallStemTrainMode) {
  check_mode("resnet18.", true);
}
TEST(ModelsGolden, ResNet18SmallStemEvalMode) {
  check_mode("resnet18.", false);
}
TEST(ModelsGolden, ResNet18ImageNetStemTrainMode) {
  check_mode("resnet18_imagenet_stem.", true);
}
TEST(ModelsGolden, ResNet18ImageNetStemEvalMode) {
  check_mode("resnet18_imagenet_stem.", false);
}
TEST(ModelsGolden, ShuffleNetV2x05TrainMode) {
  check_mode("shufflenet.", true);
}
TEST(ModelsGolden, ShuffleNetV2x05EvalMode) {
  check_mode("shufflenet.", false);
}

TEST(ShuffleNetV2, ChannelShuffleInterleavesTheTwoHalvesAndBackpropagates) {
  // [1, 6, 1, 2]: channel c holds 10c, 10c + 1. Two groups: order 0, 3, 1, 4, 2, 5.
  std::vector<float> v;
  for (int c = 0; c < 6; ++c) v.insert(v.end(), {10.0f * c, 10.0f * c + 1});
  Tensor x = Tensor::from_vector(v, {1, 6, 1, 2});
  autograd::set_requires_grad(x);
  const Tensor y = models::channel_shuffle(x, 2);
  EXPECT_EQ(y.to_vector(), (std::vector<float>{0, 1, 30, 31, 10, 11, 40, 41, 20, 21, 50, 51}));
  // Weighting output position i by i: the gradient of input channel c is its output position.
  std::vector<float> w(12);
  for (int i = 0; i < 12; ++i) w[static_cast<size_t>(i)] = static_cast<float>(i);
  autograd::backward(ops::sum_all(ops::mul(y, Tensor::from_vector(w, {1, 6, 1, 2}))));
  EXPECT_EQ(autograd::grad(x).to_vector(),
            (std::vector<float>{0, 1, 4, 5, 8, 9, 2, 3, 6, 7, 10, 11}));
}

TEST(ModelsCheckpoint, BothFamiliesRoundTrip) {
  const auto dir = std::filesystem::temp_directory_path() / "duet_test_m1_checkpoints";
  std::filesystem::create_directories(dir);
  const std::vector<nlohmann::json> configs = {
      {{"family", "imagenet_resnet"}, {"width", 16}},  // ResNet-18, small stem, 1x28x28
      models::preset_config("shufflenet_v2_x0_5"),
      // ImageNet stems (chosen by the default for image_size >= 64), other widths and depth.
      {{"family", "imagenet_resnet"},
       {"depth", 34},
       {"width", 8},
       {"in_channels", 3},
       {"num_classes", 5},
       {"image_size", 64}},
      {{"family", "shufflenet_v2"},
       {"width_mult", 1.0},
       {"in_channels", 3},
       {"num_classes", 7},
       {"image_size", 64}}};
  Generator data(9);
  for (const auto& config : configs) {
    SCOPED_TRACE(config.dump());
    Generator gen(4);
    auto model = models::build_model(config, gen);
    const Shape in = models::input_shape(config);
    // Train-mode passes give the BatchNorms running statistics that differ from the defaults.
    model->forward(Tensor::normal({2, in[1], in[2], in[3]}, data, 0.3f, 1.5f));
    model->eval();
    const std::string path = (dir / "model.safetensors").string();
    models::save_model(path, *model, config);
    auto loaded = models::load_model(path);
    loaded.model->eval();
    EXPECT_EQ(loaded.config, config);
    EXPECT_EQ(loaded.model->type_name(), model->type_name());
    EXPECT_EQ(loaded.model->parameter_count(), model->parameter_count());
    auto a = model->state_dict(), b = loaded.model->state_dict();
    ASSERT_EQ(a.size(), b.size());
    for (auto& [key, t] : a) {
      ASSERT_TRUE(b.count(key)) << key;
      if (t.dtype() == DType::f32) {
        EXPECT_EQ(t.to_vector(), b.at(key).to_vector()) << key;
      } else {
        EXPECT_EQ(*t.data<int64_t>(), *b.at(key).data<int64_t>()) << key;
      }
    }
    autograd::NoGradGuard no_grad;
    const Tensor x = Tensor::normal({2, in[1], in[2], in[3]}, data);
    EXPECT_EQ(model->forward(x).to_vector(), loaded.model->forward(x).to_vector());
  }
  std::filesystem::remove_all(dir);
}

TEST(ModelsConfig, PresetsAndParameterCounts) {
  // Counts of the PyTorch twins (bench/peers/torch_imagenet_resnet.py, torch_shufflenet.py) for
  // the same configs; with the ImageNet stem, 3 channels and 1000 classes they equal
  // torchvision's resnet18 (11,689,512) and shufflenet_v2_x1_0 (2,278,604).
  const std::vector<std::pair<std::string, int64_t>> presets = {{"resnet18", 11172810},
                                                                {"resnet34", 21280970},
                                                                {"shufflenet_v2_x0_5", 351610},
                                                                {"shufflenet_v2_x1_0", 1263422}};
  for (const auto& [arch, count] : presets) {
    Generator gen(0);
    EXPECT_EQ(models::build_model(models::preset_config(arch), gen)->parameter_count(), count)
        << arch;
  }
  Generator gen(0);
  for (const auto& [mult, count] : {std::pair{1.5, int64_t{2488442}}, {2.0, int64_t{5365054}}})
    EXPECT_EQ(models::build_model({{"family", "shufflenet_v2"}, {"width_mult", mult}}, gen)
                  ->parameter_count(),
              count)
        << mult;
  EXPECT_EQ(models::build_model({{"family", "imagenet_resnet"},
                                 {"in_channels", 3},
                                 {"num_classes", 1000},
                                 {"image_size", 224}},
                                gen)
                ->parameter_count(),
            11689512);
  EXPECT_EQ(models::build_model({{"family", "shufflenet_v2"},
                                 {"in_channels", 3},
                                 {"num_classes", 1000},
                                 {"image_size", 224}},
                                gen)
                ->parameter_count(),
            2278604);
}

TEST(ModelsConfig, StemDefaultsToImageSize) {
  EXPECT_EQ(models::ImageNetResNetConfig::from_json({{"image_size", 32}}).stem, "small");
  EXPECT_EQ(models::ImageNetResNetConfig::from_json({{"image_size", 64}}).stem, "imagenet");
  EXPECT_EQ(models::ShuffleNetV2Config::from_json({{"image_size", 224}}).stem, "imagenet");
  EXPECT_EQ(models::ShuffleNetV2Config::from_json({{"image_size", 224}, {"stem", "small"}}).stem,
            "small");
}

TEST(ModelsConfig, BadFieldsAreNamed) {
  auto message = [](const nlohmann::json& config) {
    Generator gen(0);
    try {
      models::build_model(config, gen);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  const std::string unknown = message({{"family", "lenet"}});
  for (const char* family : {"resnet", "imagenet_resnet", "shufflenet_v2"})
    EXPECT_NE(unknown.find(family), std::string::npos) << unknown;
  EXPECT_NE(message({{"family", "imagenet_resnet"}, {"depth", 50}}).find("'depth'"),
            std::string::npos);
  EXPECT_NE(message({{"family", "imagenet_resnet"}, {"stem", "big"}}).find("'stem'"),
            std::string::npos);
  EXPECT_NE(message({{"family", "shufflenet_v2"}, {"width_mult", 0.75}}).find("'width_mult'"),
            std::string::npos);
  EXPECT_NE(message({{"family", "shufflenet_v2"}, {"width_mult", "1.0"}}).find("'width_mult'"),
            std::string::npos);
}
