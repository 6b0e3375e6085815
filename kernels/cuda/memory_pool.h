// Device memory of one CUDA device, cached. A released block goes to a free list of its size
// class and the next request of that class takes it, so a training step's steady state calls
// neither cudaMalloc nor cudaFree (cudaFree waits for the whole device). Blocks are reused in
// stream order only: every user of the pool enqueues its work on the backend's one stream, so
// work that still reads a released block runs before any later work that reuses it.
//
// Size classes: multiples of 512 bytes below 1 MiB, of 2 MiB above (cudaMalloc's own
// granularity for large blocks). The MemoryTracker counts the bytes asked for, not the class.
#pragma once
#include <cstddef>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace tb::cuda {

class DevicePool {
 public:
  explicit DevicePool(int device) : device_(device) {}
  ~DevicePool();
  DevicePool(const DevicePool&) = delete;
  DevicePool& operator=(const DevicePool&) = delete;

  // Throws tb::OutOfMemory (bytes asked for, bytes cudaMemGetInfo reports free) when cudaMalloc
  // fails even after every cached block is released; other CUDA errors as std::runtime_error.
  void* allocate(std::size_t bytes, std::string_view label);
  // Returns a block from allocate(bytes) to the cache. Never throws.
  void release(void* ptr, std::size_t bytes) noexcept;
  // cudaFree of every cached block.
  void release_cached() noexcept;
  std::size_t cached_bytes() const { return cached_bytes_; }

  static std::size_t size_class(std::size_t bytes);

 private:
  int device_;
  std::unordered_map<std::size_t, std::vector<void*>> free_;
  std::size_t cached_bytes_ = 0;
};

}  // namespace tb::cuda
