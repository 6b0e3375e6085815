#include "loss_scaler.h"

#include <cmath>
#include <stdexcept>

namespace tb {

void validate(const LossScalingConfig& c) {
  if (!(c.init_scale > 0) || !std::isfinite(c.init_scale)) {
    throw std::invalid_argument("loss_scale_init = " + std::to_string(c.init_scale) +
                                " (expected a finite value > 0)");
  }
  if (!(c.growth_factor > 1) || !std::isfinite(c.growth_factor)) {
    throw std::invalid_argument("loss scale growth factor = " + std::to_string(c.growth_factor) +
                                " (expected > 1)");
  }
  if (!(c.backoff_factor > 0 && c.backoff_factor < 1)) {
    throw std::invalid_argument("loss scale backoff factor = " + std::to_string(c.backoff_factor) +
                                " (expected in (0, 1))");
  }
  if (c.growth_interval < 1) {
    throw std::invalid_argument(
        "loss_scale_growth_interval = " + std::to_string(c.growth_interval) + " (expected >= 1)");
  }
}

LossScaler::LossScaler(LossScalingConfig config) : config_(config), scale_(1.0) {
  if (config_.dynamic) {
    validate(config_);
    scale_ = config_.init_scale;
  }
}

bool LossScaler::update(bool found_inf) {
  if (!config_.dynamic) return true;
  if (found_inf) {
    scale_ *= config_.backoff_factor;
    good_steps_ = 0;
    ++skipped_;
    return false;
  }
  if (++good_steps_ >= config_.growth_interval) {
    scale_ *= config_.growth_factor;
    good_steps_ = 0;
    ++growths_;
  }
  return true;
}

}  // namespace tb
