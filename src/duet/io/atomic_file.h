// Crash-safe file replacement: write everything to a temp file in the destination folder, fsync
// it, rename it over the destination and fsync the folder. A reader (or a crash) sees either the
// old file or the complete new one, never a half-written checkpoint.
#pragma once

#include <cstddef>
#include <span>
#include <string>

namespace duet::io {

class AtomicFileWriter {
 public:
  // Creates "<dir>/.<name>.tmp.XXXXXX" next to `path`; throws duet::Error naming the path when
  // the folder is missing or not writable.
  explicit AtomicFileWriter(std::string path);
  // Removes the temp file when commit() was never reached (error or exception on the way).
  ~AtomicFileWriter();
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;

  void write(const void* data, size_t bytes);
  // fsync, close, rename over the destination, fsync the folder. Call at most once.
  void commit();

  const std::string& path() const { return path_; }
  const std::string& temp_path() const { return temp_path_; }

 private:
  void discard() noexcept;

  std::string path_;
  std::string temp_path_;
  int fd_ = -1;
  bool committed_ = false;
};

// Writes `bytes` to `path` atomically (see AtomicFileWriter).
void write_file_atomic(const std::string& path, std::span<const std::byte> bytes);

}  // namespace duet::io
