#include "shared_pipeline.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

namespace tb {

SharedPipelineFlush simulate_shared_pipeline(PipelineSchedule schedule,
                                             const std::vector<StageMicroBatch>& stages, int m,
                                             double transfer_s,
                                             const std::function<double(int busy)>& speed) {
  const int p = static_cast<int>(stages.size());
  if (p < 1) throw std::invalid_argument("pipeline simulation: no stages (expected at least 1)");
  if (m < 1) {
    throw std::invalid_argument("pipeline simulation: " + std::to_string(m) +
                                " micro-batches (expected at least 1)");
  }
  for (const StageMicroBatch& s : stages) {
    if (!(s.forward_s >= 0) || !(s.backward_s >= 0) || !(transfer_s >= 0)) {
      throw std::invalid_argument("pipeline simulation: a negative time (expected times ≥ 0)");
    }
  }
  constexpr double kNone = -1;
  const auto P = static_cast<std::size_t>(p), M = static_cast<std::size_t>(m);
  std::vector<std::vector<PipelineAction>> actions(P);
  for (int s = 0; s < p; ++s) actions[std::size_t(s)] = pipeline_actions(schedule, p, s, m);
  // When each forward / backward of (stage, micro-batch) ended.
  std::vector<std::vector<double>> f_end(P, std::vector<double>(M, kNone)),
      b_end(P, std::vector<double>(M, kNone));
  std::vector<std::size_t> next(P, 0);
  std::vector<double> remaining(P, kNone);  // work left of the running action; kNone: idle
  SharedPipelineFlush out;
  out.forward_s.assign(P, 0);
  out.backward_s.assign(P, 0);
  double t = 0;
  // When stage s's next action may start (its input has arrived); kNone if not yet known.
  auto ready_at = [&](std::size_t s) {
    const PipelineAction& a = actions[s][next[s]];
    const auto i = static_cast<std::size_t>(a.micro_batch);
    if (a.kind == PipelineAction::forward) {
      if (s == 0) return 0.0;
      return f_end[s - 1][i] == kNone ? kNone : f_end[s - 1][i] + transfer_s;
    }
    if (s + 1 == P) return f_end[s][i];
    return b_end[s + 1][i] == kNone ? kNone : b_end[s + 1][i] + transfer_s;
  };
  for (;;) {
    bool left = false;
    double next_ready = std::numeric_limits<double>::infinity();
    for (std::size_t s = 0; s < P; ++s) {
      if (remaining[s] != kNone || next[s] == actions[s].size()) continue;
      left = true;
      const double r = ready_at(s);
      if (r == kNone) continue;
      if (r <= t) {
        const PipelineAction& a = actions[s][next[s]];
        remaining[s] =
            a.kind == PipelineAction::forward ? stages[s].forward_s : stages[s].backward_s;
      } else {
        next_ready = std::min(next_ready, r);
      }
    }
    int busy = 0;
    for (std::size_t s = 0; s < P; ++s) busy += remaining[s] != kNone;
    if (busy == 0) {
      if (!left) break;
      if (!std::isfinite(next_ready)) {
        throw std::logic_error("pipeline simulation: no stage can go on (schedule deadlock)");
      }
      t = next_ready;
      continue;
    }
    const double v = speed(busy);
    if (!(v > 0) || !std::isfinite(v)) {
      throw std::invalid_argument("pipeline simulation: speed " + std::to_string(v) + " with " +
                                  std::to_string(busy) + " stages busy (expected > 0)");
    }
    // Advance to the first end of a running action or the next arrival of an input.
    double dt = next_ready - t;
    std::size_t first = P;
    for (std::size_t s = 0; s < P; ++s) {
      if (remaining[s] != kNone && remaining[s] / v <= dt) {
        dt = remaining[s] / v;
        first = s;
      }
    }
    for (std::size_t s = 0; s < P; ++s) {
      if (remaining[s] == kNone) continue;
      const PipelineAction& a = actions[s][next[s]];
      (a.kind == PipelineAction::forward ? out.forward_s : out.backward_s)[s] += dt;
      remaining[s] = s == first ? 0.0 : std::max(0.0, remaining[s] - dt * v);
    }
    t += dt;
    for (std::size_t s = 0; s < P; ++s) {
      // The first to end, and any whose work is within rounding of done with it.
      if (remaining[s] == kNone || (s != first && remaining[s] > 1e-12 * (1 + t))) continue;
      const PipelineAction& a = actions[s][next[s]];
      (a.kind == PipelineAction::forward ? f_end : b_end)[s][std::size_t(a.micro_batch)] = t;
      remaining[s] = kNone;
      ++next[s];
    }
  }
  out.makespan_s = t;
  return out;
}

}  // namespace tb
