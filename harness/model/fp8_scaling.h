// Per-tensor delayed scaling for FP8 casts (Micikevicius et al. 2022, "FP8 Formats for Deep
// Learning", §4.3; NVIDIA Transformer Engine's DelayedScaling recipe): a tensor is cast as
// saturate(x·s) with a scale s chosen BEFORE the cast from the amaxes (max |x|) that earlier
// casts of the same tensor recorded — so the cast needs no pass over x first:
//     s = max_format / (max over the last H recorded amaxes · 2^margin)
// (Transformer Engine: scale = fp8_max / amax / 2^margin, amax_compute_algo = "max").
// Until an amax > 0 has been recorded, and whenever the history's max is not finite, the
// previous scale is kept (it starts at 1), as Transformer Engine does.
#pragma once
#include <cstddef>
#include <vector>

#include "tb/number_format.h"

namespace tb {

class DelayedScaling {
 public:
  // format: e4m3 or e5m2; history ≥ 1; margin ≥ 0 (else std::invalid_argument).
  DelayedScaling(NumberFormat format, int history, int margin);

  NumberFormat format() const { return format_; }
  // The scale for the next cast.
  float scale() const { return scale_; }
  // Where the next cast writes its amax (Backend's GemmOperand::amax).
  float* amax_slot() { return &pending_; }
  // Records the amax the last cast wrote (if any since the last commit) and recomputes the
  // scale from the history.
  void commit();
  const std::vector<float>& history() const { return history_; }
  std::size_t history_capacity() const { return capacity_; }
  float pending_amax() const { return pending_; }
  // Restores a checkpointed state (train/training_state.h); std::invalid_argument when the
  // history is longer than this scaling's capacity or the scale is not finite and > 0.
  void restore(std::vector<float> history, float scale, float pending_amax);

 private:
  NumberFormat format_;
  std::size_t capacity_;
  int margin_;
  std::vector<float> history_;  // oldest first, at most capacity_ entries
  float pending_ = -1;          // < 0: nothing recorded since the last commit
  float scale_ = 1;
};

}  // namespace tb
