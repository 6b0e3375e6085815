#include "trainer.h"

#include <cstring>
#include <stdexcept>

namespace tb {

void split_windows(const std::int32_t* windows, int B, int T, std::int32_t* inputs,
                   std::int32_t* targets) {
  for (int b = 0; b < B; ++b) {
    const std::int32_t* w = windows + std::int64_t{b} * (T + 1);
    std::memcpy(inputs + std::int64_t{b} * T, w,
                sizeof(std::int32_t) * static_cast<std::size_t>(T));
    std::memcpy(targets + std::int64_t{b} * T, w + 1,
                sizeof(std::int32_t) * static_cast<std::size_t>(T));
  }
}

Trainer::Trainer(GptModel& model, TokenSource& data, const OptimizerConfig& optimizer,
                 const TrainingConfig& training, Profiler& profiler,
                 const ParallelContext* parallel)
    : model_(model),
      data_(data),
      peak_lr_(optimizer.lr),
      training_(training),
      scaler_(training.loss_scaling),
      micro_batch_(training.micro_batch),
      profiler_(profiler),
      par_(parallel && parallel->grid && parallel->grid->shape.world() > 1 ? parallel : nullptr) {
  if (par_) {
    setup_parallel(optimizer);
  } else {
    optimizer_ = make_optimizer(model, optimizer);
  }
  if (micro_batch_ <= 0) {
    throw std::invalid_argument("micro_batch = " + std::to_string(micro_batch_) +
                                " (expected > 0)");
  }
  if (training.accumulation <= 0) {
    throw std::invalid_argument("accumulation = " + std::to_string(training.accumulation) +
                                " micro-batches per step (expected > 0)");
  }
  validate(training.schedule);
  if (training.pruning) pruner_ = std::make_unique<Pruner>(model, *training.pruning);
  if (training.count_gradient_rounding) {
    counting_rounding_ = model.backend().count_rounding(false);  // supported? (stays off)
  }
  if (data.vocab() > model.config().vocab) {
    throw std::invalid_argument(
        "data vocabulary " + std::to_string(data.vocab()) +
        " exceeds the model's vocab = " + std::to_string(model.config().vocab));
  }
  const std::size_t T = static_cast<std::size_t>(model.config().seq_len);
  const auto B = static_cast<std::size_t>(micro_batch_);
  // A parallel step reads the whole global batch (every replica's micro-batches, in the
  // single-process order) and keeps its replica's.
  const std::size_t draws =
      par_ ? static_cast<std::size_t>(par_->grid->shape.dp * training.accumulation) : 1;
  windows_.resize(draws * B * (T + 1));
  inputs_.resize(B * T);
  targets_.resize(B * T);
}

std::optional<RoundingStats> Trainer::gradient_rounding() const {
  if (!counting_rounding_) return std::nullopt;
  return gradient_rounding_;
}

double Trainer::current_lr() const {
  return scheduled_lr(training_.schedule, peak_lr_, optimizer_->steps_taken());
}

void Trainer::prune_at_step_start() {
  if (!pruner_ || !pruner_->due(optimizer_->steps_taken())) return;
  const auto range = profiler_.range(Phase::optimizer);
  pruner_->begin_step(optimizer_->steps_taken());
  model_.backend().synchronize();
}

StepRecord Trainer::step() {
  if (par_) return parallel_step();
  prune_at_step_start();
  StepRecord r;
  const int T = model_.config().seq_len;
  const int m = training_.accumulation;
  // Each phase that queues backend work synchronizes before its range closes, so that work
  // is timed in its own phase and not the next. (Data loading is host-only.) With
  // accumulation every phase but the optimizer's opens once per micro-batch; the profiler
  // sums them.
  double loss_sum = 0;
  r.loss_scale = scaler_.scale();
  for (int k = 0; k < m; ++k) {
    {
      const auto range = profiler_.range(Phase::data_wait);
      data_.next_train_batch(micro_batch_, T, windows_.data());
      split_windows(windows_.data(), micro_batch_, T, inputs_.data(), targets_.data());
    }
    {
      const auto range = profiler_.range(Phase::forward);
      if (k == 0) model_.zero_grad();
      loss_sum += model_.forward(inputs_.data(), targets_.data(), micro_batch_);
      model_.backend().synchronize();
    }
    {
      const auto range = profiler_.range(Phase::backward);
      // Recompute (checkpointing) nests as its own phase; accumulates
      // loss_scale · d(micro-batch mean loss)/dθ.
      if (counting_rounding_) model_.backend().count_rounding(true);
      model_.backward(&profiler_, r.loss_scale);
      if (counting_rounding_) {
        model_.backend().count_rounding(false);
        gradient_rounding_ += model_.backend().take_rounding_stats();
      }
      model_.backend().synchronize();
    }
  }
  r.loss = loss_sum / double(m);
  {
    const auto range = profiler_.range(Phase::optimizer);
    // Σ over m micro-batch means → the gradient of the mean over the global batch.
    if (m > 1) model_.backend().scale(model_.grads(), 1.0 / double(m));
    if (pruner_) pruner_->mask_gradients();
    r.lr = current_lr();
    const OptimizerStepStats st = optimizer_->step(r.lr, r.loss_scale, scaler_.dynamic());
    r.grad_norm = st.grad_norm;
    r.skipped = !scaler_.update(st.skipped);
    if (pruner_) pruner_->mask_weights();
    model_.backend().synchronize();
  }
  r.phase_s = profiler_.take_phase_seconds();
  return r;
}

// No profiler ranges here: evaluation is not part of a training step's phases.
double Trainer::evaluate(std::int64_t max_windows) {
  const int T = model_.config().seq_len;
  std::int64_t n = data_.eval_windows(T);
  if (max_windows > 0) n = std::min(n, max_windows);
  if (n <= 0)
    throw std::invalid_argument("no held-out windows of seq+1 tokens in " + data_.describe());
  // Held-out forwards are not training: the experts' routing statistics skip them.
  struct Pause {
    GptModel& m;
    bool was;
    ~Pause() { m.count_moe_stats(was); }
  } pause{model_, model_.counting_moe_stats()};
  model_.count_moe_stats(false);
  if (par_ && par_->grid->shape.pp > 1) return pipeline_evaluate(n);
  return mean_window_loss(model_, n, micro_batch_,
                          [&](std::int64_t i, std::int32_t* out) { data_.eval_window(i, T, out); });
}

}  // namespace tb
