#include "duet/io/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <vector>

#include "duet/tensor/error.h"

namespace duet::io {
namespace {

std::string errno_text(int err) {
  return std::strerror(err);
}

std::string folder_of(const std::string& path) {
  const std::string dir = std::filesystem::path(path).parent_path().string();
  return dir.empty() ? std::string(".") : dir;
}

}  // namespace

AtomicFileWriter::AtomicFileWriter(std::string path) : path_(std::move(path)) {
  const std::filesystem::path p(path_);
  const std::string name = p.filename().string();
  DUET_CHECK(!name.empty() && name != "." && name != "..", path_,
             ": not a file path (no file name)");
  // Same folder as the destination so rename() stays within one file system and is atomic.
  temp_path_ = folder_of(path_) + "/." + name + ".tmp.XXXXXX";
  std::vector<char> tmpl(temp_path_.begin(), temp_path_.end());
  tmpl.push_back('\0');
  fd_ = ::mkostemp(tmpl.data(), O_CLOEXEC);
  if (fd_ < 0) {
    const int err = errno;
    temp_path_.clear();
    fail(path_, ": cannot create a temp file in ", folder_of(path_), ": ", errno_text(err));
  }
  temp_path_.assign(tmpl.data());
  // mkostemp creates 0600; a checkpoint should be as readable as any file the user writes.
  ::fchmod(fd_, 0644);
}

AtomicFileWriter::~AtomicFileWriter() {
  if (!committed_) discard();
}

void AtomicFileWriter::discard() noexcept {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  if (!temp_path_.empty()) ::unlink(temp_path_.c_str());
  temp_path_.clear();
}

void AtomicFileWriter::write(const void* data, size_t bytes) {
  DUET_CHECK(fd_ >= 0, path_, ": write after commit");
  const auto* p = static_cast<const char*>(data);
  while (bytes > 0) {
    // Linux writes at most ~2 GiB per call; loop for partial writes and signals.
    const ssize_t n = ::write(fd_, p, bytes);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      discard();
      fail(path_, ": write failed: ", errno_text(err));
    }
    p += n;
    bytes -= static_cast<size_t>(n);
  }
}

void AtomicFileWriter::commit() {
  DUET_CHECK(fd_ >= 0 && !committed_, path_, ": commit called twice");
  if (::fsync(fd_) != 0) {
    const int err = errno;
    discard();
    fail(path_, ": fsync failed: ", errno_text(err));
  }
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) {
    const int err = errno;
    discard();
    fail(path_, ": close failed: ", errno_text(err));
  }
  if (::rename(temp_path_.c_str(), path_.c_str()) != 0) {
    const int err = errno;
    discard();
    fail(path_, ": cannot rename the temp file into place: ", errno_text(err));
  }
  committed_ = true;
  temp_path_.clear();
  // The rename itself lives in the folder's metadata: without this fsync a crash could bring back
  // the old file even though commit() returned.
  const std::string dir = folder_of(path_);
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) fail(path_, ": cannot open folder ", dir, " to fsync it: ", errno_text(errno));
  const int rc = ::fsync(dfd);
  const int err = errno;
  ::close(dfd);
  // Some file systems cannot fsync a folder (EINVAL); the rename is as durable as they allow.
  if (rc != 0 && err != EINVAL && err != ENOTSUP)
    fail(path_, ": fsync of folder ", dir, " failed: ", errno_text(err));
}

void write_file_atomic(const std::string& path, std::span<const std::byte> bytes) {
  AtomicFileWriter out(path);
  out.write(bytes.data(), bytes.size());
  out.commit();
}

}  // namespace duet::io
