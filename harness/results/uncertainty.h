// Uncertainty of the numbers a result reports: confidence intervals of a mean over seeds,
// of a difference of means (Welch), of a ratio of medians (bootstrap), and the relative
// noise of a median used as the timing stop criterion.
#pragma once
#include <cstdint>
#include <utility>
#include <vector>

namespace tb {

// The mean of xs, and their sample variance (n − 1 in the denominator; n ≥ 2).
double sample_mean(const std::vector<double>& xs);
double sample_variance(const std::vector<double>& xs);

// Two-sided 97.5% quantile of Student's t with `df` degrees of freedom (df ≥ 1; table for
// df ≤ 30, then the Cornish–Fisher expansion about the normal quantile, Abramowitz & Stegun
// 26.7.5, accurate to < 1e-3 there).
double student_t_975(double df);

// 95% interval of the mean of xs (t interval); {mean, mean} for one value.
std::pair<double, double> mean_ci95(const std::vector<double>& xs);

// 95% interval of mean(b) − mean(a) with Welch's degrees of freedom (Welch 1947).
// With fewer than 2 values on a side the interval collapses to the point estimate.
std::pair<double, double> welch_diff_ci95(const std::vector<double>& a,
                                          const std::vector<double>& b);

// 95% percentile-bootstrap interval of median(num) / median(den), resampling each set
// independently (Efron & Tibshirani 1993, ch. 13), with a fixed seed so a result file is
// reproducible.
std::pair<double, double> ratio_of_medians_ci95(const std::vector<double>& num,
                                                const std::vector<double>& den,
                                                int resamples = 2000, std::uint64_t seed = 1);

// Relative standard error of the median: √(π/2)·s/√n ÷ median — the asymptotic standard
// error of a sample median for normal data (Kenney & Keeping 1962, §13.13). nvbench stops on
// the relative standard deviation; trainbench reports a median, so it stops on the median's.
double median_rel_noise(const std::vector<double>& xs);

}  // namespace tb
