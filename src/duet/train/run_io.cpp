#include "duet/train/run_io.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <fstream>

#include "duet/tensor/error.h"

namespace duet::train {
namespace fs = std::filesystem;

Progress::Progress(bool enabled, std::FILE* lines)
    : enabled_(enabled), bar_(enabled && ::isatty(2)), lines_(lines) {}

void Progress::update(int64_t epoch, int64_t epochs, int64_t batch, int64_t batches, double loss,
                      double img_s) {
  if (!bar_) return;
  const auto now = std::chrono::steady_clock::now();
  if (batch + 1 < batches && now - last_ < std::chrono::milliseconds(200)) return;
  last_ = now;
  const int width = 30, filled = static_cast<int>(width * (batch + 1) / batches);
  std::string bar(static_cast<size_t>(filled), '=');
  bar.resize(static_cast<size_t>(width), ' ');
  std::fprintf(stderr, "\repoch %lld/%lld [%s] %lld/%lld loss %.3f %.0f img/s ",
               static_cast<long long>(epoch), static_cast<long long>(epochs), bar.c_str(),
               static_cast<long long>(batch + 1), static_cast<long long>(batches), loss, img_s);
  std::fflush(stderr);
}

void Progress::line(const std::string& text) {
  if (!enabled_) return;
  if (bar_) std::fprintf(stderr, "\r\033[K");
  std::fprintf(lines_, "%s\n", text.c_str());
  std::fflush(lines_);
}

void Progress::note(const std::string& text) {
  if (enabled_) std::fprintf(stderr, "%s%s\n", bar_ ? "\r\033[K" : "", text.c_str());
}

void fail_recipe_field(const char* key, const std::string& value) {
  fail("training recipe: field '", key, "' has the wrong type: ", value);
}

bool all_parameters_finite(nn::Module& model) {
  for (auto& [name, t] : model.named_parameters())
    if (first_non_finite(*t) >= 0) return false;
  return true;
}

std::string format_number(const char* printf_format, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, printf_format, v);
  return buf;
}

void truncate_log(const fs::path& path, int64_t epochs) {
  std::ifstream in(path);
  if (!in) return;
  std::string kept, line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    try {
      if (nlohmann::json::parse(line).value("epoch", int64_t{0}) <= epochs) kept += line + "\n";
    } catch (const nlohmann::json::exception&) {
      break;  // a torn last line from a crash
    }
  }
  in.close();
  std::ofstream out(path, std::ios::trunc);
  out << kept;
}

void append_log_line(const fs::path& path, const std::string& line) {
  std::ofstream out(path, std::ios::app);
  out << line << "\n";
  out.flush();
  DUET_CHECK(out.good(), path.string(), ": cannot append to the training log");
}

void write_json_atomically(const fs::path& path, const nlohmann::json& j) {
  const std::string tmp = path.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << j.dump(2) << "\n";
    DUET_CHECK(out.good(), tmp, ": cannot write");
  }
  fs::rename(tmp, path);
}

}  // namespace duet::train
