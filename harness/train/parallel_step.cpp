// The parallel half of Trainer (trainer.h): a step under the pipeline schedule with the
// data-parallel gradient reduction, ZeRO-1, and losses and norms over the whole job.
// docs/parallel.md.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <stdexcept>
#include <string>

#include "trainer.h"

namespace tb {

ShardSpec shard_for(const GridShape& g, const GridCoord& c, int layers) {
  const auto [begin, end] = stage_layers(layers, g.pp, c.pp_rank);
  ShardSpec s;
  s.tensor_parallel_rank = c.tp_rank;
  s.tensor_parallel_size = g.tp;
  s.layer_begin = begin;
  s.layer_end = end == layers ? -1 : end;
  return s;
}

namespace {
using Clock = std::chrono::steady_clock;
}

void Trainer::setup_parallel(const OptimizerConfig& optimizer) {
  ProcessGrid& g = *par_->grid;
  const ShardSpec expect = shard_for(g.shape, g.coord, model_.config().n_layer);
  const ShardSpec& have = model_.shard();
  if (have.tensor_parallel_rank != expect.tensor_parallel_rank ||
      have.tensor_parallel_size != expect.tensor_parallel_size ||
      have.layer_begin != expect.layer_begin ||
      model_.layer_end() != (expect.layer_end < 0 ? model_.config().n_layer : expect.layer_end)) {
    throw std::invalid_argument("the model's shard does not match this rank's place in the grid");
  }
  if (par_->zero != 0 && par_->zero != 1) {
    throw std::invalid_argument("zero = " + std::to_string(par_->zero) + " (expected 0 or 1)");
  }
  if (g.shape.tp > 1) model_.set_tensor_parallel(g.tensor.get());
  const int ep = have.expert_parallel_size;
  if (ep > 1) {
    // Expert parallelism over the data-parallel group: the expert stacks are this rank's own,
    // and their gradients — every replica's tokens already summed by the all-to-alls — are
    // not reduced over the group.
    if (ep != g.shape.dp || have.expert_parallel_rank != g.coord.dp_rank) {
      throw std::invalid_argument("expert_parallel size " + std::to_string(ep) +
                                  " (expected the data-parallel size " +
                                  std::to_string(g.shape.dp) + ")");
    }
    if (par_->zero != 0) {
      throw std::invalid_argument(
          "zero = 1 with expert parallelism (expected zero = 0: ZeRO-1 shards the flat "
          "gradient buffer over replicas, whose experts differ)");
    }
    model_.set_expert_parallel(g.data.get());
  }
  if (par_->sequence_parallel) model_.set_sequence_parallel(true);
  const int m = training_.accumulation;
  model_.set_pipeline_slots(pipeline_slots(par_->schedule, g.shape.pp, g.coord.pp_rank, m));
  act_send_req_.resize(static_cast<std::size_t>(model_.pipeline_slots()));

  OptimizerPartition part;
  part.whole_tensors = g.shape.tp == 1 && par_->zero == 0;
  if (par_->zero == 1 && g.shape.dp > 1) {
    const std::int64_t padded = model_.params_padded().numel();
    if (padded % g.shape.dp != 0) {
      throw std::invalid_argument("zero = 1 needs the model built with flat_multiple = dp");
    }
    const std::int64_t slice = padded / g.shape.dp;
    part.begin = slice * g.coord.dp_rank;
    part.end = std::min(part.begin + slice, model_.layout().total);
    if (part.end < part.begin) part.end = part.begin;
    zero_buf_storage_ =
        model_.backend().allocate(static_cast<std::size_t>(slice) * dtype_size(model_.dtype()),
                                  MemoryCategory::communication, "zero-1 slice");
    zero_buf_ = Tensor(zero_buf_storage_.data(), model_.dtype(), {slice});
  }
  part.grad_sum_squares = [this] { return job_grad_sum_squares(); };
  optimizer_ = make_optimizer(model_, optimizer, part);
  if (g.shape.dp > 1 && par_->zero == 0) {
    buckets_ = std::make_unique<GradientBuckets>(
        model_.layout(), model_.grads(), *g.data, par_->bucket_bytes,
        [](const ParameterSpec& p) { return p.expert_parallel_split; });
    model_.set_grad_ready_hook(
        [this](std::int64_t b, std::int64_t e) { buckets_->mark_ready(b, e); });
  }
}

// Σ g² over the job, each parameter counted once: a replicated tensor (LayerNorms, the
// row-parallel biases, embeddings) only on tensor-parallel rank 0, the tied word embedding
// only on the first stage, and — unless ZeRO leaves each replica a different slice of the
// reduced gradients, or the tensor is an expert-parallel stack (each replica's own experts)
// — only on data-parallel rank 0.
double Trainer::job_grad_sum_squares() const {
  const ProcessGrid& g = *par_->grid;
  const bool zero = par_->zero == 1 && g.shape.dp > 1;
  double local = 0;
  {
    const std::int64_t lo = optimizer_->partition_begin(), hi = optimizer_->partition_end();
    for (const auto& spec : model_.layout().tensors) {
      if (!spec.tensor_parallel_split && g.coord.tp_rank != 0) continue;
      // Expert-parallel stacks differ per data-parallel rank: each counts its own.
      if (!zero && g.coord.dp_rank != 0 && !spec.expert_parallel_split) continue;
      if (spec.name == "wte" && !model_.first_stage()) continue;
      const std::int64_t a = std::max(lo, spec.offset),
                         b = std::min(hi, spec.offset + spec.numel());
      if (a >= b) continue;
      local += model_.backend().sum_squares(model_.grads().slice(a, {b - a}));
    }
  }
  double v = local;
  g.host->all_reduce(Tensor(&v, DType::f64, {1}));
  return v;
}

// Σ over the job's ranks of local_sum (counted on the last stage's tensor-parallel rank 0 of
// each replica), divided by count.
double Trainer::job_mean(double local_sum, double count) const {
  const ProcessGrid& g = *par_->grid;
  double v = (model_.last_stage() && g.coord.tp_rank == 0) ? local_sum : 0.0;
  g.host->all_reduce(Tensor(&v, DType::f64, {1}));
  return v / count;
}

void Trainer::recv_timed(Comm& c, const Tensor& t, int peer) {
  const auto t0 = Clock::now();
  c.recv(t, peer);
  recv_s_ += std::chrono::duration<double>(Clock::now() - t0).count();
}

// After the step's last backward: the tied embedding's two halves summed between the first
// and last stage, then the data-parallel reduction (the buckets still in flight, or ZeRO-1's
// reduce-scatter into this rank's slice). Gradients are left as sums over replicas.
void Trainer::reduce_gradients(int m) {
  (void)m;
  ProcessGrid& g = *par_->grid;
  Backend& be = model_.backend();
  if (g.embedding) {
    be.synchronize();
    g.embedding->all_reduce(model_.grad("wte"));
  }
  if (g.shape.dp > 1) {
    if (buckets_) {
      buckets_->finish();
    } else {
      be.synchronize();
      g.data->reduce_scatter(zero_buf_, model_.grads_padded());
      const std::int64_t slice = zero_buf_.numel();
      be.copy(model_.grads_padded().slice(slice * g.coord.dp_rank, {slice}), zero_buf_);
    }
  }
  // Sequence parallelism: each tensor-parallel rank normalised its own rows, so the blocks'
  // LayerNorm gradients are summed over the group (Korthikanti et al. 2022, §4.2.2). Sums
  // commute with the data-parallel ones above; under ZeRO only this rank's slice is used.
  for (const auto& [begin, end] : model_.sequence_parallel_grad_ranges()) {
    be.synchronize();
    g.tensor->all_reduce(model_.grads().slice(begin, {end - begin}));
  }
}

StepRecord Trainer::parallel_step() {
  ProcessGrid& g = *par_->grid;
  Backend& be = model_.backend();
  StepRecord r;
  const int T = model_.config().seq_len;
  const int m = training_.accumulation, B = micro_batch_;
  const int dp = g.shape.dp;
  const bool first = model_.first_stage(), last = model_.last_stage();
  const int prev = g.coord.pp_rank - 1, next = g.coord.pp_rank + 1;
  const int slots = model_.pipeline_slots();
  const std::size_t window = static_cast<std::size_t>(B) * (static_cast<std::size_t>(T) + 1);
  // Every rank holds its full local parameters here (ZeRO gathered them after the last step),
  // so each prunes its own shard.
  prune_at_step_start();
  r.loss_scale = scaler_.scale();
  recv_s_ = 0;
  {
    // The global batch in the single-process order; this replica's micro-batches are
    // dp_rank·m … dp_rank·m + m − 1.
    const auto range = profiler_.range(Phase::data_wait);
    for (int j = 0; j < dp * m; ++j) {
      data_.next_train_batch(B, T, windows_.data() + static_cast<std::size_t>(j) * window);
    }
  }
  const auto actions = pipeline_actions(par_->schedule, g.shape.pp, g.coord.pp_rank, m);
  double loss_sum = 0;
  bool zeroed = false;
  int backwards_left = m;
  for (const PipelineAction& a : actions) {
    const int slot = a.micro_batch % slots;
    const std::int32_t* w =
        windows_.data() + static_cast<std::size_t>(g.coord.dp_rank * m + a.micro_batch) * window;
    if (a.kind == PipelineAction::forward) {
      {
        const auto range = profiler_.range(Phase::data_wait);
        split_windows(w, B, T, inputs_.data(), targets_.data());
      }
      const auto range = profiler_.range(Phase::forward);
      if (!zeroed) {
        model_.zero_grad();
        zeroed = true;
      }
      // The slot's previous micro-batch was sent on before its backward; make sure the send
      // is done before its buffers are overwritten.
      if (auto& req = act_send_req_[static_cast<std::size_t>(slot)]) req->wait();
      if (!first) {
        model_.prepare(B);
        recv_timed(*g.pipeline, model_.stage_input(slot), prev);
      }
      loss_sum += model_.forward(slot, inputs_.data(), targets_.data(), B);
      be.synchronize();
      if (!last) {
        act_send_req_[static_cast<std::size_t>(slot)] =
            g.pipeline->send_async(model_.stage_output(slot), next);
      }
    } else {
      const auto range = profiler_.range(Phase::backward);
      if (auto& req = act_send_req_[static_cast<std::size_t>(slot)]) req->wait();
      if (!last) recv_timed(*g.pipeline, model_.stage_grad(), next);
      if (--backwards_left == 0 && buckets_) buckets_->arm();
      model_.backward(slot, &profiler_, r.loss_scale);
      be.synchronize();
      if (!first) {
        if (grad_send_[0].empty()) {
          const Tensor sg = model_.stage_grad();
          send_buf_storage_ = be.allocate(2 * ((sg.bytes() + 63) / 64 * 64),
                                          MemoryCategory::communication, "pipeline send");
          auto* base = static_cast<unsigned char*>(send_buf_storage_.data());
          for (int k = 0; k < 2; ++k) {
            grad_send_[static_cast<std::size_t>(k)] =
                Tensor(base + static_cast<std::size_t>(k) * ((sg.bytes() + 63) / 64 * 64), sg.dtype,
                       sg.shape);
          }
        }
        const auto k = static_cast<std::size_t>(grad_send_next_);
        grad_send_next_ ^= 1;
        if (grad_send_req_[k]) grad_send_req_[k]->wait();
        be.copy(grad_send_[k], model_.stage_grad());
        be.synchronize();
        grad_send_req_[k] = g.pipeline->send_async(grad_send_[k], prev);
      }
    }
  }
  for (auto& req : act_send_req_) {
    if (req) req->wait();
    req.reset();
  }
  for (auto& req : grad_send_req_) {
    if (req) req->wait();
    req.reset();
  }
  reduce_gradients(m);
  const bool zero = par_->zero == 1 && dp > 1;
  {
    const auto range = profiler_.range(Phase::optimizer);
    // Σ over dp·m micro-batch means → the gradient of the mean over the global batch.
    const int n = m * dp;
    if (n > 1) {
      const Tensor grads = zero ? model_.grads_padded().slice(zero_buf_.numel() * g.coord.dp_rank,
                                                              {zero_buf_.numel()})
                                : model_.grads();
      be.scale(grads, 1.0 / double(n));
    }
    if (pruner_) pruner_->mask_gradients();
    r.lr = current_lr();
    const OptimizerStepStats st = optimizer_->step(r.lr, r.loss_scale, scaler_.dynamic());
    r.grad_norm = st.grad_norm;
    r.skipped = !scaler_.update(st.skipped);
    be.synchronize();
  }
  if (zero) {
    // Every replica's updated slice, gathered into the full parameters.
    const std::int64_t slice = zero_buf_.numel();
    be.copy(zero_buf_, model_.params_padded().slice(slice * g.coord.dp_rank, {slice}));
    be.synchronize();
    g.data->all_gather(model_.params_padded(), zero_buf_);
  }
  if (pruner_ && pruner_->active()) {
    // After ZeRO's all-gather every rank holds its full local parameters: mask them all.
    const auto range = profiler_.range(Phase::optimizer);
    pruner_->mask_weights();
    be.synchronize();
  }
  r.loss = job_mean(loss_sum, double(m * dp));
  r.pipeline_recv_s = recv_s_;
  if (buckets_) {
    r.dp_overlapped_s = buckets_->overlapped_s();
    r.dp_exposed_s = buckets_->exposed_s();
  }
  r.comm[static_cast<std::size_t>(ParallelDim::data)] = g.data->take_stats();
  r.comm[static_cast<std::size_t>(ParallelDim::tensor)] = g.tensor->take_stats();
  r.comm[static_cast<std::size_t>(ParallelDim::pipeline)] = g.pipeline->take_stats();
  r.comm[static_cast<std::size_t>(ParallelDim::world)] = g.host->take_stats();
  if (g.embedding) r.comm_embedding = g.embedding->take_stats();
  r.phase_s = profiler_.take_phase_seconds();
  return r;
}

// Forward only, through the stages: each batch's activations go stage to stage, the last
// stage sums the losses of the valid windows; every rank gets the mean.
double Trainer::pipeline_evaluate(std::int64_t count) {
  ProcessGrid& g = *par_->grid;
  const int T = model_.config().seq_len, B = micro_batch_;
  const bool first = model_.first_stage(), last = model_.last_stage();
  const int prev = g.coord.pp_rank - 1, next = g.coord.pp_rank + 1;
  const double total = window_loss_sum(
      model_, count, B, [&](std::int64_t i, std::int32_t* out) { data_.eval_window(i, T, out); },
      [&](const std::int32_t* inputs, const std::int32_t* targets) {
        if (!first) {
          model_.prepare(B);
          g.pipeline->recv(model_.stage_input(0), prev);
        }
        (void)model_.forward(0, inputs, targets, B);
        model_.backend().synchronize();
        if (!last) g.pipeline->send(model_.stage_output(0), next);
        return last;
      });
  // Every replica evaluated the same windows: the mean over replicas is that value.
  return job_mean(total, double(count) * T * g.shape.dp);
}

}  // namespace tb
