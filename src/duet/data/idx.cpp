#include "duet/data/idx.h"

#include <zlib.h>

#include <array>
#include <filesystem>
#include <limits>

#include "duet/tensor/error.h"

namespace duet::data {

namespace {

// RAII over a zlib gzFile; zlib reads plain files transparently, so one reader serves both.
class GzReader {
 public:
  explicit GzReader(const std::string& path) : path_(path), file_(gzopen(path.c_str(), "rb")) {
    DUET_CHECK(file_ != nullptr, path, ": cannot open for reading");
  }
  ~GzReader() {
    if (file_) gzclose(file_);
  }
  GzReader(const GzReader&) = delete;
  GzReader& operator=(const GzReader&) = delete;

  // Reads up to n bytes; fewer only at the end of the stream. A truncated or corrupt gzip stream
  // is an error, not a short read (zlib reports it as Z_BUF_ERROR / Z_DATA_ERROR after the data).
  size_t read(void* out, size_t n) {
    size_t got = 0;
    auto* p = static_cast<unsigned char*>(out);
    while (got < n) {
      const unsigned chunk = static_cast<unsigned>(std::min<size_t>(n - got, 1u << 30));
      const int r = gzread(file_, p + got, chunk);
      if (r < 0) fail_stream();
      if (r == 0) break;
      got += static_cast<size_t>(r);
    }
    if (got < n) check_stream();
    return got;
  }

  // Bytes left until the end of the stream, read in small chunks (nothing proportional to the
  // file is allocated, so a lying header cannot make us allocate).
  uint64_t count_rest() {
    std::array<unsigned char, 1 << 16> buf;
    uint64_t total = 0;
    for (;;) {
      const int r = gzread(file_, buf.data(), static_cast<unsigned>(buf.size()));
      if (r < 0) fail_stream();
      if (r == 0) break;
      total += static_cast<uint64_t>(r);
    }
    check_stream();
    return total;
  }

  bool plain() { return gzdirect(file_) == 1; }  // valid after the first read

  void rewind() { DUET_CHECK(gzrewind(file_) == 0, path_, ": cannot rewind"); }

 private:
  void check_stream() {
    int errnum = Z_OK;
    gzerror(file_, &errnum);
    if (errnum != Z_OK) fail_stream();
  }
  [[noreturn]] void fail_stream() {
    int errnum = Z_OK;
    const char* msg = gzerror(file_, &errnum);
    fail(path_, ": truncated or corrupt gzip data (", msg ? msg : "read error", ")");
  }

  std::string path_;
  gzFile file_;
};

uint32_t be32(const unsigned char* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

std::string dims_str(const std::vector<int64_t>& dims) {
  std::string s;
  for (size_t i = 0; i < dims.size(); ++i) s += (i ? " x " : "") + std::to_string(dims[i]);
  return s;
}

const char* type_name(unsigned t) {
  switch (t) {
    case 0x08:
      return "unsigned byte";
    case 0x09:
      return "signed byte";
    case 0x0B:
      return "short";
    case 0x0C:
      return "int";
    case 0x0D:
      return "float";
    case 0x0E:
      return "double";
    default:
      return "unknown";
  }
}

}  // namespace

IdxArray read_idx(const std::string& path) {
  GzReader in(path);
  unsigned char magic[4];
  if (in.read(magic, 4) != 4) fail(path, ": magic: file is shorter than the 4-byte IDX header");
  DUET_CHECK(magic[0] == 0 && magic[1] == 0, path,
             ": magic: not an IDX file (first two bytes must be zero)");
  DUET_CHECK(magic[2] == 0x08, path, ": element type: 0x", std::hex, unsigned{magic[2]}, std::dec,
             " (", type_name(magic[2]), ") is not supported; expected 0x08 (unsigned byte)");
  const int rank = magic[3];
  DUET_CHECK(rank >= 1 && rank <= 4, path, ": rank: ", rank, " dimensions; expected 1 to 4");

  unsigned char header[16];
  const size_t hbytes = static_cast<size_t>(rank) * 4;
  if (in.read(header, hbytes) != hbytes)
    fail(path, ": dimensions: file ends inside the header (", rank, " dimensions expected)");
  IdxArray out;
  uint64_t expected = 1;
  for (int i = 0; i < rank; ++i) {
    const uint32_t d = be32(header + 4 * i);
    DUET_CHECK(d > 0, path, ": dimension ", i, " is 0");
    out.dims.push_back(d);
    // Dimensions are < 2^32 each; a product beyond 2^48 bytes is no real data set.
    DUET_CHECK(expected <= (uint64_t{1} << 48) / d, path, ": header says ", dims_str(out.dims),
               "... which overflows the element count");
    expected *= d;
  }

  // A plain file's size is known from the file system; a gzip stream is inflated once without
  // storing anything to count its bytes, so the buffer is only allocated for data that exists.
  const bool plain = in.plain();
  uint64_t actual = 0;
  if (plain) {
    std::error_code ec;
    const uint64_t size = std::filesystem::file_size(path, ec);
    DUET_CHECK(!ec, path, ": cannot read the file size");
    actual = size - std::min<uint64_t>(size, 4 + hbytes);
  } else {
    actual = in.count_rest();
  }
  DUET_CHECK(actual == expected, path, ": header says ", dims_str(out.dims), " (", expected,
             " bytes) but the file holds ", actual, " bytes of data");
  DUET_CHECK(expected <= std::numeric_limits<size_t>::max(), path, ": too large for this system");

  if (!plain) {
    in.rewind();
    if (in.read(header, 4 + hbytes) != 4 + hbytes) fail(path, ": changed while being read");
  }
  out.data.resize(static_cast<size_t>(expected));
  if (in.read(out.data.data(), out.data.size()) != out.data.size())
    fail(path, ": changed while being read");
  return out;
}

namespace {

Tensor to_u8_tensor(const IdxArray& a, const Shape& shape) {
  Tensor t = Tensor::empty(shape, DType::u8);
  std::copy(a.data.begin(), a.data.end(), t.data<uint8_t>());
  return t;
}

}  // namespace

Tensor read_idx_images(const std::string& path) {
  const IdxArray a = read_idx(path);
  DUET_CHECK(a.dims.size() == 3, path, ": rank: ", a.dims.size(),
             " dimensions; an image file needs 3 (N x H x W)");
  return to_u8_tensor(a, Shape{a.dims[0], a.dims[1], a.dims[2]});
}

Tensor read_idx_labels(const std::string& path) {
  const IdxArray a = read_idx(path);
  DUET_CHECK(a.dims.size() == 1, path, ": rank: ", a.dims.size(),
             " dimensions; a label file needs 1 (N)");
  return to_u8_tensor(a, Shape{a.dims[0]});
}

void write_idx(const std::string& path, const std::vector<int64_t>& dims,
               std::span<const uint8_t> data, bool gzip) {
  DUET_CHECK(!dims.empty() && dims.size() <= 255, "write_idx ", path, ": rank ", dims.size(),
             " is out of range");
  uint64_t n = 1;
  std::vector<unsigned char> bytes = {0, 0, 0x08, static_cast<unsigned char>(dims.size())};
  for (int64_t d : dims) {
    DUET_CHECK(d >= 0 && d <= 0xFFFFFFFFll, "write_idx ", path, ": dimension ", d,
               " does not fit in 32 bits");
    n *= static_cast<uint64_t>(d);
    for (int s = 24; s >= 0; s -= 8) bytes.push_back(static_cast<unsigned char>(d >> s));
  }
  DUET_CHECK(n == data.size(), "write_idx ", path, ": dims hold ", n, " bytes but ", data.size(),
             " were given");
  bytes.insert(bytes.end(), data.begin(), data.end());
  gzFile f = gzopen(path.c_str(), gzip ? "wb6" : "wbT");  // T: plain, no compression
  DUET_CHECK(f != nullptr, path, ": cannot open for writing");
  size_t done = 0;
  bool ok = true;
  while (ok && done < bytes.size()) {
    const unsigned chunk = static_cast<unsigned>(std::min<size_t>(bytes.size() - done, 1u << 30));
    const int w = gzwrite(f, bytes.data() + done, chunk);
    ok = w > 0;
    done += static_cast<size_t>(std::max(w, 0));
  }
  const bool closed = gzclose(f) == Z_OK;
  DUET_CHECK(ok && closed, path, ": write failed");
}

}  // namespace duet::data
