#include <cuda_runtime.h>

#include "tb/device_memory.h"

namespace tb {

std::optional<DeviceMemory> cuda_device_memory(int device) {
  int previous = 0;
  if (cudaGetDevice(&previous) != cudaSuccess || cudaSetDevice(device) != cudaSuccess) {
    cudaGetLastError();  // not sticky: leave no error for the next call
    return std::nullopt;
  }
  DeviceMemory m;
  const cudaError_t status = cudaMemGetInfo(&m.free_bytes, &m.total_bytes);
  cudaSetDevice(previous);
  if (status != cudaSuccess) {
    cudaGetLastError();
    return std::nullopt;
  }
  return m;
}

}  // namespace tb
