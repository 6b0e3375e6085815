// `trainbench compare BASE NEW`: matches the variants of two results files by variant.id and
// decides, per variant, whether step time or eval loss changed by more than a threshold with
// statistical significance (docs/compare.md).
//
// Decision rule, per variant that is `ok` in both files:
//  * step time: change = median_NEW / median_BASE − 1 (timing.step_s.median), p from the
//    two-sided Mann–Whitney U test over the two sets of timing.samples_s. "slower" when
//    change > threshold and p < alpha, "faster" when change < −threshold and p < alpha.
//    When the two lines' throughput.tokens_per_step differ (a split or batch change between
//    the files), step times do not compare like with like: the U test runs over each
//    sample's throughput (tokens_per_step / sample, tokens/s) instead, and the change is that
//    of the time per token, (median_NEW / tokens_NEW) / (median_BASE / tokens_BASE) − 1
//    (= tokens/s_BASE / tokens/s_NEW − 1; positive is slower, as for step times).
//  * loss: change = (mean_NEW − mean_BASE) / |mean_BASE| (accuracy.eval_loss_mean), p from
//    Welch's two-sided t test over the per-seed accuracy.eval_loss values when both sides have
//    at least 2 seeds (otherwise no p-value, and so never significant). "worse loss" when
//    change > threshold and p < alpha, "better loss" when change < −threshold and p < alpha.
//  * the variant REGRESSED when it is "slower" or has "worse loss".
#pragma once
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "../results/results_file.h"

namespace tb {

struct CompareOptions {
  double threshold_pct = 5;  // a change must exceed this many percent to count
  double alpha = 0.05;       // … and be significant at this level
};

// Google Benchmark's compare.py recommends at least this many repetitions for its U test
// (UTEST_OPTIMAL_REPETITIONS in tools/gbench/report.py); fewer draw a warning.
inline constexpr std::size_t kRecommendedSamples = 9;

struct VariantComparison {
  std::string id;
  std::string base_status, new_status;

  // Step time (seconds); absent when either side is not ok or has no timing.
  std::optional<double> base_median_s, new_median_s;
  std::size_t base_samples = 0, new_samples = 0;
  std::optional<double> time_change;  // NEW / BASE − 1 (a fraction: 0.15 is 15% slower)
  std::optional<double> time_p;       // Mann–Whitney U, two-sided
  // throughput.tokens_per_step of each side (absent when a line lacks it). When both are
  // present and differ, `by_throughput` is set: time_change is the change in time per token
  // and time_p the U test over per-sample tokens/s.
  std::optional<double> base_tokens_per_step, new_tokens_per_step;
  bool by_throughput = false;

  // Eval loss; absent when either side is not ok or has no accuracy section.
  std::optional<double> base_loss, new_loss;  // eval_loss_mean
  std::size_t base_seeds = 0, new_seeds = 0;
  std::optional<double> loss_change;  // (NEW − BASE) / |BASE| (a fraction)
  std::optional<double> loss_p;       // Welch t, two-sided; absent with fewer than 2 seeds

  bool slower = false, faster = false, worse_loss = false, better_loss = false;

  bool both_ok() const { return base_status == "ok" && new_status == "ok"; }
  bool regressed() const { return slower || worse_loss; }
  // "slower", "faster", "worse loss", "better loss" (comma-joined when several hold), "same",
  // or "n/a (STATUS)" / "n/a (base STATUS, new STATUS)" when either side is not ok.
  std::string verdict() const;
};

struct NotOk {
  std::string id, side, status, reason;  // side: "base" or "new"
};

struct Comparison {
  std::string base_path, new_path;
  std::size_t base_count = 0, new_count = 0;  // result lines in each file
  CompareOptions options;
  std::vector<VariantComparison> variants;             // ids in both files, in BASE's order
  std::vector<std::string> only_in_base, only_in_new;  // ids in one file only, in file order
  std::vector<NotOk> not_ok;                           // every non-ok line of either file
  std::vector<std::string> few_samples;  // ids compared on fewer than kRecommendedSamples

  std::size_t regressed_count() const;
  bool regressed() const { return regressed_count() > 0; }
};

// Compares two results files read by read_results_file. A line whose fields have the wrong
// type (e.g. timing.samples_s not an array of numbers) or a variant id that occurs twice in
// one file throws ResultsFileError naming the file and line. Options are checked
// (threshold ≥ 0, 0 < alpha < 1; std::invalid_argument).
Comparison compare_results(const ResultsFile& base, const ResultsFile& next,
                           const CompareOptions& options = {});

// The human-readable report: a header with the files and the rule, the table (a time change
// compared on throughput is marked `*`, with a note under the table naming those variants and
// their tokens per step), the variants in one file only, the non-ok results and a last line
// with the outcome.
std::string format_comparison(const Comparison& c);

// The one-line warning about small samples (empty when there are none).
std::string few_samples_warning(const Comparison& c);

}  // namespace tb
