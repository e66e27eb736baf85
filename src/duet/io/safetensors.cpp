#include "duet/io/safetensors.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <utility>

#include "duet/io/atomic_file.h"
#include "duet/tensor/allocator.h"
#include "duet/tensor/error.h"

namespace duet::io {

static_assert(std::endian::native == std::endian::little,
              "safetensors data is little-endian and is copied as-is");

namespace {

using Json = nlohmann::ordered_json;  // keeps header order, used to break offset ties

// Legitimate headers nest three deep (object -> entry -> shape array); anything much deeper is
// hostile, and refusing it bounds the parser's work per byte.
constexpr int kMaxJsonDepth = 8;

// Text from the file: escape control bytes and cap the length so an error stays one line.
void append_sanitized(std::string& out, std::string_view s) {
  constexpr size_t kMax = 120;
  for (size_t i = 0; i < s.size() && i < kMax; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7f) {
      constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  if (s.size() > kMax) out += "...";
}

std::string sanitized(std::string_view s) {
  std::string out;
  append_sanitized(out, s);
  return out;
}

std::string quote_name(std::string_view s) {
  std::string out(1, '\'');
  append_sanitized(out, s);
  out += '\'';
  return out;
}

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) out += ',';
    out += std::to_string(shape[i]);
  }
  out += ']';
  return out;
}

std::string json_type(const Json& j) {
  if (j.is_number_integer()) return "an integer";
  if (j.is_number_float()) return "a float";
  if (j.is_string()) return "a string";
  if (j.is_array()) return "an array";
  if (j.is_object()) return "an object";
  if (j.is_boolean()) return "a boolean";
  return "null";
}

// Byte count of a tensor, or nullopt when it does not fit in 64 bits. Zero-size tensors are 0
// bytes whatever their other dims, but those dims must still multiply without overflow so later
// stride arithmetic on the shape is safe.
std::optional<uint64_t> checked_nbytes(const std::vector<int64_t>& shape, DType dtype) {
  uint64_t product = 1;
  bool zero = false;
  for (int64_t d : shape) {
    if (d == 0) {
      zero = true;
      continue;
    }
    if (__builtin_mul_overflow(product, static_cast<uint64_t>(d), &product)) return std::nullopt;
  }
  if (product > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::nullopt;
  uint64_t bytes = 0;
  if (__builtin_mul_overflow(product, static_cast<uint64_t>(dtype_size(dtype)), &bytes))
    return std::nullopt;
  if (bytes > std::numeric_limits<size_t>::max()) return std::nullopt;
  return zero ? 0 : bytes;
}

// Releases a data buffer from duet::memory.
void release_data(std::byte*& data, size_t& size) {
  if (data != nullptr) memory::release(data, size);
  data = nullptr;
  size = 0;
}

}  // namespace

int64_t SafetensorsEntry::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;  // validated at load: cannot overflow
  return n;
}

// Turns a header string into entries and metadata; all checks live here so that load() and
// from_bytes() validate identically.
struct SafetensorsParser {
  SafetensorsFile& file;
  uint64_t data_size;

  template <class... Args>
  [[noreturn]] void bad(Args&&... args) const {
    fail(file.path_, ": ", std::forward<Args>(args)...);
  }
  template <class... Args>
  [[noreturn]] void bad_tensor(const std::string& name, Args&&... args) const {
    fail(file.path_, ": tensor ", quote_name(name), ": ", std::forward<Args>(args)...);
  }

  Json parse_json(std::string_view header) const {
    // nlohmann keeps the last of duplicate keys silently; track keys per open object instead.
    std::vector<std::set<std::string>> open_objects;
    std::optional<std::string> duplicate;
    auto watch = [&](int depth, Json::parse_event_t event, Json& parsed) {
      if (depth > kMaxJsonDepth) bad("header JSON nests deeper than ", kMaxJsonDepth, " levels");
      if (event == Json::parse_event_t::object_start) open_objects.emplace_back();
      if (event == Json::parse_event_t::object_end && !open_objects.empty())
        open_objects.pop_back();
      if (event == Json::parse_event_t::key && !open_objects.empty() && !duplicate) {
        std::string key = parsed.get<std::string>();
        if (!open_objects.back().insert(key).second) duplicate = std::move(key);
      }
      return true;
    };
    Json root;
    try {
      root = Json::parse(header.begin(), header.end(), watch);
    } catch (const Json::parse_error& e) {
      // what() quotes the last bytes read; keep only the explanation so the line stays clean.
      std::string why = e.what();
      const size_t colon = why.find(": ");
      if (colon != std::string::npos) why = why.substr(colon + 2);
      const size_t last = why.find("; last read");
      if (last != std::string::npos) why = why.substr(0, last);
      bad("header is not valid JSON at byte ", e.byte, ": ", sanitized(why));
    } catch (const Json::exception& e) {
      // Other parser refusals, e.g. a number literal beyond double range ("1e999").
      std::string why = e.what();
      const size_t bracket = why.find("] ");
      if (bracket != std::string::npos) why = why.substr(bracket + 2);
      bad("header is not valid JSON: ", sanitized(why));
    }
    if (duplicate) bad("duplicate key ", quote_name(*duplicate), " in the header");
    if (!root.is_object()) bad("header is ", json_type(root), ", expected a JSON object");
    return root;
  }

  void read_metadata(const Json& meta) const {
    if (meta.is_null()) return;
    if (!meta.is_object())
      bad("__metadata__ is ", json_type(meta), ", expected an object of strings");
    for (const auto& [key, value] : meta.items()) {
      if (!value.is_string())
        bad("__metadata__ ", quote_name(key), " is ", json_type(value), ", expected a string");
      file.metadata_.emplace(key, value.get<std::string>());
    }
  }

  const Json& field(const std::string& name, const Json& entry, const char* key) const {
    const auto it = entry.find(key);
    if (it == entry.end()) bad_tensor(name, "missing field '", key, "'");
    return *it;
  }

  uint64_t read_offset(const std::string& name, const Json& v, int index) const {
    if (!v.is_number_unsigned())
      bad_tensor(name, "data_offsets[", index, "] is ", json_type(v),
                 v.is_number_integer() ? " below 0" : "", ", expected a non-negative integer");
    return v.get<uint64_t>();
  }

  SafetensorsEntry read_entry(const std::string& name, const Json& entry) const {
    if (!entry.is_object())
      bad_tensor(name, "header entry is ", json_type(entry),
                 ", expected an object with dtype, shape, data_offsets");
    SafetensorsEntry e;
    e.name = name;

    const Json& dtype = field(name, entry, "dtype");
    if (!dtype.is_string()) bad_tensor(name, "dtype is ", json_type(dtype), ", expected a string");
    const auto parsed = dtype_from_name(dtype.get_ref<const std::string&>());
    if (!parsed)
      bad_tensor(name, "unknown dtype ", quote_name(dtype.get_ref<const std::string&>()));
    e.dtype = *parsed;

    const Json& shape = field(name, entry, "shape");
    if (!shape.is_array()) bad_tensor(name, "shape is ", json_type(shape), ", expected an array");
    e.shape.reserve(shape.size());
    for (size_t i = 0; i < shape.size(); ++i) {
      const Json& d = shape[i];
      if (d.is_number_integer() && !d.is_number_unsigned())
        bad_tensor(name, "shape[", i, "] is negative (", d.get<int64_t>(), ")");
      if (!d.is_number_unsigned())
        bad_tensor(name, "shape[", i, "] is ", json_type(d), ", expected a non-negative integer");
      const uint64_t v = d.get<uint64_t>();
      if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        bad_tensor(name, "shape[", i, "] = ", v, " does not fit in int64");
      e.shape.push_back(static_cast<int64_t>(v));
    }

    const Json& offsets = field(name, entry, "data_offsets");
    if (!offsets.is_array() || offsets.size() != 2)
      bad_tensor(name, "data_offsets is ", json_type(offsets),
                 offsets.is_array() ? str(" of ", offsets.size(), " values") : "",
                 ", expected [begin, end]");
    const uint64_t begin = read_offset(name, offsets[0], 0);
    const uint64_t end = read_offset(name, offsets[1], 1);
    if (begin > end) bad_tensor(name, "data_offsets [", begin, ", ", end, "] has begin > end");
    if (end > data_size)
      bad_tensor(name, "data_offsets [", begin, ", ", end, "] end beyond the data buffer of ",
                 data_size, " bytes");

    const auto nbytes = checked_nbytes(e.shape, e.dtype);
    if (!nbytes)
      bad_tensor(name, "shape ", shape_text(e.shape), " x ", dtype_name(e.dtype),
                 " overflows a 64-bit byte count");
    if (*nbytes != end - begin)
      bad_tensor(name, "data_offsets [", begin, ", ", end, "] but shape ", shape_text(e.shape),
                 " x ", dtype_name(e.dtype), " needs ", *nbytes, " bytes");
    e.offset = static_cast<size_t>(begin);
    e.nbytes = static_cast<size_t>(*nbytes);
    return e;
  }

  void parse(std::string_view header) {
    const Json root = parse_json(header);
    for (const auto& [key, value] : root.items()) {
      if (key == "__metadata__") {
        read_metadata(value);
        continue;
      }
      file.entries_.push_back(read_entry(key, value));
    }
    // Tensors must tile the data buffer exactly: no gaps (hidden bytes), no overlaps (aliasing
    // that a writer through one name would see through another), nothing trailing.
    auto& entries = file.entries_;
    std::stable_sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) {
      return a.offset != b.offset ? a.offset < b.offset : a.nbytes < b.nbytes;
    });
    uint64_t expected = 0;
    const SafetensorsEntry* previous = nullptr;
    for (const auto& e : entries) {
      if (e.offset < expected)
        bad_tensor(e.name, "data_offsets [", e.offset, ", ", e.offset + e.nbytes,
                   "] overlap tensor ", quote_name(previous->name), " which ends at ", expected);
      if (e.offset > expected)
        bad_tensor(e.name, "data_offsets [", e.offset, ", ", e.offset + e.nbytes,
                   "] leave a gap of ", e.offset - expected, " bytes after ",
                   previous ? "tensor " + quote_name(previous->name) : std::string("the header"));
      expected = e.offset + e.nbytes;
      previous = &e;
    }
    if (expected != data_size)
      bad("data_offsets cover ", expected, " bytes but the data buffer has ", data_size,
          " (trailing bytes belong to no tensor)");
    for (size_t i = 0; i < entries.size(); ++i) file.index_.emplace(entries[i].name, i);
  }
};

SafetensorsFile::SafetensorsFile(SafetensorsFile&& other) noexcept
    : path_(std::move(other.path_)),
      entries_(std::move(other.entries_)),
      index_(std::move(other.index_)),
      metadata_(std::move(other.metadata_)),
      data_(std::exchange(other.data_, nullptr)),
      data_size_(std::exchange(other.data_size_, 0)) {}

SafetensorsFile& SafetensorsFile::operator=(SafetensorsFile&& other) noexcept {
  if (this != &other) {
    release_data(data_, data_size_);
    path_ = std::move(other.path_);
    entries_ = std::move(other.entries_);
    index_ = std::move(other.index_);
    metadata_ = std::move(other.metadata_);
    data_ = std::exchange(other.data_, nullptr);
    data_size_ = std::exchange(other.data_size_, 0);
  }
  return *this;
}

SafetensorsFile::~SafetensorsFile() {
  release_data(data_, data_size_);
}

const SafetensorsEntry* SafetensorsFile::find(std::string_view name) const {
  const auto it = index_.find(name);
  return it == index_.end() ? nullptr : &entries_[it->second];
}

const SafetensorsEntry& SafetensorsFile::at(std::string_view name) const {
  const SafetensorsEntry* e = find(name);
  if (e == nullptr) fail(path_, ": no tensor named ", quote_name(name));
  return *e;
}

std::span<const std::byte> SafetensorsFile::bytes(const SafetensorsEntry& entry) const {
  // Guards against an entry taken from another file (or edited by the caller).
  DUET_CHECK(entry.offset <= data_size_ && entry.nbytes <= data_size_ - entry.offset, path_,
             ": tensor ", quote_name(entry.name), " is not inside this file's data buffer");
  if (entry.nbytes == 0) return {};
  return {data_ + entry.offset, entry.nbytes};
}

namespace {

uint64_t read_le64(const unsigned char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

// Checks the 8-byte length prefix against the format's cap and the bytes actually present.
void check_header_length(const std::string& label, uint64_t file_size, uint64_t header_len) {
  if (header_len > kSafetensorsMaxHeaderBytes)
    fail(label, ": header length ", header_len, " exceeds the limit of ",
         kSafetensorsMaxHeaderBytes, " bytes");
  if (header_len > file_size - 8)
    fail(label, ": header length ", header_len, " exceeds the ", file_size - 8,
         " bytes after the length field");
}

void check_file_size(const std::string& label, uint64_t file_size) {
  if (file_size < 8)
    fail(label, ": file is ", file_size, " bytes, shorter than the 8-byte header length field");
}

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

void read_exact(const std::string& path, int fd, void* out, size_t bytes, uint64_t offset) {
  auto* p = static_cast<char*>(out);
  while (bytes > 0) {
    const ssize_t n = ::pread(fd, p, bytes, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail(path, ": read failed: ", std::strerror(errno));
    if (n == 0) fail(path, ": file shrank while being read");
    p += n;
    bytes -= static_cast<size_t>(n);
    offset += static_cast<uint64_t>(n);
  }
}

}  // namespace

SafetensorsFile SafetensorsFile::load(const std::string& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) fail(path, ": cannot open: ", std::strerror(errno));
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) fail(path, ": cannot stat: ", std::strerror(errno));
  if (!S_ISREG(st.st_mode)) fail(path, ": not a regular file");
  const auto file_size = static_cast<uint64_t>(st.st_size);
  check_file_size(path, file_size);
  unsigned char prefix[8];
  read_exact(path, fd.get(), prefix, 8, 0);
  const uint64_t header_len = read_le64(prefix);
  check_header_length(path, file_size, header_len);

  SafetensorsFile file;
  file.path_ = path;
  std::string header(static_cast<size_t>(header_len), '\0');
  read_exact(path, fd.get(), header.data(), header.size(), 8);
  const uint64_t data_size = file_size - 8 - header_len;
  SafetensorsParser{file, data_size}.parse(header);

  // Only now, with every offset checked against it, is the data buffer allocated.
  file.data_size_ = static_cast<size_t>(data_size);
  file.data_ = static_cast<std::byte*>(memory::allocate(file.data_size_));
  read_exact(path, fd.get(), file.data_, file.data_size_, 8 + header_len);
  return file;
}

SafetensorsFile SafetensorsFile::from_bytes(std::span<const std::byte> image,
                                            const std::string& label) {
  const uint64_t file_size = image.size();
  check_file_size(label, file_size);
  const uint64_t header_len = read_le64(reinterpret_cast<const unsigned char*>(image.data()));
  check_header_length(label, file_size, header_len);

  SafetensorsFile file;
  file.path_ = label;
  const std::string_view header(reinterpret_cast<const char*>(image.data()) + 8,
                                static_cast<size_t>(header_len));
  const uint64_t data_size = file_size - 8 - header_len;
  SafetensorsParser{file, data_size}.parse(header);
  file.data_size_ = static_cast<size_t>(data_size);
  file.data_ = static_cast<std::byte*>(memory::allocate(file.data_size_));
  if (data_size > 0) std::memcpy(file.data_, image.data() + 8 + header_len, file.data_size_);
  return file;
}

namespace {

// Validates the entries and returns the space-padded header (its length a multiple of 8).
std::string build_header(const std::string& label,
                         const std::vector<SafetensorsWriteEntry>& entries,
                         const std::map<std::string, std::string>& metadata) {
  Json root = Json::object();
  try {
    if (!metadata.empty()) {
      Json meta = Json::object();
      for (const auto& [k, v] : metadata) meta[k] = v;
      root["__metadata__"] = std::move(meta);
    }
    std::set<std::string_view> names;
    uint64_t offset = 0;
    for (const auto& e : entries) {
      DUET_CHECK(e.name != "__metadata__", label, ": '__metadata__' is reserved");
      DUET_CHECK(names.insert(e.name).second, label, ": duplicate tensor name ",
                 quote_name(e.name));
      for (int64_t d : e.shape)
        DUET_CHECK(d >= 0, label, ": tensor ", quote_name(e.name), ": negative dim in shape ",
                   shape_text(e.shape));
      const auto need = checked_nbytes(e.shape, e.dtype);
      DUET_CHECK(need.has_value(), label, ": tensor ", quote_name(e.name), ": shape ",
                 shape_text(e.shape), " x ", dtype_name(e.dtype), " overflows");
      DUET_CHECK(*need == e.nbytes, label, ": tensor ", quote_name(e.name), ": nbytes ", e.nbytes,
                 " but shape ", shape_text(e.shape), " x ", dtype_name(e.dtype), " needs ", *need);
      DUET_CHECK(e.nbytes == 0 || e.data != nullptr, label, ": tensor ", quote_name(e.name),
                 ": data is null");
      root[e.name] = Json{{"dtype", std::string(dtype_name(e.dtype))},
                          {"shape", e.shape},
                          {"data_offsets", {offset, offset + e.nbytes}}};
      offset += e.nbytes;
    }
    std::string header = root.dump();
    header.append((8 - header.size() % 8) % 8, ' ');
    return header;
  } catch (const Json::exception& e) {
    // dump() refuses strings that are not valid UTF-8.
    fail(label, ": cannot encode the header: ", e.what());
  }
}

void le64(uint64_t v, unsigned char* out) {
  for (int i = 0; i < 8; ++i) out[i] = static_cast<unsigned char>(v >> (8 * i));
}

}  // namespace

void save_safetensors(const std::string& path, const std::vector<SafetensorsWriteEntry>& entries,
                      const std::map<std::string, std::string>& metadata) {
  const std::string header = build_header(path, entries, metadata);
  unsigned char prefix[8];
  le64(header.size(), prefix);
  // Streams tensor by tensor: no second copy of a large checkpoint in memory.
  AtomicFileWriter out(path);
  out.write(prefix, 8);
  out.write(header.data(), header.size());
  for (const auto& e : entries)
    if (e.nbytes > 0) out.write(e.data, e.nbytes);
  out.commit();
}

std::vector<std::byte> serialize_safetensors(const std::vector<SafetensorsWriteEntry>& entries,
                                             const std::map<std::string, std::string>& metadata) {
  const std::string header = build_header("serialize_safetensors", entries, metadata);
  size_t total = 8 + header.size();
  for (const auto& e : entries) total += e.nbytes;
  std::vector<std::byte> out(total);
  le64(header.size(), reinterpret_cast<unsigned char*>(out.data()));
  std::memcpy(out.data() + 8, header.data(), header.size());
  size_t at = 8 + header.size();
  for (const auto& e : entries) {
    if (e.nbytes > 0) std::memcpy(out.data() + at, e.data, e.nbytes);
    at += e.nbytes;
  }
  return out;
}

}  // namespace duet::io
