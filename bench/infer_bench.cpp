#include "bench/infer_bench.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>

#include "bench/peer_process.h"
#include "bench/quiet_cpu.h"
#include "duet/autograd/autograd.h"
#include "duet/compress/fold.h"
#include "duet/compress/fused_blocks.h"
#include "duet/compress/fused_conv.h"
#include "duet/compress/quantize.h"
#include "duet/io/safetensors.h"
#include "duet/kernels/conv2d_blocked.h"
#include "duet/kernels/conv2d_int8.h"
#include "duet/kernels/fma_peak.h"
#include "duet/kernels/isa.h"
#include "duet/models/checkpoint.h"
#include "duet/models/registry.h"
#include "duet/nn/profile.h"
#include "duet/tensor/error.h"
#include "duet/tensor/parallel.h"
#include "duet/tensor/rng.h"

namespace duet::bench {
namespace {

namespace fs = std::filesystem;
using Note = std::function<void(const std::string&)>;

constexpr int64_t kCheckBatch = 4;  // images in the logits agreement check
// int8 check: the limit on max |duet - ORT| logits as a fraction of max |logit|. Measured on the
// shipped ResNet-20 (percentile and kl): 0.02-0.03, and 0.01-0.02 with DUET_BENCH_INT8_EXACT;
// the limit leaves room for that and still fails an export whose logits are off by their size.
constexpr double kInt8CheckFraction = 0.1;

// A private scratch folder (checkpoint, .onnx, input/output files), removed at the end.
class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string pattern = std::string(base && *base ? base : "/tmp") + "/duet-bench-infer-XXXXXX";
    if (!mkdtemp(pattern.data())) fail("bench infer: cannot create a folder like ", pattern);
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  fs::path path_;
};

struct Subject {
  std::string label;
  nlohmann::json config;
  std::shared_ptr<nn::Module> model;
  std::string checkpoint;  // on disk: given with -m, or written for the exporter
  bool int8 = false;       // an int8 checkpoint: `model` is its folded inference form already
};

// Moves BatchNorm running statistics away from (0, 1) so the logits check would notice an
// exporter or runtime that mishandles them; plain random init leaves them trivial.
void perturb_running_stats(nn::Module& model, uint64_t seed) {
  Generator gen(seed);
  for (auto& [name, t] : model.named_buffers()) {
    if (t->dtype() != DType::f32) continue;
    const auto ends_with = [&](const std::string& s) {
      return name.size() >= s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0;
    };
    if (ends_with("running_mean")) gen.normal(t->data<float>(), t->numel(), 0.0f, 0.2f);
    if (ends_with("running_var")) gen.uniform(t->data<float>(), t->numel(), 0.5f, 1.5f);
  }
}

Subject preset_subject(const std::string& arch, uint64_t seed) {
  Subject s;
  s.label = arch;
  s.config = models::preset_config(arch);
  Generator gen(seed);
  s.model = models::build_model(s.config, gen);
  perturb_running_stats(*s.model, seed + 1);
  return s;
}

Subject checkpoint_subject(const std::string& path) {
  // load_inference_model folds float checkpoints; keep those unfolded here so that timed_model
  // can check its folding against them.
  const auto file = io::SafetensorsFile::load(path);
  const bool int8 = compress::is_quantized_config(models::read_model_config(file));
  auto loaded = int8 ? compress::load_inference_model(path) : models::load_model(path);
  Subject s;
  s.label = fs::path(path).filename().string();
  s.config = loaded.config;
  s.model = loaded.model;
  s.checkpoint = path;
  s.int8 = int8;
  return s;
}

// --vs takes either: an existing file is a checkpoint, anything else must name a preset.
Subject other_subject(const std::string& spec, uint64_t seed) {
  if (fs::exists(spec)) return checkpoint_subject(spec);
  const auto names = models::preset_names();
  if (std::find(names.begin(), names.end(), spec) == names.end()) {
    std::string known;
    for (const auto& n : names) known += (known.empty() ? "" : ", ") + n;
    fail_usage("bench infer: --vs '", spec, "' is neither a checkpoint file nor a preset (", known,
               ")");
  }
  return preset_subject(spec, seed);
}

double macs_per_image(nn::Module& model, const nlohmann::json& config) {
  nn::ProfileScope scope;
  model.forward(Tensor::zeros(models::input_shape(config)));
  double macs = 0;
  for (const auto& r : scope.records()) macs += r.macs;
  return macs;
}

Tensor random_input(const nlohmann::json& config, int64_t batch, uint64_t seed) {
  Shape shape = models::input_shape(config);
  shape[0] = batch;
  Generator gen(seed);
  return Tensor::normal(shape, gen);
}

void write_floats(const std::string& path, const Tensor& t) {
  const std::vector<float> v = t.to_vector();
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(v.data()), std::streamsize(v.size() * sizeof(float)));
  if (!f) fail("bench infer: cannot write ", path);
}

std::vector<float> read_floats(const std::string& path) {
  std::ifstream f(path, std::ios::binary | std::ios::ate);
  if (!f) fail("bench infer: cannot read the peer's output ", path);
  const auto bytes = static_cast<size_t>(f.tellg());
  std::vector<float> v(bytes / sizeof(float));
  f.seekg(0);
  f.read(reinterpret_cast<char*>(v.data()), std::streamsize(v.size() * sizeof(float)));
  return v;
}

std::string input_request(const std::string& file, const Tensor& x) {
  std::string r = "input " + file;
  for (int64_t d : x.shape().to_vector()) {
    r += ' ';
    r += std::to_string(d);  // not `" " + to_string(d)`: GCC 12 warns falsely (-Wrestrict)
  }
  return r;
}

// The model duet times for subject s: its folded inference form (checked against the original on
// a few images first), or the model itself with --no-fold or when its family has no folding.
std::shared_ptr<nn::Module> timed_model(const Subject& s, const InferBenchOptions& o,
                                        const Note& note) {
  const std::string activations =
      o.blocked ? "activations channel-blocked (16 channels a vector) between convs"
                : "activations channel-major (--no-blocked)";
  const std::string layout =
      activations + (!o.blocked   ? ""
                     : o.winograd ? ", 3x3 stride-1 convs by Winograd F(4x4, 3x3) where a chunk "
                                    "or batch has 16 tiles of 4x4, else F(2x2, 3x3)"
                                  : ", Winograd off (--no-winograd)");
  if (s.int8) {
    if (auto* clf = dynamic_cast<compress::FoldedClassifier*>(s.model.get()))
      clf->channel_blocked = o.blocked;
    const auto& q = s.config.at("quantization");
    note("duet side: " + s.label + " is an int8 inference checkpoint (" +
         std::to_string(q.value("int8_layers", nlohmann::json::array()).size()) +
         " int8 convs, calibrated by " + q.value("method", "?") + "); timed as stored, " +
         activations + ", 3x3 stride-1 int8 convs " +
         (kernels::use_avx512_vnni() || !o.winograd
              ? "by the direct kernel"
              : std::string("by Winograd F(4x4, 3x3) (transformed weights rounded to int16) where "
                            "a chunk or batch has 16 tiles of 4x4, else ") +
                    (kernels::int8_winograd_enabled() ? "exact integer Winograd F(2x2, 3x3)"
                                                      : "the direct kernel")));
    return s.model;
  }
  if (!o.fold) {
    note("duet side: " + s.label + " unfolded (--no-fold): conv, BatchNorm, ReLU and add run " +
         "as separate ops");
    return s.model;
  }
  if (!compress::foldable(*s.model)) {
    note("duet side: no BatchNorm folding for " + s.model->type_name() + "; timing " + s.label +
         " unfolded");
    return s.model;
  }
  auto folded = compress::fold_for_inference(*s.model);
  auto* clf = dynamic_cast<compress::FoldedClassifier*>(folded.get());
  if (clf) clf->channel_blocked = o.blocked;  // before the check, so it checks what is timed
  int convs = 0;
  for (const auto& [name, m] : folded->named_modules())
    convs += dynamic_cast<const compress::FusedConv*>(m) != nullptr;
  const Tensor x = random_input(s.config, kCheckBatch, o.seed + 5);
  std::vector<float> want, got;
  {
    autograd::NoGradGuard no_grad;
    s.model->eval();
    want = s.model->forward(x).to_vector();
    got = folded->forward(x).to_vector();
  }
  double diff = 0;
  for (size_t i = 0; i < want.size() && i < got.size(); ++i)
    diff = std::max(diff, std::fabs(double(want[i]) - double(got[i])));
  if (want.size() != got.size() || !(diff <= o.check_tolerance))
    fail("bench infer: the folded ", s.label, " disagrees with the original: max |logits ",
         "difference| ", diff, " > ", o.check_tolerance);
  const long chunk = clf ? long(clf->chunk_images) : 0;
  char line[500];
  std::snprintf(line, sizeof line,
                "duet side: %s folded for inference: BatchNorm folded into %d convs, bias, ReLU "
                "and residual add in their epilogues, %s; batches of %ld+ run %ld images per "
                "thread through the whole network (max |folded - unfolded| logits %.3g; "
                "--no-fold times the original)",
                s.label.c_str(), convs, layout.c_str(), 2 * chunk, chunk, diff);
  note(line);
  return folded;
}

// One side of the comparison: given an input, seconds per forward call over `iters` calls.
class Contender {
 public:
  virtual ~Contender() = default;
  virtual void set_input(const Tensor& x) = 0;  // includes one warm-up call
  virtual std::optional<double> time(int iters) = 0;
};

// duet's inference path: eval mode, no autograd recording, a preallocated input.
class DuetContender : public Contender {
 public:
  explicit DuetContender(nn::Module& model) : model_(model) { model_.eval(); }
  void set_input(const Tensor& x) override {
    x_ = x;
    autograd::NoGradGuard no_grad;
    model_.forward(x_);
  }
  std::optional<double> time(int iters) override {
    autograd::NoGradGuard no_grad;
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < iters; ++i) model_.forward(x_);
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / iters;
  }

 private:
  nn::Module& model_;
  Tensor x_;
};

class OrtContender : public Contender {
 public:
  OrtContender(PeerProcess& peer, std::string input_file)
      : peer_(peer), input_file_(std::move(input_file)) {}
  void set_input(const Tensor& x) override {
    write_floats(input_file_, x);
    if (!peer_.request(input_request(input_file_, x)))
      fail("bench infer: ONNX Runtime rejected the batch-", x.shape()[0],
           " input: ", peer_.error());
  }
  std::optional<double> time(int iters) override {
    auto answer = peer_.request("time " + std::to_string(iters));
    if (!answer) return std::nullopt;
    return std::atof(answer->c_str());
  }

 private:
  PeerProcess& peer_;
  std::string input_file_;
};

// Exports the checkpoint to ONNX and starts the node peer on it; nullptr (after a note saying
// why) when python3+torch, node or onnxruntime-node is missing.
std::unique_ptr<PeerProcess> start_ort(const Subject& s, const TempDir& tmp, int threads,
                                       const Note& note) {
  const auto unavailable = [&](const std::string& why) {
    note("onnxruntime peer unavailable: " + why + "; timing duet alone");
    return nullptr;
  };
  // An int8 checkpoint becomes ONNX Runtime's QDQ form of the same quantised network (duet's
  // scales and codes), so ORT runs its own int8 kernels on it.
  const std::string script = s.int8 ? "export_onnx_int8.py" : "export_onnx.py";
  const std::string exporter = find_source_file("bench/peers/" + script);
  const std::string server = find_source_file("bench/peers/ort_infer.js");
  if (exporter.empty() || server.empty())
    return unavailable("bench/peers/{" + script + ",ort_infer.js} not found (set DUET_SOURCE_DIR)");
  if (access("/usr/bin/python3", X_OK) != 0)
    return unavailable(std::string("/usr/bin/python3 not found (install python3-torch") +
                       (s.int8 ? " and python3-onnx)" : ")"));
  const std::string onnx = tmp.file("model.onnx");
  std::vector<std::string> export_command = {"/usr/bin/python3", exporter, s.checkpoint, onnx};
  // $DUET_BENCH_INT8_EXACT=1: the int8 graph without ORT's extra requantisations, to check that
  // the rest is duet's network (logits agree closely); ORT then runs some convs in float.
  if (s.int8 && std::getenv("DUET_BENCH_INT8_EXACT")) export_command.push_back("--exact");
  const CommandResult exported = run_command(export_command);
  // The exporter ends with one "ok ..." or "error ..." line; torch warnings may come before it,
  // and a crash leaves a traceback whose last line says most.
  std::string last, last_any;
  for (size_t pos = 0; pos < exported.output.size();) {
    size_t end = exported.output.find('\n', pos);
    if (end == std::string::npos) end = exported.output.size();
    const std::string line = exported.output.substr(pos, end - pos);
    if (line.rfind("ok ", 0) == 0 || line.rfind("error ", 0) == 0) last = line;
    if (!line.empty()) last_any = line;
    pos = end + 1;
  }
  if (last.empty()) last = last_any.empty() ? "no output" : last_any;
  if (exported.exit_code != 0 || last.rfind("ok ", 0) != 0)
    return unavailable("ONNX export failed: " +
                       (last.rfind("error ", 0) == 0 ? last.substr(6) : last));
  note("exported " + s.label + " to ONNX: " + last.substr(3));
  auto peer = std::make_unique<PeerProcess>(
      std::vector<std::string>{"node", server, onnx, std::to_string(threads)});
  if (!peer->ok()) {
    std::string why = peer->error();
    if (why.rfind("node:", 0) == 0) why += " (install the Debian packages nodejs and npm)";
    return unavailable(why);
  }
  note("peer: " + peer->ready_line().substr(6));
  return peer;
}

// Runs the same input through duet and the peer; throws when the logits disagree.
void check_logits(nn::Module& model, const Subject& s, PeerProcess& peer, const TempDir& tmp,
                  uint64_t seed, double tolerance, const Note& note) {
  const Tensor x = random_input(s.config, kCheckBatch, seed);
  std::vector<float> ours;
  {
    autograd::NoGradGuard no_grad;
    ours = model.forward(x).to_vector();
  }
  const std::string in = tmp.file("check_input.bin"), out = tmp.file("check_output.bin");
  write_floats(in, x);
  if (!peer.request(input_request(in, x)) || !peer.request("run " + out))
    fail("bench infer: ONNX Runtime could not run the check input: ", peer.error());
  const std::vector<float> theirs = read_floats(out);
  if (theirs.size() != ours.size())
    fail("bench infer: ONNX Runtime returned ", theirs.size(), " logits, duet ", ours.size());
  double diff = 0, scale = 0;  // scale: shows the check compares logits that are not all ~0
  for (size_t i = 0; i < ours.size(); ++i) {
    diff = std::max(diff, std::fabs(double(ours[i]) - double(theirs[i])));
    scale = std::max(scale, std::fabs(double(ours[i])));
  }
  char line[400];
  if (s.int8) {
    // Not the same float arithmetic: ORT requantises the conv outputs that duet keeps in float up
    // to the residual adds (export_onnx_int8.py), so the limit is a fraction of the logits' size.
    tolerance = kInt8CheckFraction * scale;
    int same_class = 0;
    const size_t classes = ours.size() / size_t(kCheckBatch);
    for (size_t i = 0; classes > 0 && i < ours.size(); i += classes)
      same_class += std::max_element(ours.begin() + long(i), ours.begin() + long(i + classes)) -
                        ours.begin() ==
                    std::max_element(theirs.begin() + long(i), theirs.begin() + long(i + classes)) -
                        theirs.begin();
    std::snprintf(line, sizeof line,
                  "check: max |duet int8 - onnxruntime int8| logits %.3g over %ld images (limit "
                  "%.3g = %.2f x max |logit| %.3g; ORT requantises conv outputs before the "
                  "residual adds); same top class on %d of %ld",
                  diff, long(kCheckBatch), tolerance, kInt8CheckFraction, scale, same_class,
                  long(kCheckBatch));
  } else {
    std::snprintf(line, sizeof line,
                  "check: max |duet - onnxruntime| logits %.3g over %ld images (limit %.0e; "
                  "max |logit| %.3g)",
                  diff, long(kCheckBatch), tolerance, scale);
  }
  note(line);
  if (!(diff <= tolerance))
    fail("bench infer: duet and ONNX Runtime disagree on ", s.label, ": max |logits difference| ",
         diff, " > ", tolerance, " (the exported model is not the same network)");
}

// Iterations that make one measurement last about `target_s`, from one timed call.
int iters_for(Contender& c, double target_s) {
  const auto t = c.time(1);
  if (!t || *t <= 0) return 1;
  return std::clamp(int(target_s / *t), 1, 100000);
}

}  // namespace

std::vector<BenchRow> bench_infer(const InferBenchOptions& o, const Note& note) {
  if (o.arch.empty() == o.model.empty())
    fail_usage("bench infer: give exactly one of --arch or -m");
  if (o.batches.empty()) fail_usage("bench infer: --batch needs at least one size");
  for (int64_t b : o.batches)
    if (b < 1 || b > 65536) fail_usage("bench infer: --batch sizes must be in 1..65536, got ", b);
  DUET_CHECK(o.threads >= 1, "bench infer: threads must be >= 1, got ", o.threads);
  note("duet bench infer: isa " + std::string(kernels::isa_name(kernels::active_isa())) +
       (kernels::use_avx512_vnni() ? " (+ avx512-vnni for int8)"
        : kernels::use_avx_vnni()  ? " (+ avx-vnni for int8)"
                                   : "") +
       ", " + std::to_string(o.threads) + " threads" + (o.quick ? " (quick)" : ""));
  struct ThreadsGuard {  // restores the caller's thread count on every exit, errors included
    int saved = num_threads();
    ~ThreadsGuard() { set_num_threads(saved); }
  } threads_guard;
  set_num_threads(o.threads);
  struct WinogradGuard {  // the same for the process-wide Winograd switch
    bool saved = kernels::use_winograd();
    ~WinogradGuard() { kernels::set_winograd(saved); }
  } winograd_guard;
  kernels::set_winograd(o.winograd);
  const double peak = kernels::measure_fma_peak_gflops(o.threads);

  TempDir tmp;
  Subject a = o.model.empty() ? preset_subject(o.arch, o.seed) : checkpoint_subject(o.model);
  a.model->eval();
  double macs = 0;
  {
    autograd::NoGradGuard no_grad;
    macs = macs_per_image(*a.model, a.config);
  }
  char macs_text[32];
  std::snprintf(macs_text, sizeof macs_text, "%.1f M", macs / 1e6);
  note("model " + a.label +
       (o.model.empty() ? " (random init, seed " + std::to_string(o.seed) + ")" : "") + ", input " +
       models::input_shape(a.config).str() + ", " + macs_text + " MACs per image");

  const std::shared_ptr<nn::Module> timed = timed_model(a, o, note);
  std::optional<Subject> b;
  std::shared_ptr<nn::Module> b_timed;
  std::unique_ptr<PeerProcess> ort;
  std::unique_ptr<Contender> peer;
  std::string peer_name;
  if (!o.vs.empty()) {
    b = other_subject(o.vs, o.seed);
    if (models::input_shape(b->config) != models::input_shape(a.config))
      fail_usage("bench infer: --vs ", b->label, " expects input ",
                 models::input_shape(b->config).str(), ", ", a.label, " expects ",
                 models::input_shape(a.config).str());
    b->model->eval();
    b_timed = timed_model(*b, o, note);
    peer = std::make_unique<DuetContender>(*b_timed);
    peer_name = "duet " + b->label;
    note("peer: duet " + b->label + " on the same inputs");
  } else {
    if (a.checkpoint.empty()) {  // the exporter must see the very weights duet times
      a.checkpoint = tmp.file("model.safetensors");
      models::save_model(a.checkpoint, *a.model, a.config);
    }
    ort = start_ort(a, tmp, o.threads, note);
    if (ort) {
      check_logits(*timed, a, *ort, tmp, o.seed + 7, o.check_tolerance, note);
      peer = std::make_unique<OrtContender>(*ort, tmp.file("input.bin"));
      const std::string ready = ort->ready_line();  // "ready onnxruntime-node 1.30.0 threads ..."
      const size_t v = ready.find(' ', 6);
      peer_name = "onnxruntime-node-" + ready.substr(v + 1, ready.find(' ', v + 1) - v - 1);
    } else {
      peer_name = "onnxruntime (unavailable)";
    }
  }

  std::vector<BenchRow> rows;
  rows.push_back(fma_peak_row(peak));

  const int rounds = o.quick ? 3 : 7;
  const double target_s = o.quick ? 0.1 : 0.4;  // per measurement, per side
  // Worker threads of the side that just ran may keep spinning; the other side starts once
  // both processes are quiet, or on a 2-core machine the first side's tail slows the second.
  const auto settle = [&] {
    bench::settle(ort ? ort->pid() : 0, std::chrono::milliseconds(o.quick ? 20 : 50));
  };
  const bool trace = std::getenv("DUET_BENCH_TRACE") != nullptr;
  DuetContender ours(*timed);
  for (int64_t batch : o.batches) {
    const Tensor x = random_input(a.config, batch, o.seed + 11);
    ours.set_input(x);
    const int our_iters = iters_for(ours, target_s);
    int their_iters = 0;
    if (peer) {
      peer->set_input(x);
      their_iters = iters_for(*peer, target_s);
    }
    std::vector<double> our_times, their_times;
    for (int r = 0; r < rounds; ++r) {
      our_times.push_back(*ours.time(our_iters));
      if (!peer) continue;
      settle();
      const auto t = peer->time(their_iters);
      if (!t)
        fail("bench infer: the peer failed while timing batch ", batch, ": ",
             ort ? ort->error() : "no answer");
      their_times.push_back(*t);
      settle();
      if (trace)
        std::fprintf(stderr, "batch %ld round %d: duet %.4f ms x%d, peer %.4f ms x%d\n",
                     long(batch), r, our_times.back() * 1e3, our_iters, *t * 1e3, their_iters);
    }
    BenchRow row;
    row.name = "infer " + a.label + (o.fold ? "" : " unfolded");
    row.batch = batch;
    row.unit = "ms";
    row.peer = peer_name;
    const double ours_s = median(our_times);
    row.ours = ours_s * 1e3;
    row.theirs = peer ? median(their_times) * 1e3 : NAN;
    row.ratio = peer ? row.theirs / row.ours : NAN;
    row.gflops = 2.0 * macs * double(batch) / ours_s * 1e-9;
    row.peak_fraction = peak > 0 ? row.gflops / peak : 0.0;
    rows.push_back(row);
  }
  return rows;
}

void print_infer_table(const std::vector<BenchRow>& rows) {
  std::printf("%-26s %6s %10s %10s %7s %9s %9s %6s  %s\n", "name", "batch", "duet ms", "peer ms",
              "ratio", "img/s", "GFLOP/s", "%peak", "peer");
  for (const BenchRow& r : rows) {
    if (r.unit != "ms") {  // the FMA peak row
      std::printf("%-26s %6s %10s %10s %7s %9s %9.2f %5.1f%%\n", r.name.c_str(), "-", "-", "-", "-",
                  "-", r.gflops, 100.0 * r.peak_fraction);
      continue;
    }
    std::printf("%-26s %6ld %10.4g %10.4g %7.3f %9.0f %9.2f %5.1f%%  %s\n", r.name.c_str(),
                long(r.batch), r.ours, r.theirs, r.ratio, double(r.batch) / (r.ours * 1e-3),
                r.gflops, 100.0 * r.peak_fraction, r.peer.c_str());
  }
}

}  // namespace duet::bench
