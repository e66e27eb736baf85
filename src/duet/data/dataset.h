// In-memory labelled image sets for training and evaluation: u8 images [N, C, H, W] and int32
// labels [N], with class names. Loaders for Fashion-MNIST, raw IDX pairs and image folders, one
// parser for the CLI's --data spec, and a held-out validation split.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "duet/tensor/tensor.h"

namespace duet::data {

// Copies are shallow: they share the image and label storage (use subset() for a deep copy).
struct Dataset {
  Tensor images;  // u8 [N, C, H, W]
  Tensor labels;  // i32 [N], each in [0, class_names.size())
  std::vector<std::string> class_names;
  int64_t channels = 0, height = 0, width = 0;

  int64_t size() const { return labels.defined() ? labels.dim(0) : 0; }
  int64_t num_classes() const { return static_cast<int64_t>(class_names.size()); }
  const uint8_t* image(int64_t i) const {
    return images.data<uint8_t>() + i * channels * height * width;
  }
  int32_t label(int64_t i) const { return labels.data<int32_t>()[i]; }
};

// Throws duet::Error unless shapes agree and every label is in [0, num_classes); `what` names the
// source in the message.
void validate(const Dataset& d, const std::string& what);

// The Fashion-MNIST class names, in label order.
const std::vector<std::string>& fashion_mnist_classes();

// $DUET_DATA when set, else /usr/share/datasets/fashion-mnist.
std::string fashion_mnist_dir();

enum class Split { train, test };

// Loads Fashion-MNIST (train: 60000, test: 10000 images, 1 x 28 x 28) from `dir` (the *-idx*-ubyte
// files, gzipped or not); an empty dir means fashion_mnist_dir().
Dataset load_fashion_mnist(Split split, const std::string& dir = "");

// An IDX image file [N, H, W] and label file [N]. Class names are "0".."K-1" with K = max label
// + 1, or `class_names` when given (labels beyond it are an Error).
Dataset load_idx(const std::string& images_path, const std::string& labels_path,
                 const std::vector<std::string>& class_names = {});

// The "class_names" of a meta.json in IMAGES' folder (what `duet synth` writes next to its IDX
// pair); empty when there is no such file or field. Error naming the file when it is not JSON or
// the field is not an array of strings.
std::vector<std::string> idx_meta_class_names(const std::string& images_path);

// ROOT/<class>/*.png|jpg|jpeg (case-insensitive extensions), classes sorted by name, files sorted
// by name. Every image is converted to `channels` and resized to height x width; zeros mean "as
// the first image" (in that sorted order). Files with other extensions are ignored.
Dataset load_folder(const std::string& root, int64_t channels = 0, int64_t height = 0,
                    int64_t width = 0);

// Resizes / converts every image of `d` to channels x height x width (0 keeps that property).
Dataset conform(const Dataset& d, int64_t channels, int64_t height, int64_t width);

struct DataOptions {
  Split split = Split::train;
  int64_t channels = 0, height = 0, width = 0;  // 0: the data set's own
};

// Parses the --data spec and loads it:
//   fashion-mnist[:DIR]     Fashion-MNIST (split from options)
//   idx:IMAGES,LABELS       an IDX pair (split ignored); class names from a meta.json next to
//                           IMAGES (its "class_names", as `duet synth` writes) when present
//   folder:ROOT             an image folder; when ROOT has train/ and test/ subfolders the split
//                           picks one
// Bad specs throw a usage Error (exit code 2); unreadable data a runtime Error.
Dataset load_dataset(const std::string& spec, const DataOptions& options = {});

// The images at `indices`, in that order (a copy).
Dataset subset(const Dataset& d, const std::vector<int64_t>& indices);

// Gives `d` the label indices of a model whose classes are `model_names`, so that an evaluation
// compares like with like. Kept as they are: the same names in the same order (a prefix of them
// too), or the unnamed "0".."K-1" of an IDX pair without meta.json (K <= the model's count).
// Remapped: names that are each one of the model's, in any order; a folder cannot be called
// "T-shirt/top", so names match ignoring case and everything but letters and digits
// ("tshirt_top" is "T-shirt/top"). Anything else is a usage Error naming `what` and the classes:
// never labels read by position under the wrong names.
void match_classes(Dataset& d, const std::vector<std::string>& model_names,
                   const std::string& what);

// "a, b, c": class names for messages.
std::string joined_class_names(const std::vector<std::string>& names);

struct TrainValSplit {
  Dataset train, val;
};
// Holds out `k` images for validation: the last k when `seed` is empty, else k chosen by a
// Philox permutation of that seed. Both parts keep the original order of their images.
TrainValSplit split_validation(const Dataset& d, int64_t k, std::optional<uint64_t> seed = {});

// A permutation of [0, n) from Fisher-Yates over Philox draws keyed by (seed, stream): the same
// on every machine and thread count.
std::vector<int64_t> seeded_permutation(int64_t n, uint64_t seed, uint64_t stream);

// Number of images per class, indexed by label.
std::vector<int64_t> class_counts(const Dataset& d);

}  // namespace duet::data
