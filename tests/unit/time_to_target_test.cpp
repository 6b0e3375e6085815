// Time to a target held-out loss (harness/results/time_to_target.*): hand-made curves —
// reached exactly at an evaluation, never reached, reached between evaluations (interpolated
// values worked out by hand), a curve that dips below and rises again (the first crossing
// wins), a target above the first evaluation — the aggregate over seeds, the ratio of means
// with its delta-method interval, the comparison with a baseline, and the scenario key
// accuracy.target_loss with its one-line errors.
#include <gtest/gtest.h>

#include <cmath>
#include <initializer_list>
#include <string>
#include <vector>

#include "results/time_to_target.h"
#include "results/uncertainty.h"
#include "scenario/scenario.h"
#include "unit/temp_dir.h"

namespace tb {
namespace {

using nlohmann::json;

// Evaluations every 10 steps of 1000 tokens, 0.1 s per step — except where a test says.
std::vector<CurvePoint> curve(std::initializer_list<double> losses) {
  std::vector<CurvePoint> out;
  std::int64_t step = 0;
  for (double l : losses) {
    step += 10;
    out.push_back({step, l, 0.1 * double(step), 100.0 * double(step)});
  }
  return out;
}

TEST(TimeToTarget, ReachedExactlyAtAnEvaluation) {
  const TargetCrossing c = time_to_target(curve({3.0, 2.5, 2.0}), 2.5);
  ASSERT_TRUE(c.reached);
  EXPECT_EQ(c.step, 20);
  EXPECT_DOUBLE_EQ(c.tokens, 2000);
  EXPECT_DOUBLE_EQ(c.train_s, 2.0);
  // The line from (10, 3.0) to (20, 2.5) meets 2.5 at its end: the evaluation itself.
  EXPECT_EQ(c.interp_from, "eval");
  EXPECT_DOUBLE_EQ(c.step_interp, 20);
  EXPECT_DOUBLE_EQ(c.tokens_interp, 2000);
  EXPECT_DOUBLE_EQ(c.train_s_interp, 2.0);
  EXPECT_DOUBLE_EQ(c.best_loss, 2.0);
}

TEST(TimeToTarget, NeverReached) {
  const TargetCrossing c = time_to_target(curve({3.0, 2.5, 2.1}), 2.0);
  EXPECT_FALSE(c.reached);
  EXPECT_EQ(c.step, 0);
  EXPECT_EQ(c.interp_from, "");
  EXPECT_DOUBLE_EQ(c.best_loss, 2.1);
  // An empty curve, and a curve of non-finite losses, reach nothing.
  EXPECT_FALSE(time_to_target({}, 2.0).reached);
  const TargetCrossing nan = time_to_target(curve({NAN, INFINITY}), 100.0);
  EXPECT_FALSE(nan.reached);
  EXPECT_TRUE(std::isnan(nan.best_loss));
}

TEST(TimeToTarget, ReachedBetweenEvaluationsIsInterpolated) {
  // Uneven seconds: 1.0 s at step 10, 2.2 s at step 20 (the steps got slower).
  const std::vector<CurvePoint> evals = {{10, 3.0, 1.0, 1000}, {20, 2.0, 2.2, 2000}};
  const TargetCrossing c = time_to_target(evals, 2.6);
  ASSERT_TRUE(c.reached);
  EXPECT_EQ(c.step, 20);  // the first evaluation at or below: an upper bound
  EXPECT_DOUBLE_EQ(c.train_s, 2.2);
  // By hand: f = (3.0 − 2.6) / (3.0 − 2.0) = 0.4 of the way from step 10 to step 20.
  EXPECT_EQ(c.interp_from, "eval");
  EXPECT_NEAR(c.step_interp, 14.0, 1e-12);
  EXPECT_NEAR(c.tokens_interp, 1400.0, 1e-9);
  EXPECT_NEAR(c.train_s_interp, 1.0 + 0.4 * 1.2, 1e-12);  // 1.48 s
}

TEST(TimeToTarget, NonMonotoneCurveFirstCrossingWins) {
  // Dips to 2.4 at step 20, back up to 2.7, then 2.3: the target 2.5 is first met at 20.
  const TargetCrossing c = time_to_target(curve({3.0, 2.4, 2.7, 2.3}), 2.5);
  ASSERT_TRUE(c.reached);
  EXPECT_EQ(c.step, 20);
  EXPECT_DOUBLE_EQ(c.train_s, 2.0);
  // f = (3.0 − 2.5) / (3.0 − 2.4) = 5/6 → step 10 + 50/6.
  EXPECT_NEAR(c.step_interp, 10.0 + 50.0 / 6.0, 1e-12);
  EXPECT_DOUBLE_EQ(c.best_loss, 2.3);
  // A non-finite evaluation before the crossing is skipped; the one after it has no
  // usable predecessor to interpolate from.
  const TargetCrossing n = time_to_target(curve({3.0, NAN, 2.0}), 2.5);
  ASSERT_TRUE(n.reached);
  EXPECT_EQ(n.step, 30);
  EXPECT_EQ(n.interp_from, "none");
  EXPECT_DOUBLE_EQ(n.step_interp, 30);
}

TEST(TimeToTarget, TargetAboveTheFirstEvaluation) {
  const std::vector<CurvePoint> evals = curve({3.0, 2.0});
  // Without a start point the first evaluation is all there is.
  const TargetCrossing none = time_to_target(evals, 3.5);
  ASSERT_TRUE(none.reached);
  EXPECT_EQ(none.step, 10);
  EXPECT_EQ(none.interp_from, "none");
  EXPECT_DOUBLE_EQ(none.step_interp, 10);
  EXPECT_DOUBLE_EQ(none.train_s_interp, 1.0);
  // From step 0 at loss 4.2: f = (4.2 − 3.5) / (4.2 − 3.0) = 7/12.
  const TargetCrossing from0 = time_to_target(evals, 3.5, CurvePoint{0, 4.2, 0, 0});
  ASSERT_TRUE(from0.reached);
  EXPECT_EQ(from0.step, 10);
  EXPECT_EQ(from0.interp_from, "start");
  EXPECT_NEAR(from0.step_interp, 70.0 / 12.0, 1e-12);
  EXPECT_NEAR(from0.tokens_interp, 7000.0 / 12.0, 1e-9);
  EXPECT_NEAR(from0.train_s_interp, 7.0 / 12.0, 1e-12);
  // The start already at or below the target: reached before training.
  const TargetCrossing before = time_to_target(evals, 5.0, CurvePoint{0, 4.2, 0, 0});
  ASSERT_TRUE(before.reached);
  EXPECT_EQ(before.step, 10);
  EXPECT_EQ(before.interp_from, "start");
  EXPECT_DOUBLE_EQ(before.step_interp, 0);
  EXPECT_DOUBLE_EQ(before.train_s_interp, 0);
  // The start point never counts as reaching on its own: only evaluations decide.
  EXPECT_FALSE(time_to_target(curve({3.0}), 2.0, CurvePoint{0, 1.0, 0, 0}).reached);
}

TEST(TimeToTarget, SummaryOverTheSeedsThatReached) {
  const std::vector<TargetCrossing> seeds = {time_to_target(curve({3.0, 2.4}), 2.5),
                                             time_to_target(curve({3.0, 2.7, 2.4}), 2.5),
                                             time_to_target(curve({3.0, 2.7, 2.6}), 2.5)};
  const TargetSummary s = summarize_time_to_target(seeds);
  EXPECT_EQ(s.seeds, 3);
  EXPECT_EQ(s.reached, 2);
  ASSERT_TRUE(s.step && s.train_s && s.tokens && s.step_interp);
  // Steps 20 and 30: mean 25, s = 7.0711, se = 5, t(1) = 12.706.
  EXPECT_DOUBLE_EQ(s.step->mean, 25);
  EXPECT_NEAR(s.step->lo, 25 - 12.706 * 5, 1e-9);
  EXPECT_NEAR(s.step->hi, 25 + 12.706 * 5, 1e-9);
  EXPECT_DOUBLE_EQ(s.tokens->mean, 2500);
  EXPECT_DOUBLE_EQ(s.train_s->mean, 2.5);
  const TargetSummary none = summarize_time_to_target({time_to_target(curve({3.0}), 1.0)});
  EXPECT_EQ(none.reached, 0);
  EXPECT_FALSE(none.step || none.train_s || none.tokens);
}

TEST(TimeToTarget, Json) {
  const std::vector<TargetCrossing> c = {time_to_target(curve({3.0, 2.4}), 2.5),
                                         time_to_target(curve({3.0, 2.6}), 2.5)};
  const json j = time_to_target_json({7, 8}, {2.5, 2.5}, c);
  EXPECT_EQ(j["seeds_run"], 2);
  EXPECT_EQ(j["seeds_reached"], 1);
  ASSERT_EQ(j["per_seed"].size(), 2u);
  const json& r = j["per_seed"][0];
  EXPECT_EQ(r["seed"], 7);
  EXPECT_EQ(r["target"], 2.5);
  EXPECT_EQ(r["reached"], true);
  EXPECT_EQ(r["step"], 20);
  EXPECT_TRUE(r["tokens"].is_number_integer());
  EXPECT_EQ(r["tokens"], 2000);
  EXPECT_EQ(r["interp_from"], "eval");
  const json& n = j["per_seed"][1];
  EXPECT_EQ(n["reached"], false);
  for (const char* k : {"step", "tokens", "train_s", "step_interp", "tokens_interp",
                        "train_s_interp", "interp_from"}) {
    EXPECT_TRUE(n[k].is_null()) << k;
  }
  EXPECT_EQ(n["best_eval_loss"], 2.6);
  EXPECT_EQ(j["step"]["mean"], 20.0);
  EXPECT_EQ(j["step"]["ci95"], json({20.0, 20.0}));  // one seed: the mean
  const json none = time_to_target_json({1}, {1.0}, {time_to_target(curve({3.0}), 1.0)});
  for (const char* k :
       {"step", "tokens", "train_s", "step_interp", "tokens_interp", "train_s_interp"}) {
    EXPECT_TRUE(none[k].is_null()) << k;
  }
}

TEST(TimeToTarget, RatioOfMeansDeltaMethod) {
  // Independent: num {2, 4} (mean 3, s² 2), den {1, 1} (no spread): ratio 3,
  // se² = 2 / (2·9) = 1/9 on the log scale, Welch df = 1 → t = 12.706.
  const RatioCi95 ind = ratio_of_means_ci95({2, 4}, {1, 1}, false);
  EXPECT_DOUBLE_EQ(ind.ratio, 3);
  EXPECT_NEAR(ind.lo, 3 * std::exp(-12.706 / 3), 1e-9);
  EXPECT_NEAR(ind.hi, 3 * std::exp(12.706 / 3), 1e-9);
  // Paired: num {2, 4}, den {2, 2}: differences 2/3 − 1 and 4/3 − 1 = ∓1/3, variance 2/9,
  // se² = 1/9, df = 1; ratio 1.5.
  const RatioCi95 paired = ratio_of_means_ci95({2, 4}, {2, 2}, true);
  EXPECT_DOUBLE_EQ(paired.ratio, 1.5);
  EXPECT_NEAR(paired.lo, 1.5 * std::exp(-12.706 / 3), 1e-9);
  EXPECT_NEAR(paired.hi, 1.5 * std::exp(12.706 / 3), 1e-9);
  // Paired values in exact proportion: no uncertainty in the ratio.
  const RatioCi95 prop = ratio_of_means_ci95({2, 4}, {1, 2}, true);
  EXPECT_DOUBLE_EQ(prop.ratio, 2);
  EXPECT_DOUBLE_EQ(prop.lo, 2);
  EXPECT_DOUBLE_EQ(prop.hi, 2);
  // One value on a side: the interval collapses to the ratio.
  const RatioCi95 one = ratio_of_means_ci95({3}, {1, 2}, false);
  EXPECT_DOUBLE_EQ(one.lo, 2);
  EXPECT_DOUBLE_EQ(one.hi, 2);
}

// An `accuracy` object as the runner writes it, for seeds 1…n at target 2.5.
json accuracy_of(const std::vector<std::vector<CurvePoint>>& curves, const json& spec = 2.5) {
  std::vector<std::uint64_t> seeds;
  std::vector<double> targets;
  std::vector<TargetCrossing> c;
  for (std::size_t k = 0; k < curves.size(); ++k) {
    seeds.push_back(k + 1);
    targets.push_back(2.5);
    c.push_back(time_to_target(curves[k], 2.5));
  }
  return {{"target", {{"spec", spec}, {"loss", targets}}},
          {"time_to_target", time_to_target_json(seeds, targets, c)}};
}

// A curve reaching 2.5 at step 20 (of 10-step evaluations), at `s_per_step` seconds a step.
std::vector<CurvePoint> timed(double s_per_step, std::int64_t at = 20) {
  std::vector<CurvePoint> out;
  for (std::int64_t step = 10; step <= 40; step += 10)
    out.push_back({step, step >= at ? 2.0 : 3.0, s_per_step * double(step), 100.0 * double(step)});
  return out;
}

TEST(TimeToTarget, VsBaseline) {
  // The baseline reaches at step 20 for 0.2 s/step (4 s); the variant at step 20 for
  // 0.1 s/step (2 s) on one seed and at step 30 (3 s) on the other: speedup 4 ÷ 2.5 = 1.6,
  // steps ratio 20 ÷ 25 = 0.8, paired (same seeds).
  const json base = accuracy_of({timed(0.2), timed(0.2)});
  const json self = accuracy_of({timed(0.1), timed(0.1, 30)});
  const json vs = time_to_target_vs_baseline(base, self);
  EXPECT_NEAR(vs["time_to_target_speedup"].get<double>(), 1.6, 1e-12);
  EXPECT_NEAR(vs["steps_to_target_ratio"].get<double>(), 0.8, 1e-12);
  EXPECT_EQ(vs["time_to_target_method"], "paired");
  const auto ci = vs["time_to_target_speedup_ci95"].get<std::vector<double>>();
  ASSERT_EQ(ci.size(), 2u);
  EXPECT_LT(ci[0], 1.6);
  EXPECT_GT(ci[1], 1.6);
  EXPECT_TRUE(vs["time_to_target_speedup_interp"].is_number());
  EXPECT_FALSE(vs.contains("time_to_target_reason"));

  // A seed that never reached: null ratios with a reason.
  const json miss = accuracy_of({timed(0.1), timed(0.1, 1000)});
  const json vm = time_to_target_vs_baseline(base, miss);
  EXPECT_TRUE(vm["time_to_target_speedup"].is_null());
  EXPECT_TRUE(vm["steps_to_target_ratio"].is_null());
  EXPECT_EQ(vm["time_to_target_reason"],
            "not every seed reached the target: the baseline in 2 of 2, this variant in 1 of 2");
  // Different targets are not compared.
  const json other = accuracy_of({timed(0.1), timed(0.1)}, json{{"floor_ratio", 1.1}});
  const json vo = time_to_target_vs_baseline(base, other);
  EXPECT_TRUE(vo["time_to_target_speedup"].is_null());
  EXPECT_NE(vo["time_to_target_reason"].get<std::string>().find("targets differ"),
            std::string::npos);
  // Without a target on either side: nothing.
  EXPECT_TRUE(time_to_target_vs_baseline(base, json{{"eval_loss", {2.0}}}).empty());
  EXPECT_TRUE(time_to_target_vs_baseline(json::object(), self).empty());
}

// ---- accuracy.target_loss in a scenario ----

const char* const kFile = "ttt.json";

// A tiny model; `data` adds base keys (e.g. a token file, with its vocabulary).
std::string scenario(const std::string& accuracy, const std::string& data = R"("vocab": 64)") {
  return std::string(R"({"name": "t", "base": {"layers": 1, "d_model": 32, "heads": 2, )") +
         R"("seq": 16, )" + data + R"(}, "accuracy": )" + accuracy + "}";
}

void expect_error(const std::string& text, std::initializer_list<const char*> parts) {
  const std::string msg =
      test::thrown_message<ScenarioError>([&] { (void)parse_scenario(text, kFile); });
  SCOPED_TRACE(msg);
  EXPECT_EQ(msg.rfind(std::string(kFile) + ": ", 0), 0u) << "does not start with the file name";
  EXPECT_EQ(msg.find('\n'), std::string::npos) << "not one line";
  for (const char* p : parts) EXPECT_NE(msg.find(p), std::string::npos) << "missing: " << p;
}

TEST(TargetLossScenario, AbsoluteRelativeOrNone) {
  const Scenario none = parse_scenario(scenario(R"({"train_steps": 10})"), kFile);
  EXPECT_FALSE(none.accuracy.target_loss || none.accuracy.target_floor_ratio);
  const Scenario null = parse_scenario(scenario(R"({"target_loss": null})"), kFile);
  EXPECT_FALSE(null.accuracy.target_loss || null.accuracy.target_floor_ratio);
  const Scenario abs = parse_scenario(scenario(R"({"target_loss": 2.75})"), kFile);
  ASSERT_TRUE(abs.accuracy.target_loss);
  EXPECT_DOUBLE_EQ(*abs.accuracy.target_loss, 2.75);
  EXPECT_FALSE(abs.accuracy.target_floor_ratio);
  const Scenario rel = parse_scenario(scenario(R"({"target_loss": {"floor_ratio": 1.05}})"), kFile);
  ASSERT_TRUE(rel.accuracy.target_floor_ratio);
  EXPECT_DOUBLE_EQ(*rel.accuracy.target_floor_ratio, 1.05);
  EXPECT_FALSE(rel.accuracy.target_loss);
  // --set works like the file.
  const Scenario set =
      parse_scenario(scenario(R"({})"), kFile, {R"(accuracy.target_loss={"floor_ratio": 1.2})"});
  ASSERT_TRUE(set.accuracy.target_floor_ratio);
  EXPECT_DOUBLE_EQ(*set.accuracy.target_floor_ratio, 1.2);
  // A token file with an absolute target is fine; without an accuracy run any target is.
  parse_scenario(scenario(R"({"target_loss": 3})", R"("data": "tokens.bin", "vocab": 256)"), kFile);
  parse_scenario(scenario(R"({"train_steps": 0, "target_loss": {"floor_ratio": 1.1}})",
                          R"("data": "tokens.bin", "vocab": 256)"),
                 kFile);
}

TEST(TargetLossScenario, OneLineErrors) {
  expect_error(scenario(R"({"target_loss": 0})"),
               {"/accuracy/target_loss: 0", "expected a held-out loss in nats > 0"});
  expect_error(scenario(R"({"target_loss": -1.5})"), {"/accuracy/target_loss: -1.5"});
  expect_error(scenario(R"({"target_loss": "low"})"),
               {"/accuracy/target_loss: \"low\"", "floor_ratio"});
  expect_error(scenario(R"({"target_loss": {}})"), {"/accuracy/target_loss: {}", "floor_ratio"});
  expect_error(scenario(R"({"target_loss": {"floor_ratio": 0.9}})"),
               {"/accuracy/target_loss/floor_ratio: 0.9", "a number >= 1"});
  expect_error(scenario(R"({"target_loss": {"floor_ratio": "1.1"}})"),
               {"/accuracy/target_loss/floor_ratio: \"1.1\""});
  expect_error(scenario(R"({"target_loss": {"ratio": 1.1}})"),
               {"/accuracy/target_loss/ratio", "unknown key", "floor_ratio"});
  expect_error(scenario(R"({"target": 2.0})"), {"/accuracy/target: unknown key"});
  // Relative to the floor needs data that has one.
  expect_error(
      scenario(R"({"target_loss": {"floor_ratio": 1.1}})", R"("data": "tokens.bin", "vocab": 256)"),
      {"/accuracy/target_loss", "floor_ratio", "entropy floor", "tokens.bin"});
}

}  // namespace
}  // namespace tb
