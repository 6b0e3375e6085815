// Per-call device scratch: cast operands, fp32 score chunks, reduction partials, sort buffers.
// One arena grows to the largest call's need and then stays (a call that needed several blocks
// leaves one block of their total behind), so the steady state allocates nothing. Its blocks
// are tracked as MemoryCategory::workspace. Reuse across calls is safe because every call's
// work is enqueued on the backend's one stream, in order.
#pragma once
#include <cstddef>
#include <functional>
#include <utility>
#include <vector>

#include "tb/tensor.h"

namespace tb::cuda {

class DeviceScratch {
 public:
  using Allocate = std::function<Buffer(std::size_t bytes)>;
  explicit DeviceScratch(Allocate allocate) : allocate_(std::move(allocate)) {}

  // 256-byte aligned, uninitialised, valid until the enclosing Scope ends.
  void* take(std::size_t bytes);
  template <class T>
  T* take_n(std::size_t n) {
    return static_cast<T*>(take(n * sizeof(T)));
  }
  std::size_t capacity_bytes() const;

  // Marks one backend call: what it took is released when the scope ends.
  class Scope {
   public:
    explicit Scope(DeviceScratch& s) : s_(s) {}
    ~Scope() { s_.reset(); }
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

   private:
    DeviceScratch& s_;
  };

 private:
  void reset() noexcept;
  Allocate allocate_;
  std::vector<Buffer> blocks_;
  std::size_t used_ = 0;   // in blocks_.back()
  std::size_t total_ = 0;  // taken in this call, over all blocks
};

}  // namespace tb::cuda
