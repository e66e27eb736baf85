#include "duet/data/dataset.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "duet/data/idx.h"
#include "duet/data/image.h"
#include "duet/tensor/parallel.h"
#include "duet/tensor/rng.h"

namespace duet::data {

namespace fs = std::filesystem;

namespace {

uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

Dataset make_dataset(int64_t n, int64_t c, int64_t h, int64_t w) {
  Dataset d;
  d.channels = c, d.height = h, d.width = w;
  d.images = Tensor::empty(Shape{n, c, h, w}, DType::u8);
  d.labels = Tensor::empty(Shape{n}, DType::i32);
  return d;
}

Image dataset_image(const Dataset& d, int64_t i) {
  Image im(d.height, d.width, d.channels);
  const uint8_t* src = d.image(i);
  for (int64_t c = 0; c < d.channels; ++c)
    for (int64_t p = 0; p < d.height * d.width; ++p)
      im.pixels[static_cast<size_t>(p * d.channels + c)] = src[c * d.height * d.width + p];
  return im;
}

void store_image(const Image& im, uint8_t* dst) {  // HWC -> CHW
  const int64_t hw = im.height * im.width;
  for (int64_t c = 0; c < im.channels; ++c)
    for (int64_t p = 0; p < hw; ++p)
      dst[c * hw + p] = im.pixels[static_cast<size_t>(p * im.channels + c)];
}

bool is_image_file(const fs::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char ch) { return std::tolower(ch); });
  return ext == ".png" || ext == ".jpg" || ext == ".jpeg";
}

// Runs fn(i) for i in [0, n) on the thread pool; the error of the lowest failing index is thrown
// (exceptions must not leave an OpenMP region, and the lowest index keeps the message stable).
template <class Fn>
void parallel_each(int64_t n, Fn&& fn) {
  std::vector<std::string> errors(static_cast<size_t>(n));
  std::vector<char> failed(static_cast<size_t>(n), 0);
  parallel_for(n, 1, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      try {
        fn(i);
      } catch (const std::exception& ex) {
        errors[static_cast<size_t>(i)] = ex.what();
        failed[static_cast<size_t>(i)] = 1;
      }
    }
  });
  for (int64_t i = 0; i < n; ++i)
    if (failed[static_cast<size_t>(i)]) fail(errors[static_cast<size_t>(i)]);
}

}  // namespace

std::vector<std::string> idx_meta_class_names(const std::string& images_path) {
  const fs::path meta = fs::path(images_path).parent_path() / "meta.json";
  if (!fs::is_regular_file(meta)) return {};
  std::ifstream in(meta);
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    fail(meta.string(), ": not valid JSON (", e.what(), ")");
  }
  if (!j.is_object() || !j.contains("class_names")) return {};
  std::vector<std::string> names;
  try {
    names = j.at("class_names").get<std::vector<std::string>>();
  } catch (const nlohmann::json::exception&) {
    fail(meta.string(), ": class_names: expected an array of strings, got ",
         j.at("class_names").dump());
  }
  return names;
}

void validate(const Dataset& d, const std::string& what) {
  DUET_CHECK(d.images.defined() && d.labels.defined(), what, ": data set is empty");
  DUET_CHECK(d.images.dtype() == DType::u8 && d.images.rank() == 4, what,
             ": images must be u8 [N, C, H, W], got ", d.images.shape().str());
  DUET_CHECK(d.labels.dtype() == DType::i32 && d.labels.rank() == 1, what,
             ": labels must be i32 [N], got ", d.labels.shape().str());
  DUET_CHECK(d.images.dim(0) == d.labels.dim(0), what, ": ", d.images.dim(0), " images but ",
             d.labels.dim(0), " labels");
  DUET_CHECK(
      d.images.dim(1) == d.channels && d.images.dim(2) == d.height && d.images.dim(3) == d.width,
      what, ": images ", d.images.shape().str(), " disagree with C x H x W = ", d.channels, " x ",
      d.height, " x ", d.width);
  DUET_CHECK(!d.class_names.empty(), what, ": no class names");
  const int32_t* l = d.labels.data<int32_t>();
  for (int64_t i = 0; i < d.size(); ++i)
    DUET_CHECK(l[i] >= 0 && l[i] < d.num_classes(), what, ": label ", i, " is ", l[i],
               "; expected 0..", d.num_classes() - 1);
}

const std::vector<std::string>& fashion_mnist_classes() {
  static const std::vector<std::string> names = {"T-shirt/top", "Trouser",   "Pullover", "Dress",
                                                 "Coat",        "Sandal",    "Shirt",    "Sneaker",
                                                 "Bag",         "Ankle boot"};
  return names;
}

std::string fashion_mnist_dir() {
  const char* env = std::getenv("DUET_DATA");
  return env && *env ? std::string(env) : std::string("/usr/share/datasets/fashion-mnist");
}

Dataset load_fashion_mnist(Split split, const std::string& dir) {
  const std::string root = dir.empty() ? fashion_mnist_dir() : dir;
  const std::string prefix = split == Split::train ? "train" : "t10k";
  auto find = [&](const std::string& kind) {
    const std::string base = root + "/" + prefix + "-" + kind;
    for (const std::string& p : {base + ".gz", base}) {
      if (fs::exists(p)) return p;
    }
    fail("fashion-mnist: ", base,
         "(.gz) not found (install dataset-fashion-mnist or set DUET_DATA)");
  };
  return load_idx(find("images-idx3-ubyte"), find("labels-idx1-ubyte"), fashion_mnist_classes());
}

Dataset load_idx(const std::string& images_path, const std::string& labels_path,
                 const std::vector<std::string>& class_names) {
  const Tensor images = read_idx_images(images_path);
  const Tensor labels = read_idx_labels(labels_path);
  DUET_CHECK(images.dim(0) == labels.dim(0), images_path, " holds ", images.dim(0), " images but ",
             labels_path, " holds ", labels.dim(0), " labels");
  const int64_t n = images.dim(0);
  Dataset d = make_dataset(n, 1, images.dim(1), images.dim(2));
  std::memcpy(d.images.data<uint8_t>(), images.data<uint8_t>(), images.nbytes());
  const uint8_t* src = labels.data<uint8_t>();
  int32_t* dst = d.labels.data<int32_t>();
  int32_t max_label = 0;
  for (int64_t i = 0; i < n; ++i) {
    dst[i] = src[i];
    max_label = std::max(max_label, dst[i]);
  }
  d.class_names = class_names;
  if (d.class_names.empty())
    for (int32_t k = 0; k <= max_label; ++k) d.class_names.push_back(std::to_string(k));
  validate(d, labels_path);
  return d;
}

Dataset load_folder(const std::string& root, int64_t channels, int64_t height, int64_t width) {
  DUET_CHECK(fs::is_directory(root), "folder:", root, ": not a directory");
  DUET_CHECK(channels == 0 || channels == 1 || channels == 3, "folder:", root, ": ", channels,
             " channels requested; expected 1 or 3");
  DUET_CHECK(height >= 0 && width >= 0, "folder:", root, ": negative size requested");
  Dataset d;
  std::vector<std::string> files;
  std::vector<int32_t> labels;
  for (const auto& e : fs::directory_iterator(root))
    if (e.is_directory()) d.class_names.push_back(e.path().filename().string());
  std::sort(d.class_names.begin(), d.class_names.end());
  DUET_CHECK(!d.class_names.empty(), "folder:", root, ": no class subfolders");
  for (size_t k = 0; k < d.class_names.size(); ++k) {
    std::vector<std::string> found;
    for (const auto& e : fs::directory_iterator(fs::path(root) / d.class_names[k]))
      if (e.is_regular_file() && is_image_file(e.path())) found.push_back(e.path().string());
    std::sort(found.begin(), found.end());
    files.insert(files.end(), found.begin(), found.end());
    labels.insert(labels.end(), found.size(), static_cast<int32_t>(k));
  }
  DUET_CHECK(!files.empty(), "folder:", root, ": no .png/.jpg/.jpeg files in the class folders");
  if (channels == 0 || height == 0 || width == 0) {
    const Image first = read_image(files[0]);
    if (channels == 0) channels = first.channels;
    if (height == 0) height = first.height;
    if (width == 0) width = first.width;
  }
  const int64_t n = static_cast<int64_t>(files.size());
  Dataset out = make_dataset(n, channels, height, width);
  out.class_names = std::move(d.class_names);
  std::copy(labels.begin(), labels.end(), out.labels.data<int32_t>());
  const int64_t chw = channels * height * width;
  uint8_t* dst = out.images.data<uint8_t>();
  parallel_each(n, [&](int64_t i) {
    store_image(conform_image(read_image(files[static_cast<size_t>(i)]), channels, height, width),
                dst + i * chw);
  });
  validate(out, "folder:" + root);
  return out;
}

Dataset conform(const Dataset& d, int64_t channels, int64_t height, int64_t width) {
  if (channels == 0) channels = d.channels;
  if (height == 0) height = d.height;
  if (width == 0) width = d.width;
  DUET_CHECK(channels == 1 || channels == 3, "conform: ", channels,
             " channels requested; expected 1 or 3");
  if (channels == d.channels && height == d.height && width == d.width) return d;
  Dataset out = make_dataset(d.size(), channels, height, width);
  out.class_names = d.class_names;
  std::memcpy(out.labels.data<int32_t>(), d.labels.data<int32_t>(), d.labels.nbytes());
  const int64_t chw = channels * height * width;
  uint8_t* dst = out.images.data<uint8_t>();
  parallel_each(d.size(), [&](int64_t i) {
    const Image im = conform_image(dataset_image(d, i), channels, height, width);
    store_image(im, dst + i * chw);
  });
  return out;
}

Dataset load_dataset(const std::string& spec, const DataOptions& options) {
  const size_t colon = spec.find(':');
  const std::string kind = spec.substr(0, colon);
  const std::string arg = colon == std::string::npos ? "" : spec.substr(colon + 1);
  const char* usage = "; expected fashion-mnist[:DIR], idx:IMAGES,LABELS or folder:ROOT";
  Dataset d;
  if (kind == "fashion-mnist") {
    if (colon != std::string::npos && arg.empty()) fail_usage("--data ", spec, ": empty DIR");
    d = load_fashion_mnist(options.split, arg);
  } else if (kind == "idx") {
    const size_t comma = arg.find(',');
    if (comma == std::string::npos || comma == 0 || comma + 1 == arg.size() ||
        arg.find(',', comma + 1) != std::string::npos)
      fail_usage("--data ", spec, ": idx needs two paths, idx:IMAGES,LABELS");
    d = load_idx(arg.substr(0, comma), arg.substr(comma + 1),
                 idx_meta_class_names(arg.substr(0, comma)));
  } else if (kind == "folder") {
    if (arg.empty()) fail_usage("--data ", spec, ": folder needs a path, folder:ROOT");
    std::string root = arg;
    const fs::path tr = fs::path(arg) / "train", te = fs::path(arg) / "test";
    if (fs::is_directory(tr) && fs::is_directory(te))
      root = (options.split == Split::train ? tr : te).string();
    return load_folder(root, options.channels, options.height, options.width);
  } else {
    fail_usage("--data ", spec, ": unknown data set '", kind, "'", usage);
  }
  return conform(d, options.channels, options.height, options.width);
}

Dataset subset(const Dataset& d, const std::vector<int64_t>& indices) {
  const int64_t n = static_cast<int64_t>(indices.size());
  Dataset out = make_dataset(n, d.channels, d.height, d.width);
  out.class_names = d.class_names;
  const int64_t chw = d.channels * d.height * d.width;
  for (int64_t j = 0; j < n; ++j) {
    const int64_t i = indices[static_cast<size_t>(j)];
    DUET_CHECK(i >= 0 && i < d.size(), "subset: index ", i, " is out of range [0, ", d.size(), ")");
    std::memcpy(out.images.data<uint8_t>() + j * chw, d.image(i), static_cast<size_t>(chw));
    out.labels.data<int32_t>()[j] = d.label(i);
  }
  return out;
}

namespace {

// A class name as a folder could spell it: lower case, letters and digits only.
std::string class_key(const std::string& name) {
  std::string key;
  for (unsigned char c : name)
    if (std::isalnum(c)) key += static_cast<char>(std::tolower(c));
  return key;
}

}  // namespace

std::string joined_class_names(const std::vector<std::string>& names) {
  std::string s;
  for (const auto& n : names) s += (s.empty() ? "" : ", ") + n;
  return s;
}

void match_classes(Dataset& d, const std::vector<std::string>& model_names,
                   const std::string& what) {
  const auto& names = d.class_names;
  const bool prefix = names.size() <= model_names.size() &&
                      std::equal(names.begin(), names.end(), model_names.begin());
  bool unnamed = names.size() <= model_names.size();
  for (size_t k = 0; unnamed && k < names.size(); ++k) unnamed = names[k] == std::to_string(k);
  if (prefix || unnamed) return;
  std::vector<int32_t> to_model(names.size(), -1);
  for (size_t k = 0; k < names.size(); ++k) {
    for (size_t m = 0; m < model_names.size() && to_model[k] < 0; ++m)
      if (names[k] == model_names[m]) to_model[k] = static_cast<int32_t>(m);
    for (size_t m = 0; m < model_names.size() && to_model[k] < 0; ++m)
      if (!class_key(names[k]).empty() && class_key(names[k]) == class_key(model_names[m]))
        to_model[k] = static_cast<int32_t>(m);
    if (to_model[k] < 0)
      fail_usage(what, ": class '", names[k], "' is none of the model's classes (",
                 joined_class_names(model_names), "); name the data's classes after them");
    for (size_t j = 0; j < k; ++j)
      if (to_model[j] == to_model[k])
        fail_usage(what, ": classes '", names[j], "' and '", names[k], "' both stand for the ",
                   "model's '", model_names[size_t(to_model[k])], "'");
  }
  Tensor labels = Tensor::empty(d.labels.shape(), DType::i32);
  for (int64_t i = 0; i < d.size(); ++i) labels.data<int32_t>()[i] = to_model[size_t(d.label(i))];
  d.labels = labels;
  d.class_names = model_names;
}

std::vector<int64_t> seeded_permutation(int64_t n, uint64_t seed, uint64_t stream) {
  std::vector<int64_t> p(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) p[static_cast<size_t>(i)] = i;
  Generator gen(splitmix64(seed ^ splitmix64(stream)));
  for (int64_t i = n - 1; i > 0; --i)
    std::swap(p[static_cast<size_t>(i)], p[gen.next_below(static_cast<uint64_t>(i) + 1)]);
  return p;
}

TrainValSplit split_validation(const Dataset& d, int64_t k, std::optional<uint64_t> seed) {
  DUET_CHECK(k >= 0 && k < d.size(), "validation split: ", k, " held-out images from a set of ",
             d.size(), "; expected 0 <= k < N");
  std::vector<int64_t> va;
  if (seed) {
    const std::vector<int64_t> p = seeded_permutation(d.size(), *seed, 0x76616cull);  // "val"
    va.assign(p.begin(), p.begin() + k);
    std::sort(va.begin(), va.end());
  } else {
    for (int64_t i = d.size() - k; i < d.size(); ++i) va.push_back(i);
  }
  std::vector<int64_t> tr;
  size_t j = 0;
  for (int64_t i = 0; i < d.size(); ++i) {
    if (j < va.size() && va[j] == i)
      ++j;
    else
      tr.push_back(i);
  }
  return {subset(d, tr), subset(d, va)};
}

std::vector<int64_t> class_counts(const Dataset& d) {
  std::vector<int64_t> counts(static_cast<size_t>(d.num_classes()), 0);
  for (int64_t i = 0; i < d.size(); ++i) {
    const int32_t l = d.label(i);
    DUET_CHECK(l >= 0 && l < d.num_classes(), "class_counts: label ", i, " is ", l,
               " out of range");
    ++counts[static_cast<size_t>(l)];
  }
  return counts;
}

}  // namespace duet::data
