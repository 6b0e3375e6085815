// Goodput under failures (docs/planner.md, "Failures and state checkpoints"): how often to
// write a training-state checkpoint, and how much longer training takes once failures,
// restarts and the checkpoints themselves are counted.
#pragma once

namespace tb {

// Young 1974 ("A first order approximation to the optimum checkpoint interval"):
// τ = √(2·δ·M), δ the time to write a checkpoint, M the mean time between failures.
double young_interval_s(double checkpoint_s, double mtbf_s);
// Daly 2006 ("A higher order estimate of the optimum checkpoint interval for restart dumps",
// FGCS 22(3), its closed form for δ < 2M): τ = √(2δM)·[1 + ⅓·√(δ/2M) + (δ/2M)/9] − δ for δ < 2M,
// else τ = M.
double daly_interval_s(double checkpoint_s, double mtbf_s);

struct GoodputInputs {
  double solve_s = 0;       // failure-free training time
  double checkpoint_s = 0;  // δ
  double mtbf_s = 0;        // M, the whole job's
  double restart_s = 0;     // R: detect, reschedule, reload the last checkpoint
};

struct Goodput {
  double interval_s = 0;         // Daly's τ
  double wall_s = 0;             // expected time to finish
  double overhead_fraction = 0;  // wall / solve − 1
};

// The expected wall time with checkpoints every τ (Daly's) and failures at rate 1/M, to first
// order (Young 1974; Daly 2006's first-order terms): every segment τ costs τ + δ, and
// each failure loses R plus on average half a segment, (τ + δ)/2. So
//   wall = solve·(1 + δ/τ) / (1 − (R + (τ + δ)/2)/M),
// infinite (no progress) when a failure is expected before a segment and restart complete.
Goodput expected_goodput(const GoodputInputs& in);

}  // namespace tb
