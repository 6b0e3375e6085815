#include "fp8_scaling.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace tb {

DelayedScaling::DelayedScaling(NumberFormat format, int history, int margin)
    : format_(format), capacity_(history > 0 ? static_cast<std::size_t>(history) : 0),
      margin_(margin) {
  if (format != NumberFormat::e4m3 && format != NumberFormat::e5m2) {
    throw std::invalid_argument("delayed scaling format " +
                                std::string(number_format_name(format)) +
                                " (expected e4m3 or e5m2)");
  }
  if (history < 1) {
    throw std::invalid_argument("fp8_amax_history = " + std::to_string(history) +
                                " (expected >= 1)");
  }
  if (margin < 0) {
    throw std::invalid_argument("fp8_margin = " + std::to_string(margin) + " (expected >= 0)");
  }
}

void DelayedScaling::restore(std::vector<float> history, float scale, float pending_amax) {
  if (history.size() > capacity_) {
    throw std::invalid_argument(
        "fp8 amax history of " + std::to_string(history.size()) +
        " entries (expected at most fp8_amax_history = " + std::to_string(capacity_) + ")");
  }
  if (!(scale > 0) || !std::isfinite(scale)) {
    throw std::invalid_argument("fp8 scale = " + std::to_string(scale) +
                                " (expected a finite value > 0)");
  }
  history_ = std::move(history);
  scale_ = scale;
  pending_ = pending_amax;
}

void DelayedScaling::commit() {
  if (pending_ < 0 && !std::isnan(pending_)) return;  // no cast since the last commit
  if (history_.size() == capacity_) history_.erase(history_.begin());
  history_.push_back(pending_);
  pending_ = -1;
  float amax = 0;
  bool finite = true;
  for (float a : history_) {
    if (!std::isfinite(a)) finite = false;
    amax = std::max(amax, a);
  }
  if (!finite || !(amax > 0)) return;  // keep the previous scale
  const float max_format = number_format_info(format_).max_finite;
  scale_ = std::ldexp(max_format / amax, -margin_);
}

}  // namespace tb
