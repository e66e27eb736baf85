// SHA-256 of a file (FIPS 180-4), so a distillation run can record which teacher it learned from
// and refuse a --resume whose teacher file has changed since.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace duet::train {

// Lower-case hex digest of `bytes`.
std::string sha256_hex(std::string_view bytes);

// Lower-case hex digest of the file's contents; Error naming the file when it cannot be read.
std::string sha256_file(const std::string& path);

}  // namespace duet::train
