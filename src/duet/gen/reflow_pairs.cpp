#include "duet/gen/reflow_pairs.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "duet/gen/guidance.h"
#include "duet/io/safetensors.h"
#include "duet/io/tensor_io.h"
#include "duet/tensor/error.h"

namespace duet::gen {
namespace {

constexpr const char* kMetaKey = "duet.reflow";
// Keys the per-pair noise streams apart from every other Philox use of the same seed.
constexpr uint64_t kNoiseKey = 0x7265666c6f770000ull;  // "reflow\0\0"

}  // namespace

void validate(const ReflowPairOptions& o, Objective teacher_objective) {
  if (o.count < 1) fail_usage("--pairs must be at least 1, got ", o.count);
  if (o.batch < 1) fail_usage("--pair-batch must be at least 1, got ", o.batch);
  if (teacher_objective != Objective::flow)
    fail_usage("reflow straightens a flow model's paths; this teacher is ",
               objective_name(teacher_objective), " (train it with --objective flow)");
  validate(o.sample, teacher_objective);
}

ReflowPairs make_reflow_pairs(models::UNet& teacher, Objective objective,
                              const std::vector<std::string>& class_names,
                              const ReflowPairOptions& o) {
  validate(o, objective);
  const auto& c = teacher.config();
  DUET_CHECK(static_cast<int64_t>(class_names.size()) == c.num_classes,
             "reflow: ", class_names.size(), " class names for a generator of ", c.num_classes,
             " classes");
  const int64_t n = o.count, per = int64_t{c.in_channels} * c.image_size * c.image_size;
  const Shape one{1, c.in_channels, c.image_size, c.image_size};
  ReflowPairs p;
  p.class_names = class_names;
  p.noise = Tensor::empty(Shape{n, c.in_channels, c.image_size, c.image_size});
  p.images = Tensor::empty(p.noise.shape());
  p.labels = Tensor::empty(Shape{n}, DType::i32);
  for (int64_t i = 0; i < n; ++i) {
    Generator g(o.seed ^ kNoiseKey, static_cast<uint64_t>(i) << 20);
    const Tensor z = Tensor::normal(one, g);
    std::memcpy(p.noise.data<float>() + i * per, z.data<float>(), sizeof(float) * per);
    p.labels.data<int32_t>()[i] = static_cast<int32_t>(i % c.num_classes);
  }
  teacher.eval();
  Generator unused(o.seed);  // Euler and Heun draw no noise
  for (int64_t begin = 0; begin < n; begin += o.batch) {
    const int64_t b = std::min(o.batch, n - begin);
    const std::vector<int32_t> labels(p.labels.data<int32_t>() + begin,
                                      p.labels.data<int32_t>() + begin + b);
    Tensor x1 = Tensor::empty(Shape{b, c.in_channels, c.image_size, c.image_size});
    std::memcpy(x1.data<float>(), p.noise.data<float>() + begin * per, sizeof(float) * b * per);
    SampleOptions sample = o.sample;
    sample.on_step = nullptr;
    const Tensor x0 =
        gen::sample(guided_predictor(teacher, labels, o.cfg), objective, x1, sample, unused);
    DUET_CHECK(x0.is_contiguous() && x0.shape() == x1.shape(), "reflow: the sampler returned ",
               x0.shape().str(), " for ", x1.shape().str());
    std::memcpy(p.images.data<float>() + begin * per, x0.data<float>(), sizeof(float) * b * per);
    if (o.on_batch) o.on_batch(begin + b, n);
  }
  return p;
}

void save_reflow_pairs(const std::string& path, const ReflowPairs& p) {
  const nlohmann::json meta = {{"class_names", p.class_names}, {"provenance", p.provenance}};
  io::save_tensors(path, {{"noise", p.noise}, {"images", p.images}, {"labels", p.labels}},
                   {{kMetaKey, meta.dump()}});
}

ReflowPairs load_reflow_pairs(const std::string& path) {
  const io::SafetensorsFile file = io::SafetensorsFile::load(path);
  const auto meta_it = file.metadata().find(kMetaKey);
  if (meta_it == file.metadata().end())
    fail(path, ": no '", kMetaKey,
         "' metadata (not a reflow pair file; `duet reflow` writes them)");
  const nlohmann::json meta = nlohmann::json::parse(meta_it->second, nullptr, false);
  if (!meta.is_object() || !meta.contains("class_names") || !meta["class_names"].is_array())
    fail(path, ": metadata '", kMetaKey, "' must be a JSON object with a \"class_names\" array");
  ReflowPairs p;
  for (const auto& name : meta["class_names"]) {
    if (!name.is_string())
      fail(path, ": metadata class_names must hold strings, got ", name.dump());
    p.class_names.push_back(name.get<std::string>());
  }
  if (p.class_names.empty()) fail(path, ": metadata class_names is empty");
  p.provenance = meta.value("provenance", nlohmann::json::object());

  auto tensors = io::tensors_from_file(file);
  auto take = [&](const char* name, DType dtype) {
    const auto it = tensors.find(name);
    if (it == tensors.end()) fail(path, ": no tensor '", name, "'");
    if (it->second.dtype() != dtype)
      fail(path, ": tensor '", name, "' is ", dtype_name(it->second.dtype()), ", expected ",
           dtype_name(dtype));
    return it->second;
  };
  p.noise = take("noise", DType::f32);
  p.images = take("images", DType::f32);
  p.labels = take("labels", DType::i32);
  if (p.noise.rank() != 4 || p.noise.dim(0) < 1)
    fail(path, ": tensor 'noise' must be [N, C, H, W] with N >= 1, got ", p.noise.shape().str());
  if (p.images.shape() != p.noise.shape())
    fail(path, ": tensor 'images' is ", p.images.shape().str(), ", expected noise's ",
         p.noise.shape().str());
  if (p.labels.rank() != 1 || p.labels.dim(0) != p.noise.dim(0))
    fail(path, ": tensor 'labels' is ", p.labels.shape().str(), ", expected [", p.noise.dim(0),
         "]");
  const int64_t classes = static_cast<int64_t>(p.class_names.size());
  const int32_t* y = p.labels.data<int32_t>();
  for (int64_t i = 0; i < p.labels.numel(); ++i)
    if (y[i] < 0 || y[i] >= classes)
      fail(path, ": labels[", i, "] = ", y[i], " is outside [0, ", classes, ")");
  for (const Tensor* t : {&p.noise, &p.images}) {
    const float* v = t->data<float>();
    for (int64_t i = 0; i < t->numel(); ++i)
      if (!std::isfinite(v[i]))
        fail(path, ": tensor '", t == &p.noise ? "noise" : "images",
             "' holds a non-finite value at ", i);
  }
  return p;
}

}  // namespace duet::gen
