// A pipeline flush on cores its ranks share (a CPU job with more ranks' threads than cores):
// an event simulation of the schedule in which a busy stage's speed depends on how many
// stages are busy at that moment. With every stage on its own device (speed 1 whatever is
// busy) it reproduces the closed form, (m + p − 1) stage-times for uniform stages (Narayanan
// et al. 2021 §2.2); on shared cores a stage alone in the warm-up or cool-down runs faster
// than in the steady state, which the closed form with one average contention cannot say.
#pragma once
#include <functional>
#include <vector>

#include "train/pipeline_schedule.h"

namespace tb {

// One stage's work per micro-batch, in seconds at the rate with every stage busy.
struct StageMicroBatch {
  double forward_s = 0, backward_s = 0;
};

struct SharedPipelineFlush {
  double makespan_s = 0;           // first forward's start to last backward's end
  std::vector<double> forward_s;   // per stage: wall time its forwards ran
  std::vector<double> backward_s;  // per stage: wall time its backwards ran
  double busy_s(std::size_t stage) const { return forward_s[stage] + backward_s[stage]; }
};

// Stage s runs pipeline_actions(schedule, p, s, m) in order; the forward of micro-batch i on
// stage s starts when stage s − 1's has ended and `transfer_s` has passed, a backward when
// stage s + 1's has (the last stage's when its own forward has). While k stages are busy each
// progresses at speed(k) (work seconds per second; speed(p) is 1). Throws
// std::invalid_argument for no stages, m < 1, negative times or a speed that is not positive.
SharedPipelineFlush simulate_shared_pipeline(PipelineSchedule schedule,
                                             const std::vector<StageMicroBatch>& stages, int m,
                                             double transfer_s,
                                             const std::function<double(int busy)>& speed);

}  // namespace tb
