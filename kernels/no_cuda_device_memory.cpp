// A build without the CUDA backend: no CUDA device's memory can be queried.
#include "tb/device_memory.h"

namespace tb {

std::optional<DeviceMemory> cuda_device_memory(int) { return std::nullopt; }

}  // namespace tb
