#include "search.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace tb {

namespace {

std::vector<int> divisors(int n) {
  std::vector<int> d;
  for (int i = 1; i <= n; ++i) {
    if (n % i == 0) d.push_back(i);
  }
  return d;
}

template <typename T>
std::vector<T> pinned_or(const std::optional<T>& pin, std::vector<T> all) {
  if (pin) return {*pin};
  return all;
}

void check_request(const PlanRequest& r) {
  if (r.gpus < 1) {
    throw std::invalid_argument("--gpus " + std::to_string(r.gpus) + " (expected at least 1)");
  }
  if (!(r.tokens > 0)) {
    throw std::invalid_argument("--tokens " + std::to_string(r.tokens) +
                                " (expected a positive token count, e.g. 300e9)");
  }
  if (r.global_batch < 1) {
    throw std::invalid_argument("--global-batch " + std::to_string(r.global_batch) +
                                " (expected at least 1 sequence)");
  }
  if (!(r.memory_headroom > 0 && r.memory_headroom <= 1)) {
    throw std::invalid_argument("--memory-headroom " + std::to_string(r.memory_headroom) +
                                " (expected a fraction in (0, 1])");
  }
  for (const auto& [flag, pin] : {std::pair{"--dp", r.dp},
                                  {"--tp", r.tp},
                                  {"--pp", r.pp},
                                  {"--virtual-stages", r.virtual_stages},
                                  {"--micro-batch", r.micro_batch}}) {
    if (pin && *pin < 1) {
      throw std::invalid_argument(std::string(flag) + " " + std::to_string(*pin) +
                                  " (expected at least 1)");
    }
  }
  if (r.tp && r.model.n_head % *r.tp != 0) {
    throw std::invalid_argument("--tp " + std::to_string(*r.tp) +
                                " does not divide heads = " + std::to_string(r.model.n_head) +
                                " (expected a divisor of the head count)");
  }
  if (r.pp && *r.pp > r.model.n_layer) {
    throw std::invalid_argument("--pp " + std::to_string(*r.pp) +
                                " exceeds layers = " + std::to_string(r.model.n_layer) +
                                " (expected at most one stage per layer)");
  }
  const int pinned = r.dp.value_or(1) * r.tp.value_or(1) * r.pp.value_or(1);
  if (r.gpus % pinned != 0 || (r.dp && r.tp && r.pp && pinned != r.gpus)) {
    throw std::invalid_argument("--gpus " + std::to_string(r.gpus) + " with dp·tp·pp pinned to " +
                                std::to_string(pinned) +
                                " (expected dp·tp·pp = gpus, the pins dividing it)");
  }
  if (r.device.peak_flops(r.precision) <= 0) {
    throw std::invalid_argument("--precision " + r.precision + " on " + r.device.name +
                                " (expected one the device runs: it has no peak for it)");
  }
}

}  // namespace

std::vector<PlanCandidate> enumerate_candidates(const PlanRequest& r) {
  std::vector<PlanCandidate> out;
  const ModelConfig& m = r.model;
  const bool moe = m.moe.enabled();
  for (int tp : pinned_or(r.tp, divisors(r.gpus))) {
    if (r.gpus % tp != 0 || m.n_head % tp != 0) continue;
    if (!r.tp && tp > r.time.gpus_per_node) continue;  // tensor parallelism inside a node
    if (moe && tp > 1) continue;                       // experts are not split over tp
    for (int pp : pinned_or(r.pp, divisors(r.gpus / tp))) {
      if ((r.gpus / tp) % pp != 0 || pp > m.n_layer) continue;
      const int dp = r.gpus / (tp * pp);
      if (r.dp && *r.dp != dp) continue;
      if (r.global_batch % dp != 0) continue;
      for (int v : pinned_or(r.virtual_stages, std::vector<int>{1})) {
        if (pp * v > m.n_layer || (v > 1 && pp == 1)) continue;
        std::vector<int> mbs;
        for (int b = 1; b <= r.global_batch / dp; b *= 2) mbs.push_back(b);
        for (int mb : pinned_or(r.micro_batch, mbs)) {
          if (r.global_batch % (mb * dp) != 0) continue;
          if (v > 1 && (r.global_batch / (mb * dp)) % pp != 0) continue;  // Narayanan §2.2.2
          for (Recompute rc :
               pinned_or(r.recompute, std::vector<Recompute>{Recompute::none, Recompute::selective,
                                                             Recompute::full})) {
            for (bool sp : pinned_or(r.sequence_parallel, std::vector<bool>{false, true})) {
              if (sp && tp == 1) continue;
              for (int zero : pinned_or(r.zero, std::vector<int>{0, 1})) {
                if (zero && dp == 1) continue;
                PlanCandidate c;
                c.dp = dp;
                c.tp = tp;
                c.pp = pp;
                c.virtual_stages = v;
                c.micro_batch = mb;
                c.recompute = rc;
                c.sequence_parallel = sp;
                c.zero = zero;
                c.precision = r.precision;
                c.schedule = r.schedule;
                // Experts split over the data-parallel group whenever it divides them.
                c.expert_parallel = moe && zero == 0 && dp > 1 && m.moe.experts % dp == 0;
                out.push_back(c);
              }
            }
          }
        }
      }
    }
  }
  return out;
}

PlanEntry evaluate_candidate(const PlanRequest& r, const PlanCandidate& c) {
  PlanEntry e;
  e.candidate = c;
  const RunConfig run = to_run_config(c, r.model, r.global_batch);
  e.memory = predict_peak_memory(r.model, run, DeviceKind::cuda);
  e.memory_usable_bytes = r.device.memory_bytes * r.memory_headroom;
  e.fits = e.memory.total() <= e.memory_usable_bytes;
  TimeModelInputs in = r.time;
  in.device = &r.device;
  in.calibration = r.calibration;
  e.iteration = predict_iteration(r.model, c, r.global_batch, in);
  const double it = e.iteration.time.iteration();
  const double tokens_per_iteration = double(r.global_batch) * r.model.seq_len;
  e.tokens_per_s = tokens_per_iteration / it;
  const double peak = r.device.peak_flops(c.precision) * c.gpus();
  e.mfu = e.iteration.model_flops / it / peak;
  e.hfu = e.iteration.hardware_flops / it / peak;
  e.time_to_train_s = r.tokens / e.tokens_per_s;
  e.gpu_hours = e.time_to_train_s / 3600.0 * c.gpus();
  if (r.price_per_gpu_hour) e.cost = e.gpu_hours * *r.price_per_gpu_hour;
  // A full training-state checkpoint: fp32 weights and AdamW's two moments, 12 bytes per
  // parameter (the 16-bit copies are rebuilt on load), every rank writing its part at once.
  e.checkpoint_bytes = 12.0 * double(parameter_count(r.model));
  double per_gpu = r.storage_bytes_per_s_per_gpu;
  if (r.calibration && r.calibration->checkpoint_write_bytes_per_s > 0) {
    per_gpu = std::min(per_gpu, r.calibration->checkpoint_write_bytes_per_s);
  }
  e.checkpoint_write_s = e.checkpoint_bytes / (per_gpu * c.gpus());
  if (r.mtbf_gpu_hours) {
    GoodputInputs g;
    g.solve_s = e.time_to_train_s;
    g.checkpoint_s = e.checkpoint_write_s;
    g.mtbf_s = *r.mtbf_gpu_hours * 3600.0 / c.gpus();
    g.restart_s = r.restart_s;
    e.goodput = expected_goodput(g);
  }
  return e;
}

PlanResult plan(const PlanRequest& r) {
  check_request(r);
  PlanResult result;
  for (const PlanCandidate& c : enumerate_candidates(r)) {
    ++result.evaluated;
    PlanEntry e = evaluate_candidate(r, c);
    if (!e.fits) continue;
    ++result.feasible;
    result.ranked.push_back(std::move(e));
  }
  std::stable_sort(result.ranked.begin(), result.ranked.end(),
                   [](const PlanEntry& a, const PlanEntry& b) {
                     return a.expected_time_s() < b.expected_time_s();
                   });
  if (r.keep > 0 && result.ranked.size() > r.keep) result.ranked.resize(r.keep);
  return result;
}

}  // namespace tb
