#include "duet/data/dataset.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "duet/data/idx.h"
#include "duet/data/image.h"
#include "duet/tensor/error.h"
#include "temp_dir.h"

namespace duet::data {
namespace {

using test::TempDir;

TEST(Dataset, FolderWithMixedSizesAndChannels) {
  TempDir dir;
  const auto root = dir.path() / "root";
  // Class folders created in reverse order: the loader must sort them by name.
  std::filesystem::create_directories(root / "zebra");
  std::filesystem::create_directories(root / "apple");
  Image white_gray(10, 6, 1);
  std::fill(white_gray.pixels.begin(), white_gray.pixels.end(), 255);
  Image red_rgb(5, 9, 3);
  for (int64_t i = 0; i < 5 * 9; ++i) red_rgb.pixels[static_cast<size_t>(i * 3)] = 200;
  write_png((root / "zebra" / "b.png").string(), white_gray);
  write_jpeg((root / "zebra" / "a.JPG").string(), red_rgb, 95);
  write_png((root / "apple" / "x.png").string(), red_rgb);
  std::ofstream((root / "apple" / "notes.txt").string()) << "ignored";

  const Dataset d = load_folder(root.string(), 3, 8, 8);
  ASSERT_EQ(d.size(), 3);
  EXPECT_EQ(d.class_names, (std::vector<std::string>{"apple", "zebra"}));
  EXPECT_EQ(d.images.shape(), (Shape{3, 3, 8, 8}));
  // Order: apple/x.png, zebra/a.JPG, zebra/b.png.
  EXPECT_EQ(d.label(0), 0);
  EXPECT_EQ(d.label(1), 1);
  EXPECT_EQ(d.label(2), 1);
  const int64_t hw = 64;
  EXPECT_EQ(d.image(0)[0], 200);       // red channel of the PNG, exact
  EXPECT_EQ(d.image(0)[hw], 0);        // green
  EXPECT_NEAR(d.image(1)[5], 200, 8);  // red of the JPEG
  for (int64_t i = 0; i < 3 * hw; ++i) EXPECT_EQ(d.image(2)[i], 255);  // gray replicated

  // Gray, native size of the first image (5 x 9).
  const Dataset g = load_folder(root.string(), 1, 0, 0);
  EXPECT_EQ(g.images.shape(), (Shape{3, 1, 5, 9}));
  EXPECT_EQ(g.image(2)[0], 255);

  // Through the spec parser, with a train/test layout.
  std::filesystem::create_directories(dir.path() / "split" / "train" / "c");
  std::filesystem::create_directories(dir.path() / "split" / "test" / "c");
  write_png((dir.path() / "split" / "train" / "c" / "1.png").string(), white_gray);
  write_png((dir.path() / "split" / "train" / "c" / "2.png").string(), white_gray);
  write_png((dir.path() / "split" / "test" / "c" / "1.png").string(), white_gray);
  DataOptions opt;
  EXPECT_EQ(load_dataset("folder:" + (dir.path() / "split").string(), opt).size(), 2);
  opt.split = Split::test;
  EXPECT_EQ(load_dataset("folder:" + (dir.path() / "split").string(), opt).size(), 1);
}

TEST(Dataset, FolderWithCorruptImageNamesTheFile) {
  TempDir dir;
  std::filesystem::create_directories(dir.path() / "a");
  write_png(dir.file("a/ok.png"), Image(4, 4, 1));
  std::ofstream(dir.file("a/broken.png")) << "\x89PNG\r\n\x1a\n garbage";
  try {
    load_folder(dir.path().string(), 1, 4, 4);
    FAIL() << "expected an Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("broken.png"), std::string::npos) << e.what();
  }
}

void write_idx_pair(const TempDir& dir, const std::vector<uint8_t>& labels) {
  const int64_t n = static_cast<int64_t>(labels.size());
  std::vector<uint8_t> px(static_cast<size_t>(n * 4 * 3));
  for (size_t i = 0; i < px.size(); ++i) px[i] = static_cast<uint8_t>(i);
  write_idx(dir.file("im.gz"), {n, 4, 3}, px, true);
  write_idx(dir.file("lb"), {n}, labels, false);
}

TEST(Dataset, IdxSpecAndLabels) {
  TempDir dir;
  write_idx_pair(dir, {2, 0, 1, 2, 2});
  const Dataset d = load_dataset("idx:" + dir.file("im.gz") + "," + dir.file("lb"));
  EXPECT_EQ(d.images.shape(), (Shape{5, 1, 4, 3}));
  EXPECT_EQ(d.class_names, (std::vector<std::string>{"0", "1", "2"}));
  EXPECT_EQ(class_counts(d), (std::vector<int64_t>{1, 1, 3}));
  EXPECT_EQ(d.image(1)[0], 12);
  // Requested size and channels are applied to IDX data too.
  DataOptions opt;
  opt.channels = 3, opt.height = 8, opt.width = 6;
  EXPECT_EQ(load_dataset("idx:" + dir.file("im.gz") + "," + dir.file("lb"), opt).images.shape(),
            (Shape{5, 3, 8, 6}));
  // Named classes: a label past them is an Error.
  EXPECT_THROW(load_idx(dir.file("im.gz"), dir.file("lb"), {"a", "b"}), Error);
  // Count mismatch between the files.
  write_idx(dir.file("lb4"), {4}, std::vector<uint8_t>{0, 0, 0, 0}, false);
  EXPECT_THROW(load_idx(dir.file("im.gz"), dir.file("lb4")), Error);
}

TEST(Dataset, BadSpecsAreUsageErrors) {
  for (const std::string spec :
       {"mnist", "idx:onlyone", "idx:a,", "idx:,b", "idx:a,b,c", "folder:", "", "fashion-mnist:"}) {
    try {
      load_dataset(spec);
      ADD_FAILURE() << spec << " was accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::usage) << spec << ": " << e.what();
    }
  }
  // A well-formed spec whose files are missing is a runtime error.
  try {
    load_dataset("idx:/nonexistent/a,/nonexistent/b");
    ADD_FAILURE() << "accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::runtime);
  }
}

// An evaluation reads labels under the model's names: equal names or the unnamed "0".."K-1" keep
// the labels, names among the model's (spelled as a folder can) are remapped, others refused.
TEST(Dataset, MatchClassesToAModel) {
  const std::vector<std::string> model = {"T-shirt/top", "Trouser", "Bag"};
  auto make = [](std::vector<std::string> names, std::vector<int32_t> labels) {
    Dataset d;
    d.class_names = std::move(names);
    d.labels = Tensor::from_vector(labels, Shape{int64_t(labels.size())});
    return d;
  };
  auto labels_of = [](const Dataset& d) {
    return std::vector<int32_t>(d.labels.data<int32_t>(), d.labels.data<int32_t>() + d.size());
  };
  Dataset same = make({"T-shirt/top", "Trouser"}, {1, 0});
  match_classes(same, model, "test");
  EXPECT_EQ(labels_of(same), (std::vector<int32_t>{1, 0}));
  Dataset unnamed = make({"0", "1", "2"}, {2, 0, 1});
  match_classes(unnamed, model, "test");
  EXPECT_EQ(labels_of(unnamed), (std::vector<int32_t>{2, 0, 1}));
  EXPECT_EQ(unnamed.class_names, (std::vector<std::string>{"0", "1", "2"}));
  // Folders sort as "Bag", "tshirt_top": labels 0 and 1 there are 2 and 0 for the model.
  Dataset folder = make({"Bag", "tshirt_top"}, {0, 1, 1, 0});
  const Tensor shared = folder.labels;
  match_classes(folder, model, "test");
  EXPECT_EQ(labels_of(folder), (std::vector<int32_t>{2, 0, 0, 2}));
  EXPECT_EQ(folder.class_names, model);
  EXPECT_EQ(shared.data<int32_t>()[1], 1);  // a shallow copy's labels are left alone
  for (const auto& names : {std::vector<std::string>{"a", "b"},               // unknown
                            std::vector<std::string>{"bag", "Bag"},           // one class twice
                            std::vector<std::string>{"0", "1", "2", "3"}}) {  // more than known
    Dataset d = make(names, {0});
    try {
      match_classes(d, model, "eval: --data X");
      ADD_FAILURE() << names[0] << " accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.exit_code(), 2);
      EXPECT_EQ(std::string(e.what()).rfind("eval: --data X: class", 0), 0) << e.what();
    }
  }
}

TEST(Dataset, ValidationSplit) {
  TempDir dir;
  write_idx_pair(dir, {0, 1, 2, 0, 1, 2, 0, 1, 2, 0});
  const Dataset d = load_idx(dir.file("im.gz"), dir.file("lb"));
  const auto last = split_validation(d, 3);
  EXPECT_EQ(last.train.size(), 7);
  EXPECT_EQ(last.val.size(), 3);
  EXPECT_EQ(last.val.image(0)[0], d.image(7)[0]);
  EXPECT_EQ(last.val.class_names, d.class_names);

  const auto r1 = split_validation(d, 4, 42), r2 = split_validation(d, 4, 42);
  const auto r3 = split_validation(d, 4, 43);
  auto firsts = [](const Dataset& s) {
    std::vector<int> v;
    for (int64_t i = 0; i < s.size(); ++i) v.push_back(s.image(i)[0]);
    return v;
  };
  EXPECT_EQ(firsts(r1.val), firsts(r2.val));
  EXPECT_NE(firsts(r1.val), firsts(r3.val));
  // Train and val partition the set, each in original order.
  std::vector<int> all = firsts(r1.train);
  const std::vector<int> v = firsts(r1.val);
  EXPECT_TRUE(std::is_sorted(all.begin(), all.end()));
  EXPECT_TRUE(std::is_sorted(v.begin(), v.end()));
  all.insert(all.end(), v.begin(), v.end());
  std::sort(all.begin(), all.end());
  EXPECT_EQ(all, firsts(d));
  EXPECT_THROW(split_validation(d, 10), Error);
}

TEST(Dataset, FashionMnist) {
  const std::string dir = fashion_mnist_dir();
  if (!std::filesystem::exists(dir + "/train-labels-idx1-ubyte.gz") &&
      !std::filesystem::exists(dir + "/train-labels-idx1-ubyte"))
    GTEST_SKIP() << "Fashion-MNIST not installed at " << dir;
  const Dataset train = load_dataset("fashion-mnist");
  EXPECT_EQ(train.images.shape(), (Shape{60000, 1, 28, 28}));
  EXPECT_EQ(train.class_names, fashion_mnist_classes());
  EXPECT_EQ(train.class_names[0], "T-shirt/top");
  EXPECT_EQ(train.class_names[9], "Ankle boot");
  EXPECT_EQ(class_counts(train), std::vector<int64_t>(10, 6000));
  DataOptions opt;
  opt.split = Split::test;
  const Dataset test = load_dataset("fashion-mnist", opt);
  EXPECT_EQ(test.size(), 10000);
  EXPECT_EQ(class_counts(test), std::vector<int64_t>(10, 1000));
}

}  // namespace
}  // namespace duet::data
