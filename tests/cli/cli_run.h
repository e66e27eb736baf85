// What the CLI tests share: the built binary and the shipped models' paths, and running `duet`
// with its exit status, stdout and stderr captured (through files named by `tag`, so test files
// running one after another do not read each other's output).
#pragma once

#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace duet::cli_test {

inline const std::string kDuet = std::string(DUET_BINARY_DIR) + "/duet";
inline const std::string kGen = std::string(DUET_SOURCE_DIR) + "/models/unet-xs-fmnist.safetensors";
inline const std::string kClf =
    std::string(DUET_SOURCE_DIR) + "/models/resnet20-fmnist.safetensors";
// The independent judge: another architecture and seed than kClf (reference v1).
inline const std::string kJudge =
    std::string(DUET_SOURCE_DIR) + "/models/resnet32-fmnist.safetensors";

struct Result {
  int code;
  std::string out, err;
};

// The whole file, byte for byte (empty when it cannot be read).
inline std::string slurp(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

inline Result run_duet(const std::string& args, const std::string& tag) {
  const auto dir = std::filesystem::temp_directory_path();
  const std::string out = dir / ("duet_cli_" + tag + "_out.txt");
  const std::string err = dir / ("duet_cli_" + tag + "_err.txt");
  const int status = std::system((kDuet + " " + args + " >" + out + " 2>" + err).c_str());
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, slurp(out), slurp(err)};
}

// A unified model trained for two steps (8/16/32 channels, 64 images) into DIR/model.safetensors:
// enough to exercise every command that takes one. Returns the run's result.
inline Result train_tiny_unified(const std::string& dir, const std::string& tag) {
  return run_duet(
      "-t 2 train --task unified --width 8 --limit 64 --batch 32 --epochs 1 --test-limit 100 "
      "--sample-every 0 --sample-steps 1 -s 3 -o " +
          dir,
      tag);
}

}  // namespace duet::cli_test
