// The pipeline flush on shared cores (harness/plan/shared_pipeline.h) against closed forms:
// with a device per stage it is Narayanan et al.'s (m + p − 1) stage-times, with transfers on
// GPipe's critical path it adds 2(p − 1) of them, and on one core shared by every stage (speed
// p/k with k busy) the core never idles, so the flush takes the stages' total work over p.
#include <gtest/gtest.h>

#include <stdexcept>

#include "plan/calibration.h"
#include "plan/shared_pipeline.h"
#include "plan/time_model.h"

namespace tb {
namespace {

constexpr double kF = 0.003, kB = 0.007;

std::vector<StageMicroBatch> uniform(int p) {
  return std::vector<StageMicroBatch>(std::size_t(p), StageMicroBatch{kF, kB});
}

TEST(SharedPipeline, ADevicePerStageIsTheClosedForm) {
  for (auto schedule : {PipelineSchedule::gpipe, PipelineSchedule::one_f_one_b}) {
    for (int p : {1, 2, 4, 7}) {
      for (int m : {1, 3, 8}) {
        const SharedPipelineFlush f =
            simulate_shared_pipeline(schedule, uniform(p), m, 0.0, [](int) { return 1.0; });
        EXPECT_NEAR(f.makespan_s, (m + p - 1) * (kF + kB), 1e-12) << "p=" << p << " m=" << m;
        for (int s = 0; s < p; ++s) {
          EXPECT_NEAR(f.forward_s[std::size_t(s)], m * kF, 1e-12);
          EXPECT_NEAR(f.backward_s[std::size_t(s)], m * kB, 1e-12);
        }
      }
    }
  }
}

TEST(SharedPipeline, TransfersLengthenGpipesCriticalPath) {
  const double tau = 0.0005;
  for (int p : {2, 4}) {
    const int m = 6;
    const SharedPipelineFlush f = simulate_shared_pipeline(PipelineSchedule::gpipe, uniform(p), m,
                                                           tau, [](int) { return 1.0; });
    EXPECT_NEAR(f.makespan_s, (m + p - 1) * (kF + kB) + 2 * (p - 1) * tau, 1e-12) << "p=" << p;
  }
}

TEST(SharedPipeline, OneSharedCoreNeverIdles) {
  for (auto schedule : {PipelineSchedule::gpipe, PipelineSchedule::one_f_one_b}) {
    for (int p : {2, 3, 4}) {
      const int m = 5;
      // Unequal stages: the last carries the LM head.
      std::vector<StageMicroBatch> st = uniform(p);
      st.back() = {2 * kF, 3 * kB};
      double work = 0;
      for (const StageMicroBatch& s : st) work += m * (s.forward_s + s.backward_s);
      const SharedPipelineFlush f =
          simulate_shared_pipeline(schedule, st, m, 0.0, [p](int k) { return double(p) / k; });
      EXPECT_NEAR(f.makespan_s, work / p, 1e-12) << "p=" << p;
    }
  }
}

TEST(SharedPipeline, FewerBusyStagesRunFasterAndShortenTheFlush) {
  // Two cores, four single-thread stages: alone or in pairs a stage has a core (speed 2).
  auto two_cores = [](int k) { return 4.0 / std::max(2, k); };
  const SharedPipelineFlush shared =
      simulate_shared_pipeline(PipelineSchedule::one_f_one_b, uniform(4), 4, 0.0, two_cores);
  const SharedPipelineFlush all_busy = simulate_shared_pipeline(
      PipelineSchedule::one_f_one_b, uniform(4), 4, 0.0, [](int) { return 1.0; });
  EXPECT_LT(shared.makespan_s, all_busy.makespan_s);
  // …but never below the work at the fastest speed.
  EXPECT_GT(shared.makespan_s, 4 * (kF + kB) / 2);
}

TEST(SharedPipeline, BadInputIsAnError) {
  auto one = [](int) { return 1.0; };
  EXPECT_THROW(simulate_shared_pipeline(PipelineSchedule::gpipe, {}, 4, 0.0, one),
               std::invalid_argument);
  EXPECT_THROW(simulate_shared_pipeline(PipelineSchedule::gpipe, uniform(2), 0, 0.0, one),
               std::invalid_argument);
  EXPECT_THROW(simulate_shared_pipeline(PipelineSchedule::gpipe, {{-1.0, kB}}, 2, 0.0, one),
               std::invalid_argument);
  EXPECT_THROW(simulate_shared_pipeline(PipelineSchedule::gpipe, uniform(2), 2, 0.0,
                                        [](int) { return 0.0; }),
               std::invalid_argument);
}

TEST(SharedPipeline, BusySpeedSurvivesTheFileAndRejectsGaps) {
  Calibration cal;
  cal.device = "test";
  cal.device_kind = "cpu";
  cal.busy_speed[4] = {1.9, 1.8, 1.3, 1.0};
  const Calibration back = Calibration::from_json(cal.to_json(), "c.json");
  EXPECT_EQ(*back.busy_speed_of(4, 1), 1.9);
  EXPECT_EQ(*back.busy_speed_of(4, 3), 1.3);
  EXPECT_FALSE(back.busy_speed_of(2, 1).has_value());
  EXPECT_FALSE(back.busy_speed_of(4, 5).has_value());
  nlohmann::json j = cal.to_json();
  j["busy_speed"].erase(1);  // busy = 2 missing
  try {
    Calibration::from_json(j, "c.json");
    ADD_FAILURE() << "a gap in busy_speed was accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("every busy count 1..4"), std::string::npos) << e.what();
  }
  j = cal.to_json();
  j["busy_speed"][0]["speed"] = -1;
  EXPECT_THROW(Calibration::from_json(j, "c.json"), std::invalid_argument);
}

// A CPU pipeline whose ranks do not oversubscribe the cores runs every stage at the
// calibrated rate: the busiest stage's phases are the closed form's, and its flush is at most
// the closed form's (which prices every stage at the slowest's time; the simulation lets the
// lighter first and last stages be quicker). One that does runs its bubble's lone stages
// faster than the steady state, so it is quicker still.
TEST(SharedPipeline, TheTimeModelUsesIt) {
  const ModelConfig m = preset("gpt3-125m");
  Accelerator cpu = accelerator("h100-sxm");  // datasheet pricing; only the sharing matters
  TimeModelInputs in;
  in.device = &cpu;
  in.ranks = 4;
  in.threads = 1;
  PlanCandidate c;
  c.pp = 4;
  c.micro_batch = 1;
  c.precision = "bf16";
  const IterationPrediction own = predict_iteration(m, c, 8, in);
  in.shared_cores = 8;  // 4 single-thread ranks on 8 cores: speed 1 whatever is busy
  const IterationPrediction roomy = predict_iteration(m, c, 8, in);
  EXPECT_NEAR(roomy.time.forward, own.time.forward, 1e-12);
  EXPECT_NEAR(roomy.time.backward, own.time.backward, 1e-12);
  EXPECT_LE(roomy.time.pipeline_bubble, own.time.pipeline_bubble + 1e-12);
  EXPECT_GT(roomy.time.pipeline_bubble, 0);
  in.shared_cores = 2;  // the calibrated (all-busy) rate is the datasheet's here
  const IterationPrediction shared = predict_iteration(m, c, 8, in);
  EXPECT_LT(shared.time.iteration(), roomy.time.iteration());
  EXPECT_GT(shared.time.pipeline_bubble, 0);
  // A measured busy speed replaces the even share: all 1 is the roomy machine again.
  Calibration cal;
  cal.device = "test";
  cal.device_kind = "cpu";
  cal.busy_speed[4] = {1.0, 1.0, 1.0, 1.0};
  in.calibration = &cal;
  EXPECT_NEAR(predict_iteration(m, c, 8, in).time.iteration(), roomy.time.iteration(), 1e-12);
}

}  // namespace
}  // namespace tb
