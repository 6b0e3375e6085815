// GemmOperand::amax, deferred: a GEMM operand's cast kernel raises a device slot to max |x|,
// and the value reaches the caller's host address at the next synchronize() (tb/backend.h:
// "valid after synchronize()"), read back in one copy through pinned memory. Slots start at
// zero (the bit pattern of +0.0f) and are zeroed again after each read-back.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <functional>
#include <utility>
#include <vector>

#include "tb/tensor.h"

namespace tb::cuda {

class AmaxSlots {
 public:
  using Allocate = std::function<Buffer(std::size_t bytes)>;
  AmaxSlots(Allocate allocate, cudaStream_t stream)
      : allocate_(std::move(allocate)), stream_(stream) {}
  ~AmaxSlots();
  AmaxSlots(const AmaxSlots&) = delete;
  AmaxSlots& operator=(const AmaxSlots&) = delete;

  // A zeroed device float for one amax, whose value is written to *host_dst at flush(). When
  // every slot is in use, flushes first (which waits for the stream).
  float* request(float* host_dst);
  // Waits for the stream, then writes each requested amax to its host address (in request
  // order, so a later request for the same address wins).
  void flush();

 private:
  static constexpr std::size_t kCapacity = 16384;  // a 96-layer fp8 step asks for ~2000
  Allocate allocate_;
  cudaStream_t stream_;
  Buffer device_;
  float* host_ = nullptr;  // pinned, kCapacity floats
  std::vector<std::pair<float*, std::size_t>> pending_;
};

}  // namespace tb::cuda
