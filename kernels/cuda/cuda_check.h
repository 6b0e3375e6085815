// One-line errors for CUDA runtime calls: the call as written and the status's name and text,
// e.g. "cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, stream) failed:
// cudaErrorIllegalAddress (an illegal memory access was encountered)".
#pragma once
#include <cuda_runtime.h>

namespace tb::cuda {

// Throws std::runtime_error naming `call` and `status` (and clears the runtime's last error).
[[noreturn]] void throw_cuda_error(cudaError_t status, const char* call);

inline void check(cudaError_t status, const char* call) {
  if (status != cudaSuccess) throw_cuda_error(status, call);
}

// After a kernel launch: a bad launch configuration is reported here; a fault while the kernel
// runs surfaces at the next call that waits for the stream (named in that error).
void check_launch(const char* kernel);

}  // namespace tb::cuda

#define TB_CUDA_CHECK(call) ::tb::cuda::check((call), #call)
