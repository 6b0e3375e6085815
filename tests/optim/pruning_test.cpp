// Magnitude pruning (harness/train/pruning.h): mask selection by hand (unstructured counts,
// ties, pruned-stays-pruned), the N:M pattern in every group, Zhu & Gupta's cubic schedule by
// hand, one-line errors, Backend::mul, and training a tiny GPT with AdamW + weight decay in
// which pruned weights stay exactly 0.0 at every step and the achieved sparsity is the
// schedule's.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "common/rng.h"
#include "data/markov_source.h"
#include "model/gpt.h"
#include "numerics/numerics_util.h"
#include "tb/cpu_backend.h"
#include "train/pruning.h"
#include "train/trainer.h"

namespace tb::test {
namespace {

constexpr int kVocab = 16, kSeq = 8;
// 2 blocks, d_model 16 (divisible by 4 and 8), 2 heads.
ModelConfig small() { return model_config(2, 16, 2, kSeq, kVocab); }

std::vector<int> pruned_indices(const std::vector<std::uint8_t>& keep) {
  std::vector<int> out;
  for (std::size_t i = 0; i < keep.size(); ++i) {
    if (!keep[i]) out.push_back(static_cast<int>(i));
  }
  return out;
}

template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "(no error)";
}

// ---- selection ----

TEST(PruningSelection, UnstructuredPrunesTheKSmallestMagnitudes) {
  const std::vector<double> w = {0.5, -0.1, 0.3, -0.2, 0.05, 1.0};
  EXPECT_EQ(pruned_indices(unstructured_mask(w.data(), 6, 3)), (std::vector<int>{1, 3, 4}));
  EXPECT_EQ(pruned_indices(unstructured_mask(w.data(), 6, 0)), (std::vector<int>{}));
  EXPECT_EQ(pruned_indices(unstructured_mask(w.data(), 6, 6)),
            (std::vector<int>{0, 1, 2, 3, 4, 5}));
  EXPECT_EQ(pruned_indices(unstructured_mask(w.data(), 6, 1)), (std::vector<int>{4}));
}

TEST(PruningSelection, TiesAreBrokenByIndex) {
  const std::vector<double> w = {0.2, -0.2, 0.1, 0.2, 0.3};
  // 0.1 first, then of the three |0.2| the two lowest indices.
  EXPECT_EQ(pruned_indices(unstructured_mask(w.data(), 5, 3)), (std::vector<int>{0, 1, 2}));
  const std::vector<double> same(8, 0.7);
  EXPECT_EQ(pruned_indices(unstructured_mask(same.data(), 8, 3)), (std::vector<int>{0, 1, 2}));
}

TEST(PruningSelection, PreviouslyPrunedComeFirst) {
  // Index 1 was pruned before (its weight is now 0, as is index 0's by chance): pruning one
  // keeps the old mask instead of moving to the lower index.
  const std::vector<double> w = {0.0, 0.0, 0.3, 0.1};
  const std::vector<std::uint8_t> prev = {1, 0, 1, 1};
  EXPECT_EQ(pruned_indices(unstructured_mask(w.data(), 4, 1, prev.data())), (std::vector<int>{1}));
  EXPECT_EQ(pruned_indices(unstructured_mask(w.data(), 4, 2, prev.data())),
            (std::vector<int>{0, 1}));
}

TEST(PruningSelection, PruneCountIsTheFloorOfTheDecimalFraction) {
  EXPECT_EQ(prune_count(0.29, 100), 29);  // 0.29·100 is 28.999… in binary
  EXPECT_EQ(prune_count(0.5, 7), 3);
  EXPECT_EQ(prune_count(0.7, 10), 7);
  EXPECT_EQ(prune_count(0.0, 10), 0);
  EXPECT_EQ(prune_count(0.999, 1000), 999);
}

TEST(PruningSelection, TwoOfFourByHand) {
  const std::vector<double> w = {0.1, -0.4, 0.3, 0.2, 1, 2, 3, 4, 0.5, 0.5, 0.5, 0.5};
  EXPECT_EQ(pruned_indices(nm_mask(w.data(), 12, 2, 4, 3)), (std::vector<int>{0, 3, 4, 5, 8, 9}));
  // One group of three: the cheapest to prune, group 0 (0.1 + 0.2 removed).
  EXPECT_EQ(pruned_indices(nm_mask(w.data(), 12, 2, 4, 1)), (std::vector<int>{0, 3}));
  // Two: then group 2 (0.5 + 0.5) before group 1 (1 + 2).
  EXPECT_EQ(pruned_indices(nm_mask(w.data(), 12, 2, 4, 2)), (std::vector<int>{0, 3, 8, 9}));
  EXPECT_THROW(nm_mask(w.data(), 10, 2, 4, 1), std::invalid_argument);
}

TEST(PruningSelection, NmPatternHoldsInEveryGroupOfRandomTensors) {
  Rng rng(17);
  for (const auto& [n_keep, m] : {std::pair{2, 4}, std::pair{1, 4}, std::pair{2, 8}}) {
    SCOPED_TRACE(std::to_string(n_keep) + ":" + std::to_string(m));
    const std::int64_t n = 64 * m;
    const std::vector<double> w = normal_vec(rng, static_cast<std::size_t>(n));
    const std::vector<std::uint8_t> keep = nm_mask(w.data(), n, n_keep, m, n / m);
    std::vector<double> masked(w);
    for (std::int64_t g = 0; g < n / m; ++g) {
      int kept = 0;
      double smallest_kept = 1e300, largest_pruned = 0;
      for (int j = 0; j < m; ++j) {
        const auto i = static_cast<std::size_t>(g * m + j);
        kept += keep[i];
        if (keep[i]) smallest_kept = std::min(smallest_kept, std::abs(w[i]));
        if (!keep[i]) largest_pruned = std::max(largest_pruned, std::abs(w[i]));
        masked[i] *= keep[i];
      }
      EXPECT_EQ(kept, n_keep) << "group " << g;
      EXPECT_LE(largest_pruned, smallest_kept) << "group " << g;  // the N largest are kept
    }
    EXPECT_EQ(nm_violations(masked.data(), n, n_keep, m), 0);
    EXPECT_EQ(nm_violations(w.data(), n, n_keep, m), n / m);  // dense: every group violates
  }
}

// ---- schedule ----

TEST(PruningSchedule, ZhuGuptaCubicByHand) {
  PruningConfig c;
  c.sparsity = 0.8;
  c.schedule = PruneSchedule::gradual;
  c.begin_step = 10;
  c.end_step = 20;
  c.frequency = 5;
  // s_t = 0.8·(1 − (1 − (t − 10)/10)³) at t = 10, 15, 20; held in between.
  EXPECT_EQ(scheduled_sparsity(c, 0), 0.0);
  EXPECT_EQ(scheduled_sparsity(c, 9), 0.0);
  EXPECT_EQ(scheduled_sparsity(c, 10), 0.0);
  EXPECT_EQ(scheduled_sparsity(c, 14), 0.0);
  EXPECT_DOUBLE_EQ(scheduled_sparsity(c, 15), 0.8 * (1 - 0.125));  // 0.7
  EXPECT_DOUBLE_EQ(scheduled_sparsity(c, 19), 0.7);
  EXPECT_DOUBLE_EQ(scheduled_sparsity(c, 20), 0.8);
  EXPECT_DOUBLE_EQ(scheduled_sparsity(c, 1000), 0.8);
  // Δt = 3 does not divide 10: updates at 10, 13, 16, 19 and the end step 20.
  c.frequency = 3;
  EXPECT_DOUBLE_EQ(scheduled_sparsity(c, 13), 0.8 * (1 - 0.343));
  EXPECT_DOUBLE_EQ(scheduled_sparsity(c, 15), 0.8 * (1 - 0.343));
  EXPECT_DOUBLE_EQ(scheduled_sparsity(c, 16), 0.8 * (1 - 0.064));
  EXPECT_DOUBLE_EQ(scheduled_sparsity(c, 19), 0.8 * (1 - 0.001));
  EXPECT_DOUBLE_EQ(scheduled_sparsity(c, 20), 0.8);
  // Non-decreasing everywhere.
  double last = 0;
  for (long t = 0; t < 30; ++t) {
    EXPECT_GE(scheduled_sparsity(c, t), last);
    last = scheduled_sparsity(c, t);
  }
}

TEST(PruningSchedule, OneShotAndNmTargets) {
  PruningConfig c;
  c.sparsity = 0.6;
  c.begin_step = 5;
  EXPECT_EQ(scheduled_sparsity(c, 4), 0.0);
  EXPECT_EQ(scheduled_sparsity(c, 5), 0.6);
  EXPECT_EQ(scheduled_sparsity(c, 50), 0.6);
  parse_prune_pattern("2:4", c);
  c.sparsity = 0;
  EXPECT_EQ(c.target(), 0.5);
  EXPECT_EQ(c.pattern_name(), "2:4");
  parse_prune_pattern("1:8", c);
  EXPECT_EQ(c.target(), 0.875);
  parse_prune_pattern("unstructured", c);
  EXPECT_EQ(c.pattern, PrunePattern::unstructured);
}

// ---- errors ----

TEST(PruningErrors, BadInputIsOneLineNamingTheValue) {
  auto cfg_error = [](PruningConfig c) { return error_of([&] { validate(c); }); };
  auto expect_has = [](const std::string& msg, const std::string& part) {
    EXPECT_NE(msg.find(part), std::string::npos) << msg << " lacks: " << part;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  };
  PruningConfig c;
  c.sparsity = 1.0;
  expect_has(cfg_error(c), "prune sparsity = 1 (expected a number from 0 to below 1)");
  c.sparsity = -0.1;
  expect_has(cfg_error(c), "prune sparsity = -0.1 (expected");
  c.sparsity = std::numeric_limits<double>::quiet_NaN();
  expect_has(cfg_error(c), "(expected a number from 0 to below 1)");
  c = {};
  c.pattern = PrunePattern::n_of_m;
  c.n = 4;
  c.m = 4;
  expect_has(cfg_error(c), "prune pattern 4:4 (expected N:M with 1 <= N < M");
  c.n = 2;
  c.sparsity = 0.3;
  expect_has(cfg_error(c), "prune sparsity = 0.3 with pattern 2:4 (expected 0 or 0.5");
  c.sparsity = 0.5;
  EXPECT_EQ(cfg_error(c), "(no error)");
  c = {};
  c.sparsity = 0.5;
  c.schedule = PruneSchedule::gradual;
  expect_has(cfg_error(c),
             "prune end_step = -1 with schedule gradual (expected a step > "
             "begin_step = 0)");
  c.begin_step = 4;
  c.end_step = 4;
  expect_has(cfg_error(c), "prune end_step = 4");
  c.end_step = 8;
  c.frequency = 0;
  expect_has(cfg_error(c), "prune frequency = 0 (expected >= 1)");
  c.frequency = 1;
  c.begin_step = -1;
  expect_has(cfg_error(c), "prune begin_step = -1 (expected >= 0)");
  for (const char* bad : {"4:2", "2:2", "0:4", "a:b", "2:4:8", "2/4", "", "Unstructured"}) {
    PruningConfig p;
    expect_has(error_of([&] { parse_prune_pattern(bad, p); }),
               std::string("prune pattern \"") + bad + "\" (expected \"unstructured\" or \"N:M\"");
  }
}

TEST(PruningErrors, NmNeedsTheInputDimensionToDivide) {
  auto be = make_cpu_backend(1);
  GptModel model(*be, model_config(1, 18, 2, kSeq, kVocab), DType::f32);
  PruningConfig c;
  parse_prune_pattern("2:4", c);
  const std::string msg = error_of([&] { Pruner p(model, c); });
  EXPECT_NE(msg.find("prune pattern 2:4: blocks.0.attn.qkv.weight has input dimension 18 "
                     "(expected a multiple of M = 4"),
            std::string::npos)
      << msg;
}

TEST(PruningTensors, BlockMatmulWeightsOnly) {
  auto be = make_cpu_backend(1);
  GptModel model(*be, small(), DType::f32);
  PruningConfig c;
  c.sparsity = 0.5;
  Pruner p(model, c);
  std::vector<std::string> names;
  for (const ParameterSpec* s : p.tensors()) names.push_back(s->name);
  EXPECT_EQ(names,
            (std::vector<std::string>{"blocks.0.attn.qkv.weight", "blocks.0.attn.proj.weight",
                                      "blocks.0.mlp.fc.weight", "blocks.0.mlp.proj.weight",
                                      "blocks.1.attn.qkv.weight", "blocks.1.attn.proj.weight",
                                      "blocks.1.mlp.fc.weight", "blocks.1.mlp.proj.weight"}));
  // Mixture-of-experts names: the experts are pruned, the router is not.
  EXPECT_TRUE(prunable({"blocks.3.mlp.experts.fc.weight", {4, 64, 16}, 0, true}));
  EXPECT_TRUE(prunable({"blocks.3.mlp.experts.proj.weight", {4, 16, 64}, 0, true}));
  EXPECT_FALSE(prunable({"blocks.3.mlp.router.weight", {4, 16}, 0, true}));
  EXPECT_FALSE(prunable({"blocks.0.ln1.weight", {16}, 0, false}));
  EXPECT_FALSE(prunable({"wte", {16, 16}, 0, true}));
  EXPECT_FALSE(prunable({"blocks.0.attn.qkv.bias", {48}, 0, false}));
  // The masks are optimizer-state memory.
  EXPECT_EQ(be->memory().current_bytes(MemoryCategory::optimizer_state),
            (16u * 48 + 16 * 16 + 64 * 16 + 16 * 64) * 2 * sizeof(float));
}

// ---- Backend::mul ----

TEST(PruningBackend, MulIsElementwiseInEveryDtype) {
  auto be = make_cpu_backend(1);
  TensorPool pool(*be);
  const std::vector<double> a = {1.5, -2, 3.25, 0.5}, b = {1, 0, -1, 0};
  for (DType dt : {DType::f32, DType::f64}) {
    const Tensor x = pool.make(dt, {4}), y = pool.make(dt, {4}), o = pool.make(dt, {4});
    upload(*be, x, a);
    upload(*be, y, b);
    be->mul(o, x, y);
    EXPECT_EQ(download(*be, o), (std::vector<double>{1.5, 0, -3.25, 0}));
    be->mul(x, x, y);  // in place
    EXPECT_EQ(download(*be, x), (std::vector<double>{1.5, 0, -3.25, 0}));
  }
  // bf16 output from f32 operands, rounded on the way out (1.5·1.0 is exact).
  const Tensor x = pool.make(DType::f32, {4}), y = pool.make(DType::f32, {4});
  const Tensor o16 = pool.make(DType::bf16, {4}), back = pool.make(DType::f32, {4});
  upload(*be, x, a);
  upload(*be, y, b);
  be->mul(o16, x, y);
  be->convert(back, o16);
  EXPECT_EQ(download(*be, back), (std::vector<double>{1.5, 0, -3.25, 0}));
  EXPECT_THROW(be->mul(pool.make(DType::f32, {3}), x, y), std::invalid_argument);
}

// ---- training ----

std::vector<std::vector<double>> pruned_values(Backend& be, const GptModel& model,
                                               const Pruner& p) {
  std::vector<std::vector<double>> out;
  for (const ParameterSpec* s : p.tensors()) {
    out.push_back(download(be, model.params().slice(s->offset, s->shape)));
  }
  return out;
}

std::int64_t zeros(const std::vector<double>& v) { return std::count(v.begin(), v.end(), 0.0); }

class PruningTraining : public ::testing::TestWithParam<DType> {};

// One-shot at step 3, AdamW with weight decay: no zeros before, then exactly the mask's
// zeros at every later step — the same positions, exactly 0.0 — and the gradients of pruned
// weights are zero when the optimizer sees them.
TEST_P(PruningTraining, OneShotWeightsStayExactlyZero) {
  const DType dt = GetParam();
  auto be = make_cpu_backend(2);
  GptModel model(*be, small(), dt);
  model.init_weights(7);
  MarkovSource data(kVocab, 4, 3);
  OptimizerConfig opt;
  opt.lr = 1e-2;
  opt.weight_decay = 0.1;
  TrainingConfig t(4, 1);
  PruningConfig pc;
  pc.sparsity = 0.6;
  pc.begin_step = 3;
  t.pruning = pc;
  Profiler profiler;
  Trainer trainer(model, data, opt, t, profiler);
  const Pruner& p = *trainer.pruner();
  std::vector<std::vector<int>> first_zero_sets;
  double first_loss = 0, last_loss = 0;
  for (int step = 0; step < 20; ++step) {
    const StepRecord r = trainer.step();
    if (step == 0) first_loss = r.loss;
    last_loss = r.loss;
    const auto vals = pruned_values(*be, model, p);
    for (std::size_t i = 0; i < vals.size(); ++i) {
      const std::int64_t n = p.tensors()[i]->numel();
      if (step < 3) {
        EXPECT_EQ(zeros(vals[i]), 0) << p.tensors()[i]->name << " step " << step;
        continue;
      }
      EXPECT_EQ(zeros(vals[i]), prune_count(0.6, n)) << p.tensors()[i]->name << " step " << step;
      const auto mask = download(*be, p.mask(i));
      const auto grad = download(*be, model.grads().slice(p.tensors()[i]->offset, {n}));
      std::vector<int> zero_at;
      for (std::int64_t j = 0; j < n; ++j) {
        const auto u = static_cast<std::size_t>(j);
        if (mask[u] == 0) {
          ASSERT_EQ(vals[i][u], 0.0) << p.tensors()[i]->name << "[" << j << "] step " << step;
          ASSERT_EQ(grad[u], 0.0) << p.tensors()[i]->name << "[" << j << "] step " << step;
          zero_at.push_back(static_cast<int>(j));
        } else {
          ASSERT_EQ(mask[u], 1.0);
        }
      }
      if (step == 3) {
        first_zero_sets.push_back(zero_at);
      } else {
        EXPECT_EQ(zero_at, first_zero_sets[i]) << "the mask moved: " << p.tensors()[i]->name;
      }
    }
  }
  EXPECT_DOUBLE_EQ(p.current_sparsity(), 0.6);
  for (const TensorSparsity& s : p.measure()) {
    EXPECT_EQ(s.zeros, prune_count(0.6, s.elements)) << s.name;
    EXPECT_NEAR(s.sparsity(), 0.6, 1.0 / double(s.elements)) << s.name;
    EXPECT_EQ(s.nm_violations, -1);
  }
  EXPECT_LT(last_loss, first_loss);  // it still learns
}

// Gradual (Zhu & Gupta): after every step each tensor has exactly ⌊s_t·n⌋ zeros, the count
// never falls, pruned weights stay pruned, and the target is reached at end_step.
TEST_P(PruningTraining, GradualFollowsTheScheduleAndOnlyGrows) {
  const DType dt = GetParam();
  auto be = make_cpu_backend(2);
  GptModel model(*be, small(), dt);
  model.init_weights(11);
  MarkovSource data(kVocab, 4, 5);
  OptimizerConfig opt;
  opt.lr = 1e-2;
  TrainingConfig t(4, 1);
  PruningConfig pc;
  pc.sparsity = 0.75;
  pc.schedule = PruneSchedule::gradual;
  pc.begin_step = 2;
  pc.end_step = 12;
  pc.frequency = 3;
  t.pruning = pc;
  Profiler profiler;
  Trainer trainer(model, data, opt, t, profiler);
  const Pruner& p = *trainer.pruner();
  std::vector<std::set<std::int64_t>> before(p.tensors().size());
  for (long step = 0; step < 16; ++step) {
    trainer.step();
    const double s = scheduled_sparsity(pc, step);
    const auto vals = pruned_values(*be, model, p);
    for (std::size_t i = 0; i < vals.size(); ++i) {
      const std::int64_t n = p.tensors()[i]->numel();
      EXPECT_EQ(zeros(vals[i]), prune_count(s, n)) << p.tensors()[i]->name << " step " << step;
      std::set<std::int64_t> now;
      for (std::int64_t j = 0; j < n; ++j) {
        if (vals[i][static_cast<std::size_t>(j)] == 0.0) now.insert(j);
      }
      EXPECT_TRUE(std::includes(now.begin(), now.end(), before[i].begin(), before[i].end()))
          << "a pruned weight came back: " << p.tensors()[i]->name << " step " << step;
      before[i] = now;
    }
  }
  for (const TensorSparsity& s : p.measure()) {
    EXPECT_EQ(s.zeros, prune_count(0.75, s.elements)) << s.name;
  }
}

// 2:4 gradual: the fraction s_t/0.5 of the groups pruned to 2:4; from end_step on every
// group satisfies the pattern.
TEST_P(PruningTraining, TwoOfFourGradualEndsWithEveryGroupPruned) {
  const DType dt = GetParam();
  auto be = make_cpu_backend(2);
  GptModel model(*be, small(), dt);
  model.init_weights(13);
  MarkovSource data(kVocab, 4, 8);
  OptimizerConfig opt;
  opt.lr = 1e-2;
  TrainingConfig t(4, 1);
  PruningConfig pc;
  parse_prune_pattern("2:4", pc);
  pc.schedule = PruneSchedule::gradual;
  pc.begin_step = 0;
  pc.end_step = 8;
  pc.frequency = 2;
  t.pruning = pc;
  Profiler profiler;
  Trainer trainer(model, data, opt, t, profiler);
  const Pruner& p = *trainer.pruner();
  for (long step = 0; step < 12; ++step) {
    trainer.step();
    const double s = scheduled_sparsity(pc, step);
    for (const TensorSparsity& ts : p.measure()) {
      const std::int64_t groups = ts.elements / 4;
      const std::int64_t pruned = s >= 0.5 ? groups : prune_count(s / 0.5, groups);
      EXPECT_EQ(ts.zeros, pruned * 2) << ts.name << " step " << step;
      EXPECT_EQ(ts.nm_violations, groups - pruned) << ts.name << " step " << step;
    }
  }
  for (const TensorSparsity& ts : p.measure()) {
    EXPECT_EQ(ts.nm_violations, 0) << ts.name;
    EXPECT_DOUBLE_EQ(ts.sparsity(), 0.5) << ts.name;
  }
}

INSTANTIATE_TEST_SUITE_P(DTypes, PruningTraining, ::testing::Values(DType::f64, DType::f32),
                         [](const auto& param) { return std::string(dtype_name(param.param)); });

// Mixed precision: the 16-bit weight copy the GEMMs multiply is refreshed from the masked
// fp32 weights, and the pruned fp32 master weights stay 0.0.
TEST(PruningTrainingPrecision, Bf16KeepsMasterWeightsZero) {
  auto be = make_cpu_backend(2);
  GptModel model(*be, small(), DType::f32);
  model.set_precision({PrecisionMode::bf16});
  model.init_weights(3);
  MarkovSource data(kVocab, 4, 2);
  TrainingConfig t(4, 1);
  PruningConfig pc;
  parse_prune_pattern("1:4", pc);
  t.pruning = pc;
  Profiler profiler;
  Trainer trainer(model, data, OptimizerConfig{}, t, profiler);
  for (int step = 0; step < 5; ++step) trainer.step();
  for (const TensorSparsity& ts : trainer.pruner()->measure()) {
    EXPECT_EQ(ts.zeros, ts.elements / 4 * 3) << ts.name;
    EXPECT_EQ(ts.nm_violations, 0) << ts.name;
  }
}

// The pruning work is optimizer phase: one extra range on a step that computes masks.
TEST(PruningTrainingPhases, MaskUpdatesAreOptimizerRanges) {
  auto be = make_cpu_backend(1);
  GptModel model(*be, small(), DType::f32);
  model.init_weights(1);
  MarkovSource data(kVocab, 4, 2);
  Profiler profiler(true);
  TrainingConfig t(2, 1);
  PruningConfig pc;
  pc.sparsity = 0.5;
  pc.begin_step = 1;
  t.pruning = pc;
  Trainer trainer(model, data, OptimizerConfig{}, t, profiler);
  trainer.step();  // data, forward, backward, optimizer
  EXPECT_EQ(profiler.trace_events().size(), 4u);
  trainer.step();  // + the mask update
  EXPECT_EQ(profiler.trace_events().size(), 9u);
  trainer.step();
  EXPECT_EQ(profiler.trace_events().size(), 13u);
}

}  // namespace
}  // namespace tb::test
