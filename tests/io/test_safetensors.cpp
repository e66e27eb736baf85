#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "duet/io/atomic_file.h"
#include "duet/io/safetensors.h"
#include "duet/tensor/error.h"

using namespace duet;
using namespace duet::io;
namespace fs = std::filesystem;

namespace {

// A fresh folder per test, removed afterwards, so tests can count what a write leaves behind.
class TempDir {
 public:
  TempDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = fs::temp_directory_path() /
            (std::string("duet_io_") + info->name() + "_" + std::to_string(::getpid()));
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  std::vector<std::string> listing() const {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(path_)) names.push_back(e.path().filename());
    std::sort(names.begin(), names.end());
    return names;
  }

 private:
  fs::path path_;
};

std::vector<std::byte> random_bytes(size_t n, uint32_t seed, bool boolean = false) {
  std::mt19937 gen(seed);
  std::vector<std::byte> out(n);
  for (auto& b : out) b = static_cast<std::byte>(boolean ? gen() & 1u : gen() & 0xffu);
  return out;
}

std::vector<std::byte> read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<char> chars((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::byte> out(chars.size());
  std::memcpy(out.data(), chars.data(), chars.size());
  return out;
}

bool same_bytes(std::span<const std::byte> a, const std::vector<std::byte>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size()) == 0);
}

// Runs `fn`, expecting a duet::Error; returns its message ("" and a test failure otherwise).
template <class Fn>
std::string error_of(Fn&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected duet::Error, got another exception: " << e.what();
    return "";
  }
  ADD_FAILURE() << "expected duet::Error, nothing was thrown";
  return "";
}

constexpr DType kAllDTypes[] = {
    DType::f32, DType::f16, DType::bf16,    DType::f64,     DType::i64,
    DType::i32, DType::i16, DType::i8,      DType::u8,      DType::u16,
    DType::u32, DType::u64, DType::boolean, DType::f8_e4m3, DType::f8_e5m2,
};

}  // namespace

TEST(Safetensors, RoundTripsEveryDtype) {
  TempDir dir;
  const std::vector<std::vector<int64_t>> shapes = {{3, 5}, {7}, {2, 1, 3}, {13}};
  std::vector<std::vector<std::byte>> payloads;
  std::vector<SafetensorsWriteEntry> entries;
  payloads.reserve(std::size(kAllDTypes));
  for (size_t i = 0; i < std::size(kAllDTypes); ++i) {
    const DType t = kAllDTypes[i];
    const auto& shape = shapes[i % shapes.size()];
    int64_t numel = 1;
    for (int64_t d : shape) numel *= d;
    payloads.push_back(random_bytes(numel * dtype_size(t), 100 + i, t == DType::boolean));
    // Names out of alphabetical order: the file must keep the order given.
    std::string name = "t";
    name += std::to_string(std::size(kAllDTypes) - i);
    name += '.';
    name += dtype_name(t);
    entries.push_back({name, t, shape, payloads.back().data(), payloads.back().size()});
  }
  const std::map<std::string, std::string> meta = {
      {"format", "duet"}, {"config", R"({"arch": "resnet20", "width": [16, 32]})"}, {"empty", ""}};
  const std::string path = dir.file("all.safetensors");
  save_safetensors(path, entries, meta);

  const auto image = read_all(path);
  ASSERT_GE(image.size(), 8u);
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | std::to_integer<uint64_t>(image[i]);
  EXPECT_EQ(header_len % 8, 0u) << "data must start 8-byte aligned";
  EXPECT_EQ(std::to_integer<char>(image[8]), '{');

  const auto file = SafetensorsFile::load(path);
  EXPECT_EQ(file.path(), path);
  EXPECT_EQ(file.metadata(), meta);
  ASSERT_EQ(file.entries().size(), entries.size());
  for (size_t i = 0; i < entries.size(); ++i) {
    const auto& e = file.entries()[i];
    SCOPED_TRACE(entries[i].name);
    EXPECT_EQ(e.name, entries[i].name);
    EXPECT_EQ(e.dtype, entries[i].dtype);
    EXPECT_EQ(e.shape, entries[i].shape);
    EXPECT_EQ(e.nbytes, payloads[i].size());
    EXPECT_TRUE(same_bytes(file.bytes(e), payloads[i]));
    EXPECT_EQ(file.find(e.name), &e);
    EXPECT_EQ(&file.at(e.name), &e);
  }
  // The in-memory image is byte-identical to the file and parses the same.
  EXPECT_EQ(serialize_safetensors(entries, meta), image);
  const auto mem = SafetensorsFile::from_bytes(image, "image");
  EXPECT_EQ(mem.entries().size(), entries.size());
  EXPECT_TRUE(same_bytes(mem.bytes(mem.at(entries[3].name)), payloads[3]));
}

TEST(Safetensors, ScalarAndZeroSizeTensors) {
  TempDir dir;
  const float scalar = 2.5f;
  const auto tail = random_bytes(4 * 5, 7);
  const std::vector<SafetensorsWriteEntry> entries = {
      {"empty_first", DType::f32, {0}, nullptr, 0},
      {"scalar", DType::f32, {}, &scalar, sizeof(scalar)},
      {"empty_mid", DType::i64, {3, 0, 2}, nullptr, 0},
      {"tail", DType::f32, {5}, tail.data(), tail.size()},
      {"empty_last", DType::u8, {0, 4}, nullptr, 0},
  };
  const std::string path = dir.file("edge.safetensors");
  save_safetensors(path, entries);
  const auto file = SafetensorsFile::load(path);
  EXPECT_TRUE(file.metadata().empty());
  ASSERT_EQ(file.entries().size(), entries.size());
  for (size_t i = 0; i < entries.size(); ++i) {
    EXPECT_EQ(file.entries()[i].name, entries[i].name);
    EXPECT_EQ(file.entries()[i].shape, entries[i].shape);
    EXPECT_EQ(file.entries()[i].nbytes, entries[i].nbytes);
  }
  const auto& s = file.at("scalar");
  EXPECT_TRUE(s.shape.empty());
  EXPECT_EQ(s.numel(), 1);
  float back = 0;
  ASSERT_EQ(file.bytes(s).size(), sizeof(float));
  std::memcpy(&back, file.bytes(s).data(), sizeof(float));
  EXPECT_EQ(back, scalar);
  EXPECT_EQ(file.at("empty_mid").numel(), 0);
  EXPECT_TRUE(file.bytes(file.at("empty_mid")).empty());
  EXPECT_TRUE(same_bytes(file.bytes(file.at("tail")), tail));

  // A file with no tensors at all is valid too.
  save_safetensors(dir.file("none.safetensors"), {}, {{"k", "v"}});
  const auto none = SafetensorsFile::load(dir.file("none.safetensors"));
  EXPECT_TRUE(none.entries().empty());
  EXPECT_EQ(none.metadata().at("k"), "v");
}

TEST(Safetensors, DataIsAlignedAndLookupsFail) {
  std::vector<float> a(13, 1.0f), b(7, 2.0f);
  const auto image = serialize_safetensors(
      {{"a", DType::f32, {13}, a.data(), a.size() * 4}, {"b", DType::f32, {7}, b.data(), 28}});
  const auto file = SafetensorsFile::from_bytes(image, "mem.safetensors");
  EXPECT_EQ(reinterpret_cast<uintptr_t>(file.bytes(file.at("a")).data()) % 64, 0u);
  EXPECT_EQ(file.find("c"), nullptr);
  const std::string msg = error_of([&] { (void)file.at("c"); });
  EXPECT_NE(msg.find("mem.safetensors"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'c'"), std::string::npos) << msg;
  // An entry that does not belong to this file is refused instead of read out of bounds.
  SafetensorsEntry foreign = file.at("b");
  foreign.offset = 1000;
  EXPECT_NE(error_of([&] { (void)file.bytes(foreign); }).find("not inside"), std::string::npos);
}

TEST(Safetensors, EntriesFollowDataOrderNotHeaderOrder) {
  // Other writers may list header keys in any order; entries() follows the data offsets.
  const std::string header =
      R"({"second":{"dtype":"U8","shape":[2],"data_offsets":[1,3]},)"
      R"("__metadata__":{"m":"1"},"first":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}})";
  std::vector<std::byte> image(8 + header.size() + 3);
  for (int i = 0; i < 8; ++i) image[i] = static_cast<std::byte>((header.size() >> (8 * i)) & 0xff);
  std::memcpy(image.data() + 8, header.data(), header.size());
  image[8 + header.size()] = std::byte{9};
  const auto file = SafetensorsFile::from_bytes(image, "order");
  ASSERT_EQ(file.entries().size(), 2u);
  EXPECT_EQ(file.entries()[0].name, "first");
  EXPECT_EQ(file.entries()[1].name, "second");
  EXPECT_EQ(file.bytes(file.entries()[0])[0], std::byte{9});
}

TEST(Safetensors, ErrorsStayOnOneLine) {
  // A name with a newline (legal JSON via an escape) must not split the error message.
  const std::string header = R"({"a\nb":5})";
  std::vector<std::byte> image(8 + header.size());
  image[0] = static_cast<std::byte>(header.size());
  std::memcpy(image.data() + 8, header.data(), header.size());
  const std::string msg = error_of([&] { (void)SafetensorsFile::from_bytes(image, "nl"); });
  EXPECT_NE(msg.find("tensor 'a\\x0ab'"), std::string::npos) << msg;
  EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
}

TEST(Safetensors, AtomicWriteLeavesNoTempFile) {
  TempDir dir;
  const std::string path = dir.file("model.safetensors");
  std::vector<float> v1(10, 1.0f), v2(20, 2.0f);
  save_safetensors(path, {{"w", DType::f32, {10}, v1.data(), 40}});
  EXPECT_EQ(dir.listing(), std::vector<std::string>{"model.safetensors"});
  // Overwriting replaces the content in one step and still leaves only the destination.
  save_safetensors(path, {{"w", DType::f32, {4, 5}, v2.data(), 80}});
  EXPECT_EQ(dir.listing(), std::vector<std::string>{"model.safetensors"});
  EXPECT_EQ(SafetensorsFile::load(path).at("w").shape, (std::vector<int64_t>{4, 5}));

  // A writer abandoned before commit() (an exception on the way) removes its temp file.
  {
    AtomicFileWriter w(dir.file("other.bin"));
    w.write("abc", 3);
    EXPECT_EQ(dir.listing().size(), 2u);
  }
  EXPECT_EQ(dir.listing(), std::vector<std::string>{"model.safetensors"});

  // Invalid input is refused before anything touches the disk.
  const std::string msg = error_of([&] {
    save_safetensors(dir.file("bad.safetensors"), {{"w", DType::f32, {3}, v1.data(), 8}});
  });
  EXPECT_NE(msg.find("bad.safetensors"), std::string::npos) << msg;
  EXPECT_EQ(dir.listing(), std::vector<std::string>{"model.safetensors"});

  // A missing folder is an error naming the path, not a crash.
  const std::string missing = dir.file("no/such/dir/x.safetensors");
  EXPECT_NE(error_of([&] { save_safetensors(missing, {}); }).find(missing), std::string::npos);
  write_file_atomic(dir.file("raw.bin"), std::span<const std::byte>(random_bytes(5, 1)));
  EXPECT_EQ(read_all(dir.file("raw.bin")), random_bytes(5, 1));
}

TEST(Safetensors, WriterValidates) {
  std::vector<float> v(6, 0.0f);
  auto rejects = [&](const std::vector<SafetensorsWriteEntry>& entries, const std::string& what) {
    const std::string msg = error_of([&] { (void)serialize_safetensors(entries); });
    EXPECT_NE(msg.find(what), std::string::npos) << "message: " << msg;
  };
  rejects({{"w", DType::f32, {2, 3}, v.data(), 20}}, "needs 24");
  rejects({{"w", DType::f32, {6}, v.data(), 24}, {"w", DType::f32, {6}, v.data(), 24}},
          "duplicate");
  rejects({{"w", DType::f32, {-2, -3}, v.data(), 24}}, "negative");
  rejects({{"__metadata__", DType::f32, {6}, v.data(), 24}}, "reserved");
  rejects({{"w", DType::f32, {6}, nullptr, 24}}, "null");
  rejects({{"w", DType::u8, {int64_t{1} << 62, 8}, v.data(), 24}}, "overflows");
  rejects({{"bad\xff", DType::f32, {6}, v.data(), 24}}, "encode");
}

TEST(Safetensors, MissingFileAndFolder) {
  TempDir dir;
  const std::string missing = dir.file("absent.safetensors");
  EXPECT_NE(error_of([&] { (void)SafetensorsFile::load(missing); }).find(missing),
            std::string::npos);
  EXPECT_NE(error_of([&] { (void)SafetensorsFile::load(dir.file("")); }).find("regular file"),
            std::string::npos);
}

// Each committed malformed file and the field its error must name.
TEST(Safetensors, RejectsMalformedFiles) {
  const std::map<std::string, std::string> expected = {
      {"truncated", "shorter than the 8-byte"},
      {"header_too_long", "exceeds the limit of 100000000"},
      {"header_beyond_file", "header length 1000 exceeds"},
      {"empty_header", "not valid JSON"},
      {"bad_json", "not valid JSON"},
      {"bad_utf8", "not valid JSON"},
      {"number_overflow", "not valid JSON: number overflow"},
      {"header_not_object", "header is an array, expected a JSON object"},
      {"deep_nesting", "nests deeper"},
      {"metadata_not_object", "__metadata__ is an array"},
      {"metadata_not_strings", "__metadata__ 'epoch' is an integer"},
      {"duplicate_key", "duplicate key 'w'"},
      {"entry_not_object", "tensor 'w': header entry is an integer"},
      {"missing_dtype", "tensor 'w': missing field 'dtype'"},
      {"missing_shape", "tensor 'w': missing field 'shape'"},
      {"missing_offsets", "tensor 'w': missing field 'data_offsets'"},
      {"dtype_not_string", "tensor 'w': dtype is an integer"},
      {"unknown_dtype", "tensor 'w': unknown dtype 'F31'"},
      {"shape_not_array", "tensor 'w': shape is a string"},
      {"negative_dim", "tensor 'w': shape[0] is negative (-1)"},
      {"float_dim", "tensor 'w': shape[0] is a float"},
      {"dim_too_large", "tensor 'w': shape[0] = 18446744073709551615 does not fit"},
      {"size_overflow", "tensor 'w': shape [4611686018427387904,4] x F32 overflows"},
      {"size_mismatch", "tensor 'w': data_offsets [0, 100] but shape [3,3] x F32 needs 36 bytes"},
      {"offsets_wrong_length", "tensor 'w': data_offsets is an array of 1 values"},
      {"negative_offset", "tensor 'w': data_offsets[0] is an integer below 0"},
      {"offsets_reversed", "tensor 'w': data_offsets [8, 0] has begin > end"},
      {"offsets_beyond_buffer", "tensor 'w': data_offsets [0, 64] end beyond the data buffer"},
      {"overlapping_offsets", "tensor 'b': data_offsets [8, 24] overlap tensor 'a'"},
      {"gap_in_offsets", "tensor 'b': data_offsets [12, 20] leave a gap of 4 bytes"},
      {"offsets_not_from_zero",
       "tensor 'w': data_offsets [4, 12] leave a gap of 4 bytes after "
       "the header"},
      {"trailing_bytes", "data_offsets cover 8 bytes but the data buffer has 12"},
  };
  const fs::path folder = fs::path(DUET_SOURCE_DIR) / "tests/io/malformed";
  std::set<std::string> seen;
  for (const auto& f : fs::directory_iterator(folder)) {
    if (f.path().extension() != ".safetensors") continue;
    const std::string stem = f.path().stem();
    SCOPED_TRACE(stem);
    seen.insert(stem);
    const auto it = expected.find(stem);
    ASSERT_NE(it, expected.end()) << "add a row for " << f.path() << " to this test";
    const std::string msg = error_of([&] { (void)SafetensorsFile::load(f.path().string()); });
    EXPECT_NE(msg.find(f.path().filename().string() + ": "), std::string::npos) << msg;
    EXPECT_NE(msg.find(it->second), std::string::npos) << "message: " << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << "one line: " << msg;
    // The in-memory path applies the same checks.
    const auto image = read_all(f.path().string());
    const std::string mem = error_of([&] { (void)SafetensorsFile::from_bytes(image, "m"); });
    EXPECT_NE(mem.find(it->second), std::string::npos) << "message: " << mem;
  }
  EXPECT_EQ(seen.size(), expected.size()) << "a file listed here is missing from " << folder;
}

TEST(Safetensors, CorruptedImagesNeverCrash) {
  std::vector<float> a(5, 1.0f);
  std::vector<int64_t> b(3, 7);
  const auto good = serialize_safetensors(
      {{"a", DType::f32, {5}, a.data(), 20}, {"b", DType::i64, {3}, b.data(), 24}}, {{"k", "v"}});
  // Every truncation breaks the exact tiling of the data buffer, so each must be refused.
  for (size_t n = 0; n < good.size(); ++n) {
    const std::span<const std::byte> cut(good.data(), n);
    EXPECT_FALSE(error_of([&] { (void)SafetensorsFile::from_bytes(cut, "cut"); }).empty()) << n;
  }
  // Single-byte corruptions anywhere in the length or header either still parse or are refused
  // with duet::Error; anything else (crash, other exception) fails the test.
  const size_t header_end = good.size() - 44;
  const int values[] = {0x00, 0x01, 0x20, 0x22, 0x2d, 0x30, 0x39, 0x5b, 0x7b, 0x7d, 0x80, 0xff};
  for (size_t pos = 0; pos < header_end; ++pos) {
    for (int v : values) {
      auto bad = good;
      bad[pos] = static_cast<std::byte>(v);
      try {
        (void)SafetensorsFile::from_bytes(bad, "flip");
      } catch (const Error&) {
      }
    }
  }
}

// The PyTorch-side goldens (tests/golden/make_golden.py) are files written by another
// implementation of the format; they must load and carry the names the nn tests will need.
TEST(Safetensors, ReadsGoldenFilesWrittenByPython) {
  struct Golden {
    const char* file;
    std::vector<int64_t> input, output;
    std::vector<std::string> params;
  };
  const Golden goldens[] = {
      {"resnet_basic_block.safetensors",
       {2, 8, 10, 10},
       {2, 16, 5, 5},
       {"conv1.weight", "bn1.weight", "bn1.bias", "conv2.weight", "bn2.weight", "bn2.bias",
        "shortcut.0.weight", "shortcut.1.weight", "shortcut.1.bias"}},
      {"gn_silu_conv_block.safetensors",
       {2, 16, 7, 7},
       {2, 8, 7, 7},
       {"norm.weight", "norm.bias", "conv.weight", "conv.bias"}},
  };
  for (const auto& g : goldens) {
    SCOPED_TRACE(g.file);
    const auto file =
        SafetensorsFile::load((fs::path(DUET_SOURCE_DIR) / "tests/golden" / g.file).string());
    EXPECT_EQ(file.metadata().at("generator"), "tests/golden/make_golden.py");
    EXPECT_EQ(file.metadata().count("torch"), 1u);
    EXPECT_EQ(file.at("input").shape, g.input);
    EXPECT_EQ(file.at("grad.input").shape, g.input);
    EXPECT_EQ(file.at("output").shape, g.output);
    EXPECT_EQ(file.at("grad_output").shape, g.output);
    for (const auto& p : g.params) {
      EXPECT_EQ(file.at(p).dtype, DType::f32) << p;
      EXPECT_EQ(file.at("grad." + p).shape, file.at(p).shape) << p;
    }
  }
  // Known facts: the block ends in ReLU, and one train-mode forward bumps the BN counters by one.
  const auto res = SafetensorsFile::load(
      (fs::path(DUET_SOURCE_DIR) / "tests/golden/resnet_basic_block.safetensors").string());
  const auto out = res.bytes(res.at("output"));
  std::vector<float> values(out.size() / 4);
  std::memcpy(values.data(), out.data(), out.size());
  EXPECT_GE(*std::min_element(values.begin(), values.end()), 0.0f);
  EXPECT_GT(*std::max_element(values.begin(), values.end()), 0.0f);
  for (const char* bn : {"bn1", "bn2", "shortcut.1"}) {
    const auto& before = res.at(std::string(bn) + ".num_batches_tracked");
    const auto& after = res.at(std::string("after.") + bn + ".num_batches_tracked");
    ASSERT_EQ(before.dtype, DType::i64);
    ASSERT_TRUE(before.shape.empty());
    int64_t b = 0, a = 0;
    std::memcpy(&b, res.bytes(before).data(), 8);
    std::memcpy(&a, res.bytes(after).data(), 8);
    EXPECT_EQ(a, b + 1) << bn;
  }
}
