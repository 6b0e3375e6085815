// Which device a run trains on, and the backend for it. `--device` / the `device` key:
// cpu; cuda (the first GPU, through the CUDA backend; unsupported when the build has none or
// no GPU is usable); auto (cuda when both exist, else the CPU, with a note saying why).
#pragma once
#include <memory>
#include <stdexcept>
#include <string>

#include "tb/backend.h"

namespace tb {

// The device cannot run here: the variant's status is `unsupported`, its message the reason.
struct DeviceUnsupported : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct DeviceChoice {
  DeviceKind kind = DeviceKind::cpu;
  std::string name = "cpu";  // the GPU's name for cuda
  int sm_count = 0;
  std::string note;  // why auto chose what it chose; empty otherwise
};

// Throws DeviceUnsupported (cuda without a CUDA build or a GPU) or std::invalid_argument (a
// name other than auto, cpu, cuda).
DeviceChoice choose_device(const std::string& device);

// A fresh backend on the chosen device. threads: CPU threads (0: OpenMP default);
// cuda_device: the GPU's index (a parallel run's rank picks its own).
std::unique_ptr<Backend> make_backend(const DeviceChoice& d, int threads,
                                      std::size_t memory_limit_bytes, int cuda_device = 0);

}  // namespace tb
