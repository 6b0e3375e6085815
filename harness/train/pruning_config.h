// Pruning's configuration and schedule (pruning.h has the method and its sources): the
// pattern and schedule, their checks, and the sparsity the schedule holds at a step. No model
// types, so the scenario parser (and its fuzz target) can check them alone.
#pragma once
#include <cstdint>
#include <string>

namespace tb {

enum class PrunePattern : std::uint8_t { unstructured, n_of_m };
enum class PruneSchedule : std::uint8_t { oneshot, gradual };

struct PruningConfig {
  // Target fraction of zeros per tensor, in [0, 1). With N:M it must be 0 (meaning 1 − N/M)
  // or 1 − N/M itself.
  double sparsity = 0;
  PrunePattern pattern = PrunePattern::unstructured;
  int n = 2, m = 4;  // N:M: keep n of every m
  PruneSchedule schedule = PruneSchedule::oneshot;
  long begin_step = 0;  // oneshot: the step that prunes; gradual: t0
  long end_step = -1;   // gradual: the step that reaches the target (> begin_step)
  long frequency = 1;   // gradual: Δt, steps between mask updates (≥ 1)

  // The final sparsity: `sparsity`, or 1 − n/m for N:M.
  double target() const;
  // "unstructured" or "N:M".
  std::string pattern_name() const;
  std::string schedule_name() const;
};

// Parses "unstructured" or "N:M" (decimal N and M) into c.pattern, c.n, c.m; throws
// std::invalid_argument (one line) for anything else, or N < 1, N ≥ M, M > 65536.
void parse_prune_pattern(const std::string& text, PruningConfig& c);
// Throws std::invalid_argument (one line, naming the field, its value and what was
// expected): sparsity outside [0, 1), N:M with N < 1 or N ≥ M, a sparsity inconsistent with
// N:M, begin_step < 0, gradual without end_step > begin_step, frequency < 1.
void validate(const PruningConfig& c);

// The sparsity the schedule holds at step t (0 before begin_step).
double scheduled_sparsity(const PruningConfig& c, long step);
// ⌊s·count⌋, with a relative slack of 1e−12 so that a decimal s (0.29 is stored as
// 0.28999…) gives the count it names.
std::int64_t prune_count(double s, std::int64_t count);

}  // namespace tb
