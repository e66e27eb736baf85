#include "bench/peer_process.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>

extern char** environ;

namespace duet::bench {
namespace {

// posix_spawn instead of fork: the parent runs OpenMP worker threads, and a forked child of a
// multithreaded process may only call async-signal-safe functions before exec.
pid_t spawn(const std::vector<std::string>& argv,
            const std::vector<std::pair<std::string, std::string>>& env, int stdin_fd,
            int stdout_fd, int stderr_fd, int& err) {
  std::vector<std::string> env_strings;
  for (char** e = environ; *e; ++e) {
    const std::string entry(*e);
    bool overridden = false;
    for (const auto& [k, v] : env) overridden |= entry.rfind(k + "=", 0) == 0;
    if (!overridden) env_strings.push_back(entry);
  }
  for (const auto& [k, v] : env) env_strings.push_back(k + "=" + v);
  std::vector<char*> args, envp;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  for (auto& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  if (stdin_fd >= 0) posix_spawn_file_actions_adddup2(&actions, stdin_fd, 0);
  if (stdout_fd >= 0) posix_spawn_file_actions_adddup2(&actions, stdout_fd, 1);
  if (stderr_fd >= 0) posix_spawn_file_actions_adddup2(&actions, stderr_fd, 2);
  pid_t pid = -1;
  err = posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  return err == 0 ? pid : -1;
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == ' ' || s.back() == '\r' || s.back() == '\t')) s.pop_back();
  size_t b = 0;
  while (b < s.size() && s[b] == ' ') ++b;
  return s.substr(b);
}

}  // namespace

PeerProcess::PeerProcess(const std::vector<std::string>& argv,
                         const std::vector<std::pair<std::string, std::string>>& env) {
  // A peer that dies while we write its request must not take the benchmark down with SIGPIPE.
  std::signal(SIGPIPE, SIG_IGN);
  int to_child[2], from_child[2];
  if (pipe2(to_child, O_CLOEXEC) != 0) {
    error_ = std::string("pipe: ") + std::strerror(errno);
    return;
  }
  if (pipe2(from_child, O_CLOEXEC) != 0) {
    error_ = std::string("pipe: ") + std::strerror(errno);
    close(to_child[0]);
    close(to_child[1]);
    return;
  }
  int err = 0;
  pid_ = spawn(argv, env, to_child[0], from_child[1], -1, err);
  close(to_child[0]);
  close(from_child[1]);
  if (pid_ < 0) {
    error_ = argv[0] + ": " + std::strerror(err);
    close(to_child[1]);
    close(from_child[0]);
    return;
  }
  in_ = fdopen(to_child[1], "w");
  out_ = fdopen(from_child[0], "r");
  std::string line;
  if (!in_ || !out_ || !read_line(line)) {
    error_ = argv[0] + " exited before saying it was ready";
    shutdown();
    return;
  }
  if (line.rfind("ready", 0) != 0) {
    error_ = trim(line.rfind("error ", 0) == 0 ? line.substr(6) : line);
    shutdown();
    return;
  }
  ready_ = trim(line);
  ok_ = true;
}

PeerProcess::~PeerProcess() {
  shutdown();
}

std::optional<std::string> PeerProcess::request(const std::string& line) {
  if (!ok_) return std::nullopt;
  std::string answer;
  if (std::fprintf(in_, "%s\n", line.c_str()) < 0 || std::fflush(in_) != 0 || !read_line(answer)) {
    error_ = "the peer exited while answering '" + line + "'";
    shutdown();
    return std::nullopt;
  }
  answer = trim(answer);
  if (answer == "ok") return std::string();
  if (answer.rfind("ok ", 0) == 0) return trim(answer.substr(3));
  error_ = answer.rfind("error ", 0) == 0 ? answer.substr(6) : answer;
  return std::nullopt;
}

bool PeerProcess::read_line(std::string& line) {
  line.clear();
  int ch;
  while ((ch = std::fgetc(out_)) != EOF && ch != '\n') line.push_back(char(ch));
  return ch == '\n';
}

void PeerProcess::shutdown() {
  if (in_) {
    std::fputs("quit\n", in_);
    std::fclose(in_);
    in_ = nullptr;
  }
  if (out_) {
    std::fclose(out_);
    out_ = nullptr;
  }
  if (pid_ > 0) {
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
  }
  ok_ = false;
}

CommandResult run_command(const std::vector<std::string>& argv) {
  CommandResult result;
  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) {
    result.output = std::string("pipe: ") + std::strerror(errno);
    return result;
  }
  int err = 0;
  const pid_t pid = spawn(argv, {}, -1, pipe_fds[1], pipe_fds[1], err);
  close(pipe_fds[1]);
  if (pid < 0) {
    close(pipe_fds[0]);
    result.output = argv[0] + ": " + std::strerror(err);
    return result;
  }
  char buf[4096];
  ssize_t n;
  while ((n = read(pipe_fds[0], buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR))
    if (n > 0) result.output.append(buf, size_t(n));
  close(pipe_fds[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

std::string find_source_file(const std::string& rel) {
  std::vector<std::string> candidates;
  if (const char* dir = std::getenv("DUET_SOURCE_DIR")) candidates.push_back(dir + ("/" + rel));
  candidates.push_back(rel);
  char exe[4096];
  const ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n > 0) {
    std::string dir(exe, size_t(n));
    for (int up = 0; up < 4 && dir.rfind('/') != std::string::npos; ++up) {
      dir.resize(dir.rfind('/'));
      candidates.push_back(dir + "/" + rel);
    }
  }
  for (const auto& c : candidates)
    if (access(c.c_str(), R_OK) == 0) return std::filesystem::absolute(c).lexically_normal();
  return "";
}

}  // namespace duet::bench
