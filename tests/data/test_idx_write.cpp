// The atomic IDX writer (data/idx_write.h) against the reader (data/idx.h): files round-trip
// byte for byte, data sets round-trip through `--data idx:` with their class names from a
// meta.json, and bad dimensions, overflowing counts and unwritable paths are errors that name the
// path and leave the destination as it was.
#include "../harness/error_capture.h"
#include "duet/data/idx_write.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "duet/data/dataset.h"
#include "duet/data/idx.h"
#include "duet/tensor/error.h"
#include "temp_dir.h"

namespace duet::data {
namespace {

namespace fs = std::filesystem;
using test::TempDir;

using duet::test::error_of;

std::vector<uint8_t> file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// No temp files left behind in `dir` (the writer's ".<name>.tmp.*").
size_t entries(const fs::path& dir) {
  size_t n = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir)) ++n;
  return n;
}

TEST(IdxWrite, FileRoundTripsThroughTheReader) {
  TempDir dir;
  std::vector<uint8_t> data(4 * 3 * 5);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(i * 7 + 1);
  write_idx_file(dir.file("a.idx"), {4, 3, 5}, data);
  const IdxArray a = read_idx(dir.file("a.idx"));
  EXPECT_EQ(a.dims, (std::vector<int64_t>{4, 3, 5}));
  EXPECT_EQ(a.data, data);
  // The exact bytes of the format: magic 0 0 8 rank, big-endian dimensions, then the data.
  const std::vector<uint8_t> bytes = file_bytes(dir.file("a.idx"));
  ASSERT_EQ(bytes.size(), 4u + 12u + data.size());
  EXPECT_EQ(std::vector<uint8_t>(bytes.begin(), bytes.begin() + 16),
            (std::vector<uint8_t>{0, 0, 8, 3, 0, 0, 0, 4, 0, 0, 0, 3, 0, 0, 0, 5}));
  // A dimension above 2^16 exercises every header byte.
  std::vector<uint8_t> labels(70000);
  for (size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<uint8_t>(i % 10);
  write_idx_file(dir.file("l.idx"), {70000}, labels);
  const IdxArray l = read_idx(dir.file("l.idx"));
  EXPECT_EQ(l.dims, (std::vector<int64_t>{70000}));
  EXPECT_EQ(l.data, labels);
  EXPECT_EQ(entries(dir.path()), 2u);
}

TEST(IdxWrite, DatasetRoundTripsWithClassNamesFromMetaJson) {
  TempDir dir;
  Dataset d;
  d.channels = 1, d.height = 6, d.width = 5;
  d.class_names = {"cat", "dog", "owl"};
  d.images = Tensor::empty(Shape{7, 1, 6, 5}, DType::u8);
  d.labels = Tensor::empty(Shape{7}, DType::i32);
  for (int64_t i = 0; i < d.images.numel(); ++i)
    d.images.data<uint8_t>()[i] = static_cast<uint8_t>(i % 253);
  for (int64_t i = 0; i < 7; ++i) d.labels.data<int32_t>()[i] = static_cast<int32_t>(i % 2);
  const std::string im = dir.file("train-images-idx3-ubyte");
  const std::string lb = dir.file("train-labels-idx1-ubyte");
  write_idx_dataset(d, im, lb);

  // Without meta.json the names are the label numbers up to the largest label.
  const std::string spec = "idx:" + im + "," + lb;
  Dataset back = load_dataset(spec);
  EXPECT_EQ(back.class_names, (std::vector<std::string>{"0", "1"}));
  ASSERT_EQ(back.images.shape(), d.images.shape());
  EXPECT_EQ(file_bytes(im).size(), 16u + 7 * 6 * 5);
  for (int64_t i = 0; i < d.images.numel(); ++i)
    ASSERT_EQ(back.images.data<uint8_t>()[i], d.images.data<uint8_t>()[i]) << i;
  for (int64_t i = 0; i < 7; ++i) EXPECT_EQ(back.label(i), d.label(i));

  // With a meta.json next to the images its class names win (also a third, unused class).
  std::ofstream(dir.file("meta.json")) << R"({"class_names": ["cat", "dog", "owl"], "seed": 3})";
  EXPECT_EQ(load_dataset(spec).class_names, d.class_names);
  // A meta.json without names changes nothing; a broken one is an error naming it.
  std::ofstream(dir.file("meta.json")) << R"({"seed": 3})";
  EXPECT_EQ(load_dataset(spec).class_names, (std::vector<std::string>{"0", "1"}));
  std::ofstream(dir.file("meta.json")) << R"({"class_names": [1, 2]})";
  EXPECT_NE(error_of([&] { load_dataset(spec); }).find("meta.json: class_names"),
            std::string::npos);
  std::ofstream(dir.file("meta.json")) << "{not json";
  EXPECT_NE(error_of([&] { load_dataset(spec); }).find("meta.json: not valid JSON"),
            std::string::npos);
  // Names that do not cover every label are refused by the loader.
  std::ofstream(dir.file("meta.json")) << R"({"class_names": ["cat"]})";
  EXPECT_THROW(load_dataset(spec), Error);
}

TEST(IdxWrite, BadDimensionsAndOverflowAreErrorsNamingThePath) {
  TempDir dir;
  const std::string p = dir.file("bad.idx");
  const std::vector<uint8_t> six(6, 1);
  std::string msg = error_of([&] { write_idx_file(p, {2, 2}, six); });
  EXPECT_NE(msg.find("bad.idx: the dimensions hold 4 bytes but 6 were given"), std::string::npos)
      << msg;
  msg = error_of([&] { write_idx_file(p, {6, 0}, six); });
  EXPECT_NE(msg.find("bad.idx: dimension 1 is 0"), std::string::npos) << msg;
  msg = error_of([&] { write_idx_file(p, {}, six); });
  EXPECT_NE(msg.find("bad.idx: rank: 0"), std::string::npos) << msg;
  msg = error_of([&] { write_idx_file(p, {1, 1, 1, 1, 6}, six); });
  EXPECT_NE(msg.find("bad.idx: rank: 5"), std::string::npos) << msg;
  msg = error_of([&] { write_idx_file(p, {int64_t{1} << 32}, six); });
  EXPECT_NE(msg.find("dimension 0 is 4294967296"), std::string::npos) << msg;
  // (2^32 - 1)^2 already passes the reader's 2^48-byte bound: refused before any byte is compared
  // or written.
  msg = error_of([&] { write_idx_file(p, {0xFFFFFFFFll, 0xFFFFFFFFll, 0xFFFFFFFFll}, six); });
  EXPECT_NE(msg.find("bad.idx: dimensions overflow the element count at dimension 1"),
            std::string::npos)
      << msg;
  EXPECT_FALSE(fs::exists(p));
  EXPECT_EQ(entries(dir.path()), 0u);
}

TEST(IdxWrite, MissingFolderIsAnErrorAndAFailedWriteKeepsTheOldFile) {
  TempDir dir;
  const std::string missing = dir.file("no/such/folder/x.idx");
  const std::string msg = error_of([&] { write_idx_file(missing, {3}, std::vector<uint8_t>(3)); });
  EXPECT_NE(msg.find(missing), std::string::npos) << msg;
  EXPECT_FALSE(fs::exists(dir.file("no")));

  // A rejected write leaves the previous file byte for byte.
  const std::string p = dir.file("keep.idx");
  write_idx_file(p, {3}, std::vector<uint8_t>{1, 2, 3});
  const auto before = file_bytes(p);
  EXPECT_THROW(write_idx_file(p, {4}, std::vector<uint8_t>{9, 9}), Error);
  EXPECT_EQ(file_bytes(p), before);
  // And a successful one replaces it whole.
  write_idx_file(p, {2}, std::vector<uint8_t>{7, 8});
  EXPECT_EQ(read_idx(p).data, (std::vector<uint8_t>{7, 8}));
  EXPECT_EQ(entries(dir.path()), 1u);
}

TEST(IdxWrite, DatasetsThatDoNotFitIdxAreRefused) {
  TempDir dir;
  Dataset rgb;
  rgb.channels = 3, rgb.height = 2, rgb.width = 2;
  rgb.class_names = {"a"};
  rgb.images = Tensor::zeros(Shape{1, 3, 2, 2}, DType::u8);
  rgb.labels = Tensor::zeros(Shape{1}, DType::i32);
  EXPECT_NE(
      error_of([&] { write_idx_dataset(rgb, dir.file("i"), dir.file("l")); }).find("one channel"),
      std::string::npos);
  EXPECT_FALSE(fs::exists(dir.file("i")));
}

}  // namespace
}  // namespace duet::data
