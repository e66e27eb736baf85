#include "duet/eval/gap_svg.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <vector>

namespace duet::eval {
namespace {

constexpr double kPanelW = 230, kPanelH = 190, kLeft = 42, kRight = 10, kTop = 26, kBottom = 34;
constexpr int kMaxSeverity = 5;

struct Series {
  const char* key;    // JSON key and CSS class
  const char* label;  // legend
  const char* colour;
};
constexpr Series kSeries[] = {{"discriminative", "classifier (discriminative)", "#1f5fa8"},
                              {"generative", "generator as classifier", "#d4691c"}};

std::string num(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.1f", v);
  return b;
}

}  // namespace

std::string robustness_svg(const nlohmann::json& points) {
  // Families in order of first appearance; every panel starts with the clean point.
  std::vector<std::string> families;
  const nlohmann::json* clean = nullptr;
  for (const auto& p : points) {
    const std::string f = p.value("family", "");
    if (f == "clean")
      clean = &p;
    else if (std::find(families.begin(), families.end(), f) == families.end())
      families.push_back(f);
  }
  const double width = std::max<double>(1, families.size()) * kPanelW;
  const double height = kPanelH + 28;
  std::string s = "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"robustness\" width=\"" +
                  num(width) + "\" height=\"" + num(height) + "\" viewBox=\"0 0 " + num(width) +
                  " " + num(height) + "\" font-family=\"sans-serif\" font-size=\"11\">\n";
  const double pw = kPanelW - kLeft - kRight, ph = kPanelH - kTop - kBottom;
  for (size_t f = 0; f < families.size(); ++f) {
    const double x0 = f * kPanelW + kLeft, y0 = kTop;
    auto X = [&](double sev) { return x0 + pw * sev / kMaxSeverity; };
    auto Y = [&](double acc) { return y0 + ph * (1.0 - acc); };
    s += "<g class=\"panel\" data-family=\"" + families[f] + "\">\n";
    s += "<text x=\"" + num(x0 + pw / 2) + "\" y=\"16\" text-anchor=\"middle\" " +
         "font-weight=\"bold\">" + families[f] + "</text>\n";
    s += "<rect x=\"" + num(x0) + "\" y=\"" + num(y0) + "\" width=\"" + num(pw) + "\" height=\"" +
         num(ph) + "\" fill=\"none\" stroke=\"#888\"/>\n";
    for (int a = 0; a <= 100; a += 25) {
      s += "<line x1=\"" + num(x0) + "\" x2=\"" + num(x0 + pw) + "\" y1=\"" + num(Y(a / 100.0)) +
           "\" y2=\"" + num(Y(a / 100.0)) + "\" stroke=\"#ddd\"/>\n";
      s += "<text x=\"" + num(x0 - 4) + "\" y=\"" + num(Y(a / 100.0) + 4) +
           "\" text-anchor=\"end\">" + std::to_string(a) + "</text>\n";
    }
    for (int sev = 0; sev <= kMaxSeverity; ++sev)
      s += "<text x=\"" + num(X(sev)) + "\" y=\"" + num(y0 + ph + 14) +
           "\" text-anchor=\"middle\">" + std::to_string(sev) + "</text>\n";
    s += "<text x=\"" + num(x0 + pw / 2) + "\" y=\"" + num(y0 + ph + 28) +
         "\" text-anchor=\"middle\">severity (0 = clean)</text>\n";
    for (const auto& series : kSeries) {
      std::map<int, double> acc;  // severity -> accuracy, sorted
      if (clean) acc[0] = (*clean)[series.key].value("accuracy", 0.0);
      for (const auto& p : points)
        if (p.value("family", "") == families[f])
          acc[p.value("severity", 0)] = p[series.key].value("accuracy", 0.0);
      std::string pts;
      for (const auto& [sev, a] : acc) {
        if (!pts.empty()) pts += ' ';
        pts += num(X(sev));
        pts += ',';
        pts += num(Y(a));
      }
      s += "<polyline class=\"" + std::string(series.key) + "\" data-family=\"" + families[f] +
           "\" fill=\"none\" stroke=\"" + series.colour + "\" stroke-width=\"2\" points=\"" + pts +
           "\"/>\n";
      for (const auto& [sev, a] : acc)
        s += "<circle cx=\"" + num(X(sev)) + "\" cy=\"" + num(Y(a)) + "\" r=\"2.5\" fill=\"" +
             series.colour + "\"><title>" + families[f] + " " + std::to_string(sev) + ", " +
             series.label + ": " + num(100.0 * a) + " %</title></circle>\n";
    }
    s += "</g>\n";
  }
  // Legend under the panels.
  double lx = kLeft;
  for (const auto& series : kSeries) {
    s += "<line x1=\"" + num(lx) + "\" x2=\"" + num(lx + 18) + "\" y1=\"" + num(height - 8) +
         "\" y2=\"" + num(height - 8) + "\" stroke=\"" + series.colour +
         "\" stroke-width=\"2\"/>\n";
    s += "<text x=\"" + num(lx + 22) + "\" y=\"" + num(height - 4) + "\">" + series.label +
         "</text>\n";
    lx += 200;
  }
  s += "<text x=\"4\" y=\"" + num(kTop + ph / 2) + "\" transform=\"rotate(-90 10 " +
       num(kTop + ph / 2) + ")\" text-anchor=\"middle\">accuracy %</text>\n";
  s += "</svg>\n";
  return s;
}

}  // namespace duet::eval
