#include "uncertainty.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "../common/rng.h"
#include "../profile/stats.h"

namespace tb {

double sample_mean(const std::vector<double>& xs) {
  return std::accumulate(xs.begin(), xs.end(), 0.0) / double(xs.size());
}

double sample_variance(const std::vector<double>& xs) {
  const double m = sample_mean(xs);
  double ss = 0;
  for (double x : xs) ss += (x - m) * (x - m);
  return ss / double(xs.size() - 1);
}

namespace {
double median_of(std::vector<double> xs) { return summarize(std::move(xs)).median; }
}  // namespace

double student_t_975(double df) {
  // t_{0.975, df}, df = 1 … 30 (any standard table, e.g. NIST/SEMATECH Handbook, 1.3.6.7.2).
  static const double table[] = {12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306,
                                 2.262,  2.228, 2.201, 2.179, 2.160, 2.145, 2.131, 2.120,
                                 2.110,  2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064,
                                 2.060,  2.056, 2.052, 2.048, 2.045, 2.042};
  if (df < 1) df = 1;
  if (df <= 30) {
    // Linear interpolation between integer degrees of freedom (Welch's df is fractional).
    const int lo = static_cast<int>(std::floor(df));
    const double f = df - lo;
    const double a = table[lo - 1], b = lo < 30 ? table[lo] : a;
    return a + f * (b - a);
  }
  const double z = 1.959963984540054;
  const double z3 = z * z * z, z5 = z3 * z * z;
  return z + (z3 + z) / (4 * df) + (5 * z5 + 16 * z3 + 3 * z) / (96 * df * df);
}

std::pair<double, double> mean_ci95(const std::vector<double>& xs) {
  if (xs.empty()) return {0, 0};
  const double m = sample_mean(xs);
  if (xs.size() < 2) return {m, m};
  const double half =
      student_t_975(double(xs.size() - 1)) * std::sqrt(sample_variance(xs) / double(xs.size()));
  return {m - half, m + half};
}

std::pair<double, double> welch_diff_ci95(const std::vector<double>& a,
                                          const std::vector<double>& b) {
  if (a.empty() || b.empty()) return {0, 0};
  const double d = sample_mean(b) - sample_mean(a);
  if (a.size() < 2 || b.size() < 2) return {d, d};
  const double va = sample_variance(a) / double(a.size()),
               vb = sample_variance(b) / double(b.size());
  const double se = std::sqrt(va + vb);
  if (se == 0) return {d, d};
  // Welch–Satterthwaite degrees of freedom.
  const double df =
      (va + vb) * (va + vb) / (va * va / double(a.size() - 1) + vb * vb / double(b.size() - 1));
  const double half = student_t_975(df) * se;
  return {d - half, d + half};
}

std::pair<double, double> ratio_of_medians_ci95(const std::vector<double>& num,
                                                const std::vector<double>& den, int resamples,
                                                std::uint64_t seed) {
  if (num.empty() || den.empty()) return {0, 0};
  Rng rng(seed);
  std::vector<double> ratios(static_cast<std::size_t>(resamples));
  std::vector<double> rn(num.size()), rd(den.size());
  for (auto& r : ratios) {
    for (auto& x : rn) x = num[rng.below(num.size())];
    for (auto& x : rd) x = den[rng.below(den.size())];
    r = median_of(rn) / median_of(rd);
  }
  std::sort(ratios.begin(), ratios.end());
  const auto at = [&](double q) {
    return ratios[static_cast<std::size_t>(std::lround(q * double(ratios.size() - 1)))];
  };
  return {at(0.025), at(0.975)};
}

double median_rel_noise(const std::vector<double>& xs) {
  if (xs.size() < 2) return INFINITY;
  const Summary s = summarize(xs);
  if (s.median <= 0) return INFINITY;
  constexpr double kSqrtHalfPi = 1.2533141373155003;
  return kSqrtHalfPi * s.stddev / std::sqrt(double(s.n)) / s.median;
}

}  // namespace tb
