// Dynamic loss scaling for fp16 training (Micikevicius et al. 2018, "Mixed Precision
// Training", §3.2): the loss is multiplied by S before backward so small activation
// gradients stay above fp16's smallest subnormal (2⁻²⁴); the weight gradients are divided by
// S before the update. S adapts: a step whose gradients overflow (inf/NaN) is skipped and S
// is multiplied by the backoff factor; after `growth_interval` consecutive good steps S is
// multiplied by the growth factor. Defaults are PyTorch's torch.amp.GradScaler (init 2¹⁶,
// growth 2, backoff 0.5, interval 2000; https://pytorch.org/docs/stable/amp.html).
#pragma once
#include <string>

namespace tb {

struct LossScalingConfig {
  bool dynamic = false;  // false: S = 1 always and no step is skipped
  double init_scale = 65536.0;
  double growth_factor = 2.0;
  double backoff_factor = 0.5;
  int growth_interval = 2000;
};

// Throws std::invalid_argument naming a bad value (init ≤ 0, growth ≤ 1, backoff outside
// (0, 1), interval < 1).
void validate(const LossScalingConfig& c);

class LossScaler {
 public:
  explicit LossScaler(LossScalingConfig config = {});

  bool dynamic() const { return config_.dynamic; }
  // The scale for the next backward.
  double scale() const { return scale_; }
  // Called once per optimizer step with whether its gradients overflowed. Returns whether
  // the step is applied (always true when not dynamic).
  bool update(bool found_inf);

  long skipped_steps() const { return skipped_; }
  long growths() const { return growths_; }
  const LossScalingConfig& config() const { return config_; }

  // The adaptive state, for training-state checkpoints (training_state.h).
  struct State {
    double scale = 1;
    int good_steps = 0;
    long skipped = 0;
    long growths = 0;
  };
  State state() const { return {scale_, good_steps_, skipped_, growths_}; }
  void restore(const State& s) {
    scale_ = s.scale;
    good_steps_ = s.good_steps;
    skipped_ = s.skipped;
    growths_ = s.growths;
  }

 private:
  LossScalingConfig config_;
  double scale_;
  int good_steps_ = 0;
  long skipped_ = 0;
  long growths_ = 0;
};

}  // namespace tb
