#include "duet/eval/gap_html.h"

#include <cmath>
#include <cstdio>

#include "duet/eval/gap_svg.h"

namespace duet::eval {
namespace {

using nlohmann::json;

constexpr const char* kStyle = R"(
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}
h1{font-size:1.6em}h2{font-size:1.25em;margin-top:1.8em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:.6em 0;font-size:.9em}
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:right}
th{background:#f2f2f2}td.l,th.l{text-align:left}
.met{color:#17702a;font-weight:bold}.missed{color:#b3261e;font-weight:bold}
code,pre{font-family:ui-monospace,monospace;font-size:.85em;background:#f6f6f6}
pre{padding:.6em;overflow-x:auto;white-space:pre-wrap;word-break:break-all}
figure{display:inline-block;margin:.5em 1.5em .5em 0;vertical-align:top}
figcaption{font-size:.9em;margin-top:.3em}img{image-rendering:pixelated}
.note{color:#555;font-size:.9em}
)";

// A number from the JSON with `digits` decimals; "n/a" for null (NaN is stored as null).
std::string num(const json& v, int digits) {
  if (!v.is_number()) return "n/a";
  const double d = v.get<double>();
  if (!std::isfinite(d)) return "n/a";
  char b[64];
  std::snprintf(b, sizeof b, "%.*f", digits, d);
  return b;
}

std::string pct(const json& v, int digits = 2) {
  return v.is_number() ? num(json(100.0 * v.get<double>()), digits) + " %" : "n/a";
}

std::string td(const std::string& s, bool left = false) {
  return std::string(left ? "<td class=\"l\">" : "<td>") + s + "</td>";
}
std::string th(const std::string& s, bool left = false) {
  return std::string(left ? "<th class=\"l\">" : "<th>") + s + "</th>";
}

std::string text(const json& v) {
  return html_escape(v.is_string() ? v.get<std::string>() : v.dump());
}

std::string targets_section(const json& r) {
  std::string s = "<h2>Targets</h2>\n<table>\n<tr>" + th("target", true) + th("threshold") +
                  th("measured") + th("result") + th("detail", true) + "</tr>\n";
  for (const auto& t : r["targets"]) {
    const bool met = t.value("met", false);
    const json margin = t["margin"];
    const std::string by = margin.is_number()
                               ? (margin.get<double>() >= 0 ? "+" : "") +
                                     num(json(100.0 * margin.get<double>()), 2) + " points"
                               : "n/a";
    // Rows comparing two numbers (robustness, unified vs separate) are differences in points.
    const bool rob = t.value("difference", false) || t.value("threshold", 0.0) == 0.0;
    const double limit = 100.0 * t.value("threshold", 0.0);
    const std::string threshold =
        limit == 0.0 ? "&gt; 0 points" : "&ge; " + num(json(limit), 2) + " points";
    s += "<tr>" + td(html_escape(t.value("target", "")), true) +
         td(rob ? threshold : pct(t["threshold"])) +
         td(rob ? (t["measured"].get<double>() >= 0 ? "+" : "") +
                      num(json(100.0 * t["measured"].get<double>()), 2) + " points"
                : pct(t["measured"])) +
         "<td class=\"" + (met ? "met" : "missed") + "\">" + (met ? "met" : "missed") + " (" + by +
         ")</td>" + td(html_escape(t.value("detail", "")), true) + "</tr>\n";
  }
  return s + "</table>\n";
}

std::string gap_section(const json& r) {
  const json& g = r["gap"];
  const json& u = g["understanding"];
  std::string s = "<h2>The gap</h2>\n<h3>Understanding (real test set)</h3>\n<table>\n<tr>" +
                  th("", true) + th("value") + "</tr>\n";
  s += "<tr>" + td("classifier accuracy (" + num(u["images"], 0) + " images)", true) +
       td(pct(u["accuracy"])) + "</tr>\n";
  s += "<tr>" + td("classifier ECE (15 bins)", true) + td(num(u["ece"], 4)) + "</tr>\n";
  if (!u["judge_accuracy"].is_null())
    s += "<tr>" + td("independent judge's accuracy", true) + td(pct(u["judge_accuracy"])) +
         "</tr>\n";
  if (!u["unified_accuracy"].is_null())
    s += "<tr>" +
         td("unified model's accuracy (" + num(u["unified_parameters"], 0) +
                " parameters; classifier + generator: " + num(u["separate_parameters"], 0) + ")",
            true) +
         td(pct(u["unified_accuracy"])) + "</tr>\n";
  s += "</table>\n<h3>Generation (" + num(r["settings"]["per_class"], 0) +
       " images per class and mode)</h3>\n<table>\n<tr>" + th("", true);
  const json& rows = g["generation"];
  for (const auto& m : rows) s += th(html_escape(m.value("label", "")));
  s += th("real vs real floor") + "</tr>\n";
  const json& floor = g["floor"];
  auto line = [&](const std::string& label, auto cell, const std::string& floor_cell) {
    s += "<tr>" + td(label, true);
    for (const auto& m : rows) s += td(cell(m));
    s += td(floor_cell) + "</tr>\n";
  };
  line(
      "network passes per image", [](const json& m) { return num(m["passes_per_image"], 0); }, "");
  line(
      "conditional accuracy (classifier = verifier)",
      [](const json& m) { return pct(m["cond_acc_classifier"]); }, "");
  line(
      "conditional accuracy (independent judge)",
      [](const json& m) { return pct(m["cond_acc_judge"]); }, "");
  line(
      "FID-ref", [](const json& m) { return num(m["fid_ref"], 3); }, num(floor["fid_ref"], 3));
  line(
      "KID-ref &plusmn; s.e.",
      [](const json& m) { return num(m["kid_ref"], 4) + " &plusmn; " + num(m["kid_ref_se"], 4); },
      num(floor["kid_ref"], 4) + " &plusmn; " + num(floor["kid_ref_se"], 4));
  line(
      "precision", [](const json& m) { return num(m["precision"], 3); },
      num(floor["precision"], 3));
  line(
      "recall", [](const json& m) { return num(m["recall"], 3); }, num(floor["recall"], 3));
  line(
      "diversity (real: " + num(floor["diversity_real"], 3) + ")",
      [](const json& m) { return num(m["diversity"], 3); }, num(floor["diversity"], 3));
  line(
      "seconds", [](const json& m) { return num(m["seconds"], 1); }, "");
  s += "</table>\n<p class=\"note\">FID-ref, KID-ref, precision / recall (k = 3) and diversity "
       "(mean pairwise distance) in the classifier's penultimate features, generated vs the first "
       "images of each class of the real test set; the floor compares the same counts of real " +
       text(floor["source"]) +
       " images with those test images. Verified sampling keeps, of K candidates, the one the "
       "classifier finds most likely to be the requested class, so its classifier-judged "
       "accuracy is optimistic; the independent judge's is not.</p>\n";
  return s;
}

std::string per_class_section(const json& r) {
  const json& modes = r["generation"];
  const bool judged = !r["understanding"]["judge"].is_null();
  const bool unified = !r["understanding"]["unified"].is_null();
  std::string s = "<h2>Per class</h2>\n<table>\n<tr>" + th("class", true) + th("classifier acc.");
  if (judged) s += th("judge acc.");
  if (unified) s += th("unified acc.");
  for (const auto& m : modes) s += th("cond. acc. " + html_escape(m.value("label", "")));
  if (judged)
    for (const auto& m : modes) s += th("judge cond. acc. " + html_escape(m.value("label", "")));
  for (const auto& m : modes) s += th("FID-ref " + html_escape(m.value("label", "")));
  s += th("FID-ref floor") + "</tr>\n";
  for (const auto& c : r["per_class"]) {
    s += "<tr>" + td(num(c["class"], 0) + " " + text(c["name"]), true) +
         td(pct(c["classifier_accuracy"], 1));
    if (judged) s += td(pct(c["judge_accuracy"], 1));
    if (unified) s += td(pct(c["unified_accuracy"], 1));
    for (const auto& m : modes) s += td(pct(c["cond_acc_classifier"][m.value("name", "")], 1));
    if (judged)
      for (const auto& m : modes) s += td(pct(c["cond_acc_judge"][m.value("name", "")], 1));
    for (const auto& m : modes) s += td(num(c["fid_ref"][m.value("name", "")], 2));
    s += td(num(c["fid_ref_floor"], 2)) + "</tr>\n";
  }
  return s + "</table>\n";
}

std::string samples_section(const json& r, const std::vector<std::vector<uint8_t>>& pngs) {
  std::string s = "<h2>Samples</h2>\n<p class=\"note\">The first " +
                  num(r["settings"]["grid_columns"], 0) +
                  " samples of each class, one row per class, all modes from the same seed " +
                  num(r["settings"]["seed"], 0) + ".</p>\n";
  const json& modes = r["generation"];
  for (size_t i = 0; i < modes.size() && i < pngs.size(); ++i) {
    const json& m = modes[i];
    s += "<figure><img alt=\"" + html_escape(m.value("label", "")) + " samples\" width=\"" +
         num(m["grid"]["width"], 0) + "\" height=\"" + num(m["grid"]["height"], 0) +
         "\" src=\"data:image/png;base64," + base64_encode(pngs[i]) + "\"><figcaption>" +
         html_escape(m.value("label", "")) + ": " + pct(m["cond_acc_classifier"], 1) +
         " by the classifier" +
         (m["cond_acc_judge"].is_null() ? ""
                                        : ", " + pct(m["cond_acc_judge"], 1) + " by the judge") +
         "</figcaption></figure>\n";
  }
  return s;
}

std::string robustness_section(const json& r) {
  const json& set = r["settings"];
  std::string s = "<h2>Corruption robustness</h2>\n<p class=\"note\">" +
                  num(set["robust_images"], 0) + " test images (Philox permutation, seed " +
                  num(set["robust_seed"], 0) + "), corruptions seeded " +
                  num(set["corrupt_seed"], 0) +
                  "; the discriminative classifier against the generator used as a classifier "
                  "(lowest class-conditional loss).</p>\n" +
                  robustness_svg(r["robustness"]["points"]);
  s += "<table>\n<tr>" + th("condition", true) + th("images") + th("classifier acc.") +
       th("generative acc.") + th("generative &minus; classifier") + th("classifier ECE") +
       th("generative ECE") + th("pruning saved") + th("seconds") + "</tr>\n";
  for (const auto& p : r["robustness"]["points"]) {
    const std::string cond = p.value("family", "") == "clean"
                                 ? "clean"
                                 : p.value("family", "") + ":" + num(p["severity"], 0);
    const double d =
        p["generative"].value("accuracy", 0.0) - p["discriminative"].value("accuracy", 0.0);
    s += "<tr>" + td(html_escape(cond), true) + td(num(p["images"], 0)) +
         td(pct(p["discriminative"]["accuracy"])) + td(pct(p["generative"]["accuracy"])) +
         td((d >= 0 ? "+" : "") + num(json(100.0 * d), 2)) +
         td(num(p["discriminative"]["ece"], 3)) + td(num(p["generative"]["ece"], 3)) +
         td(pct(p["generative"]["pruning_saved"], 1)) + td(num(p["seconds"], 1)) + "</tr>\n";
  }
  return s + "</table>\n";
}

std::string provenance_section(const json& r) {
  const json& p = r["provenance"];
  std::string s = "<h2>How this was made</h2>\n";
  if (p.contains("command")) s += "<p>Command:</p>\n<pre>" + text(p["command"]) + "</pre>\n";
  if (p.contains("models")) {
    s += "<table>\n<tr>" + th("role", true) + th("path", true) + th("sha256", true) +
         th("config", true) + "</tr>\n";
    for (const auto& [role, m] : p["models"].items()) {
      if (m.is_null()) continue;
      s += "<tr>" + td(html_escape(role), true) + td("<code>" + text(m["path"]) + "</code>", true) +
           td("<code>" + text(m["sha256"]) + "</code>", true) +
           td("<pre>" + html_escape(m["config"].dump()) + "</pre>", true) + "</tr>\n";
    }
    s += "</table>\n";
  }
  json rest = p;
  rest.erase("command");
  rest.erase("models");
  s += "<p>Versions and settings (seeds included):</p>\n<pre>" + html_escape(rest.dump(1)) + "\n" +
       html_escape(r["settings"].dump(1)) + "</pre>\n";
  s += "<p>Timings (seconds):</p>\n<pre>" + html_escape(r["timings"].dump(1)) + "</pre>\n";
  return s;
}

}  // namespace

std::string base64_encode(std::span<const uint8_t> b) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((b.size() + 2) / 3 * 4);
  for (size_t i = 0; i < b.size(); i += 3) {
    const uint32_t n = (uint32_t(b[i]) << 16) | (i + 1 < b.size() ? uint32_t(b[i + 1]) << 8 : 0) |
                       (i + 2 < b.size() ? uint32_t(b[i + 2]) : 0);
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += i + 1 < b.size() ? kAlphabet[(n >> 6) & 63] : '=';
    out += i + 2 < b.size() ? kAlphabet[n & 63] : '=';
  }
  return out;
}

std::string html_escape(std::string_view t) {
  std::string out;
  out.reserve(t.size());
  for (char c : t) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string gap_html(const json& r, const std::vector<std::vector<uint8_t>>& grid_pngs) {
  std::string s =
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
      "<title>duet gap report</title>\n<style>" +
      std::string(kStyle) + "</style>\n</head>\n<body>\n<h1>duet gap report</h1>\n";
  const json& models = r["provenance"].value("models", json::object());
  auto path = [&](const char* role) {
    return models.contains(role) && !models[role].is_null() ? text(models[role]["path"]) : "n/a";
  };
  s += "<p>Understanding vs generation: classifier <code>" + path("classifier") +
       "</code>, generator <code>" + path("generator") + "</code>, independent judge <code>" +
       path("judge") + "</code>.</p>\n";
  s += targets_section(r) + gap_section(r) + per_class_section(r) + samples_section(r, grid_pngs) +
       robustness_section(r) + provenance_section(r);
  return s + "</body>\n</html>\n";
}

}  // namespace duet::eval
