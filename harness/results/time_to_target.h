// Time to a target held-out loss (issue 13, docs/results-schema.md): from one seed's recorded
// evaluation curve, the optimizer steps, training tokens and training seconds at which the
// held-out loss first reaches the target; their mean and 95% interval over the seeds; and the
// comparison with the baseline's (time-to-target speedup, steps-to-target ratio).
#pragma once
#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace tb {

// One point of a seed's accuracy run: after `step` optimizer steps, `train_s` seconds of
// training (the wall clock of the steps only, evaluations excluded) and `tokens` training
// tokens, the held-out loss was `loss`.
struct CurvePoint {
  std::int64_t step = 0;
  double loss = 0;
  double train_s = 0;
  double tokens = 0;
};

// Where one seed's curve first reaches the target.
struct TargetCrossing {
  bool reached = false;
  // The first evaluation whose loss is ≤ the target (later rises do not undo it): the true
  // crossing lies at or before it, so these are upper bounds. 0 when not reached.
  std::int64_t step = 0;
  double tokens = 0;
  double train_s = 0;
  // Linear interpolation of step, tokens and seconds in the loss between the point before
  // that evaluation and the evaluation (see `interp_from`). 0 when not reached.
  double step_interp = 0;
  double tokens_interp = 0;
  double train_s_interp = 0;
  // "eval": from the previous evaluation; "start": from the start point (step 0) — or at the
  // start point itself when its loss already reaches the target; "none": the first
  // evaluation reached it and there is no start point, so the interpolated values are the
  // evaluation's. "" when not reached.
  std::string interp_from;
  // The lowest finite evaluation loss (NaN when there is none): how close a seed that did not
  // reach the target came.
  double best_loss = std::numeric_limits<double>::quiet_NaN();
};

// `evals`: the seed's evaluations in increasing step order. `target`: the loss to reach
// (nats). `start`: an optional point before the first evaluation used only for the
// interpolation (the runner passes step 0, 0 s, 0 tokens and the first training step's loss,
// the untrained model's loss on data it has not seen); only evaluations decide `reached`.
// A non-finite loss never reaches the target.
TargetCrossing time_to_target(const std::vector<CurvePoint>& evals, double target,
                              const std::optional<CurvePoint>& start = std::nullopt);

struct MeanCi95 {
  double mean = 0, lo = 0, hi = 0;
};

// Over the seeds: how many reached the target and, over those that did, the mean and 95%
// t interval (mean_ci95) of each quantity; empty when none reached.
struct TargetSummary {
  int seeds = 0;
  int reached = 0;
  std::optional<MeanCi95> step, tokens, train_s, step_interp, tokens_interp, train_s_interp;
};
TargetSummary summarize_time_to_target(const std::vector<TargetCrossing>& per_seed);

// accuracy.time_to_target (docs/results-schema.md): `per_seed` (seed, target, reached, step,
// tokens, train_s, the _interp three, interp_from, best_eval_loss), `seeds_run`,
// `seeds_reached`, and {mean, ci95} or null for step, tokens, train_s and the _interp three.
// `seeds`, `targets` and `per_seed` are parallel (one entry per seed).
nlohmann::json time_to_target_json(const std::vector<std::uint64_t>& seeds,
                                   const std::vector<double>& targets,
                                   const std::vector<TargetCrossing>& per_seed);

// The ratio mean(num) ÷ mean(den) with a 95% interval by the delta method on its logarithm
// (Casella & Berger 2002, §5.5.4): var(ln x̄) ≈ s²/(n·x̄²). Independent samples: the two
// relative variances add, with Welch–Satterthwaite degrees of freedom (Welch 1947). Paired
// samples (the same seeds on both sides): the variance of the per-pair differences
// num_i/mean(num) − den_i/mean(den) over n, with n − 1 degrees of freedom. The interval is
// ratio·exp(±t·se), so it stays positive; it collapses to the ratio when a side has fewer
// than 2 values or no spread. Requires positive means.
struct RatioCi95 {
  double ratio = 0, lo = 0, hi = 0;
};
RatioCi95 ratio_of_means_ci95(const std::vector<double>& num, const std::vector<double>& den,
                              bool paired);

// The vs_baseline fields of time to target from the two lines' `accuracy` objects:
// time_to_target_speedup (baseline mean train_s ÷ this one) with _ci95,
// time_to_target_speedup_interp (the same of train_s_interp) with _ci95,
// steps_to_target_ratio (baseline mean step ÷ this one) with _ci95, time_to_target_method
// ("paired" or "independent"); when a side's seeds did not all reach the target (or the
// targets differ) the ratios are null and time_to_target_reason says why. An empty object
// when either side has no time_to_target.
nlohmann::json time_to_target_vs_baseline(const nlohmann::json& baseline_accuracy,
                                          const nlohmann::json& accuracy);

}  // namespace tb
