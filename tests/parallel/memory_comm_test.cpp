// What a parallel split costs per rank, measured against the analytic count (docs/parallel.md):
// memory by category from the tracker, and the traffic per step per parallel dimension
// counted by the communicators. Run under mpirun -np 2 (each test needs 2 ranks).
//  - Tensor parallelism: the blocks' split tensors fall as 1/tp in parameters, gradients and
//    optimizer state (replicated ones — LayerNorms, row-parallel biases, embeddings — do not).
//  - ZeRO-1: optimizer state falls as 1/dp.
//  - Pipeline: the first stage's activation peak holds min(m, p) micro-batches under 1F1B and
//    m under GPipe (each micro-batch's activations from gpt.h's formula).
//  - Traffic: DP the gradient bytes (ZeRO-1: reduce-scatter of the gradients and all-gather
//    of the parameters); TP 4 all-reduces of B·T·C per layer per micro-batch, 6 with full
//    recompute (the recomputed forward repeats its two); PP B·T·C per boundary per
//    micro-batch each way.
#include <gtest/gtest.h>

#include <memory>

#include "data/markov_source.h"
#include "model/gpt.h"
#include "numerics/numerics_util.h"
#include "parallel/grid.h"
#include "parallel/mpi_comm.h"
#include "tb/cpu_backend.h"
#include "train/trainer.h"

namespace tb::test {
namespace {

constexpr int kVocab = 64, kSeq = 16, kLayers = 4, kWidth = 32, kHeads = 4, kB = 2;

ModelConfig cfg() { return model_config(kLayers, kWidth, kHeads, kSeq, kVocab); }

struct Trained {
  std::unique_ptr<Backend> backend;
  std::unique_ptr<GptModel> model;
  StepRecord last;
};

// Two optimizer steps of a split on this rank's shard.
Trained train(ProcessGrid& g, PipelineSchedule schedule, int m, int zero = 0, int ckpt = 0) {
  Trained r;
  r.backend = make_cpu_backend();
  r.model = std::make_unique<GptModel>(*r.backend, cfg(), DType::f32,
                                       shard_for(g.shape, g.coord, kLayers), zero ? g.shape.dp : 1);
  r.model->set_checkpointing({ckpt, false});
  r.model->init_weights(3);
  MarkovSource data(kVocab, 4, 5);
  Profiler prof;
  ParallelContext ctx{&g, schedule, zero, 4096};
  OptimizerConfig o;
  o.lr = 1e-3;
  Trainer t(*r.model, data, o, TrainingConfig(kB, m), prof, &ctx);
  t.step();
  r.last = t.step();
  return r;
}

ProcessGrid grid_or_skip(GridShape s) {
  if (MpiRuntime::world_size() != s.world()) return {};
  return make_mpi_grid(s);
}

#define REQUIRE_RANKS(n)                                                            \
  if (MpiRuntime::world_size() != (n)) GTEST_SKIP() << "needs " << (n) << " ranks"; \
  static_assert(true)

std::size_t peak(const Trained& r, MemoryCategory c) { return r.backend->memory().peak_bytes(c); }

const CommStats& comm(const StepRecord& s, ParallelDim d) {
  return s.comm[static_cast<std::size_t>(d)];
}

TEST(ParallelMemory, TensorParallelSplitsTheBlocksParametersGradientsAndOptimizerState) {
  REQUIRE_RANKS(2);
  ProcessGrid g = grid_or_skip({1, 2, 1});
  const Trained r = train(g, PipelineSchedule::one_f_one_b, 1);
  // The whole model's tensors: split ones count 1/tp on each rank, replicated ones fully.
  const ParameterLayout whole = make_parameter_layout(cfg(), {});
  double split = 0, replicated = 0;
  for (const auto& t : whole.tensors) (t.tensor_parallel_split ? split : replicated) += t.numel();
  const double expect = 4.0 * (replicated + split / 2);
  EXPECT_NEAR(double(peak(r, MemoryCategory::parameters)), expect, 0.05 * expect);
  EXPECT_NEAR(double(peak(r, MemoryCategory::gradients)), expect, 0.05 * expect);
  EXPECT_NEAR(double(peak(r, MemoryCategory::optimizer_state)), 2 * expect, 0.1 * expect);
  // And the blocks' split tensors hold exactly half their elements on each rank.
  double local_split = 0;
  for (const auto& t : r.model->layout().tensors)
    local_split += t.tensor_parallel_split ? t.numel() : 0;
  EXPECT_EQ(local_split, split / 2);
}

TEST(ParallelMemory, ZeroOneShardsOptimizerStateOverDataParallelRanks) {
  REQUIRE_RANKS(2);
  ProcessGrid g = grid_or_skip({2, 1, 1});
  const Trained plain = train(g, PipelineSchedule::one_f_one_b, 1, 0);
  const Trained zero = train(g, PipelineSchedule::one_f_one_b, 1, 1);
  const double total = double(make_parameter_layout(cfg(), {}).total);
  // AdamW's two moments in f32: 8 bytes per parameter, of this rank's half under ZeRO-1.
  EXPECT_NEAR(double(peak(plain, MemoryCategory::optimizer_state)), 8 * total, 0.05 * 8 * total);
  EXPECT_NEAR(double(peak(zero, MemoryCategory::optimizer_state)), 8 * total / 2,
              0.05 * 8 * total / 2);
}

// One micro-batch's activations on a stage of L_s layers (gpt.h), f32, plus its token ids.
double stage_activation_bytes(int layers, bool last) {
  const double B = kB, T = kSeq, C = kWidth, NH = kHeads, V = kVocab;
  const double P = 16 * B * T * C + 4 * B * T + NH * B * T * T;
  const double E = B * T * C + 2 * B * T + B * T * V + B * T;
  return 4 * (B * T * C + layers * P + (last ? E : 0)) + 4 * 2 * B * T;
}

TEST(ParallelMemory, FirstStageHoldsMinMPMicroBatchesUnder1F1BAndMUnderGPipe) {
  REQUIRE_RANKS(2);
  ProcessGrid g = grid_or_skip({1, 1, 2});
  const int m = 4, p = 2;
  const Trained onefb = train(g, PipelineSchedule::one_f_one_b, m);
  const Trained gpipe = train(g, PipelineSchedule::gpipe, m);
  const bool last = g.last_stage();
  const double one = stage_activation_bytes(kLayers / p, last);
  const int held_1f1b = std::min(m, p - g.coord.pp_rank);
  EXPECT_NEAR(double(peak(onefb, MemoryCategory::activations)), held_1f1b * one,
              0.05 * held_1f1b * one)
      << "stage " << g.coord.pp_rank;
  EXPECT_NEAR(double(peak(gpipe, MemoryCategory::activations)), m * one, 0.05 * m * one)
      << "stage " << g.coord.pp_rank;
  if (g.first_stage()) {
    EXPECT_EQ(held_1f1b, std::min(m, p));
  }
}

TEST(ParallelTraffic, DataParallelMovesTheGradientBytes) {
  REQUIRE_RANKS(2);
  ProcessGrid g = grid_or_skip({2, 1, 1});
  const double grad_bytes = 4.0 * double(make_parameter_layout(cfg(), {}).total);
  const Trained plain = train(g, PipelineSchedule::one_f_one_b, 2);
  EXPECT_EQ(comm(plain.last, ParallelDim::data).bytes, grad_bytes);
  EXPECT_EQ(comm(plain.last, ParallelDim::tensor).bytes, 0);
  EXPECT_EQ(comm(plain.last, ParallelDim::pipeline).bytes, 0);
  const Trained zero = train(g, PipelineSchedule::one_f_one_b, 2, 1);
  const double padded = 4.0 * double(zero.model->params_padded().numel());
  EXPECT_EQ(comm(zero.last, ParallelDim::data).bytes, 2 * padded);  // reduce-scatter + all-gather
  EXPECT_LE(padded - grad_bytes, 4.0 * (g.shape.dp - 1));
}

TEST(ParallelTraffic, TensorParallelAllReducesFourTimesPerLayerSixWithRecompute) {
  REQUIRE_RANKS(2);
  ProcessGrid g = grid_or_skip({1, 2, 1});
  const int m = 2;
  const double btc = 4.0 * kB * kSeq * kWidth;  // fp32 partial sums
  const Trained plain = train(g, PipelineSchedule::one_f_one_b, m);
  EXPECT_EQ(comm(plain.last, ParallelDim::tensor).bytes, 4 * kLayers * m * btc);
  EXPECT_EQ(comm(plain.last, ParallelDim::tensor).calls, 4 * kLayers * m);
  const Trained recompute = train(g, PipelineSchedule::one_f_one_b, m, 0, 1);
  EXPECT_EQ(comm(recompute.last, ParallelDim::tensor).bytes, 6 * kLayers * m * btc);
}

TEST(ParallelTraffic, PipelineSendsOneActivationPerBoundaryPerMicroBatchEachWay) {
  REQUIRE_RANKS(2);
  ProcessGrid g = grid_or_skip({1, 1, 2});
  const int m = 3;
  const double btc = 4.0 * kB * kSeq * kWidth;
  for (auto sched : {PipelineSchedule::gpipe, PipelineSchedule::one_f_one_b}) {
    const Trained r = train(g, sched, m);
    // One boundary: each stage sends m activations (or gradients) and receives m.
    EXPECT_EQ(comm(r.last, ParallelDim::pipeline).bytes, 2 * m * btc)
        << pipeline_schedule_name(sched);
    // The tied embedding's gradient, summed between the first and the last stage.
    EXPECT_EQ(r.last.comm_embedding.bytes, 4.0 * kVocab * kWidth);
  }
}

}  // namespace
}  // namespace tb::test
