// Child processes for benchmark peers: a long-lived one driven line by line over pipes (so a
// benchmark alternates its own measurements with the peer's under the same machine load), a
// one-shot command whose output is captured, and the lookup of peer scripts in the source tree.
#pragma once

#include <sys/types.h>

#include <cstdio>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace duet::bench {

// A peer answering one line per request line. The first line it prints must start with "ready";
// anything else (e.g. "error onnxruntime-node cannot be loaded ...") makes it unavailable, and
// error() keeps that line so the benchmark can show why. The peer's stderr is inherited.
class PeerProcess {
 public:
  // argv[0] is looked up on PATH when it has no '/'. `env` entries are added to the environment.
  PeerProcess(const std::vector<std::string>& argv,
              const std::vector<std::pair<std::string, std::string>>& env = {});
  ~PeerProcess();
  PeerProcess(const PeerProcess&) = delete;
  PeerProcess& operator=(const PeerProcess&) = delete;

  bool ok() const { return ok_; }
  const std::string& ready_line() const { return ready_; }
  const std::string& error() const { return error_; }
  pid_t pid() const { return pid_; }  // -1 once it has exited

  // Sends `line`, returns the answer when it starts with "ok" (the rest, trimmed). Otherwise
  // (an "error ..." answer, or the peer died) returns nullopt and error() says why; an "error"
  // answer leaves the peer usable, a dead peer makes ok() false.
  std::optional<std::string> request(const std::string& line);

 private:
  bool read_line(std::string& line);
  void shutdown();

  pid_t pid_ = -1;
  std::FILE* in_ = nullptr;   // the peer's stdin
  std::FILE* out_ = nullptr;  // the peer's stdout
  bool ok_ = false;
  std::string ready_, error_;
};

struct CommandResult {
  int exit_code = -1;  // -1 when it could not be started or was killed by a signal
  std::string output;  // stdout and stderr together
};

// Runs a command to completion (argv[0] looked up on PATH when it has no '/').
CommandResult run_command(const std::vector<std::string>& argv);

// The first readable file among $DUET_SOURCE_DIR/REL, ./REL, and REL in the folders above the
// running executable (runners live in build/<dir>/ under the source tree); "" when none.
std::string find_source_file(const std::string& rel);

}  // namespace duet::bench
