// The linear layer's GEMMs (Backend::matmul_forward / matmul_backward) on cuBLASLt, with the
// operands entering in their GemmPrecision formats.
#pragma once
#include <cuda_runtime.h>

#include <string>

#include "amax_slots.h"
#include "gemm_lt.h"
#include "scratch.h"
#include "tb/backend.h"

namespace tb::cuda {

// What the GEMMs need from the backend.
struct GemmEnv {
  LtContext& lt;
  DeviceScratch& scratch;
  AmaxSlots& amax;
  float* fp8_inv_scales;  // 2 device floats: the FP8 GEMM's dequantisation factors for A and B
  cudaStream_t stream;
  int device;
  const std::string& device_name;
  int cc_major, cc_minor;
};

void linear_forward(GemmEnv& env, const Tensor& out, const Tensor& inp, const Tensor& weight,
                    const Tensor& bias, bool accumulate_out, const GemmPrecision& precision);
void linear_backward(GemmEnv& env, const Tensor& dinp, const Tensor& dweight, const Tensor& dbias,
                     const Tensor& dout, const Tensor& inp, const Tensor& weight,
                     const GemmPrecision& precision);

}  // namespace tb::cuda
