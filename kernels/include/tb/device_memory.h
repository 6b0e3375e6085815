// A CUDA device's free and total memory (cudaMemGetInfo), for the check `step` and `run` make
// before a model allocates (harness/plan/available_memory.h). Built from the CUDA runtime with
// the CUDA backend (kernels/cuda/device_memory.cpp); a build without it answers nullopt
// (kernels/no_cuda_device_memory.cpp).
#pragma once
#include <cstddef>
#include <optional>

namespace tb {

struct DeviceMemory {
  std::size_t free_bytes = 0;
  std::size_t total_bytes = 0;
};

// nullopt when the build has no CUDA backend, or the device cannot be queried (no driver, no
// such device). Creates the device's primary context, as the backend would.
std::optional<DeviceMemory> cuda_device_memory(int device);

}  // namespace tb
