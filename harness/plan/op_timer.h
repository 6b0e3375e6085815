// Times one of op_costs' operations on a backend at its shape and precision, with tensors of
// the dtypes the model gives it (model/gpt.cpp, precision.h): `trainbench calibrate`'s
// measurement (docs/planner.md, "Calibration").
#pragma once
#include <memory>
#include <string>

#include "calibration.h"
#include "op_costs.h"
#include "tb/backend.h"

namespace tb {

struct OpTiming {
  double median_s = 0;
  // The calls' total time over their number: a throughput, which on cores shared by more
  // ranks' threads than there are cores is what a rank gets (a call shorter than the
  // scheduler's time slice often runs unpreempted, so the median sees the uncontended speed).
  double mean_s = 0;
  int repeats = 0;
};

// One operation made ready to run: its tensors allocated (tracked workspace) and filled, the
// call warmed up once. Throws std::invalid_argument for an operation it cannot run.
class TimedOp {
 public:
  TimedOp(Backend& be, const OpCost& op, const std::string& precision);
  ~TimedOp();
  TimedOp(const TimedOp&) = delete;
  TimedOp& operator=(const TimedOp&) = delete;
  void run();  // one call, then a synchronize
  // Calls until `min_seconds` have passed and at least `min_repeats` calls were timed (host
  // clock around each call and its synchronize); the median and the mean.
  OpTiming time(double min_seconds = 0.05, int min_repeats = 5);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Runs the operation once to warm up, then until `min_seconds` have passed and at least
// `min_repeats` calls were timed (host clock around each call and a synchronize); returns
// the median. Throws std::invalid_argument for an operation it cannot run.
OpTiming time_operation(Backend& be, const OpCost& op, const std::string& precision,
                        double min_seconds = 0.05, int min_repeats = 5);

}  // namespace tb
