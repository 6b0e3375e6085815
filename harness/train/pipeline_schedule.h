// Pipeline schedules: the order in which one stage runs the forward and backward passes of
// the m micro-batches of an optimizer step (docs/parallel.md).
//  - gpipe (Huang et al. 2019): every forward, then every backward; a stage keeps the
//    activations of all m micro-batches.
//  - 1f1b (PipeDream-Flush, Narayanan et al. 2021, §2.2): stage s of p first runs
//    w = min(p − s − 1, m) forwards (warm-up), then alternates one forward and one backward,
//    then runs the remaining w backwards (cool-down); it keeps min(m, p − s) micro-batches.
// Both flush at the end of the step, so the bubble is the same: (p − 1) idle slots of a
// stage's m + p − 1, i.e. the fraction (p − 1)/(m + p − 1) of the step (Narayanan et al.
// 2021, §2.2: bubble time / ideal time = (p − 1)/m).
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace tb {

enum class PipelineSchedule { gpipe, one_f_one_b };

// "gpipe" | "1f1b"; std::invalid_argument naming the value otherwise.
PipelineSchedule parse_pipeline_schedule(std::string_view s);
std::string_view pipeline_schedule_name(PipelineSchedule s);

struct PipelineAction {
  enum Kind { forward, backward } kind;
  int micro_batch;
  bool operator==(const PipelineAction&) const = default;
};

// The actions of `stage` (0-based) of `stages`, m micro-batches. Throws
// std::invalid_argument for stages < 1, stage outside [0, stages) or m < 1.
std::vector<PipelineAction> pipeline_actions(PipelineSchedule s, int stages, int stage, int m);
// How many micro-batches' activations the stage holds at once: m for gpipe, min(m, p − s)
// for 1f1b; micro-batch i uses slot i mod that.
int pipeline_slots(PipelineSchedule s, int stages, int stage, int m);
// (p − 1)/(m + p − 1).
double analytic_bubble_fraction(int stages, int m);

// The layer range [begin, end) of `stage` when `layers` are split over `stages`: ⌊L/p⌋ each,
// and one more for each of the first L mod p stages (the last stage also carries the LM
// head and the loss). Throws std::invalid_argument when stages > layers.
std::pair<int, int> stage_layers(int layers, int stages, int stage);

}  // namespace tb
