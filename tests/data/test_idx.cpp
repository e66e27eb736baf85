#include "../harness/error_capture.h"
#include "duet/data/idx.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <fstream>

#include "duet/data/image.h"
#include "temp_dir.h"

namespace duet::data {
namespace {

using test::TempDir;

std::vector<uint8_t> pattern(size_t n) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>((i * 37 + 11) % 251);
  return v;
}

void write_bytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
}

using duet::test::error_of;

TEST(Idx, RoundTripPlainAndGzip) {
  TempDir dir;
  const std::vector<uint8_t> data = pattern(5 * 7 * 3);
  for (bool gz : {false, true}) {
    const std::string path = dir.file(gz ? "img.idx3.gz" : "img.idx3");
    write_idx(path, {5, 7, 3}, data, gz);
    const IdxArray a = read_idx(path);
    EXPECT_EQ(a.dims, (std::vector<int64_t>{5, 7, 3}));
    EXPECT_EQ(a.data, data);
    const Tensor t = read_idx_images(path);
    EXPECT_EQ(t.shape(), (Shape{5, 7, 3}));
    EXPECT_EQ(t.data<uint8_t>()[20], data[20]);
    EXPECT_THROW(read_idx_labels(path), Error);  // rank 3 is not a label file
  }
  // gzip really compresses (the reader must not be reading the plain path twice).
  std::ifstream gz(dir.file("img.idx3.gz"), std::ios::binary);
  unsigned char m[2];
  gz.read(reinterpret_cast<char*>(m), 2);
  EXPECT_EQ(m[0], 0x1f);
  EXPECT_EQ(m[1], 0x8b);
}

TEST(Idx, LabelsRoundTrip) {
  TempDir dir;
  const std::vector<uint8_t> labels = {0, 3, 9, 1, 1};
  write_idx(dir.file("l.gz"), {5}, labels, true);
  const Tensor t = read_idx_labels(dir.file("l.gz"));
  ASSERT_EQ(t.shape(), Shape{5});
  EXPECT_EQ(std::vector<uint8_t>(t.data<uint8_t>(), t.data<uint8_t>() + 5), labels);
}

TEST(Idx, HeaderSizeMismatchNamesFileAndField) {
  TempDir dir;
  // Header says 4 x 2 x 2 = 16 bytes, the file carries 12.
  std::vector<uint8_t> bytes = {0, 0, 8, 3, 0, 0, 0, 4, 0, 0, 0, 2, 0, 0, 0, 2};
  const auto body = pattern(12);
  bytes.insert(bytes.end(), body.begin(), body.end());
  write_bytes(dir.file("short.idx"), bytes);
  const std::string msg = error_of([&] { read_idx(dir.file("short.idx")); });
  EXPECT_NE(msg.find("short.idx"), std::string::npos) << msg;
  EXPECT_NE(msg.find("header says 4 x 2 x 2"), std::string::npos) << msg;
  EXPECT_NE(msg.find("holds 12 bytes"), std::string::npos) << msg;

  // Too many bytes is as wrong as too few.
  bytes.insert(bytes.end(), 5, 0);
  write_bytes(dir.file("long.idx"), bytes);
  EXPECT_NE(error_of([&] { read_idx(dir.file("long.idx")); }).find("holds 17 bytes"),
            std::string::npos);
}

TEST(Idx, RejectsBadHeaders) {
  TempDir dir;
  auto rejects = [&](std::vector<uint8_t> bytes, const std::string& needle) {
    write_bytes(dir.file("bad.idx"), bytes);
    const std::string msg = error_of([&] { read_idx(dir.file("bad.idx")); });
    EXPECT_NE(msg.find(needle), std::string::npos) << "got: '" << msg << "'";
  };
  rejects({1, 0, 8, 1, 0, 0, 0, 1, 7}, "magic");
  rejects({0, 0, 0x0D, 1, 0, 0, 0, 1, 0, 0, 0, 0}, "float");
  rejects({0, 0, 8, 0}, "rank");
  rejects({0, 0, 8, 9}, "rank");
  rejects({0, 0, 8, 2, 0, 0, 0, 1}, "ends inside the header");
  rejects({0, 0, 8, 1, 0, 0, 0, 0}, "dimension 0 is 0");
  rejects({0, 0}, "shorter than");
  // 2^32-1 cubed overflows: rejected from the header alone, nothing is allocated.
  rejects({0, 0, 8, 3, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255}, "overflow");
  EXPECT_THROW(read_idx(dir.file("missing.idx")), Error);
}

TEST(Idx, TruncatedGzipRejected) {
  TempDir dir;
  const std::string full = dir.file("full.gz");
  write_idx(full, {50, 20, 20}, pattern(50 * 20 * 20), true);
  std::vector<uint8_t> bytes = read_file_bytes(full);
  ASSERT_GT(bytes.size(), 100u);
  for (size_t keep : {bytes.size() - 4, bytes.size() / 2, size_t{30}}) {
    write_bytes(dir.file("cut.gz"), std::vector<uint8_t>(bytes.begin(), bytes.begin() + keep));
    const std::string msg = error_of([&] { read_idx(dir.file("cut.gz")); });
    EXPECT_NE(msg.find("cut.gz"), std::string::npos) << "keep " << keep << ": '" << msg << "'";
  }
  // Corrupt deflate data in the middle of the stream.
  bytes[bytes.size() / 2] ^= 0xFF;
  bytes[bytes.size() / 2 + 1] ^= 0x5A;
  write_bytes(dir.file("bad.gz"), bytes);
  EXPECT_THROW(read_idx(dir.file("bad.gz")), Error);
}

}  // namespace
}  // namespace duet::data
