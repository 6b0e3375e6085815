// Per-call scratch for a backend: one arena that grows to the largest call's need and then
// stays (a call that needed several blocks leaves one block of their total behind; a call that
// reserves its need up front grows it in place of the old block), so the steady state
// allocates nothing. Blocks come from the backend's tracked allocator under the
// category its Allocate function chooses. Used by the CPU backend (fp32 stand-ins of 16-bit
// tensors) and the CUDA backend (cast operands, score chunks, partials; safe to reuse across
// calls because every call's work is enqueued on one stream, in order).
#pragma once
#include <cstddef>
#include <functional>
#include <utility>
#include <vector>

#include "tb/tensor.h"

namespace tb {

class ScratchArena {
 public:
  using Allocate = std::function<Buffer(std::size_t bytes)>;
  // alignment: of every pointer take() returns (a power of two).
  ScratchArena(Allocate allocate, std::size_t alignment)
      : allocate_(std::move(allocate)), align_(alignment) {}

  // Aligned, uninitialised, valid until reset() (the end of the enclosing Scope).
  void* take(std::size_t bytes);
  template <class T>
  T* take_n(std::size_t n) {
    return static_cast<T*>(take(n * sizeof(T)));
  }
  // Before a call takes anything: makes the arena one block of at least `bytes` — freeing the
  // old block first, so growing never holds two — which the call's takes then fit as long as
  // they total at most `bytes` after rounding (rounded()). An arena whose every call reserves
  // its need peaks at the largest call's need exactly.
  void reserve(std::size_t bytes);
  // What a take of `bytes` uses of a block: rounded up to the alignment (1 byte at least).
  std::size_t rounded(std::size_t bytes) const;
  // Ends a call: everything taken is released.
  void reset() noexcept;
  std::size_t capacity_bytes() const;

  // Marks one backend call: what it took is released when the scope ends.
  class Scope {
   public:
    explicit Scope(ScratchArena& s) : s_(s) {}
    ~Scope() { s_.reset(); }
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

   private:
    ScratchArena& s_;
  };

 private:
  Allocate allocate_;
  std::size_t align_;
  std::vector<Buffer> blocks_;
  std::size_t used_ = 0;   // in blocks_.back()
  std::size_t total_ = 0;  // taken in this call, over all blocks
};

}  // namespace tb
