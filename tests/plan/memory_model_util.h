// Shared by the memory-model tests (single process and under mpirun): train a configuration
// as `trainbench run` builds it (runner.cpp's time_variant: rank setup, model, checkpointing,
// precision, weights, trainer) for a few optimizer steps, read the tracker's peak per
// category, and compare it with harness/plan/memory_model.h's prediction for this rank's
// stage.
//
// Tolerance: every category within 5% of the measured peak. A category whose predicted and
// measured peaks are both under 1 KiB (SGD without momentum's empty state, a pruning-mask
// buffer of a few weights) is compared with an absolute tolerance of 1 KiB instead — relative
// error means nothing there.
#pragma once
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "data/markov_source.h"
#include "model/gpt.h"
#include "plan/memory_model.h"
#include "runner/rank_setup.h"
#include "scenario/scenario.h"
#include "tb/cpu_backend.h"
#include "train/trainer.h"

namespace tb::test {

inline constexpr double kRelTolerance = 0.05;
inline constexpr double kTinyBytes = 1024;

// One configuration to compare: its name and what it changes in base_config().
struct Case {
  std::string name;
  std::function<void(RunConfig&)> set;
};

struct Measured {
  std::array<double, kMemoryCategoryCount> peak{};
  int stage = 0;
  int rank = 0;
};

// A small proxy every test can afford on two cores: 4 layers, width 64, 4 heads, context 32,
// vocabulary 96, micro-batch 2 (the configuration's own keys override).
inline RunConfig base_config() {
  RunConfig c;
  c.preset = "gpt3-125m";
  c.proxy.n_layer = 4;
  c.proxy.d_model = 64;
  c.proxy.n_head = 4;
  c.proxy.seq_len = 32;
  c.proxy.vocab = 96;
  c.micro_batch = 2;
  c.lr = 1e-3;
  return c;
}

inline ModelConfig model_of(const RunConfig& c) {
  ModelConfig m = variant_model(c, preset(c.preset));
  validate(m);
  return m;
}

// `steps` optimizer steps of c on this rank, as the runner's timing run builds them.
inline Measured train_and_measure(const RunConfig& c, int steps = 3) {
  const ModelConfig m = model_of(c);
  auto backend = make_cpu_backend(0, 0);
  const RankSetup rs = make_rank_setup(c, m, *backend);
  MarkovSource data(m.vocab, c.markov_branching, 7);
  GptModel model(*backend, m, DType::f32, rs.shard, rs.flat_multiple);
  model.set_checkpointing({c.checkpoint_interval, c.checkpoint_selective});
  model.set_precision({parse_precision_mode(c.precision), c.fp8_amax_history, c.fp8_margin});
  model.init_weights(7);
  OptimizerConfig o;
  o.name = c.optimizer;
  o.lr = c.lr.value_or(m.lr);
  o.momentum = c.momentum;
  TrainingConfig t;
  t.micro_batch = c.micro_batch;
  t.accumulation = c.micro_batches();
  t.loss_scaling.dynamic = c.dynamic_loss_scaling();
  if (c.pruning()) {
    PruningConfig p;
    parse_prune_pattern(c.prune_pattern, p);
    p.sparsity = c.prune_sparsity;
    t.pruning = p;
  }
  Profiler profiler(false);
  if (rs.grid) rs.grid->set_profiler(&profiler);
  Trainer trainer(model, data, o, t, profiler, rs.context());
  for (int i = 0; i < steps; ++i) trainer.step();
  Measured r;
  for (std::size_t k = 0; k < kMemoryCategoryCount; ++k) {
    r.peak[k] = double(backend->memory().peak_bytes(static_cast<MemoryCategory>(k)));
  }
  r.stage = rs.grid ? rs.grid->coord.pp_rank : 0;
  r.rank = rs.rank();
  return r;
}

inline bool within(double predicted, double measured) {
  if (std::max(predicted, measured) < kTinyBytes)
    return std::abs(predicted - measured) <= kTinyBytes;
  return std::abs(predicted - measured) <= kRelTolerance * measured;
}

inline double rel_error(double predicted, double measured) {
  if (measured == 0) return predicted == 0 ? 0.0 : INFINITY;
  return (predicted - measured) / measured;
}

// The worst relative error per category over every configuration compared so far (categories
// under the tiny threshold count as 0), for the summary table.
inline std::array<double, kMemoryCategoryCount>& worst_errors() {
  static std::array<double, kMemoryCategoryCount> w{};
  return w;
}
inline std::array<std::string, kMemoryCategoryCount>& worst_configs() {
  static std::array<std::string, kMemoryCategoryCount> w{};
  return w;
}

// Prints the predicted-vs-measured table of one rank and records its errors; returns the
// categories outside the tolerance (empty: all within).
inline std::string compare_and_print(const std::string& name, const MemoryPrediction& p,
                                     const Measured& m, bool print = true) {
  std::string bad;
  if (print) {
    std::printf("%s — rank %d, stage %d\n  %-16s %14s %14s %9s\n", name.c_str(), m.rank, m.stage,
                "category", "predicted", "measured", "error");
  }
  for (std::size_t k = 0; k < kMemoryCategoryCount; ++k) {
    const auto cat = static_cast<MemoryCategory>(k);
    const double pr = p.at(cat), me = m.peak[k];
    const bool ok = within(pr, me);
    const bool tiny = std::max(pr, me) < kTinyBytes;
    const double e = tiny ? 0.0 : rel_error(pr, me);
    if (print) {
      std::printf("  %-16s %14.0f %14.0f %8.2f%%%s\n",
                  std::string(memory_category_name(cat)).c_str(), pr, me, 100 * e,
                  ok ? "" : "  <-- outside 5%");
    }
    if (std::abs(e) > std::abs(worst_errors()[k])) {
      worst_errors()[k] = e;
      worst_configs()[k] = name + " (rank " + std::to_string(m.rank) + ")";
    }
    if (!ok) bad += std::string(bad.empty() ? "" : ", ") + std::string(memory_category_name(cat));
  }
  if (print) std::fflush(stdout);
  return bad;
}

inline void print_worst_errors(const char* title) {
  std::printf("%s: worst relative error per category (predicted − measured)/measured\n", title);
  for (std::size_t k = 0; k < kMemoryCategoryCount; ++k) {
    std::printf("  %-16s %8.2f%%  %s\n",
                std::string(memory_category_name(static_cast<MemoryCategory>(k))).c_str(),
                100 * worst_errors()[k], worst_configs()[k].c_str());
  }
  std::fflush(stdout);
}

}  // namespace tb::test
