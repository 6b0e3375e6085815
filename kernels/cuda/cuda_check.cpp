#include "cuda_check.h"

#include <stdexcept>
#include <string>

namespace tb::cuda {

void throw_cuda_error(cudaError_t status, const char* call) {
  cudaGetLastError();  // a non-sticky error must not be reported again by a later call
  throw std::runtime_error(std::string(call) + " failed: " + cudaGetErrorName(status) + " (" +
                           cudaGetErrorString(status) + ")");
}

void check_launch(const char* kernel) {
  const cudaError_t status = cudaGetLastError();
  if (status != cudaSuccess) {
    throw std::runtime_error(std::string("launching ") + kernel + " failed: " +
                             cudaGetErrorName(status) + " (" + cudaGetErrorString(status) + ")");
  }
}

}  // namespace tb::cuda
