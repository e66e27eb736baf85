// Writing labelled image sets as IDX files (the MNIST / Fashion-MNIST container) that
// data/idx.h reads back: plain unsigned-byte files, written atomically (temp file, fsync,
// rename), so a reader or a crash never sees half a data set.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "duet/data/dataset.h"

namespace duet::data {

// Writes an unsigned-byte IDX file of `dims` (rank 1 to 4, each dimension in [1, 2^32 - 1], as
// read_idx accepts) holding `data` (product(dims) bytes, row-major). Throws duet::Error naming
// the path and the bad field (rank, dimension, element count overflow, size mismatch, a folder
// that is missing or not writable); the destination is untouched on any error.
void write_idx_file(const std::string& path, const std::vector<int64_t>& dims,
                    std::span<const uint8_t> data);

// A single-channel data set as an idx3 image file [N, H, W] and an idx1 label file [N]
// (labels must fit in a byte). The images are written first, so a labels file that exists belongs
// to the images next to it.
void write_idx_dataset(const Dataset& d, const std::string& images_path,
                       const std::string& labels_path);

}  // namespace duet::data
