// A build without NCCL (no CUDA backend, or a toolkit without NCCL): harness/CMakeLists.txt
// compiles this file instead of nccl_comm.cpp, and nccl_comm.h declares nothing else.
#include "nccl_comm.h"

namespace tb {

bool nccl_available() { return false; }

}  // namespace tb
