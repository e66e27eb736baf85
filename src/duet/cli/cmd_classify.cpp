// `duet classify -m MODEL IMAGE... [--top K] [--json]`: reads PNG/JPEG files, converts them to
// the model's channels and size, normalises them as in training and prints the top-k classes
// with their probabilities (or one JSON object per image).
// `duet classify --generative -m GENERATOR IMAGE...`: the same from a class-conditional generator,
// the class whose flow/diffusion loss is lowest (eval/generative_classifier.h).
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <memory>
#include <numeric>
#include <string>
#include <vector>

#include "duet/cli/commands.h"
#include "duet/cli/gap_tools.h"
#include "duet/compress/fold.h"
#include "duet/compress/quantize.h"
#include "duet/data/image.h"
#include "duet/models/checkpoint.h"
#include "duet/models/unified.h"
#include "duet/tensor/error.h"
#include "duet/train/trainer.h"

namespace duet::cli {
namespace {

struct ClassifyFlags {
  std::string model;
  std::vector<std::string> images;
  int top = 5;
  bool json = false;
  std::string tta = "none";  // test-time augmentation (train::Tta)
  GenerativeFlags generative;
};

void run_classify(const ClassifyFlags& f) {
  if (f.images.empty()) fail_usage("classify: give at least one IMAGE");
  if (f.top < 1) fail_usage("classify: --top must be >= 1, got ", f.top);
  const train::Tta tta = train::Tta::parse(f.tta, "classify: --tta");
  if (tta.flip && f.generative.on)
    fail_usage("classify: --tta is for discriminative classifiers, not --generative");
  // Classifiers come folded for inference (int8 checkpoints as stored); generators as saved.
  auto loaded = compress::load_inference_model(f.model);
  const auto& config = loaded.config;
  const int64_t c = config.value("in_channels", 1), s = config.value("image_size", 28);
  const auto names = train::model_class_names(config);
  const int64_t k = static_cast<int64_t>(names.size());

  // The images as a data set in the model's layout, so they go through the loader's
  // normalisation exactly like training batches did.
  data::Dataset d;
  const int64_t n = static_cast<int64_t>(f.images.size());
  d.images = Tensor::empty(Shape{n, c, s, s}, DType::u8);
  d.labels = Tensor::zeros(Shape{n}, DType::i32);
  d.class_names = names;
  d.channels = c, d.height = s, d.width = s;
  uint8_t* dst = d.images.data<uint8_t>();
  for (int64_t i = 0; i < n; ++i) {
    const data::Image im = data::resize_bilinear(
        data::convert_channels(data::read_image(f.images[static_cast<size_t>(i)]), c), s, s);
    uint8_t* out = dst + i * c * s * s;
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t y = 0; y < s; ++y)
        for (int64_t x = 0; x < s; ++x) out[(ch * s + y) * s + x] = im.at(y, x, ch);
  }
  std::vector<float> probs;
  if (f.generative.on) {
    const GenerativeRun r = run_generative(loaded, f.model, d, f.generative, /*labelled=*/false);
    probs = r.probs;
    if (!f.json) std::printf("%s\n", generative_summary(r, n, f.generative.options).c_str());
  } else {
    if (!dynamic_cast<models::Classifier*>(loaded.model.get()))
      fail_usage("classify: -m ", f.model, " is a generator; add --generative");
    // Already in inference form (load_inference_model): BatchNorm folded, or int8.
    try {
      probs = train::predict_probs(*loaded.model, d, train::model_norm_stats(config), 256, tta);
    } catch (const Error& e) {  // e.g. logits that overflow: name the model
      throw Error(str(f.model, ": ", e.what()), e.kind());
    }
  }
  const int64_t top = std::min<int64_t>(f.top, k);
  for (int64_t i = 0; i < n; ++i) {
    const float* p = probs.data() + i * k;
    std::vector<int64_t> order(static_cast<size_t>(k));
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return p[a] > p[b]; });
    const std::string& file = f.images[static_cast<size_t>(i)];
    if (f.json) {
      nlohmann::json topk = nlohmann::json::array();
      for (int64_t r = 0; r < top; ++r) {
        const int64_t j = order[static_cast<size_t>(r)];
        topk.push_back({{"index", j}, {"name", names[static_cast<size_t>(j)]}, {"prob", p[j]}});
      }
      nlohmann::json j = {{"file", file},
                          {"top1_index", order[0]},
                          {"top1", names[static_cast<size_t>(order[0])]},
                          {"probs", std::vector<float>(p, p + k)},
                          {"top", topk}};
      std::printf("%s\n", j.dump().c_str());
      continue;
    }
    std::printf("%s\n", file.c_str());
    for (int64_t r = 0; r < top; ++r) {
      const int64_t j = order[static_cast<size_t>(r)];
      std::printf("  %lld. %-14s %.4f\n", static_cast<long long>(r + 1),
                  names[static_cast<size_t>(j)].c_str(), p[j]);
    }
  }
}

}  // namespace

Action add_classify_command(CLI::App& app) {
  auto f = std::make_shared<ClassifyFlags>();
  CLI::App* sub = app.add_subcommand("classify", "top-k classes of images (PNG/JPEG)");
  sub->add_option("-m,--model", f->model,
                  "a classifier checkpoint (.safetensors), or a generator with --generative")
      ->required();
  sub->add_option("images", f->images, "image files")->required();
  sub->add_option("--top", f->top, "how many classes to show")->capture_default_str();
  sub->add_flag("--json", f->json, "one JSON object per image");
  sub->add_option("--tta", f->tta,
                  "test-time augmentation, none | flip (mean logits of the image and its mirror)")
      ->capture_default_str();
  add_generative_flags(*sub, f->generative);
  return [f] { run_classify(*f); };
}

}  // namespace duet::cli
