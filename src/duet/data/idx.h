// IDX files (the MNIST / Fashion-MNIST container): a big-endian header of magic, element type and
// dimensions, then raw elements. Plain and gzip files read through one path; every size is checked
// against the header, with overflow checks, before the data buffer is allocated.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "duet/tensor/tensor.h"

namespace duet::data {

// Only unsigned-byte IDX files (type 0x08) are supported: that is what image/label sets use.
struct IdxArray {
  std::vector<int64_t> dims;
  std::vector<uint8_t> data;  // row-major, product(dims) bytes
};

// Reads a plain or gzip IDX file (detected from the content, not the name). Throws duet::Error
// naming the file and the field on a bad magic, unsupported type, zero or oversized dimension,
// or when the data that follows the header is not exactly product(dims) bytes.
IdxArray read_idx(const std::string& path);

// u8 [N, H, W] from an idx3 file; throws when the file has a different rank.
Tensor read_idx_images(const std::string& path);
// u8 [N] from an idx1 file.
Tensor read_idx_labels(const std::string& path);

// Writes an unsigned-byte IDX file, gzip-compressed when `gzip` (for tests and tools).
void write_idx(const std::string& path, const std::vector<int64_t>& dims,
               std::span<const uint8_t> data, bool gzip);

}  // namespace duet::data
