// A build without the CUDA backend (TB_CUDA=OFF, or no toolkit found): the device query reports
// why the GPU list is empty, and the CUDA backend's factory says the build has none.
#include <stdexcept>

#include "tb/cuda_backend.h"
#include "tb/devices.h"

namespace tb {

GpuInventory query_gpus() {
  GpuInventory inv;
  inv.note = "built without the CUDA backend (TB_CUDA=OFF or no toolkit found)";
  return inv;
}

bool cuda_backend_built() { return false; }

std::unique_ptr<Backend> make_cuda_backend(int, std::size_t) {
  throw std::runtime_error(
      "this build has no CUDA backend (rebuild with -DTB_CUDA=ON on a machine with the CUDA "
      "toolkit)");
}

void* cuda_stream_of(Backend&) { return nullptr; }

}  // namespace tb
