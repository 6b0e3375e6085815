#include "amax_slots.h"

#include "cuda_check.h"

namespace tb::cuda {

AmaxSlots::~AmaxSlots() {
  if (host_) cudaFreeHost(host_);
}

float* AmaxSlots::request(float* host_dst) {
  if (!device_) {
    device_ = allocate_(kCapacity * sizeof(float));
    TB_CUDA_CHECK(cudaMemsetAsync(device_.data(), 0, kCapacity * sizeof(float), stream_));
    void* h = nullptr;
    TB_CUDA_CHECK(cudaMallocHost(&h, kCapacity * sizeof(float)));
    host_ = static_cast<float*>(h);
  }
  if (pending_.size() == kCapacity) flush();
  const std::size_t slot = pending_.size();
  pending_.emplace_back(host_dst, slot);
  return static_cast<float*>(device_.data()) + slot;
}

void AmaxSlots::flush() {
  if (pending_.empty()) return;
  const std::size_t bytes = pending_.size() * sizeof(float);
  TB_CUDA_CHECK(cudaMemcpyAsync(host_, device_.data(), bytes, cudaMemcpyDeviceToHost, stream_));
  TB_CUDA_CHECK(cudaStreamSynchronize(stream_));
  for (const auto& [dst, slot] : pending_) *dst = host_[slot];
  TB_CUDA_CHECK(cudaMemsetAsync(device_.data(), 0, bytes, stream_));
  pending_.clear();
}

}  // namespace tb::cuda
