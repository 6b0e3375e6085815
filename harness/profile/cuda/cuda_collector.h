// The CUDA implementation behind make_gpu_collector (gpu_collector.h): CUPTI's Activity API,
// or CUDA events on the backend's stream when CUPTI cannot be enabled or is not wanted.
// Compiled only when the build has the CUDA backend. No CUDA types in this header.
#pragma once
#include <memory>

#include "profile/gpu_collector.h"

namespace tb {

std::unique_ptr<GpuPhaseCollector> make_cuda_collector(const GpuCollectorOptions& options);

}  // namespace tb
