// The CUDA backend: the Backend operation set (tb/backend.h) on one NVIDIA GPU — GEMMs through
// cuBLASLt (fp32, tf32, bf16, fp16, and scaled FP8 on compute capability 8.9 and newer), the
// other operations as CUDA kernels computing in fp32. Device memory comes from a per-device
// caching pool and is accounted by the backend's MemoryTracker like the CPU backend's.
//
// Every operation is enqueued on one CUDA stream, in call order, and returns before the device
// has finished, except those that hand a value back to the host (copy_to_host, sum_squares,
// softmax_cross_entropy_forward, lamb_direction), which wait for it. GemmOperand::amax values
// are written at synchronize().
//
// Tensors: f32, bf16 and f16 in any mix the CPU backend takes; f64 is refused with a one-line
// std::invalid_argument (the f64 path is the CPU reference). Optimizer operations take f32.
#pragma once
#include <cstddef>
#include <memory>

#include "tb/backend.h"

namespace tb {

// True when this build compiled the CUDA backend (TB_CUDA found the toolkit).
bool cuda_backend_built();

// A backend on CUDA device `device`. memory_limit_bytes == 0: no limit beyond the device's
// memory. Throws std::runtime_error (one line) when the build has no CUDA backend, no usable
// device is present, or `device` does not exist.
std::unique_ptr<Backend> make_cuda_backend(int device = 0, std::size_t memory_limit_bytes = 0);

// The cudaStream_t (as void*) on which every operation of a backend made by make_cuda_backend
// runs, for timing with CUDA events; nullptr for any other backend.
void* cuda_stream_of(Backend& backend);

}  // namespace tb
