#include "tb/memory.h"

#include <string>

namespace tb {

std::string_view memory_category_name(MemoryCategory c) {
  switch (c) {
    case MemoryCategory::parameters:
      return "parameters";
    case MemoryCategory::gradients:
      return "gradients";
    case MemoryCategory::optimizer_state:
      return "optimizer_state";
    case MemoryCategory::activations:
      return "activations";
    case MemoryCategory::workspace:
      return "workspace";
    case MemoryCategory::communication:
      return "communication";
    case MemoryCategory::emulation:
      return "emulation";
  }
  return "?";
}

OutOfMemory::OutOfMemory(std::size_t requested, std::size_t available, std::string_view label)
    : std::runtime_error("out of memory allocating " + std::to_string(requested) + " bytes for " +
                         std::string(label) + " (" + std::to_string(available) +
                         " bytes available)"),
      requested_bytes(requested),
      available_bytes(available) {}

void MemoryTracker::on_alloc(MemoryCategory c, std::size_t bytes, std::string_view label) {
  if (limit_bytes_ != 0 && current_total_ + bytes > limit_bytes_) {
    throw OutOfMemory(bytes, limit_bytes_ - current_total_, label);
  }
  const auto i = index(c);
  current_[i] += bytes;
  current_total_ += bytes;
  if (current_[i] > peak_[i]) peak_[i] = current_[i];
  if (current_total_ > peak_total_) peak_total_ = current_total_;
}

void MemoryTracker::on_free(MemoryCategory c, std::size_t bytes) {
  current_[index(c)] -= bytes;
  current_total_ -= bytes;
}

void MemoryTracker::reset_peaks() {
  peak_ = current_;
  peak_total_ = current_total_;
}

}  // namespace tb
