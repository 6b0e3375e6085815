// The capacity planner's properties (docs/planner.md): its closed forms against hand
// computation (Young, Daly, the ring all-reduce, the pipeline bubble), the memory model moving
// as the formulas say when a split or option changes, and the search never proposing what
// does not fit.
#include <gtest/gtest.h>

#include <cmath>

#include "plan/goodput.h"
#include "plan/search.h"
#include "plan/time_model.h"

namespace tb {
namespace {

TEST(PlanGoodput, YoungAndDalyClosedForms) {
  // δ = 60 s, M = 3 h: Young τ = √(2·60·10800) = 1138.42 s.
  const double d = 60, M = 10800;
  EXPECT_NEAR(young_interval_s(d, M), std::sqrt(2 * 60.0 * 10800.0), 1e-9);
  EXPECT_NEAR(young_interval_s(d, M), 1138.4199576606, 1e-6);
  // Daly: √(2δM)·[1 + ⅓√(δ/2M) + (δ/2M)/9] − δ, with δ/2M = 1/360.
  const double r = 60.0 / 21600.0;
  EXPECT_NEAR(daly_interval_s(d, M), 1138.4199576606 * (1 + std::sqrt(r) / 3 + r / 9) - 60, 1e-6);
  // δ ≥ 2M: checkpoint every M.
  EXPECT_EQ(daly_interval_s(100, 40), 40);
  // Daly's interval is Young's, shortened by about δ for small δ/M.
  EXPECT_LT(daly_interval_s(d, M), young_interval_s(d, M));
}

TEST(PlanGoodput, ExpectedWallTimeByHand) {
  GoodputInputs in;
  in.solve_s = 1e6;
  in.checkpoint_s = 60;
  in.mtbf_s = 10800;
  in.restart_s = 600;
  const Goodput g = expected_goodput(in);
  const double tau = daly_interval_s(60, 10800);
  const double lost = (600 + (tau + 60) / 2) / 10800;
  EXPECT_NEAR(g.wall_s, 1e6 * (1 + 60 / tau) / (1 - lost), 1e-6);
  EXPECT_NEAR(g.overhead_fraction, g.wall_s / 1e6 - 1, 1e-12);
  // Failures faster than a restart: no progress.
  in.mtbf_s = 500;
  EXPECT_TRUE(std::isinf(expected_goodput(in).wall_s));
}

TEST(PlanTime, RingAllReduceClosedForm) {
  const LinkTier t{100e9, 5e-6};
  // 2(n−1)α + 2(n−1)/n·S/(bw·eff): n = 8, S = 1 GB, eff 0.8.
  EXPECT_NEAR(ring_all_reduce_s(1e9, 8, t, 0.8), 14 * 5e-6 + 1.75 * 1e9 / 80e9, 1e-12);
  EXPECT_EQ(ring_all_reduce_s(1e9, 1, t, 0.8), 0);
}

ModelConfig gpt3(const std::string& name) { return preset(name); }

TimeModelInputs h100(const Accelerator& a) {
  TimeModelInputs in;
  in.device = &a;
  in.gpus_per_node = 8;
  return in;
}

TEST(PlanTime, PipelineBubbleIsNarayanansFraction) {
  const ModelConfig m = gpt3("gpt3-13b");
  const Accelerator& a = accelerator("h100-sxm");
  for (int v : {1, 2, 5}) {
    for (int mb : {4, 8, 32}) {
      PlanCandidate c;
      c.tp = 2;
      c.pp = 4;
      c.dp = 2;
      c.virtual_stages = v;
      c.micro_batch = 1;
      const int global_batch = mb * c.dp;
      const IterationPrediction p = predict_iteration(m, c, global_batch, h100(a));
      ASSERT_EQ(p.micro_batches, mb);
      const double ideal = mb * p.stage_micro_batch_s;  // m·(t_f + t_b) on the slowest stage
      EXPECT_NEAR(p.time.pipeline_bubble, (4.0 - 1) / (v * mb) * ideal, 1e-12 * ideal)
          << "v=" << v << " m=" << mb;
    }
  }
  // No pipeline, no bubble.
  PlanCandidate flat;
  flat.dp = 8;
  EXPECT_EQ(predict_iteration(m, flat, 64, h100(a)).time.pipeline_bubble, 0);
}

TEST(PlanTime, MoreGpusOfTheSameSplitTrainFaster) {
  const ModelConfig m = gpt3("gpt3-6.7b");
  const Accelerator& a = accelerator("a100-80gb");
  PlanCandidate c;
  c.tp = 8;
  c.dp = 4;
  c.micro_batch = 2;
  const double t4 = predict_iteration(m, c, 512, h100(a)).time.iteration();
  c.dp = 8;
  const double t8 = predict_iteration(m, c, 512, h100(a)).time.iteration();
  EXPECT_LT(t8, t4);
  EXPECT_GT(t8, t4 / 2);  // communication does not shrink with dp
}

TEST(PlanTime, ExpertParallelAllToAllByHand) {
  ModelConfig m = gpt3("gpt3-1.3b");
  m.moe = MoeConfig{8, 2, 1.25, 2, 0.01, 0};
  const Accelerator& a = accelerator("h100-sxm");
  PlanCandidate c;
  c.dp = 8;
  c.micro_batch = 1;
  c.expert_parallel = true;
  const IterationPrediction p = predict_iteration(m, c, 8, h100(a));
  // 12 MoE blocks; capacity ⌈1.25·2·2048/8⌉ = 640 rows per expert, 8·640 rows of 2048 bf16
  // values; dispatch and combine, forward and backward: 4 all-to-alls per block.
  const double bytes = 2.0 * 8 * 640 * 2048;
  EXPECT_NEAR(p.time.expert_parallel_comm, 4 * 12 * all_to_all_s(bytes, 8, a.intra_node, 0.8),
              1e-12);
  EXPECT_NEAR(all_to_all_s(bytes, 8, a.intra_node, 0.8), 7 * 5e-6 + 7.0 / 8 * bytes / (450e9 * 0.8),
              1e-12);
  // Replicated experts: no all-to-all, and every expert's gradient joins the all-reduce.
  c.expert_parallel = false;
  const IterationPrediction r = predict_iteration(m, c, 8, h100(a));
  EXPECT_EQ(r.time.expert_parallel_comm, 0);
}

TEST(PlanTime, SyncWaitInterpolatesTheCalibration) {
  Calibration cal;
  cal.sync_wait[8] = {{0.01, 0.001}, {0.1, 0.004}};
  EXPECT_NEAR(*cal.sync_wait_s(8, 0.01), 0.001, 1e-15);
  EXPECT_NEAR(*cal.sync_wait_s(8, 0.055), 0.0025, 1e-15);  // linear between the points
  EXPECT_NEAR(*cal.sync_wait_s(8, 0.005), 0.0005, 1e-15);  // 10% of the segment below
  EXPECT_NEAR(*cal.sync_wait_s(8, 1.0), 0.04, 1e-15);      // 4% of the segment above
  EXPECT_FALSE(cal.sync_wait_s(4, 0.01).has_value());      // another job size: not measured
  // It survives the file format.
  const Calibration back = Calibration::from_json(
      [&] {
        cal.device = "test";
        cal.device_kind = "cpu";
        return cal.to_json();
      }(),
      "test.json");
  EXPECT_NEAR(*back.sync_wait_s(8, 0.055), 0.0025, 1e-15);
}

TEST(PlanTime, SyncWaitIsPaidAtEveryExchange) {
  const ModelConfig m = gpt3("gpt3-1.3b");
  const Accelerator& a = accelerator("h100-sxm");
  Calibration cal;  // no operations: priced by the datasheet, only the wait is measured
  cal.sync_wait[8] = {{1e-4, 1e-5}, {10.0, 1.0}};  // 10% of any segment
  TimeModelInputs with = h100(a);
  with.calibration = &cal;
  with.ranks = 8;
  // Tensor parallelism: 4 all-reduces per block and micro-batch, each after 1/(4·L) of the
  // micro-batch's computation, so the waits add 10% of the computation.
  PlanCandidate tp;
  tp.tp = 8;
  tp.micro_batch = 1;
  const IterationPrediction bare = predict_iteration(m, tp, 4, h100(a));
  const IterationPrediction waited = predict_iteration(m, tp, 4, with);
  const double compute = bare.time.forward + bare.time.backward + bare.time.recompute;
  EXPECT_NEAR(waited.time.tensor_parallel_comm - bare.time.tensor_parallel_comm, 0.1 * compute,
              1e-9 * compute);
  EXPECT_EQ(waited.time.forward, bare.time.forward);
  // Data parallelism: the ranks meet once, after the iteration's computation.
  PlanCandidate dp;
  dp.dp = 8;
  dp.micro_batch = 1;
  const IterationPrediction dbare = predict_iteration(m, dp, 16, h100(a));
  const IterationPrediction dwaited = predict_iteration(m, dp, 16, with);
  const double dcompute = dbare.time.forward + dbare.time.backward + dbare.time.recompute;
  EXPECT_NEAR(dwaited.time.data_parallel_comm - dbare.time.data_parallel_comm, 0.1 * dcompute,
              1e-9 * dcompute);
  // Another job size's calibration adds nothing.
  with.ranks = 16;
  EXPECT_EQ(predict_iteration(m, tp, 4, with).time.tensor_parallel_comm,
            bare.time.tensor_parallel_comm);
}

TEST(PlanTime, ZeroCollectivesArePricedByTheirMeasurement) {
  const ModelConfig m = gpt3("gpt3-1.3b");
  const Accelerator& a = accelerator("h100-sxm");
  PlanCandidate c;
  c.dp = 8;
  c.micro_batch = 1;
  c.zero = true;
  // ZeRO-1's two collectives over the data-parallel group, of the fp32 gradients' bytes.
  const std::vector<CollectiveCall> calls = rank_collectives(m, c, 0);
  ASSERT_EQ(calls.size(), 2U);
  EXPECT_EQ(calls[0].collective, "reduce_scatter");
  EXPECT_EQ(calls[1].collective, "all_gather");
  EXPECT_EQ(calls[0].group, 8);
  EXPECT_EQ(calls[0].bytes, 4.0 * stage_parameter_counts(m, c)[0]);
  EXPECT_EQ(calls[1].bytes, calls[0].bytes);
  PlanCandidate plain = c;
  plain.zero = false;
  EXPECT_TRUE(rank_collectives(m, plain, 0).empty());

  Calibration cal;  // no operations, no waits: only the collectives are measured
  cal.collective_times = {{"reduce_scatter", 8, 8, calls[0].bytes, 0.030},
                          {"all_gather", 8, 8, calls[1].bytes, 0.007}};
  TimeModelInputs with = h100(a);
  with.calibration = &cal;
  with.ranks = 8;
  EXPECT_NEAR(predict_iteration(m, c, 16, with).time.data_parallel_comm, 0.037, 1e-15);
  // Another job size, or one of the two not measured: the all-reduce's α–β prices them.
  const double modelled = predict_iteration(m, c, 16, h100(a)).time.data_parallel_comm;
  EXPECT_NEAR(modelled,
              ring_all_reduce_s(calls[0].bytes, 8, a.intra_node, h100(a).efficiency.network),
              1e-15);
  with.ranks = 16;
  EXPECT_EQ(predict_iteration(m, c, 16, with).time.data_parallel_comm, modelled);
  with.ranks = 8;
  cal.collective_times.pop_back();
  EXPECT_EQ(predict_iteration(m, c, 16, with).time.data_parallel_comm, modelled);
}

TEST(PlanTime, CollectiveTimesSurviveTheFileFormat) {
  Calibration cal;
  cal.device = "test";
  cal.device_kind = "cpu";
  cal.collective_times = {{"reduce_scatter", 4, 2, 13031424, 0.0075}};
  const Calibration back = Calibration::from_json(cal.to_json(), "test.json");
  EXPECT_EQ(*back.collective_seconds("reduce_scatter", 4, 2, 13031424), 0.0075);
  EXPECT_FALSE(back.collective_seconds("all_gather", 4, 2, 13031424).has_value());
  EXPECT_FALSE(back.collective_seconds("reduce_scatter", 4, 2, 13031428).has_value());
  // A malformed entry is a one-line error naming it.
  nlohmann::json j = cal.to_json();
  j["collective_times"][0]["group"] = 8;  // more than the job's 4 ranks
  try {
    Calibration::from_json(j, "bad.json");
    FAIL() << "expected an error";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("bad.json: collective_times"), std::string::npos)
        << e.what();
    EXPECT_NE(std::string(e.what()).find("2 ≤ group ≤ ranks"), std::string::npos) << e.what();
  }
}

double category(const MemoryPrediction& p, MemoryCategory c) { return p.at(c); }

MemoryPrediction memory(const ModelConfig& m, const PlanCandidate& c, int global_batch) {
  return predict_peak_memory(m, to_run_config(c, m, global_batch), DeviceKind::cuda);
}

TEST(PlanMemory, FallsAsTheFormulasSay) {
  const ModelConfig m = gpt3("gpt3-13b");
  PlanCandidate c;
  c.micro_batch = 1;
  c.dp = 8;
  const MemoryPrediction base = memory(m, c, 64);
  // Tensor parallelism splits the blocks' weights (about 1/t of them) and their state.
  PlanCandidate t2 = c, t8 = c;
  t2.tp = 2;
  t8.tp = 8;
  const double p1 = category(base, MemoryCategory::parameters);
  const double p2 = category(memory(m, t2, 64), MemoryCategory::parameters);
  const double p8 = category(memory(m, t8, 64), MemoryCategory::parameters);
  EXPECT_LT(p2, 0.6 * p1);
  EXPECT_LT(p8, 0.2 * p1);
  EXPECT_LT(category(memory(m, t8, 64), MemoryCategory::activations),
            category(base, MemoryCategory::activations));
  // Pipeline stages split the layers.
  PlanCandidate pp4 = c;
  pp4.pp = 4;
  pp4.dp = 2;
  EXPECT_LT(category(memory(m, pp4, 64), MemoryCategory::parameters), 0.4 * p1);
  // ZeRO-1 divides the optimizer state by dp (Rajbhandari et al. 2020).
  PlanCandidate z = c;
  z.zero = 1;
  EXPECT_NEAR(category(memory(m, z, 64), MemoryCategory::optimizer_state),
              category(base, MemoryCategory::optimizer_state) / 8,
              0.02 * category(base, MemoryCategory::optimizer_state) / 8);
  EXPECT_EQ(category(memory(m, z, 64), MemoryCategory::parameters), p1);
  // Recomputation: none > selective > full (Korthikanti et al. 2022).
  PlanCandidate sel = c, full = c;
  sel.recompute = Recompute::selective;
  full.recompute = Recompute::full;
  const double a_none = category(base, MemoryCategory::activations);
  const double a_sel = category(memory(m, sel, 64), MemoryCategory::activations);
  const double a_full = category(memory(m, full, 64), MemoryCategory::activations);
  EXPECT_LT(a_sel, a_none);
  EXPECT_LT(a_full, a_sel);
  // Korthikanti's Eq. 2 per layer: selective removes the 5·a·s/h part of 34 + 5·a·s/h
  // (2 of its 5 bytes without dropout): the saving is the probabilities, a·s²·b values.
  const double s = m.seq_len, heads = m.n_head;
  EXPECT_NEAR(a_none - a_sel, (m.n_layer - 1) * heads * s * s * 2.0,
              0.05 * (m.n_layer - 1) * heads * s * s * 2.0);
}

PlanRequest request(const std::string& model, const std::string& gpu, int gpus) {
  PlanRequest r;
  r.model = preset(model);
  r.device = accelerator(gpu);
  r.gpus = gpus;
  r.tokens = 300e9;
  r.global_batch = 1536;
  r.mtbf_gpu_hours = 50700;
  return r;
}

TEST(PlanSearch, NeverProposesWhatDoesNotFit) {
  const PlanRequest r = request("gpt3-175b", "a100-80gb", 1024);
  const PlanResult res = plan(r);
  ASSERT_GT(res.feasible, 0);
  EXPECT_GT(res.evaluated, res.feasible);  // some splits do not fit (e.g. tp = pp = 1)
  for (const PlanEntry& e : res.ranked) {
    EXPECT_TRUE(e.fits);
    EXPECT_LE(e.memory.total(), 0.9 * 80e9);
  }
  for (std::size_t i = 1; i < res.ranked.size(); ++i) {
    EXPECT_LE(res.ranked[i - 1].expected_time_s(), res.ranked[i].expected_time_s());
  }
  // 175B cannot be trained on 8 A100s: no configuration is proposed.
  EXPECT_TRUE(plan(request("gpt3-175b", "a100-80gb", 8)).ranked.empty());
}

TEST(PlanSearch, PinnedEvaluatesOneConfiguration) {
  PlanRequest r = request("gpt3-175b", "a100-80gb", 1024);
  r.tp = 8;
  r.pp = 16;
  r.micro_batch = 1;
  r.recompute = Recompute::full;
  r.sequence_parallel = false;
  r.zero = 0;
  const PlanResult res = plan(r);
  EXPECT_EQ(res.evaluated, 1);
  ASSERT_EQ(res.ranked.size(), 1u);
  EXPECT_EQ(res.ranked[0].candidate.dp, 8);
}

TEST(PlanSearch, BadRequestsNameTheValue) {
  PlanRequest r = request("gpt3-175b", "h100-sxm", 0);
  EXPECT_THROW(plan(r), std::invalid_argument);
  r = request("gpt3-175b", "h100-sxm", 64);
  r.tp = 7;  // 96 heads
  try {
    plan(r);
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("--tp 7 does not divide heads = 96"), std::string::npos);
  }
  EXPECT_THROW(accelerator("b300"), std::invalid_argument);
}

}  // namespace
}  // namespace tb
