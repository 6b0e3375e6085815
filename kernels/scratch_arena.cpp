#include "scratch_arena.h"

#include <algorithm>
#include <stdexcept>

namespace tb {

std::size_t ScratchArena::rounded(std::size_t bytes) const {
  return (std::max<std::size_t>(bytes, 1) + align_ - 1) / align_ * align_;
}

void ScratchArena::reserve(std::size_t bytes) {
  if (total_ != 0) throw std::logic_error("ScratchArena::reserve after a take in the same call");
  if (blocks_.size() == 1 && blocks_.back().bytes() >= bytes) return;
  blocks_.clear();  // nothing taken: freed before the new block is allocated
  used_ = 0;
  if (bytes > 0) blocks_.push_back(allocate_(rounded(bytes)));
}

void* ScratchArena::take(std::size_t bytes) {
  bytes = rounded(bytes);
  if (blocks_.empty() || blocks_.back().bytes() - used_ < bytes) {
    // A new block at least twice the last, so a growing call allocates O(log) times.
    const std::size_t last = blocks_.empty() ? 0 : blocks_.back().bytes();
    blocks_.push_back(allocate_(std::max(bytes, 2 * last)));
    used_ = 0;
  }
  void* p = static_cast<unsigned char*>(blocks_.back().data()) + used_;
  used_ += bytes;
  total_ += bytes;
  return p;
}

void ScratchArena::reset() noexcept {
  if (blocks_.size() > 1) {
    const std::size_t need = total_;
    blocks_.clear();
    try {
      blocks_.push_back(allocate_(need));
    } catch (...) {
      // No memory for the merged block: the next call grows the arena again and reports the
      // out-of-memory error there, where it can be thrown.
    }
  }
  used_ = 0;
  total_ = 0;
}

std::size_t ScratchArena::capacity_bytes() const {
  std::size_t c = 0;
  for (const auto& b : blocks_) c += b.bytes();
  return c;
}

}  // namespace tb
