// The CPU backend: OpenBLAS GEMMs and OpenMP loops, in f32 (training) or f64 (reference).
#pragma once
#include <memory>

#include "tb/backend.h"

namespace tb {

// threads == 0 keeps the OpenMP default. memory_limit_bytes == 0: no limit.
std::unique_ptr<Backend> make_cpu_backend(int threads = 0, std::size_t memory_limit_bytes = 0);

}  // namespace tb

namespace tb {
// Threads the CPU kernels run on (OpenMP and OpenBLAS).
int cpu_thread_count();
// Whether this build's OpenBLAS has a bf16 GEMM (cblas_sbgemm) that the backend uses.
bool cpu_native_bf16_gemm();
}  // namespace tb
