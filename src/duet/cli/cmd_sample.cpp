// `duet sample -m MODEL --class bag|8|all -n 64 --steps 20 --cfg 2 --sampler heun -s 7 -o x.png`:
// draws class-conditional images from a trained generator into one grid PNG (--grid columns) or
// one PNG per image (--out-dir). `--class all` gives one row per class, named in the image.
// `--verify-with CLASSIFIER --best-of K` draws K candidates per image and keeps the one the
// classifier finds most likely to be the requested class (gen/verify.h).
// `--classifier-guidance SCALE --guide-with NOISY_CLASSIFIER` adds scale * grad log p(y | x_t) of a
// noise-aware classifier at every sampler evaluation (gen/classifier_guidance.h).
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "duet/cli/commands.h"
#include "duet/cli/guide_tools.h"
#include "duet/compress/quantize.h"
#include "duet/data/image.h"
#include "duet/data/image_grid.h"
#include "duet/eval/judge.h"
#include "duet/gen/guidance.h"
#include "duet/gen/verify.h"
#include "duet/models/checkpoint.h"
#include "duet/models/unified.h"
#include "duet/tensor/allocator.h"
#include "duet/tensor/error.h"
#include "duet/tensor/parallel.h"
#include "duet/tensor/rng.h"
#include "duet/train/trainer.h"

namespace duet::cli {
namespace {

struct SampleFlags {
  std::string model;
  std::string cls = "all";
  int64_t count = 0;  // 0: one grid row (all classes: --grid per class)
  int steps = 20;
  double cfg = 2.0;
  std::string sampler;  // empty: the objective's default
  double eta = 0.0;
  int64_t seed = -1;
  std::string out;
  std::string out_dir;
  int64_t grid = 8;
  std::string verify_with;  // a classifier: best-of-K sampling
  int best_of = 1;
  double classifier_guidance = 0.0;
  std::string guide_with;   // a noise-aware classifier (train --noised)
  CLI::App* app = nullptr;  // to tell which flags were given
};

// "Ankle boot" matches "ankle boot", "ankle-boot", "Ankle_Boot"; "T-shirt/top" also "t-shirt".
std::string normalise(const std::string& s) {
  std::string out;
  for (char c : s) out += (c == ' ' || c == '_') ? '-' : static_cast<char>(std::tolower(c));
  return out;
}

int32_t resolve_class(const std::string& name, const std::vector<std::string>& names) {
  const bool numeric = !name.empty() && std::all_of(name.begin(), name.end(), ::isdigit);
  if (numeric && name.size() < 6) {
    const int v = std::stoi(name);
    if (v < static_cast<int>(names.size())) return v;
  }
  for (size_t i = 0; i < names.size(); ++i) {
    const std::string n = normalise(names[i]);
    if (n == normalise(name) || n.substr(0, n.find('/')) == normalise(name))
      return static_cast<int32_t>(i);
  }
  std::string known;
  for (size_t i = 0; i < names.size(); ++i)
    known += (i ? ", " : "") + std::to_string(i) + " " + names[i];
  fail_usage("--class '", name, "' is not a class of this model (known: ", known, ", or all)");
}

void run_sample(const SampleFlags& f) {
  if (f.out.empty() == f.out_dir.empty()) fail_usage("sample: give exactly one of -o or --out-dir");
  if (!f.out.empty() && !data::image_format_for(f.out))
    fail_usage("sample: -o ", f.out, ": expected a .png, .jpg or .jpeg file name");
  if (f.grid < 1 || f.grid > 1024) fail_usage("--grid must be in [1, 1024], got ", f.grid);
  // count 0 stands for "not given" (one grid row); given, it must ask for at least one image.
  if (f.app->count("-n") > 0 && (f.count < 1 || f.count > 100000))
    fail_usage("-n must be in [1, 100000], got ", f.count);
  // An int8 generator (duet quantize) samples through its int8 kernels.
  auto loaded = compress::load_inference_model(f.model);
  auto* unet = models::generator_network(*loaded.model);
  if (!unet)
    fail_usage(f.model, ": not a generator (family '", loaded.config.value("family", ""), "')");
  const auto objective = gen::parse_objective(loaded.config.value("objective", "flow"));
  std::vector<std::string> names = loaded.config.value("class_names", std::vector<std::string>{});
  names.resize(static_cast<size_t>(unet->config().num_classes));
  for (size_t i = 0; i < names.size(); ++i)
    if (names[i].empty()) names[i] = std::to_string(i);

  std::vector<int32_t> labels;
  int64_t columns = f.grid;
  if (f.cls == "all") {
    const int64_t per = f.count > 0 ? std::max<int64_t>(1, f.count / std::ssize(names)) : f.grid;
    for (int32_t c = 0; c < std::ssize(names); ++c) labels.insert(labels.end(), per, c);
    columns = per;
  } else {
    const int32_t c = resolve_class(f.cls, names);
    labels.assign(static_cast<size_t>(f.count > 0 ? f.count : f.grid), c);
  }

  // A reflowed student carries its guidance in its weights: its own scale unless one is asked for.
  const double cfg = f.app->count("--cfg") > 0 ? f.cfg : gen::default_cfg(loaded.config, f.cfg);
  gen::SampleOptions opt = gen::sample_options(objective, f.sampler, f.steps, f.eta);
  if (f.best_of != 1 && f.verify_with.empty())
    fail_usage("sample: --best-of needs --verify-with CLASSIFIER");
  models::LoadedModel verifier;
  models::Classifier* clf = nullptr;
  if (!f.verify_with.empty()) {
    verifier = models::load_model(f.verify_with);
    clf = dynamic_cast<models::Classifier*>(verifier.model.get());
    if (!clf)
      fail_usage("sample: --verify-with ", f.verify_with, " is not a classifier (family '",
                 verifier.config.value("family", ""), "')");
    gen::validate_verifier(unet->config(), verifier.config, f.best_of);
  }
  const GuideClassifier guide =
      load_guide("sample", f.guide_with, f.classifier_guidance,
                 f.app->count("--classifier-guidance") > 0, *unet, objective, loaded.config);
  const bool bar = ::isatty(2);
  opt.on_step = [bar](int done, int total) {
    if (bar) std::fprintf(stderr, "\rstep %d/%d ", done, total);
  };
  const uint64_t seed = f.seed >= 0 ? static_cast<uint64_t>(f.seed) : random_seed() >> 1;
  std::fprintf(stderr, "sample %zu images (%s, %s x %d steps, cfg %g, seed %llu, %d threads)\n",
               labels.size(), gen::objective_name(objective).c_str(),
               gen::sampler_name(opt.kind).c_str(), opt.steps, cfg,
               static_cast<unsigned long long>(seed), num_threads());

  const auto t0 = std::chrono::steady_clock::now();
  Tensor images;
  if (clf) {
    const data::NormStats norm = train::model_norm_stats(verifier.config);
    const auto [lo, hi] = eval::value_range(loaded.config);
    const gen::Scorer score = gen::classifier_scorer(*clf, [norm, lo, hi](const Tensor& x) {
      return eval::to_classifier_input(x, norm, lo, hi);
    });
    // With classifier guidance, every candidate is a classifier-guided draw.
    if (guide.on()) std::printf("%s\n", guide_summary(guide, opt, cfg, f.best_of).c_str());
    const gen::Verified v =
        gen::best_of_k(*unet, objective, score, labels, cfg, opt, seed, f.best_of,
                       guide.on() ? guide_wrap(guide, objective) : gen::PredictorWrap{});
    images = v.images;
    double mean_kept = 0.0, mean_first = 0.0;
    const size_t n = labels.size();
    for (size_t i = 0; i < n; ++i) {
      mean_kept += v.scores[static_cast<size_t>(v.chosen[i]) * n + i] / static_cast<double>(n);
      mean_first += v.scores[i] / static_cast<double>(n);
    }
    std::printf(
        "best-of-%d verified by %s: mean log p(requested) %.4f kept vs %.4f for candidate 0; "
        "%lld network passes per image\n",
        f.best_of, f.verify_with.c_str(), mean_kept, mean_first,
        static_cast<long long>(gen::passes_per_image(opt, cfg, f.best_of)));
  } else if (guide.on()) {
    std::printf("%s\n", guide_summary(guide, opt, cfg).c_str());
    images = gen::generate_classifier_guided(*unet, objective, labels, cfg, *guide.classifier,
                                             guide.map, guide.scale, opt, seed);
  } else {
    images = gen::generate(*unet, objective, labels, cfg, opt, seed);
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (bar) std::fprintf(stderr, "\r\033[K");

  if (!f.out.empty()) {
    data::Image grid = data::image_grid(images, columns);
    if (f.cls == "all")  // one row per class: name the rows inside the image
      grid = data::label_grid_rows(grid, names, unet->config().image_size);
    data::write_image(f.out, grid);
    std::printf("wrote %s (%zu images, %lld per row)\n", f.out.c_str(), labels.size(),
                static_cast<long long>(columns));
  } else {
    std::filesystem::create_directories(f.out_dir);
    for (size_t i = 0; i < labels.size(); ++i) {
      char name[64];
      std::snprintf(name, sizeof name, "%05zu-%s.png", i,
                    normalise(names[static_cast<size_t>(labels[i])]).c_str());
      std::string file = name;
      std::replace(file.begin(), file.end(), '/', '-');
      data::write_png((std::filesystem::path(f.out_dir) / file).string(),
                      data::to_image(images, static_cast<int64_t>(i)));
    }
    std::printf("wrote %zu images to %s\n", labels.size(), f.out_dir.c_str());
  }
  std::printf("%.2f s: %.1f ms per step, %.1f images/s; peak tensor memory %.1f MiB\n", secs,
              1e3 * secs / opt.steps, static_cast<double>(labels.size()) / secs,
              static_cast<double>(memory::peak_bytes()) / (1 << 20));
}

}  // namespace

Action add_sample_command(CLI::App& app) {
  auto f = std::make_shared<SampleFlags>();
  CLI::App* sub = app.add_subcommand("sample", "draw class-conditional images from a generator");
  f->app = sub;
  sub->add_option("-m,--model", f->model, "a generator checkpoint (.safetensors)")->required();
  sub->add_option("--class", f->cls, "class name or index, or all (one row per class)")
      ->capture_default_str();
  sub->add_option("-n", f->count, "images (default: one row of --grid; with all: per class row)");
  sub->add_option("--steps", f->steps, "sampler steps")->capture_default_str();
  sub->add_option("--cfg", f->cfg,
                  "classifier-free guidance scale (1: conditional, 0: none; a reflowed model: 1)")
      ->capture_default_str();
  sub->add_option("--sampler", f->sampler, "euler | heun (flow), ddim | ddpm (diffusion)");
  sub->add_option("--eta", f->eta, "DDIM noise (0: deterministic)")->capture_default_str();
  sub->add_option("-s,--seed", f->seed, "random seed (negative or absent: random, logged)");
  sub->add_option("-o,--output", f->out, "grid image to write (.png, or .jpg / .jpeg)");
  sub->add_option("--out-dir", f->out_dir, "write one PNG per image into this folder");
  sub->add_option("--grid", f->grid, "images per grid row")->capture_default_str();
  sub->add_option("--verify-with", f->verify_with,
                  "a classifier: keep the best of --best-of candidates per image");
  sub->add_option("--best-of", f->best_of, "candidates per image (with --verify-with)")
      ->capture_default_str();
  sub->add_option("--classifier-guidance", f->classifier_guidance,
                  "classifier guidance scale (with --guide-with; composes with --cfg)");
  sub->add_option("--guide-with", f->guide_with,
                  "a noise-aware classifier (duet train --task classify --noised flow)");
  return [f] { run_sample(*f); };
}

}  // namespace duet::cli
