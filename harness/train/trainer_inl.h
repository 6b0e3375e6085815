#pragma once
#include <algorithm>

namespace tb {

template <class Fill, class Forward>
double window_loss_sum(GptModel& model, std::int64_t count, int B, Fill&& fill, Forward&& forward) {
  const int T = model.config().seq_len;
  const std::size_t W = static_cast<std::size_t>(T) + 1;
  std::vector<std::int32_t> windows(static_cast<std::size_t>(B) * W), inputs(windows.size()),
      targets(windows.size());
  std::vector<double> losses64(static_cast<std::size_t>(B) * static_cast<std::size_t>(T));
  std::vector<float> losses32(losses64.size());
  double total = 0;
  for (std::int64_t first = 0; first < count; first += B) {
    const int valid = static_cast<int>(std::min<std::int64_t>(B, count - first));
    for (int b = 0; b < B; ++b) {
      fill(first + std::min(b, valid - 1), windows.data() + static_cast<std::size_t>(b) * W);
    }
    split_windows(windows.data(), B, T, inputs.data(), targets.data());
    if (!forward(inputs.data(), targets.data())) continue;
    const Tensor& l = model.activations(0).losses;
    const std::size_t n = static_cast<std::size_t>(valid) * static_cast<std::size_t>(T);
    if (l.dtype == DType::f64) {
      model.backend().copy_to_host(losses64.data(), l);
      for (std::size_t i = 0; i < n; ++i) total += losses64[i];
    } else {
      model.backend().copy_to_host(losses32.data(), l);
      for (std::size_t i = 0; i < n; ++i) total += losses32[i];
    }
  }
  return total;
}

template <class Fill>
double mean_window_loss(GptModel& model, std::int64_t count, int B, Fill&& fill) {
  const double total =
      window_loss_sum(model, count, B, fill, [&](const std::int32_t* in, const std::int32_t* tg) {
        model.forward(in, tg, B);
        return true;
      });
  return total / (double(count) * model.config().seq_len);
}

}  // namespace tb
