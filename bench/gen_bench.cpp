#include "bench/gen_bench.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <sstream>

#include "bench/model_macs.h"
#include "bench/peer_process.h"
#include "bench/quiet_cpu.h"
#include "duet/autograd/autograd.h"
#include "duet/gen/guidance.h"
#include "duet/kernels/fma_peak.h"
#include "duet/models/registry.h"
#include "duet/nn/profile.h"
#include "duet/tensor/allocator.h"
#include "duet/tensor/error.h"
#include "duet/tensor/parallel.h"
#include "duet/train/generate_step.h"
#include "duet/train/peak_memory.h"

namespace duet::bench {
namespace {

using Note = std::function<void(const std::string&)>;
using Clock = std::chrono::steady_clock;
constexpr double kMiB = 1024.0 * 1024.0;

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// duet's side: the run `duet train --task generate` would make, stepped K at a time, and the
// guided sampler of `duet sample` on the same (training) weights.
class DuetSide {
 public:
  DuetSide(train::GenerateSetup& s, const train::GenerateRecipe& r) : s_(s), r_(r) {
    s_.loader->start_epoch(0);
  }

  // Seconds and mean loss of `steps` training steps (batch preparation included).
  std::pair<double, double> train(int steps) {
    double loss_sum = 0;
    const auto t0 = Clock::now();
    for (int i = 0; i < steps; ++i) {
      while (!s_.loader->next(batch_)) s_.loader->start_epoch(++epoch_);  // epochs wrap around
      const float loss = train::generate_train_step(s_, r_, batch_, step_).total;
      DUET_CHECK(std::isfinite(loss), "bench gen: the loss is ", loss, " at step ", step_ + 1);
      ++step_;
      loss_sum += loss;
    }
    return {seconds_since(t0), loss_sum / std::max(steps, 1)};
  }

  // Seconds of one guided Euler run of `steps` steps for `batch` images.
  double sample(int64_t batch, int steps, double cfg) {
    std::vector<int32_t> labels(static_cast<size_t>(batch));
    const int32_t classes = s_.unet->config().num_classes;
    for (size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<int32_t>(i) % classes;
    gen::SampleOptions o;
    o.kind = gen::SamplerKind::euler;
    o.steps = steps;
    const auto t0 = Clock::now();
    const Tensor images =
        gen::generate(*s_.unet, s_.objective, labels, cfg, o, static_cast<uint64_t>(++draws_));
    const double secs = seconds_since(t0);
    s_.module->train();  // generate() switched to eval mode
    DUET_CHECK(images.dim(0) == batch, "bench gen: sampled ", images.dim(0), " images, not ",
               batch);
    return secs;
  }

 private:
  train::GenerateSetup& s_;
  const train::GenerateRecipe& r_;
  data::Batch batch_;
  int64_t step_ = 0, epoch_ = 0, draws_ = 0;
};

std::unique_ptr<PeerProcess> start_peer(const GenBenchOptions& o, const train::GenerateSetup& s,
                                        const train::GenerateRecipe& r, Note note) {
  const std::string script = find_source_file("bench/peers/torch_gen_bench.py");
  if (script.empty()) {
    note(
        "peer: pytorch unavailable (bench/peers/torch_gen_bench.py not found; set "
        "DUET_SOURCE_DIR); timing duet alone");
    return nullptr;
  }
  const std::vector<std::string> argv = {"/usr/bin/python3",
                                         script,
                                         "--serve",
                                         "--config",
                                         s.config.dump(),
                                         "--batch",
                                         std::to_string(o.batch),
                                         "--lr",
                                         fmt("%.17g", r.lr),
                                         "--wd",
                                         fmt("%.17g", r.weight_decay),
                                         "--ema",
                                         fmt("%.17g", r.ema_decay),
                                         "--cfg-dropout",
                                         fmt("%.17g", r.cfg_dropout),
                                         "--cfg",
                                         fmt("%.17g", o.cfg),
                                         "--seed",
                                         std::to_string(o.seed),
                                         "--threads",
                                         std::to_string(o.threads)};
  auto peer =
      std::make_unique<PeerProcess>(argv, std::vector<std::pair<std::string, std::string>>{
                                              {"OMP_NUM_THREADS", std::to_string(o.threads)}});
  if (!peer->ok()) {
    note("peer: pytorch unavailable (" + peer->error() + "); timing duet alone");
    return nullptr;
  }
  note("peer: " + peer->ready_line());
  return peer;
}

// One request to the peer; the numbers of its answer, or nothing (and the peer dropped) when it
// stopped answering.
std::optional<std::vector<double>> ask(std::unique_ptr<PeerProcess>& peer, const std::string& line,
                                       Note note) {
  if (!peer) return std::nullopt;
  const auto answer = peer->request(line);
  if (answer) {
    std::istringstream in(*answer);
    std::vector<double> v;
    for (double x; in >> x;) v.push_back(x);
    if (!v.empty()) return v;
  }
  note("peer: pytorch stopped answering '" + line + "' (" + (answer ? *answer : peer->error()) +
       "); timing duet alone");
  peer.reset();
  return std::nullopt;
}

BenchRow row(const std::string& name, int64_t batch, const std::string& unit,
             const std::string& peer) {
  BenchRow r;
  r.name = name;
  r.batch = batch;
  r.unit = unit;
  r.peer = peer;
  r.theirs = r.ratio = NAN;
  return r;
}

}  // namespace

std::vector<BenchRow> bench_gen(const GenBenchOptions& o, const Note& note) {
  DUET_CHECK(o.threads >= 1, "bench gen: threads must be >= 1, got ", o.threads);
  if (o.steps < 1 || o.rounds < 1 || o.warmup < 0 || o.batch < 1 || o.latency_steps < 0)
    fail_usage("bench gen: --steps, --rounds and --batch must be >= 1 (got ", o.steps, ", ",
               o.rounds, ", ", o.batch, ")");
  // The recipe of `duet train --task generate --arch A --batch B -s SEED`: flow matching with
  // logit-normal times, label dropout 0.1, AdamW lr 1e-3 (cosine), EMA 0.999.
  train::GenerateRecipe recipe;
  recipe.arch = o.arch;
  recipe.data = o.data;
  recipe.batch = o.batch;
  recipe.seed = o.seed;
  recipe.validate();
  const int saved_threads = num_threads();
  set_num_threads(o.threads);
  const double peak = kernels::measure_fma_peak_gflops(o.threads);
  train::GenerateSetup setup = train::make_generate_setup(recipe);
  const int64_t needed = int64_t{o.warmup} + int64_t{o.steps} * o.rounds;
  if (needed > setup.total_steps) {  // keep the benchmark's steps inside the schedule
    recipe.epochs = (needed + setup.batches_per_epoch - 1) / setup.batches_per_epoch;
    setup.total_steps = recipe.epochs * setup.batches_per_epoch;
  }
  const double macs = forward_macs_per_image(setup.config);
  const double train_flops = 3.0 * 2.0 * macs;  // per image: forward + two backward passes
  const double b = static_cast<double>(o.batch);
  const int lat_steps = o.latency_steps > 0 ? o.latency_steps : std::max(o.steps, 10);
  // Per sampling step with guidance: 2B forwards (conditional and unconditional halves).
  const double guided = o.cfg == 1.0 || o.cfg == 0.0 ? 1.0 : 2.0;
  const double step_flops = guided * b * 2.0 * macs;
  note("model " + o.arch + ": " + std::to_string(setup.module->parameter_count()) +
       " parameters, " + fmt("%.1f", macs / 1e6) + " M forward MACs per image; training " +
       fmt("%.3f", train_flops / 1e9) + " GFLOP per image (3 x forward), sampling " +
       fmt("%.2f", step_flops / 1e9) + " GFLOP per step at batch " + std::to_string(o.batch) +
       " (" + fmt("%.0f", guided * b) + " forwards)");
  note("recipe: flow matching, logit-normal t, label dropout " + fmt("%g", recipe.cfg_dropout) +
       ", MSE, AdamW lr " + fmt("%g", recipe.lr) + " " + recipe.schedule + ", EMA " +
       fmt("%g", recipe.ema_decay) + ", batch " + std::to_string(o.batch) + "; duet on " + o.data +
       ", pytorch on random images in [-1, 1]; random weights on both sides (not the same ones: "
       "not needed for timing)");
  note("sampling: euler, cfg " + fmt("%g", o.cfg) + ", " + std::to_string(o.steps) +
       " steps per run at batch " + std::to_string(o.batch) + ", " + std::to_string(lat_steps) +
       " at batch 1; " + std::to_string(o.warmup) + " warm-up + " + std::to_string(o.rounds) +
       " rounds per side, alternating");

  std::unique_ptr<PeerProcess> peer = start_peer(o, setup, recipe, note);
  DuetSide duet(setup, recipe);
  // Worker threads of the side that just ran may keep spinning; the other side starts once
  // both processes are quiet, or on a 2-core machine the first side's tail slows the second.
  const auto settle = [&] { bench::settle(peer ? peer->pid() : 0); };
  const bool trace = std::getenv("DUET_BENCH_TRACE") != nullptr;
  auto trace_line = [&](const char* what, int round, double secs) {
    if (trace) std::fprintf(stderr, "round %d %s: %.3f s\n", round, what, secs);
  };
  const std::string bs = "sample " + std::to_string(o.batch) + " ";

  // Sampling first, so the memory numbers see the model (and AdamW's moments, once allocated)
  // but not the training step's activations still cached by either side.
  if (o.warmup > 0) {
    duet.sample(o.batch, o.warmup, o.cfg);
    ask(peer, bs + std::to_string(o.warmup), note);
  }
  std::vector<double> ours_sample, theirs_sample;
  double base_bytes = 0, sample_peak_bytes = 0, their_sample_rss = NAN;
  for (int round = 0; round < o.rounds; ++round) {
    const bool measure_memory = round + 1 == o.rounds;
    if (measure_memory) {
      memory::reset_peak();
      base_bytes = static_cast<double>(memory::current_bytes());
    }
    settle();
    ours_sample.push_back(duet.sample(o.batch, o.steps, o.cfg));
    if (measure_memory) sample_peak_bytes = static_cast<double>(memory::peak_bytes());
    trace_line("duet sample", round + 1, ours_sample.back());
    if (!peer) continue;
    bool reset = false;
    if (measure_memory)
      if (const auto v = ask(peer, "memreset", note)) reset = (*v)[0] == 1;
    settle();
    if (const auto v = ask(peer, bs + std::to_string(o.steps), note)) {
      theirs_sample.push_back((*v)[0]);
      trace_line("pytorch sample", round + 1, theirs_sample.back());
    }
    if (measure_memory && reset)
      if (const auto v = ask(peer, "mem", note)) their_sample_rss = (*v)[0];
  }
  // Batch-1 latency: one warm-up run per side, then the rounds.
  const std::string one = "sample 1 " + std::to_string(lat_steps);
  duet.sample(1, 1, o.cfg);
  ask(peer, "sample 1 1", note);
  std::vector<double> ours_lat, theirs_lat;
  for (int round = 0; round < o.rounds; ++round) {
    settle();
    ours_lat.push_back(duet.sample(1, lat_steps, o.cfg));
    trace_line("duet sample batch 1", round + 1, ours_lat.back());
    settle();
    if (const auto v = ask(peer, one, note)) {
      theirs_lat.push_back((*v)[0]);
      trace_line("pytorch sample batch 1", round + 1, theirs_lat.back());
    }
  }

  // Training.
  if (o.warmup > 0) {
    duet.train(o.warmup);
    ask(peer, "train " + std::to_string(o.warmup), note);
  }
  std::vector<double> ours_train, theirs_train;
  double our_loss = NAN, their_loss = NAN;
  for (int round = 0; round < o.rounds; ++round) {
    settle();
    const auto [secs, loss] = duet.train(o.steps);
    ours_train.push_back(static_cast<double>(o.steps) * b / secs);
    our_loss = loss;
    trace_line("duet train", round + 1, secs);
    settle();
    if (const auto v = ask(peer, "train " + std::to_string(o.steps), note); v && v->size() >= 3) {
      theirs_train.push_back((*v)[1] / (*v)[0]);
      their_loss = (*v)[2];
      trace_line("pytorch train", round + 1, (*v)[0]);
    }
  }
  const bool peer_ok = peer && theirs_train.size() == ours_train.size() &&
                       theirs_sample.size() == ours_sample.size() &&
                       theirs_lat.size() == ours_lat.size();
  note("mean training loss of the last round (random weights, first steps): duet " +
       fmt("%.4f", our_loss) + (peer_ok ? ", pytorch " + fmt("%.4f", their_loss) : std::string()));
  note("duet sampling memory: " + fmt("%.1f", base_bytes / kMiB) +
       " MiB live before the run (weights, optimizer state, EMA), peak " +
       fmt("%.1f", sample_peak_bytes / kMiB) + " MiB (" +
       fmt("%.1f", (sample_peak_bytes - base_bytes) / kMiB) + " MiB during the run)");

  const std::string peer_name = peer_ok ? "pytorch-1.13" : "pytorch-1.13 (unavailable)";
  std::vector<BenchRow> rows;
  rows.push_back(fma_peak_row(peak));

  auto fraction = [&](double gflops) { return peak > 0 ? gflops / peak : 0.0; };
  BenchRow tr = row("train " + o.arch + " (flow, cfg-drop " + fmt("%g", recipe.cfg_dropout) + ")",
                    o.batch, "img/s", peer_name);
  tr.ours = median(ours_train);
  if (peer_ok) tr.theirs = median(theirs_train);
  tr.ratio = tr.ours / tr.theirs;  // a rate: > 1 means duet is faster
  tr.gflops = tr.ours * train_flops / 1e9;
  tr.peak_fraction = fraction(tr.gflops);
  rows.push_back(tr);

  const std::string sname = "sample " + o.arch + " euler cfg " + fmt("%g", o.cfg);
  const double our_run = median(ours_sample), their_run = peer_ok ? median(theirs_sample) : NAN;
  // Images per second of a 10-step run (the usual sampling length), from the time per step, so
  // the row does not depend on --steps.
  constexpr double kRunSteps = 10;
  BenchRow rate = row(sname + ", 10-step run", o.batch, "images/s", peer_name);
  rate.ours = b / (kRunSteps * our_run / o.steps);
  rate.theirs = b / (kRunSteps * their_run / o.steps);
  rate.ratio = rate.ours / rate.theirs;
  rate.gflops = step_flops * o.steps / our_run / 1e9;
  rate.peak_fraction = fraction(rate.gflops);
  rows.push_back(rate);

  BenchRow per_step = row(sname + " per step", o.batch, "ms", peer_name);
  per_step.ours = 1e3 * our_run / o.steps;
  per_step.theirs = 1e3 * their_run / o.steps;
  per_step.ratio = per_step.theirs / per_step.ours;  // a time: > 1 means duet is faster
  per_step.gflops = rate.gflops;
  per_step.peak_fraction = rate.peak_fraction;
  rows.push_back(per_step);

  BenchRow lat = row(sname + " latency/step", 1, "ms", peer_name);
  lat.ours = 1e3 * median(ours_lat) / lat_steps;
  lat.theirs = peer_ok ? 1e3 * median(theirs_lat) / lat_steps : NAN;
  lat.ratio = lat.theirs / lat.ours;
  lat.gflops = guided * 2.0 * macs / (lat.ours / 1e3) / 1e9;
  lat.peak_fraction = fraction(lat.gflops);
  rows.push_back(lat);

  BenchRow smem =
      row("peak memory of sampling", o.batch, "MiB", peer_ok ? "pytorch-1.13 (VmHWM)" : peer_name);
  smem.ours = sample_peak_bytes / kMiB;
  smem.theirs = their_sample_rss / kMiB;
  smem.ratio = smem.theirs / smem.ours;  // > 1: duet needs less
  rows.push_back(smem);

  const train::PeakMemory mem = train::peak_memory();
  double their_rss = NAN;
  if (peer_ok)
    if (const auto v = ask(peer, "mem", note)) their_rss = (*v)[0];
  BenchRow rss = row("peak RSS (process, all phases)", o.batch, "MiB", peer_name);
  rss.ours = static_cast<double>(mem.rss_bytes) / kMiB;
  rss.theirs = their_rss / kMiB;
  rss.ratio = rss.theirs / rss.ours;
  rows.push_back(rss);

  set_num_threads(saved_threads);
  return rows;
}

}  // namespace duet::bench
