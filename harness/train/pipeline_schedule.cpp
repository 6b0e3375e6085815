#include "pipeline_schedule.h"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace tb {

PipelineSchedule parse_pipeline_schedule(std::string_view s) {
  if (s == "gpipe") return PipelineSchedule::gpipe;
  if (s == "1f1b") return PipelineSchedule::one_f_one_b;
  throw std::invalid_argument("pp_schedule '" + std::string(s) + "' (expected gpipe or 1f1b)");
}

std::string_view pipeline_schedule_name(PipelineSchedule s) {
  return s == PipelineSchedule::gpipe ? "gpipe" : "1f1b";
}

namespace {
void check(int stages, int stage, int m) {
  if (stages < 1 || stage < 0 || stage >= stages || m < 1) {
    throw std::invalid_argument("pipeline stage " + std::to_string(stage) + " of " +
                                std::to_string(stages) + " with " + std::to_string(m) +
                                " micro-batches (expected 0 <= stage < stages, m >= 1)");
  }
}
}  // namespace

std::vector<PipelineAction> pipeline_actions(PipelineSchedule s, int stages, int stage, int m) {
  check(stages, stage, m);
  std::vector<PipelineAction> a;
  if (s == PipelineSchedule::gpipe) {
    for (int i = 0; i < m; ++i) a.push_back({PipelineAction::forward, i});
    for (int i = 0; i < m; ++i) a.push_back({PipelineAction::backward, i});
    return a;
  }
  const int warmup = std::min(stages - stage - 1, m);
  int f = 0, b = 0;
  for (; f < warmup; ++f) a.push_back({PipelineAction::forward, f});
  while (f < m) {
    a.push_back({PipelineAction::forward, f++});
    a.push_back({PipelineAction::backward, b++});
  }
  while (b < m) a.push_back({PipelineAction::backward, b++});
  return a;
}

int pipeline_slots(PipelineSchedule s, int stages, int stage, int m) {
  check(stages, stage, m);
  return s == PipelineSchedule::gpipe ? m : std::min(m, stages - stage);
}

double analytic_bubble_fraction(int stages, int m) {
  return double(stages - 1) / double(m + stages - 1);
}

std::pair<int, int> stage_layers(int layers, int stages, int stage) {
  if (stages < 1 || stages > layers || stage < 0 || stage >= stages) {
    throw std::invalid_argument("pp = " + std::to_string(stages) + " over layers = " +
                                std::to_string(layers) + " (expected 1 <= pp <= layers)");
  }
  const int base = layers / stages, extra = layers % stages;
  const int begin = stage * base + std::min(stage, extra);
  return {begin, begin + base + (stage < extra ? 1 : 0)};
}

}  // namespace tb
