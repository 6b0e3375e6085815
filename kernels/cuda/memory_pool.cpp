#include "memory_pool.h"

#include <cuda_runtime.h>

#include <string>

#include "cuda_check.h"
#include "tb/memory.h"

namespace tb::cuda {

namespace {
constexpr std::size_t kSmallGranule = 512;
constexpr std::size_t kLargeThreshold = std::size_t{1} << 20;
constexpr std::size_t kLargeGranule = std::size_t{2} << 20;

std::size_t round_up(std::size_t b, std::size_t g) { return (b + g - 1) / g * g; }
}  // namespace

std::size_t DevicePool::size_class(std::size_t bytes) {
  return bytes < kLargeThreshold ? round_up(bytes, kSmallGranule) : round_up(bytes, kLargeGranule);
}

DevicePool::~DevicePool() { release_cached(); }

void* DevicePool::allocate(std::size_t bytes, std::string_view label) {
  const std::size_t cls = size_class(bytes);
  auto it = free_.find(cls);
  if (it != free_.end() && !it->second.empty()) {
    void* p = it->second.back();
    it->second.pop_back();
    cached_bytes_ -= cls;
    return p;
  }
  void* p = nullptr;
  cudaError_t status = cudaMalloc(&p, cls);
  if (status == cudaErrorMemoryAllocation) {
    cudaGetLastError();  // not sticky: clear it, give back the cache and try once more
    release_cached();
    status = cudaMalloc(&p, cls);
  }
  if (status == cudaErrorMemoryAllocation) {
    cudaGetLastError();
    std::size_t free_bytes = 0, total_bytes = 0;
    if (cudaMemGetInfo(&free_bytes, &total_bytes) != cudaSuccess) {
      cudaGetLastError();
      free_bytes = 0;
    }
    throw OutOfMemory(bytes, free_bytes,
                      std::string(label) + " on CUDA device " + std::to_string(device_));
  }
  check(status, "cudaMalloc(&p, bytes)");
  return p;
}

void DevicePool::release(void* ptr, std::size_t bytes) noexcept {
  if (!ptr) return;
  const std::size_t cls = size_class(bytes);
  try {
    free_[cls].push_back(ptr);
    cached_bytes_ += cls;
  } catch (...) {
    cudaFree(ptr);  // no memory for the free list: hand the block back instead
  }
}

void DevicePool::release_cached() noexcept {
  for (auto& [cls, blocks] : free_) {
    for (void* p : blocks) cudaFree(p);  // errors at process exit (driver shut down) are moot
  }
  free_.clear();
  cached_bytes_ = 0;
  cudaGetLastError();
}

}  // namespace tb::cuda
