#include "time_to_target.h"

#include <cmath>
#include <numeric>

#include "uncertainty.h"

namespace tb {

namespace {

using nlohmann::json;

// A count of tokens as an integer when it is one (the eval points'), else as a number (an
// interpolated count).
json count_json(double x) {
  if (std::isfinite(x) && x == std::floor(x) && std::fabs(x) < 9007199254740992.0)
    return static_cast<std::int64_t>(x);
  return x;
}

json mean_ci_json(const std::optional<MeanCi95>& m) {
  if (!m) return nullptr;
  return {{"mean", m->mean}, {"ci95", {m->lo, m->hi}}};
}

std::optional<MeanCi95> mean_ci(const std::vector<double>& xs) {
  if (xs.empty()) return std::nullopt;
  const auto [lo, hi] = mean_ci95(xs);
  return MeanCi95{sample_mean(xs), lo, hi};
}

}  // namespace

TargetCrossing time_to_target(const std::vector<CurvePoint>& evals, double target,
                              const std::optional<CurvePoint>& start) {
  TargetCrossing r;
  for (const CurvePoint& e : evals) {
    if (std::isfinite(e.loss) && (std::isnan(r.best_loss) || e.loss < r.best_loss))
      r.best_loss = e.loss;
  }
  std::size_t i = 0;
  while (i < evals.size() && !(std::isfinite(evals[i].loss) && evals[i].loss <= target)) ++i;
  if (i == evals.size()) return r;
  const CurvePoint& e = evals[i];
  r.reached = true;
  r.step = e.step;
  r.tokens = e.tokens;
  r.train_s = e.train_s;
  const CurvePoint* prev = i > 0 ? &evals[i - 1] : start ? &*start : nullptr;
  if (prev == nullptr || !std::isfinite(prev->loss)) {
    // Nothing earlier to interpolate from: the evaluation's own values.
    r.step_interp = double(e.step);
    r.tokens_interp = e.tokens;
    r.train_s_interp = e.train_s;
    r.interp_from = "none";
    return r;
  }
  r.interp_from = i > 0 ? "eval" : "start";
  // Only the start point can already be at or below the target (an earlier evaluation would
  // have been the first to reach it): then the target was met before training.
  // Otherwise prev.loss > target ≥ e.loss, and the fraction of the way from prev to e at
  // which a straight line between their losses meets the target is in (0, 1].
  const double f = prev->loss <= target ? 0.0 : (prev->loss - target) / (prev->loss - e.loss);
  r.step_interp = double(prev->step) + f * double(e.step - prev->step);
  r.tokens_interp = prev->tokens + f * (e.tokens - prev->tokens);
  r.train_s_interp = prev->train_s + f * (e.train_s - prev->train_s);
  return r;
}

TargetSummary summarize_time_to_target(const std::vector<TargetCrossing>& per_seed) {
  TargetSummary s;
  s.seeds = static_cast<int>(per_seed.size());
  std::vector<double> step, tokens, train_s, step_i, tokens_i, train_s_i;
  for (const TargetCrossing& c : per_seed) {
    if (!c.reached) continue;
    ++s.reached;
    step.push_back(double(c.step));
    tokens.push_back(c.tokens);
    train_s.push_back(c.train_s);
    step_i.push_back(c.step_interp);
    tokens_i.push_back(c.tokens_interp);
    train_s_i.push_back(c.train_s_interp);
  }
  s.step = mean_ci(step);
  s.tokens = mean_ci(tokens);
  s.train_s = mean_ci(train_s);
  s.step_interp = mean_ci(step_i);
  s.tokens_interp = mean_ci(tokens_i);
  s.train_s_interp = mean_ci(train_s_i);
  return s;
}

json time_to_target_json(const std::vector<std::uint64_t>& seeds,
                         const std::vector<double>& targets,
                         const std::vector<TargetCrossing>& per_seed) {
  json rows = json::array();
  for (std::size_t k = 0; k < per_seed.size(); ++k) {
    const TargetCrossing& c = per_seed[k];
    const auto opt = [&](json v) { return c.reached ? v : json(nullptr); };
    rows.push_back({{"seed", k < seeds.size() ? json(seeds[k]) : json(nullptr)},
                    {"target", k < targets.size() ? json(targets[k]) : json(nullptr)},
                    {"reached", c.reached},
                    {"step", opt(c.step)},
                    {"tokens", opt(count_json(c.tokens))},
                    {"train_s", opt(c.train_s)},
                    {"step_interp", opt(c.step_interp)},
                    {"tokens_interp", opt(count_json(c.tokens_interp))},
                    {"train_s_interp", opt(c.train_s_interp)},
                    {"interp_from", opt(c.interp_from)},
                    {"best_eval_loss", std::isfinite(c.best_loss) ? json(c.best_loss) : json()}});
  }
  const TargetSummary s = summarize_time_to_target(per_seed);
  return {{"per_seed", rows},
          {"seeds_run", s.seeds},
          {"seeds_reached", s.reached},
          {"step", mean_ci_json(s.step)},
          {"tokens", mean_ci_json(s.tokens)},
          {"train_s", mean_ci_json(s.train_s)},
          {"step_interp", mean_ci_json(s.step_interp)},
          {"tokens_interp", mean_ci_json(s.tokens_interp)},
          {"train_s_interp", mean_ci_json(s.train_s_interp)}};
}

RatioCi95 ratio_of_means_ci95(const std::vector<double>& num, const std::vector<double>& den,
                              bool paired) {
  if (num.empty() || den.empty()) return {};
  const double mn = sample_mean(num), md = sample_mean(den);
  const double ratio = mn / md;
  const RatioCi95 point{ratio, ratio, ratio};
  double se2 = 0, df = 0;
  if (paired) {
    // Delta method for the paired case: ln(x̄/ȳ) − ln(μx/μy) ≈ mean of
    // (x_i/μx − y_i/μy); its variance is estimated by that of the observed differences.
    if (num.size() != den.size() || num.size() < 2) return point;
    std::vector<double> d(num.size());
    for (std::size_t i = 0; i < d.size(); ++i) d[i] = num[i] / mn - den[i] / md;
    se2 = sample_variance(d) / double(d.size());
    df = double(d.size() - 1);
  } else {
    if (num.size() < 2 || den.size() < 2) return point;
    const double un = sample_variance(num) / (double(num.size()) * mn * mn);
    const double ud = sample_variance(den) / (double(den.size()) * md * md);
    se2 = un + ud;
    if (se2 <= 0) return point;
    // Welch–Satterthwaite degrees of freedom of the two relative variances.
    df = se2 * se2 / (un * un / double(num.size() - 1) + ud * ud / double(den.size() - 1));
  }
  if (!(se2 > 0) || !std::isfinite(se2)) return point;
  const double half = student_t_975(df) * std::sqrt(se2);
  return {ratio, ratio * std::exp(-half), ratio * std::exp(half)};
}

json time_to_target_vs_baseline(const json& baseline_accuracy, const json& accuracy) {
  const auto ttt_of = [](const json& a) -> const json* {
    if (!a.is_object()) return nullptr;
    const auto it = a.find("time_to_target");
    return it != a.end() && it->is_object() ? &*it : nullptr;
  };
  const json* base = ttt_of(baseline_accuracy);
  const json* self = ttt_of(accuracy);
  if (base == nullptr || self == nullptr) return json::object();

  json out = {
      {"time_to_target_speedup", nullptr},        {"time_to_target_speedup_ci95", nullptr},
      {"time_to_target_speedup_interp", nullptr}, {"time_to_target_speedup_interp_ci95", nullptr},
      {"steps_to_target_ratio", nullptr},         {"steps_to_target_ratio_ci95", nullptr}};
  const auto spec_of = [](const json& a) {
    return a.contains("target") && a["target"].is_object() ? a["target"].value("spec", json())
                                                           : json();
  };
  const json base_spec = spec_of(baseline_accuracy), spec = spec_of(accuracy);
  if (base_spec != spec) {
    out["time_to_target_reason"] = "the targets differ: this variant's " + spec.dump() +
                                   ", the baseline's " + base_spec.dump();
    return out;
  }
  struct Side {
    std::vector<double> step, train_s, train_s_interp;
    std::vector<json> seeds;
    int reached = 0, run = 0;
  };
  const auto read = [](const json& t) {
    Side s;
    for (const json& r : t.value("per_seed", json::array())) {
      ++s.run;
      s.seeds.push_back(r.value("seed", json()));
      if (!r.value("reached", false)) continue;
      ++s.reached;
      s.step.push_back(r.at("step").get<double>());
      s.train_s.push_back(r.at("train_s").get<double>());
      s.train_s_interp.push_back(r.at("train_s_interp").get<double>());
    }
    return s;
  };
  const Side b = read(*base), v = read(*self);
  if (b.run == 0 || v.run == 0 || b.reached < b.run || v.reached < v.run) {
    out["time_to_target_reason"] = "not every seed reached the target: the baseline in " +
                                   std::to_string(b.reached) + " of " + std::to_string(b.run) +
                                   ", this variant in " + std::to_string(v.reached) + " of " +
                                   std::to_string(v.run);
    return out;
  }
  if (sample_mean(b.train_s) <= 0 || sample_mean(v.train_s) <= 0 || sample_mean(b.step) <= 0 ||
      sample_mean(v.step) <= 0) {
    out["time_to_target_reason"] = "a side reached the target before training (step 0)";
    return out;
  }
  // Same seeds on both sides (same initial weights and data order): paired, as loss_delta.
  const bool paired = b.seeds == v.seeds && b.run >= 2;
  const auto put = [&](const char* key, const std::vector<double>& num,
                       const std::vector<double>& den) {
    const RatioCi95 r = ratio_of_means_ci95(num, den, paired);
    out[key] = r.ratio;
    out[std::string(key) + "_ci95"] = {r.lo, r.hi};
  };
  put("time_to_target_speedup", b.train_s, v.train_s);
  if (sample_mean(b.train_s_interp) > 0 && sample_mean(v.train_s_interp) > 0) {
    put("time_to_target_speedup_interp", b.train_s_interp, v.train_s_interp);
  }
  put("steps_to_target_ratio", b.step, v.step);
  out["time_to_target_method"] = paired ? "paired" : "independent";
  return out;
}

}  // namespace tb
