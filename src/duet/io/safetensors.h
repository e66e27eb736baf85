// Reading and writing safetensors files (8-byte little-endian header length, JSON header, raw
// little-endian tensor data), independent of the Tensor type. Loading validates every field
// before trusting it, so a malformed or hostile file gives one duet::Error line, never a crash.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "duet/tensor/dtype.h"

namespace duet::io {

// The format caps the JSON header at 100 MB; larger claims are rejected before any allocation.
inline constexpr uint64_t kSafetensorsMaxHeaderBytes = 100'000'000;

struct SafetensorsEntry {
  std::string name;
  DType dtype = DType::f32;
  std::vector<int64_t> shape;  // empty for a 0-d (scalar) tensor
  size_t offset = 0;           // into the data buffer (the bytes after the header)
  size_t nbytes = 0;

  int64_t numel() const;  // product of shape; 1 for 0-d
};

class SafetensorsFile {
 public:
  // Reads and validates a whole file (one read of the header, one of the data).
  static SafetensorsFile load(const std::string& path);
  // Same validation over an in-memory file image; `label` names it in error messages.
  static SafetensorsFile from_bytes(std::span<const std::byte> file, const std::string& label);

  SafetensorsFile(SafetensorsFile&& other) noexcept;
  SafetensorsFile& operator=(SafetensorsFile&& other) noexcept;
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;
  ~SafetensorsFile();

  // Entries in file order: sorted by data offset (zero-size tensors sharing an offset keep their
  // header order). Files written by save_safetensors therefore list entries in the order given.
  const std::vector<SafetensorsEntry>& entries() const { return entries_; }
  // nullptr when absent.
  const SafetensorsEntry* find(std::string_view name) const;
  // Throws duet::Error naming the file and the tensor when absent.
  const SafetensorsEntry& at(std::string_view name) const;
  // The entry's raw little-endian bytes. The data buffer is 64-byte aligned, so a tensor whose
  // offset is a multiple of its element size can be read in place.
  std::span<const std::byte> bytes(const SafetensorsEntry& entry) const;
  // The string->string "__metadata__" map (empty when the file has none).
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  // The path (or label) the file was loaded from; error messages start with it.
  const std::string& path() const { return path_; }

 private:
  SafetensorsFile() = default;
  friend struct SafetensorsParser;

  std::string path_;
  std::vector<SafetensorsEntry> entries_;
  std::map<std::string, size_t, std::less<>> index_;  // name -> position in entries_
  std::map<std::string, std::string> metadata_;
  std::byte* data_ = nullptr;  // from duet::memory::allocate
  size_t data_size_ = 0;
};

struct SafetensorsWriteEntry {
  std::string name;
  DType dtype = DType::f32;
  std::vector<int64_t> shape;
  const void* data = nullptr;  // nbytes raw little-endian bytes; may be null when nbytes == 0
  size_t nbytes = 0;           // must equal product(shape) x dtype_size(dtype)
};

// Writes `entries` in the order given (both in the JSON header and in the data buffer, contiguous
// with no gaps), with `metadata` as "__metadata__" (omitted when empty) and the header padded
// with spaces to a multiple of 8 bytes so the data starts 8-byte aligned. Atomic: temp file in
// the same folder, fsync, rename, fsync the folder. Throws duet::Error on duplicate or reserved
// names, negative dims, or nbytes that do not match the shape, before touching the disk.
void save_safetensors(const std::string& path, const std::vector<SafetensorsWriteEntry>& entries,
                      const std::map<std::string, std::string>& metadata = {});

// The exact bytes save_safetensors would write (for tests and in-memory transport).
std::vector<std::byte> serialize_safetensors(
    const std::vector<SafetensorsWriteEntry>& entries,
    const std::map<std::string, std::string>& metadata = {});

}  // namespace duet::io
