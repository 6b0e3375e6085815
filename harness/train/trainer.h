// The training step: data, forward, loss, backward, optimizer — each phase a Profiler range
// (host clock, NVTX) — and held-out evaluation, which opens no ranges. A step is one
// optimizer step over the global batch: `accumulation` micro-batches, each forward and
// backward (gradients accumulate), then the gradients are scaled by 1/accumulation (so they
// are those of the mean loss over the global batch) and the optimizer steps at the
// scheduled learning rate. With dynamic loss scaling (TrainingConfig::loss_scaling) the
// backward runs on the scaled loss and a step whose gradients overflow is skipped.
#pragma once
#include <array>
#include <cstdint>
#include <memory>
#include <numeric>
#include <optional>
#include <utility>
#include <vector>

#include "../data/token_source.h"
#include "../model/gpt.h"
#include "../parallel/comm.h"
#include "../parallel/grad_buckets.h"
#include "../profile/profiler.h"
#include "loss_scaler.h"
#include "lr_schedule.h"
#include "optimizer.h"
#include "parallel_context.h"
#include "pruning.h"

namespace tb {

struct StepRecord {
  double loss = 0;  // mean over the step's micro-batches
  double grad_norm = 0;
  double lr = 0;          // the learning rate the optimizer stepped at
  double loss_scale = 1;  // the scale this step's backward ran with
  bool skipped = false;   // gradients overflowed: no update (dynamic loss scaling)
  // Exclusive seconds per phase (indexed by Phase) in this step.
  std::array<double, kPhaseCount> phase_s{};
  // Parallel runs: this rank's traffic per dimension (ParallelDim order: data, tensor,
  // pipeline, world) and of the tied-embedding gradient sum; the seconds this pipeline stage
  // waited in receives (its share of the bubble, plus transfer time).
  std::array<CommStats, kParallelDimCount> comm{};
  CommStats comm_embedding;
  double pipeline_recv_s = 0;
  // Data parallelism with buckets: seconds from the first bucket's issue to the end of
  // backward (all-reduces in flight while backward ran) and the wait after it.
  double dp_overlapped_s = 0, dp_exposed_s = 0;
  double seconds(Phase p) const { return phase_s[static_cast<std::size_t>(p)]; }
  double total_s() const { return std::accumulate(phase_s.begin(), phase_s.end(), 0.0); }
};

struct TrainingConfig {
  TrainingConfig() = default;
  explicit TrainingConfig(int micro, int accumulate = 1, LrScheduleConfig lr_schedule = {})
      : micro_batch(micro), accumulation(accumulate), schedule(std::move(lr_schedule)) {}

  int micro_batch = 4;  // sequences per forward/backward
  // Micro-batches per optimizer step on each data-parallel replica (its pipeline runs them):
  // global batch = accumulation · micro_batch · dp.
  int accumulation = 1;
  LrScheduleConfig schedule;  // over optimizer steps, peak = the optimizer config's lr
  LossScalingConfig loss_scaling;
  // Count how the backward's roundings to reduced precision went (Backend::count_rounding):
  // activation gradients stored in 16 bits and output gradients rounded for the GEMMs.
  bool count_gradient_rounding = false;
  // Magnitude pruning of the blocks' weights (pruning.h): masks computed at the start of the
  // scheduled steps, gradients masked before the optimizer, weights after it (in a parallel
  // run after ZeRO's all-gather, on each rank's local shard). Its work is optimizer phase.
  std::optional<PruningConfig> pruning;
  int global_batch() const { return accumulation * micro_batch; }  // per replica
};

class Trainer {
 public:
  // Builds the optimizer from `optimizer` (make_optimizer). Each step's phases are ranges on
  // `profiler`, whose phase seconds step() takes (and so resets) at its end.
  // With `parallel` (not owned; its grid outlives the trainer) the model must be this rank's
  // shard (shard_for); the step then runs the pipeline schedule, the tensor-parallel
  // all-reduces inside the model, the data-parallel gradient reduction (buckets, or ZeRO-1's
  // reduce-scatter and all-gather) and reports losses and norms over the whole job.
  Trainer(GptModel& model, TokenSource& data, const OptimizerConfig& optimizer,
          const TrainingConfig& training, Profiler& profiler,
          const ParallelContext* parallel = nullptr);

  StepRecord step();
  // Mean next-token loss over the first `max_windows` held-out windows (all when ≤ 0); in a
  // parallel run every rank returns the same value.
  double evaluate(std::int64_t max_windows);

  GptModel& model() { return model_; }
  Optimizer& optimizer() { return *optimizer_; }
  const LossScaler& loss_scaler() const { return scaler_; }
  LossScaler& loss_scaler() { return scaler_; }
  TokenSource& data() { return data_; }
  // Whether the step runs over ranks (a ParallelContext with world > 1).
  bool parallel() const { return par_ != nullptr; }
  // Backward roundings counted so far; nullopt unless count_gradient_rounding was set and the
  // backend can count.
  std::optional<RoundingStats> gradient_rounding() const;
  Profiler& profiler() { return profiler_; }
  const TrainingConfig& training() const { return training_; }
  // The pruner, when training().pruning is set; null otherwise.
  const Pruner* pruner() const { return pruner_.get(); }
  Pruner* pruner() { return pruner_.get(); }
  // The learning rate of the next step.
  double current_lr() const;

 private:
  GptModel& model_;
  TokenSource& data_;
  std::unique_ptr<Optimizer> optimizer_;
  double peak_lr_;
  TrainingConfig training_;
  LossScaler scaler_;
  bool counting_rounding_ = false;
  RoundingStats gradient_rounding_;
  std::unique_ptr<Pruner> pruner_;
  int micro_batch_;
  Profiler& profiler_;
  std::vector<std::int32_t> windows_, inputs_, targets_;

  // Parallel runs.
  const ParallelContext* par_ = nullptr;
  std::unique_ptr<GradientBuckets> buckets_;
  Buffer zero_buf_storage_, send_buf_storage_;
  Tensor zero_buf_;                  // ZeRO: this rank's slice, for the collectives
  std::array<Tensor, 2> grad_send_;  // pipeline: gradients being sent to the stage before
  std::array<std::unique_ptr<CommRequest>, 2> grad_send_req_;
  std::vector<std::unique_ptr<CommRequest>> act_send_req_;  // per slot
  int grad_send_next_ = 0;
  double recv_s_ = 0;

  StepRecord parallel_step();
  void setup_parallel(const OptimizerConfig& optimizer);
  void recv_timed(Comm& c, const Tensor& t, int peer);
  void reduce_gradients(int m);
  double job_grad_sum_squares() const;
  double job_mean(double local_sum, double count) const;
  double pipeline_evaluate(std::int64_t count);
  // At a step's start: new masks when the pruning schedule says so (an optimizer range).
  void prune_at_step_start();
};

// Splits B windows of T+1 tokens into inputs (first T) and targets (last T).
void split_windows(const std::int32_t* windows, int B, int T, std::int32_t* inputs,
                   std::int32_t* targets);

// Mean next-token loss over `count` windows read by `fill(i, out)`, in batches of B; the
// last partial batch is padded with copies of its first window whose losses are not counted.
template <class Fill>
double mean_window_loss(GptModel& model, std::int64_t count, int B, Fill&& fill);
// The same loop, summing the losses; forward(inputs, targets) runs the batch's forward and
// returns whether this process holds its losses (a pipeline's last stage).
template <class Fill, class Forward>
double window_loss_sum(GptModel& model, std::int64_t count, int B, Fill&& fill, Forward&& forward);

}  // namespace tb

#include "trainer_inl.h"
