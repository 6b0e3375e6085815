// Tracked device memory. Every tensor a training step touches is allocated through a
// MemoryTracker under one category, so the harness can report the peak of each category,
// turn an over-limit allocation into an `oom` result, and check the planner's memory model.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

namespace tb {

enum class MemoryCategory : std::uint8_t {
  parameters,
  gradients,
  optimizer_state,
  activations,  // tensors saved by forward for backward
  workspace,    // scratch: activation gradients, temporaries
  communication,
  // fp32 staging copies that the CPU's EMULATION of reduced precision needs (a bf16/fp16
  // tensor decoded for an fp32 kernel, a GEMM operand rounded to tf32/fp8). A device with
  // native reduced-precision kernels does not allocate it; kept apart so the other
  // categories read as they would there.
  emulation,
};
inline constexpr std::size_t kMemoryCategoryCount = 7;
std::string_view memory_category_name(MemoryCategory c);

// Thrown when an allocation would exceed the tracker's limit or the allocator fails.
class OutOfMemory : public std::runtime_error {
 public:
  OutOfMemory(std::size_t requested_bytes, std::size_t available_bytes, std::string_view label);
  std::size_t requested_bytes;
  std::size_t available_bytes;
};

// Current and peak bytes per category. Not thread-safe: allocation happens on the
// thread that drives the training step.
class MemoryTracker {
 public:
  // limit_bytes == 0 means no limit beyond what the allocator gives.
  explicit MemoryTracker(std::size_t limit_bytes = 0) : limit_bytes_(limit_bytes) {}

  void on_alloc(MemoryCategory c, std::size_t bytes, std::string_view label);
  void on_free(MemoryCategory c, std::size_t bytes);

  std::size_t current_bytes(MemoryCategory c) const { return current_[index(c)]; }
  std::size_t peak_bytes(MemoryCategory c) const { return peak_[index(c)]; }
  std::size_t current_total_bytes() const { return current_total_; }
  std::size_t peak_total_bytes() const { return peak_total_; }
  std::size_t limit_bytes() const { return limit_bytes_; }
  void set_limit_bytes(std::size_t b) { limit_bytes_ = b; }
  // Starts a new measurement window: peaks restart from the current usage.
  void reset_peaks();

 private:
  static std::size_t index(MemoryCategory c) { return static_cast<std::size_t>(c); }
  std::array<std::size_t, kMemoryCategoryCount> current_{};
  std::array<std::size_t, kMemoryCategoryCount> peak_{};
  std::size_t current_total_ = 0;
  std::size_t peak_total_ = 0;
  std::size_t limit_bytes_ = 0;
};

}  // namespace tb
