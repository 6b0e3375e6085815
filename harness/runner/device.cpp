#include "device.h"

#include "tb/cpu_backend.h"
#include "tb/cuda_backend.h"
#include "tb/devices.h"

namespace tb {

DeviceChoice choose_device(const std::string& device) {
  if (device == "cpu") return {};
  if (device != "cuda" && device != "auto") {
    throw std::invalid_argument("device '" + device + "' (expected auto, cpu or cuda)");
  }
  const GpuInventory g = query_gpus();
  std::string why;
  if (!cuda_backend_built()) {
    why = "this build has no CUDA backend (TB_CUDA found no CUDA toolkit)";
  } else if (g.devices.empty()) {
    why = g.note.empty() ? "no CUDA device" : g.note;
  }
  if (why.empty()) {
    const GpuInfo& gpu = g.devices.front();
    return {DeviceKind::cuda, gpu.name, gpu.sm_count,
            device == "auto" ? "auto: found " + gpu.name + "; ran on it" : ""};
  }
  if (device == "cuda") throw DeviceUnsupported("device cuda: " + why);
  DeviceChoice cpu;
  cpu.note = "auto: " + why + "; ran on the CPU";
  return cpu;
}

std::unique_ptr<Backend> make_backend(const DeviceChoice& d, int threads,
                                      std::size_t memory_limit_bytes, int cuda_device) {
  if (d.kind == DeviceKind::cuda) return make_cuda_backend(cuda_device, memory_limit_bytes);
  return make_cpu_backend(threads, memory_limit_bytes);
}

}  // namespace tb
