// Optimizers, schedules and weight EMA: PyTorch golden values (tests/golden/make_optim_golden.py)
// for SGD (Nesterov and plain momentum, L2 decay per group) and AdamW over 5 steps with a skipped
// gradient, OneCycleLR values, schedule endpoints, the EMA formula by hand, bit-identical resume
// from a saved state_dict, and the decay / no-decay parameter split.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>

#include "duet/autograd/autograd.h"
#include "duet/io/safetensors.h"
#include "duet/io/tensor_io.h"
#include "duet/kernels/isa.h"
#include "duet/nn/layers.h"
#include "duet/tensor/parallel.h"
#include "duet/tensor/rng.h"
#include "duet/train/adamw.h"
#include "duet/train/ema.h"
#include "duet/train/schedule.h"
#include "duet/train/sgd.h"

using namespace duet;
using namespace duet::train;

namespace {

const std::string kGolden = std::string(DUET_SOURCE_DIR) + "/tests/golden/optim_golden.safetensors";

// max |a - b| / max(1, |b|): absolute near zero, relative for large values.
double max_rel_diff(const Tensor& a, const Tensor& b) {
  EXPECT_EQ(a.shape(), b.shape());
  if (a.shape() != b.shape()) return INFINITY;
  const auto va = a.to_vector(), vb = b.to_vector();
  double m = 0;
  for (size_t i = 0; i < va.size(); ++i)
    m = std::max(m, std::fabs(double(va[i]) - vb[i]) / std::max(1.0, std::fabs(double(vb[i]))));
  return m;
}

bool bit_equal(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && a.dtype() == b.dtype() &&
         std::memcmp(a.raw_data(), b.raw_data(), a.nbytes()) == 0;
}

void set_grad(Tensor& p, const Tensor& g) {
  autograd::set_requires_grad(p);
  p.autograd_meta()->grad = g.clone();
}

std::vector<double> f64_entry(const io::SafetensorsFile& file, const std::string& name) {
  const auto& e = file.at(name);
  EXPECT_EQ(e.dtype, DType::f64);
  std::vector<double> out(static_cast<size_t>(e.numel()));
  std::memcpy(out.data(), file.bytes(e).data(), e.nbytes);
  return out;
}

// The golden file's four parameters: a and c decay, b and d do not.
struct GoldenParams {
  std::map<std::string, Tensor> p;
  explicit GoldenParams(const std::map<std::string, Tensor>& g) {
    for (const char* k : {"a", "b", "c", "d"}) {
      p[k] = g.at(std::string("init.") + k).clone();
      autograd::set_requires_grad(p[k]);
    }
  }
  std::vector<ParamGroup> groups(double wd) {
    return {{{{"a", &p["a"]}, {"c", &p["c"]}}, wd}, {{{"b", &p["b"]}, {"d", &p["d"]}}, 0.0}};
  }
};

void run_golden(Optimizer& opt, GoldenParams& params, const std::map<std::string, Tensor>& g,
                const std::string& run) {
  const std::vector<float> lrs = g.at(run + ".lr").to_vector();
  ASSERT_EQ(lrs.size(), 5u);
  for (int step = 0; step < 5; ++step) {
    opt.set_lr(lrs[step]);
    opt.zero_grad();
    for (auto& [k, t] : params.p) {
      auto it = g.find("grad." + std::to_string(step) + "." + k);
      if (it != g.end()) set_grad(t, it->second);
    }
    opt.step();
  }
  const auto state = opt.state_dict();
  const std::map<std::string, Tensor> state_map(state.begin(), state.end());
  int checked = 0;
  for (auto& [k, t] : params.p) {
    EXPECT_LE(max_rel_diff(t, g.at(run + ".final." + k)), 1e-6) << run << " param " << k;
    for (auto& [key, value] : g) {
      const std::string prefix = run + ".state." + k + ".";
      if (key.rfind(prefix, 0) != 0) continue;
      const std::string ours = "optim." + k + "." + key.substr(prefix.size());
      ASSERT_TRUE(state_map.count(ours)) << ours;
      EXPECT_LE(max_rel_diff(state_map.at(ours), value), 1e-6) << ours;
      ++checked;
    }
  }
  EXPECT_GE(checked, 4) << run;
  EXPECT_EQ(opt.step_count(), 5);
}

}  // namespace

TEST(OptimGolden, SgdNesterovMatchesPyTorch) {
  const auto g = io::load_tensors(kGolden);
  GoldenParams params(g);
  Sgd opt(params.groups(5e-4), {.lr = 0.1, .momentum = 0.9, .nesterov = true});
  run_golden(opt, params, g, "sgd_nesterov");
}

TEST(OptimGolden, SgdMomentumMatchesPyTorch) {
  const auto g = io::load_tensors(kGolden);
  GoldenParams params(g);
  Sgd opt(params.groups(5e-4), {.lr = 0.1, .momentum = 0.9, .nesterov = false});
  run_golden(opt, params, g, "sgd_momentum");
}

TEST(OptimGolden, AdamWMatchesPyTorch) {
  const auto g = io::load_tensors(kGolden);
  GoldenParams params(g);
  AdamW opt(params.groups(0.05), {.lr = 1e-3, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8});
  run_golden(opt, params, g, "adamw");
  // "c" missed one gradient, so its own step counter is one behind.
  const auto state = opt.state_dict();
  const std::map<std::string, Tensor> s(state.begin(), state.end());
  EXPECT_EQ(*s.at("optim.a.step").data<int64_t>(), 5);
  EXPECT_EQ(*s.at("optim.c.step").data<int64_t>(), 4);
}

TEST(OptimGolden, OneCycleMatchesPyTorch) {
  const auto file = io::SafetensorsFile::load(kGolden);
  const auto lrs = f64_entry(file, "onecycle.lr");
  const auto moms = f64_entry(file, "onecycle.momentum");
  ASSERT_EQ(lrs.size(), 20u);
  OneCycleOptions o;
  o.max_lr = 0.1;
  o.pct_start = 0.25;
  LrSchedule sched;
  sched.kind = ScheduleKind::one_cycle;
  sched.lr = 0.1;
  sched.one_cycle = o;
  for (int s = 0; s < 20; ++s) {
    EXPECT_NEAR(one_cycle_lr(s, 20, o), lrs[s], 1e-12 * std::max(1.0, lrs[s])) << s;
    EXPECT_NEAR(one_cycle_momentum(s, 20, o), moms[s], 1e-12) << s;
    EXPECT_EQ(sched.lr_at(s, 20), one_cycle_lr(s, 20, o)) << s;
    EXPECT_EQ(sched.momentum_at(s, 20, 0.5), one_cycle_momentum(s, 20, o)) << s;
  }
}

TEST(Schedule, Endpoints) {
  EXPECT_DOUBLE_EQ(cosine_lr(0, 100, 0.4, 0.01), 0.4);
  EXPECT_DOUBLE_EQ(cosine_lr(50, 100, 0.4, 0.01), 0.205);
  EXPECT_DOUBLE_EQ(cosine_lr(100, 100, 0.4, 0.01), 0.01);
  OneCycleOptions o;  // max 0.1, pct 0.3, div 25, final div 1e4
  EXPECT_DOUBLE_EQ(one_cycle_lr(0, 100, o), 0.1 / 25);
  EXPECT_DOUBLE_EQ(one_cycle_lr(29, 100, o), 0.1);  // the peak is at pct_start * total - 1
  EXPECT_DOUBLE_EQ(one_cycle_lr(99, 100, o), 0.1 / 25 / 1e4);
  EXPECT_DOUBLE_EQ(one_cycle_momentum(0, 100, o), 0.95);
  EXPECT_DOUBLE_EQ(one_cycle_momentum(29, 100, o), 0.85);
  EXPECT_DOUBLE_EQ(one_cycle_momentum(99, 100, o), 0.95);

  LrSchedule constant;
  constant.lr = 0.05;
  EXPECT_EQ(constant.lr_at(0, 10), 0.05);
  EXPECT_EQ(constant.lr_at(10, 10), 0.05);
  EXPECT_EQ(constant.momentum_at(3, 10, 0.9), 0.9);

  // Warm-up: lr/W, 2lr/W, ..., lr over W steps, then the cosine over the remaining steps.
  LrSchedule warm;
  warm.kind = ScheduleKind::cosine;
  warm.lr = 0.4;
  warm.final_lr = 0.0;
  warm.warmup_steps = 4;
  EXPECT_DOUBLE_EQ(warm.lr_at(0, 104), 0.1);
  EXPECT_DOUBLE_EQ(warm.lr_at(1, 104), 0.2);
  EXPECT_DOUBLE_EQ(warm.lr_at(3, 104), 0.4);
  EXPECT_DOUBLE_EQ(warm.lr_at(4, 104), 0.4);
  EXPECT_DOUBLE_EQ(warm.lr_at(54, 104), 0.2);
  EXPECT_NEAR(warm.lr_at(104, 104), 0.0, 1e-15);

  EXPECT_THROW(cosine_lr(11, 10, 0.1), Error);
  EXPECT_THROW(cosine_lr(-1, 10, 0.1), Error);
  EXPECT_THROW(warm.lr_at(0, 4), Error);  // warm-up longer than the run
  EXPECT_EQ(schedule_kind_from_string("onecycle"), ScheduleKind::one_cycle);
  EXPECT_EQ(schedule_kind_from_string(schedule_kind_name(ScheduleKind::cosine)),
            ScheduleKind::cosine);
  EXPECT_THROW(schedule_kind_from_string("linear"), Error);
}

namespace {

class TwoParams : public nn::Module {
 public:
  TwoParams()
      : nn::Module("TwoParams"),
        w(register_parameter("w", Tensor::from_vector(std::vector<float>{1, 2}, {2}))),
        stat(register_buffer("stat", Tensor::from_vector(std::vector<float>{8}, {1}))),
        count(register_buffer("count", Tensor::zeros(Shape{}, DType::i64))) {}
  Tensor& w;
  Tensor& stat;  // a float buffer, as BatchNorm's running statistics
  Tensor& count;
};

}  // namespace

TEST(Ema, FormulaByHandAndSwap) {
  TwoParams model;
  Ema ema(model, 0.5);
  model.w.copy_from(Tensor::from_vector(std::vector<float>{3, 6}, {2}));
  model.stat.copy_from(Tensor::from_vector(std::vector<float>{2}, {1}));
  *model.count.data<int64_t>() = 7;
  ema.update(model);  // 0.5 * [1, 2] + 0.5 * [3, 6]
  EXPECT_EQ(ema.at("w").to_vector(), (std::vector<float>{2, 4}));
  EXPECT_EQ(ema.at("stat").to_vector(), (std::vector<float>{5}));  // float buffers: averaged
  EXPECT_EQ(*ema.at("count").data<int64_t>(), 7);                  // integer buffers: copied
  model.w.copy_from(Tensor::from_vector(std::vector<float>{5, 10}, {2}));
  ema.update(model);  // 0.5 * [2, 4] + 0.5 * [5, 10]
  EXPECT_EQ(ema.at("w").to_vector(), (std::vector<float>{3.5f, 7}));
  EXPECT_EQ(ema.num_updates(), 2);
  {
    EmaScope scope(ema, model);
    EXPECT_EQ(model.w.to_vector(), (std::vector<float>{3.5f, 7}));
  }
  EXPECT_EQ(model.w.to_vector(), (std::vector<float>{5, 10}));
  ema.copy_to(model);
  EXPECT_EQ(model.w.to_vector(), (std::vector<float>{3.5f, 7}));
}

TEST(Ema, WarmupDecayAndStateRoundTrip) {
  TwoParams model;
  Ema ema(model, 0.9, /*warmup=*/true);
  EXPECT_DOUBLE_EQ(ema.next_decay(), 2.0 / 11.0);  // (1 + n) / (10 + n) at n = 1
  EXPECT_DOUBLE_EQ(ema.decay_for(100), 0.9);       // capped by the decay
  model.w.copy_from(Tensor::from_vector(std::vector<float>{12, 2}, {2}));
  ema.update(model);  // d = 2/11: [1, 2] * 2/11 + [12, 2] * 9/11
  EXPECT_NEAR(ema.at("w").to_vector()[0], 2.0 / 11.0 + 12.0 * 9.0 / 11.0, 1e-6);
  EXPECT_NEAR(ema.at("w").to_vector()[1], 2.0, 1e-6);

  const auto sd = ema.state_dict();
  Ema other(model, 0.9, true);
  other.load_state_dict({sd.begin(), sd.end()});
  EXPECT_EQ(other.num_updates(), 1);
  EXPECT_TRUE(bit_equal(other.at("w"), ema.at("w")));
  std::map<std::string, Tensor> bad(sd.begin(), sd.end());
  bad["ema.extra"] = Tensor::zeros({1});
  EXPECT_THROW(other.load_state_dict(bad), Error);
  std::map<std::string, Tensor> nan(sd.begin(), sd.end());
  nan["ema.w"] = Tensor::from_vector(std::vector<float>{1, NAN}, {2});
  EXPECT_THROW(other.load_state_dict(nan), Error);
  EXPECT_TRUE(bit_equal(other.at("w"), ema.at("w")));  // a refused state changes nothing
}

namespace {

// Four parameters with deterministic gradients per step; "p2" gets none in steps 0 and 1, so a
// checkpoint after step 2 holds no state for it yet.
struct ResumeRig {
  std::vector<Tensor> p;
  ResumeRig() {
    Generator gen(7);
    for (int64_t n : {1, 13, 130, 7}) {
      p.push_back(Tensor::normal({n}, gen));
      autograd::set_requires_grad(p.back());
    }
  }
  std::vector<ParamGroup> groups(double wd) {
    return {{{{"p0", &p[0]}, {"p2", &p[2]}}, wd}, {{{"p1", &p[1]}, {"p3", &p[3]}}, 0.0}};
  }
  void step(Optimizer& opt, int step) {
    opt.zero_grad();
    Generator gen(100 + static_cast<uint64_t>(step));
    for (size_t i = 0; i < p.size(); ++i) {
      Tensor g = Tensor::normal(p[i].shape(), gen);
      if (!(i == 2 && step < 2)) set_grad(p[i], g);
    }
    opt.set_lr(0.05 / (1 + step));
    opt.step();
  }
};

template <class Opt, class Options>
void check_resume(const Options& options, double wd) {
  ResumeRig straight;
  Opt a(straight.groups(wd), options);
  for (int s = 0; s < 5; ++s) straight.step(a, s);

  ResumeRig first;
  Opt b(first.groups(wd), options);
  for (int s = 0; s < 2; ++s) first.step(b, s);
  const std::string path = std::string(DUET_BINARY_DIR) + "/test_optim_resume.safetensors";
  auto saved = b.state_dict();
  for (size_t i = 0; i < first.p.size(); ++i)
    saved.emplace_back("model.p" + std::to_string(i), first.p[i]);
  io::save_tensors(path, saved);

  const auto loaded = io::load_tensors(path);
  std::filesystem::remove(path);
  EXPECT_FALSE(loaded.count("optim.p2.momentum_buffer") || loaded.count("optim.p2.exp_avg"));
  ResumeRig resumed;
  for (size_t i = 0; i < resumed.p.size(); ++i)
    resumed.p[i].copy_from(loaded.at("model.p" + std::to_string(i)));
  Opt c(resumed.groups(wd), options);
  c.load_state_dict(loaded);  // model keys are ignored
  EXPECT_EQ(c.step_count(), 2);
  for (int s = 2; s < 5; ++s) resumed.step(c, s);

  for (size_t i = 0; i < straight.p.size(); ++i)
    EXPECT_TRUE(bit_equal(straight.p[i], resumed.p[i])) << "param " << i;
  const auto sa = a.state_dict(), sc = c.state_dict();
  ASSERT_EQ(sa.size(), sc.size());
  for (size_t i = 0; i < sa.size(); ++i) {
    EXPECT_EQ(sa[i].first, sc[i].first);
    EXPECT_TRUE(bit_equal(sa[i].second, sc[i].second)) << sa[i].first;
  }
}

}  // namespace

TEST(OptimState, SgdResumesBitIdentically) {
  check_resume<Sgd>(SgdOptions{.lr = 0.1, .momentum = 0.9, .nesterov = true}, 5e-4);
}

TEST(OptimState, AdamWResumesBitIdentically) {
  check_resume<AdamW>(AdamWOptions{}, 0.05);
}

TEST(OptimState, LoadRejectsMismatchedState) {
  ResumeRig rig;
  AdamW opt(rig.groups(0.0), {});
  for (int s = 0; s < 3; ++s) rig.step(opt, s);
  const auto sd = opt.state_dict();
  const std::map<std::string, Tensor> good(sd.begin(), sd.end());
  Sgd sgd(rig.groups(0.0), {});
  EXPECT_THROW(sgd.load_state_dict(good), Error);  // AdamW keys are unexpected for SGD
  auto partial = good;
  partial.erase("optim.p1.exp_avg_sq");
  EXPECT_THROW(opt.load_state_dict(partial), Error);
  auto shape = good;
  shape["optim.p1.exp_avg"] = Tensor::zeros({12});
  EXPECT_THROW(opt.load_state_dict(shape), Error);
  auto nostep = good;
  nostep.erase("optim.step");
  EXPECT_THROW(opt.load_state_dict(nostep), Error);
  // Values the update would turn into NaN: non-finite moments, a negative second moment (its
  // square root follows), a negative step counter (the bias corrections).
  auto poisoned = [&](const std::string& key, auto edit) {
    auto sd = good;
    Tensor t = sd.at(key).clone();
    edit(t);
    sd[key] = t;
    return sd;
  };
  EXPECT_THROW(opt.load_state_dict(
                   poisoned("optim.p1.exp_avg", [](Tensor& t) { t.data<float>()[2] = NAN; })),
               Error);
  EXPECT_THROW(opt.load_state_dict(
                   poisoned("optim.p1.exp_avg_sq", [](Tensor& t) { t.data<float>()[0] = -1e-3f; })),
               Error);
  EXPECT_THROW(
      opt.load_state_dict(poisoned("optim.p1.step", [](Tensor& t) { *t.data<int64_t>() = -1; })),
      Error);
  EXPECT_NO_THROW(opt.load_state_dict(
      poisoned("optim.p1.exp_avg", [](Tensor& t) { t.data<float>()[2] = -1.0f; })));
  opt.load_state_dict(good);
  EXPECT_EQ(opt.step_count(), 3);
}

TEST(OptimState, RejectsBadConfiguration) {
  ResumeRig rig;
  std::vector<ParamGroup> twice = rig.groups(0.0);
  twice[1].params.push_back({"again", &rig.p[0]});
  EXPECT_THROW(Sgd(twice, {}), Error);
  EXPECT_THROW(Sgd(rig.groups(0.0), {0.1, 1.0, false}), Error);
  EXPECT_THROW(Sgd(rig.groups(-1.0), {}), Error);
  EXPECT_THROW(AdamW(rig.groups(0.0), {1e-3, 0.9, 0.999, 0.0}), Error);
  Sgd sgd(rig.groups(0.0), {});
  EXPECT_THROW(sgd.set_lr(-0.1), Error);
  EXPECT_THROW(sgd.set_momentum(0.0), Error);  // the state layout is fixed
  Tensor& p = rig.p[1];
  autograd::set_requires_grad(p);
  p.autograd_meta()->grad = Tensor::zeros({2});
  EXPECT_THROW(sgd.step(), Error);
}

// Many odd-sized parameters: the threaded element split must update every element exactly once,
// give the same bits for 1 and 2 threads, and (AVX2 and portable paths alike) match a scalar loop
// of PyTorch's formulas.
TEST(OptimUpdate, ThreadedSplitMatchesScalarLoop) {
  const std::vector<int64_t> sizes{1, 5, 127, 128, 40000, 3, 70001, 24};
  auto run = [&](int threads, bool adam, kernels::Isa isa) {
    const kernels::Isa saved_isa = kernels::active_isa();
    kernels::set_isa(isa);
    set_num_threads(threads);
    Generator gen(3);
    std::vector<Tensor> p;
    std::vector<ParamGroup> groups(1);
    groups[0].weight_decay = 0.01;
    for (size_t i = 0; i < sizes.size(); ++i) p.push_back(Tensor::normal({sizes[i]}, gen));
    for (size_t i = 0; i < sizes.size(); ++i)
      groups[0].params.push_back({std::string(1, char('a' + i)), &p[i]});
    std::unique_ptr<Optimizer> opt;
    if (adam)
      opt = std::make_unique<AdamW>(groups, AdamWOptions{0.01, 0.9, 0.999, 1e-8});
    else
      opt = std::make_unique<Sgd>(groups, SgdOptions{.lr = 0.1, .momentum = 0.9, .nesterov = true});
    for (int s = 0; s < 3; ++s) {
      for (size_t i = 0; i < p.size(); ++i) set_grad(p[i], Tensor::normal({sizes[i]}, gen));
      opt->step();
    }
    set_num_threads(0);
    kernels::set_isa(saved_isa);
    return p;
  };
  auto reference = [&](bool adam) {
    Generator gen(3);
    std::vector<std::vector<float>> p, g(sizes.size()), m(sizes.size()), v(sizes.size());
    for (int64_t n : sizes) p.push_back(Tensor::normal({n}, gen).to_vector());
    for (size_t i = 0; i < sizes.size(); ++i) {
      m[i].assign(p[i].size(), 0.0f);
      v[i].assign(p[i].size(), 0.0f);
    }
    for (int s = 1; s <= 3; ++s)
      for (size_t i = 0; i < sizes.size(); ++i) {
        const auto gi = Tensor::normal({sizes[i]}, gen).to_vector();
        for (size_t j = 0; j < gi.size(); ++j) {
          float& x = p[i][j];
          if (adam) {
            x *= static_cast<float>(1.0 - 0.01 * 0.01);
            m[i][j] = 0.9f * m[i][j] + 0.1f * gi[j];
            v[i][j] = 0.999f * v[i][j] + 0.001f * gi[j] * gi[j];
            const double bc1 = 1 - std::pow(0.9, s), bc2 = 1 - std::pow(0.999, s);
            x += -0.01 / bc1 * m[i][j] / (std::sqrt(v[i][j]) / std::sqrt(bc2) + 1e-8);
          } else {
            const float d = gi[j] + 0.01f * x;
            m[i][j] = 0.9f * m[i][j] + d;
            x += -0.1f * (d + 0.9f * m[i][j]);
          }
        }
      }
    return p;
  };
  for (bool adam : {false, true}) {
    const kernels::Isa isa = kernels::active_isa();
    const auto one = run(1, adam, isa), two = run(2, adam, isa);
    const auto generic = run(2, adam, kernels::Isa::generic);
    const auto ref = reference(adam);
    for (size_t i = 0; i < sizes.size(); ++i) {
      EXPECT_TRUE(bit_equal(one[i], two[i])) << "size " << sizes[i] << (adam ? " adamw" : " sgd");
      EXPECT_LE(max_rel_diff(generic[i], two[i]), 1e-6)
          << "size " << sizes[i] << (adam ? " adamw" : " sgd");
      EXPECT_LE(max_rel_diff(one[i], Tensor::from_vector(ref[i], {sizes[i]})), 1e-6)
          << "size " << sizes[i] << (adam ? " adamw" : " sgd");
    }
  }
}

TEST(ParamGroups, SplitPutsNormsAndBiasesInNoDecay) {
  Generator gen(0);
  nn::Module net("Net");
  net.register_module("conv1",
                      std::make_shared<nn::Conv2d>(gen, 3, 8, 3, ops::Conv2dOptions{}, false));
  net.register_module("bn1", std::make_shared<nn::BatchNorm2d>(8));
  net.register_module("norm", std::make_shared<nn::GroupNorm>(2, 8));
  net.register_module("fc", std::make_shared<nn::Linear>(gen, 8, 10));
  const auto groups = split_decay_groups(net, 5e-4);
  ASSERT_EQ(groups.size(), 2u);
  EXPECT_EQ(groups[0].weight_decay, 5e-4);
  EXPECT_EQ(groups[1].weight_decay, 0.0);
  auto names = [](const ParamGroup& g) {
    std::vector<std::string> out;
    for (const auto& p : g.params) out.push_back(p.name);
    return out;
  };
  EXPECT_EQ(names(groups[0]), (std::vector<std::string>{"conv1.weight", "fc.weight"}));
  EXPECT_EQ(names(groups[1]), (std::vector<std::string>{"bn1.weight", "bn1.bias", "norm.weight",
                                                        "norm.bias", "fc.bias"}));
  EXPECT_TRUE(is_no_decay("layer1.0.bn2.weight", "BatchNorm2d"));
  EXPECT_FALSE(is_no_decay("layer1.0.conv1.weight", "Conv2d"));
  // The split is usable as is.
  Sgd opt(groups, {});
  EXPECT_EQ(opt.groups()[1].params.size(), 5u);
}
