#include "time_model.h"

#include <algorithm>
#include <cmath>
#include <optional>
#include <stdexcept>

#include "shared_pipeline.h"
#include "train/pipeline_schedule.h"

namespace tb {

namespace {

// Parameters one rank holds for `layers` blocks under tensor parallelism t (model/config.h's
// count split as Megatron splits it: QKV and fc column-parallel, proj and fc2 row-parallel,
// LayerNorms and the row-parallel biases replicated), with the embeddings on the first stage
// and the tied LM head and final LayerNorm on the last (its own copy when p > 1).
// Expert-stack parameters on a rank of `layers` blocks that expert parallelism splits over
// the data-parallel group (so they are not all-reduced: their gradients already sum every
// replica's tokens, model/gpt.h).
double split_expert_parameters(const ModelConfig& m, const PlanCandidate& c, int layers) {
  if (!c.expert_parallel || !m.moe.enabled()) return 0;
  const double h = m.d_model;
  const int moe = layers / std::max(1, m.moe.every);
  return std::floor(moe * double(m.moe.experts) / c.dp * (8 * h * h + 5 * h));
}

double rank_parameters(const ModelConfig& m, const PlanCandidate& c, int layers, bool first,
                       bool last) {
  // Whole parameters: the calibration measures the per-parameter operations at this count.
  const double h = m.d_model, t = c.tp;
  const double attention = 4 * h * h / t + 3 * h / t + h + 4 * h;  // + both LayerNorms
  const double mlp = 8 * h * h / t + 4 * h / t + h;
  const int moe = m.moe.enabled() ? layers / std::max(1, m.moe.every) : 0;
  const double experts_here =
      c.expert_parallel ? double(m.moe.experts) / c.dp : double(m.moe.experts);
  double p =
      layers * attention + (layers - moe) * mlp + moe * (experts_here * mlp + m.moe.experts * h);
  if (first) p += double(m.vocab) * h + double(m.seq_len) * h;
  if (last && !first) p += double(m.vocab) * h;
  if (last) p += 2 * h;
  return std::floor(p);
}

// Blocks on the rank of stage s: its v model chunks (stage_layers over p·v chunks).
int rank_layers(const ModelConfig& m, const PlanCandidate& c, int s) {
  int layers = 0;
  for (int j = 0; j < c.virtual_stages; ++j) {
    const auto [b, e] = stage_layers(m.n_layer, c.pp * c.virtual_stages, s + j * c.pp);
    layers += e - b;
  }
  return layers;
}

// The fp32 gradient bytes one rank of `layers` blocks reduces over the data-parallel group:
// its parameters less the expert stacks expert parallelism already splits over it.
double data_parallel_gradient_bytes(const ModelConfig& m, const PlanCandidate& c, int layers,
                                    bool first, bool last) {
  return 4.0 * (rank_parameters(m, c, layers, first, last) - split_expert_parameters(m, c, layers));
}

// The calibration's measured seconds of all of `calls` in this job, summed; nullopt when there
// are none or one was not measured (then the α–β model prices them).
std::optional<double> measured_collectives_s(const TimeModelInputs& in,
                                             const std::vector<CollectiveCall>& calls) {
  if (calls.empty() || in.calibration == nullptr) return std::nullopt;
  double sum = 0;
  for (const CollectiveCall& k : calls) {
    const auto t = in.calibration->collective_seconds(k.collective, in.ranks, k.group, k.bytes);
    if (!t) return std::nullopt;
    sum += *t;
  }
  return sum;
}

// The tier a group of n ranks spaced `stride` apart spans: inside one node when the whole
// span fits in a node (Megatron's rank order: tensor fastest, then data, then pipeline).
const LinkTier& tier(const TimeModelInputs& in, int stride, int n) {
  return std::int64_t(stride) * n <= in.gpus_per_node ? in.device->intra_node
                                                      : in.device->inter_node;
}

double point_to_point_s(double bytes, const LinkTier& t, double efficiency) {
  return t.latency_s + bytes / (t.bytes_per_s * efficiency);
}

struct Pricer {
  const TimeModelInputs& in;
  const std::string& precision;
  double contention = 1;  // compute time relative to the calibration's (shared cores)
  bool used_calibration = false, used_datasheet = false;

  double seconds(const OpCost& o) { return contention * priced(o); }

  // The calibrated mean wait at a synchronisation that follows `segment_s` of computation on
  // the job's ranks (their jitter: the slowest arrives last); 0 without a measurement.
  double sync_wait(double segment_s) const {
    if (!in.calibration || !(segment_s > 0)) return 0;
    return in.calibration->sync_wait_s(in.ranks, segment_s).value_or(0.0);
  }

  double priced(const OpCost& o) {
    if (in.calibration) {
      if (auto s = in.calibration->exact_seconds(o, precision, in.threads, in.ranks)) {
        used_calibration = true;
        return *s;
      }
      if (auto rate = in.calibration->nearest_rate(o, precision, in.threads, in.ranks)) {
        used_calibration = true;
        return (o.kind == OpKind::memory ? o.bytes : o.flops) / *rate;
      }
    }
    used_datasheet = true;
    const Accelerator& d = *in.device;
    const double mem = o.bytes / (d.memory_bytes_per_s * in.efficiency.memory);
    if (o.kind == OpKind::memory) return mem;
    const double peak = d.peak_flops(precision);
    if (!(peak > 0)) {
      throw std::invalid_argument("precision '" + precision + "' on " + d.name +
                                  " (expected a precision the device has a peak for)");
    }
    const double eff = o.kind == OpKind::gemm ? in.efficiency.gemm : in.efficiency.attention;
    return std::max(o.flops / (peak * eff), mem);  // the roofline: compute or memory bound
  }
};

struct StageTime {
  double forward = 0, backward = 0, recompute = 0, tp_comm = 0, pp_comm = 0, ep_comm = 0;
  double optimizer = 0, backward_flops = 0, flops = 0, recompute_flops = 0;
  double per_micro_batch() const {
    return forward + backward + recompute + tp_comm + pp_comm + ep_comm;
  }
};

}  // namespace

std::vector<double> stage_parameter_counts(const ModelConfig& m, const PlanCandidate& c) {
  std::vector<double> out;
  for (int s = 0; s < c.pp; ++s) {
    out.push_back(rank_parameters(m, c, rank_layers(m, c, s), s == 0, s == c.pp - 1));
  }
  return out;
}

std::vector<CollectiveCall> rank_collectives(const ModelConfig& m, const PlanCandidate& c,
                                             int stage) {
  if (c.dp < 2 || !c.zero) return {};
  const double grads =
      data_parallel_gradient_bytes(m, c, rank_layers(m, c, stage), stage == 0, stage == c.pp - 1);
  return {{"reduce_scatter", c.dp, grads}, {"all_gather", c.dp, grads}};
}

StageWork rank_work(const ModelConfig& m, const PlanCandidate& c, int stage) {
  const int layers = rank_layers(m, c, stage);
  const bool first = stage == 0, last = stage == c.pp - 1;
  const double params = rank_parameters(m, c, layers, first, last);
  // ZeRO-1 (Rajbhandari et al. 2020): each data-parallel rank updates 1/dp of them.
  const double opt_params = c.zero ? std::floor(params / c.dp) : params;
  return stage_work(m, c, layers, first, last, params, opt_params);
}

double ring_all_reduce_s(double bytes, int n, const LinkTier& t, double efficiency) {
  if (n <= 1) return 0;
  return 2.0 * (n - 1) * t.latency_s + 2.0 * (n - 1) / n * bytes / (t.bytes_per_s * efficiency);
}

double all_to_all_s(double bytes, int n, const LinkTier& t, double efficiency) {
  if (n <= 1) return 0;
  return (n - 1) * t.latency_s + double(n - 1) / n * bytes / (t.bytes_per_s * efficiency);
}

double pipeline_bubble_fraction(int p, int v, int m) {
  return double(p - 1) / (double(v) * double(m));
}

IterationPrediction predict_iteration(const ModelConfig& m, const PlanCandidate& c,
                                      int global_batch, const TimeModelInputs& in) {
  if (!in.device) throw std::invalid_argument("time model: no device description");
  if (global_batch % (c.micro_batch * c.dp) != 0) {
    throw std::invalid_argument(
        "global batch " + std::to_string(global_batch) +
        " (expected a multiple of micro_batch·dp = " + std::to_string(c.micro_batch * c.dp) + ")");
  }
  const int mb = c.micro_batches(global_batch);
  const int chunks = c.pp * c.virtual_stages;
  if (chunks > m.n_layer) {
    throw std::invalid_argument("pp·virtual_stages = " + std::to_string(chunks) + " with " +
                                std::to_string(m.n_layer) +
                                " layers (expected at most one "
                                "model chunk per layer)");
  }
  Pricer price{in, c.precision};
  // A pipeline on shared cores: its flush is simulated (below) at the calibrated all-busy
  // rate and each moment's busy count; interleaved schedules (which trainbench does not run
  // on a CPU) keep the average contention of ranks·m/(m + (p−1)/v) busy ranks.
  const bool shared_pipeline = in.shared_cores > 0 && in.ranks > 1 && c.pp > 1;
  const bool simulate_flush = shared_pipeline && c.virtual_stages == 1;
  if (shared_pipeline && !simulate_flush) {
    const double threads = std::max(1, in.threads), cores = in.shared_cores;
    const double busy = in.ranks * mb / (mb + double(c.pp - 1) / c.virtual_stages);
    price.contention =
        std::max(cores, busy * threads) / std::max(cores, double(in.ranks) * threads);
  }
  const double e = activation_bytes(c.precision);
  const double tokens_mb = double(c.micro_batch) * m.seq_len;
  // Activation exchanged per micro-batch: b·s·h values (÷ t with sequence parallelism).
  const double act_bytes = e * tokens_mb * m.d_model / (c.sequence_parallel ? c.tp : 1);
  const double tp_bytes = e * tokens_mb * m.d_model;

  IterationPrediction out;
  out.micro_batches = mb;
  StageTime slowest;
  double slowest_mb = -1;
  std::vector<StageTime> stage_times;
  for (int s = 0; s < c.pp; ++s) {
    const StageWork w = rank_work(m, c, s);
    const int layers = w.layers;
    StageTime st;
    for (const OpCost& o : w.per_micro_batch) {
      const double t = price.seconds(o) * o.count;
      st.flops += o.flops * o.count;
      if (o.phase == OpPhase::forward) st.forward += t;
      if (o.phase == OpPhase::backward) st.backward += t;
      if (o.phase == OpPhase::recompute) {
        st.recompute += t;
        st.recompute_flops += o.flops * o.count;
      }
    }
    for (const OpCost& o : w.per_iteration) st.optimizer += price.seconds(o) * o.count;
    // Tensor parallelism (Megatron, Shoeybi et al. 2019 §3): two all-reduces of b·s·h per
    // block forward and two backward (a reduce-scatter plus an all-gather each with sequence
    // parallelism, the same bytes: Korthikanti et al. 2022 §4.2.2); full recompute repeats
    // the forward's two.
    const double tp_calls = c.tp > 1 ? layers * (4 + (c.recompute == Recompute::full ? 2 : 0)) : 0;
    if (tp_calls > 0) {
      st.tp_comm =
          tp_calls * ring_all_reduce_s(tp_bytes, c.tp, tier(in, 1, c.tp), in.efficiency.network);
    }
    // Pipeline: each model chunk receives its input and sends its output gradient once per
    // micro-batch; the neighbours are tp·dp ranks apart.
    // Expert parallelism (GShard, Lepikhin et al. 2021): per MoE block and micro-batch, the
    // padded dispatch and the combine all-to-all forward and both again backward, each of the
    // experts' capacity rows, E·⌈cf·k·N/E⌉ (≤ E·N) of h values, over the data-parallel group.
    double ep_calls = 0;
    if (c.expert_parallel && m.moe.enabled()) {
      const double N = tokens_mb, E = m.moe.experts;
      const double rows = E * std::min(N, std::ceil(m.moe.capacity_factor * m.moe.top_k * N / E));
      ep_calls = 4.0 * (layers / std::max(1, m.moe.every));
      st.ep_comm = ep_calls * all_to_all_s(e * rows * m.d_model, c.dp, tier(in, c.tp, c.dp),
                                           in.efficiency.network);
    }
    // (Only priced when there is a pipeline: a single-device description has no links.)
    if (c.pp > 1) {
      st.pp_comm = 2.0 * c.virtual_stages *
                   point_to_point_s(act_bytes, tier(in, c.tp * c.dp, 2), in.efficiency.network);
    }
    // Each collective meets the group's ranks after a segment of this rank's computation;
    // with a calibration's measured synchronisation wait, the ranks' jitter adds that wait per
    // collective (docs/planner.md, "Synchronisation wait"). A pipeline's sends and receives
    // are not added: its schedule's slack absorbs the jitter (measured pipelines waited about
    // their bubble).
    const double compute_mb = st.forward + st.backward + st.recompute;
    if (const double calls = tp_calls + ep_calls; calls > 0) {
      const double wait = price.sync_wait(compute_mb / calls);
      st.tp_comm += tp_calls * wait;
      st.ep_comm += ep_calls * wait;
    }
    stage_times.push_back(st);
    if (st.per_micro_batch() > slowest_mb) {
      slowest_mb = st.per_micro_batch();
      slowest = st;
      out.slowest_stage = s;
    }
    // Data parallelism: the gradients (fp32) all-reduced in buckets issued as backward
    // produces them; all but the last bucket hide behind the last micro-batch's backward.
    // ZeRO-1 reduce-scatters them and all-gathers the updated parameters, the same bytes
    // (Rajbhandari et al. 2020, §5), as trainbench runs it: after backward and after the
    // optimizer, both exposed (Megatron's distributed optimizer can overlap them; here the
    // plan is conservative). The ranks meet after the iteration's computation (and, with
    // ZeRO-1, again after the optimizer).
    if (c.dp > 1) {
      const double grads = data_parallel_gradient_bytes(m, c, layers, w.first, w.last);
      double t_dp = ring_all_reduce_s(grads, c.dp, tier(in, c.tp, c.dp), in.efficiency.network);
      if (const auto measured = measured_collectives_s(in, rank_collectives(m, c, s))) {
        t_dp = *measured;
      }
      const double last_bucket = t_dp * std::min(1.0, in.bucket_bytes / grads);
      const double exposed =
          c.zero ? t_dp + price.sync_wait(mb * compute_mb) + price.sync_wait(st.optimizer)
                 : std::max(t_dp - st.backward, last_bucket) + price.sync_wait(mb * compute_mb);
      out.time.data_parallel_comm = std::max(out.time.data_parallel_comm, exposed);
    }
    // Pipeline: the first and the last stage hold the tied word embedding (the LM head) and
    // all-reduce its gradient once per iteration (Narayanan et al. 2021 §2; trainbench's
    // embedding group): V/t·h fp32 values between ranks (p−1)·t·dp apart.
    if (c.pp > 1 && (s == 0 || s == c.pp - 1)) {
      const double emb = 4.0 * double(m.vocab) / c.tp * m.d_model;
      out.time.pipeline_comm = std::max(
          out.time.pipeline_comm,
          ring_all_reduce_s(emb, 2, tier(in, c.tp * c.dp * (c.pp - 1), 2), in.efficiency.network));
    }
    out.time.optimizer = std::max(out.time.optimizer, st.optimizer);
  }
  out.stage_micro_batch_s = slowest_mb;
  if (simulate_flush) {
    // The flush on shared cores (plan/shared_pipeline.h): each stage's micro-batch work at
    // the all-busy rate, a busy stage's speed by how many ranks are busy at each moment —
    // measured by the calibration, else cores shared evenly among busy ranks' threads — and
    // the stage with the most busy time is the one the breakdown shows.
    const int per_stage = in.ranks / c.pp;
    const double threads = std::max(1, in.threads), cores = in.shared_cores;
    auto speed = [&](int busy_stages) {
      const int busy = busy_stages * per_stage;
      if (in.calibration) {
        if (auto v = in.calibration->busy_speed_of(in.ranks, busy)) return *v;
      }
      return std::max(cores, double(in.ranks) * threads) / std::max(cores, busy * threads);
    };
    std::vector<StageMicroBatch> work;
    for (const StageTime& st : stage_times) {
      work.push_back({st.forward + st.tp_comm / 2 + st.ep_comm / 2,
                      st.backward + st.recompute + st.tp_comm / 2 + st.ep_comm / 2});
    }
    const double transfer = slowest.pp_comm / 2;  // one way, per micro-batch
    const SharedPipelineFlush flush =
        simulate_shared_pipeline(parse_pipeline_schedule(c.schedule), work, mb, transfer, speed);
    std::size_t busiest = 0;
    for (std::size_t s = 1; s < work.size(); ++s) {
      if (flush.busy_s(s) > flush.busy_s(busiest)) busiest = s;
    }
    const StageTime& b = stage_times[busiest];
    // Its busy time split as its all-busy work is.
    const double all_busy = mb * (work[busiest].forward_s + work[busiest].backward_s);
    const double f = all_busy > 0 ? flush.busy_s(busiest) / all_busy : 1.0;
    out.slowest_stage = static_cast<int>(busiest);
    out.time.forward = f * mb * b.forward;
    out.time.backward = f * mb * b.backward;
    out.time.recompute = f * mb * b.recompute;
    out.time.tensor_parallel_comm = f * mb * b.tp_comm;
    out.time.expert_parallel_comm = f * mb * b.ep_comm;
    out.time.pipeline_comm += mb * b.pp_comm;
    out.time.pipeline_bubble =
        std::max(0.0, flush.makespan_s - flush.busy_s(busiest) - mb * b.pp_comm);
  } else {
    out.time.forward = mb * slowest.forward;
    out.time.backward = mb * slowest.backward;
    out.time.recompute = mb * slowest.recompute;
    out.time.tensor_parallel_comm = mb * slowest.tp_comm;
    out.time.pipeline_comm += mb * slowest.pp_comm;
    out.time.expert_parallel_comm = mb * slowest.ep_comm;
    // 1F1B and GPipe idle (p − 1) stage-times per iteration; interleaving divides it by v
    // (Narayanan et al. 2021, §2.2).
    out.time.pipeline_bubble =
        pipeline_bubble_fraction(c.pp, c.virtual_stages, mb) * mb * slowest_mb;
  }
  const double tokens = double(global_batch) * m.seq_len;
  out.model_flops = model_flops_per_token(m) * tokens;
  out.hardware_flops =
      out.model_flops *
      (slowest.flops > 0 ? slowest.flops / (slowest.flops - slowest.recompute_flops) : 1);
  out.priced_by = price.used_calibration && price.used_datasheet ? "calibration+datasheet"
                  : price.used_calibration                       ? "calibration"
                                                                 : "datasheet";
  return out;
}

}  // namespace tb
