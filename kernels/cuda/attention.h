// Causal multi-head self-attention (Backend::attention_forward / attention_backward) as
// strided-batched cuBLASLt GEMMs over the heads of one sequence at a time, with the softmax
// kernels of attention_softmax.cu between them.
#pragma once
#include <cuda_runtime.h>

#include "gemm_lt.h"
#include "scratch.h"
#include "tb/tensor.h"

namespace tb::cuda {

struct AttentionEnv {
  LtContext& lt;
  DeviceScratch& scratch;
  cudaStream_t stream;
};

void attention_forward(AttentionEnv& env, const Tensor& out, const Tensor& probs, const Tensor& qkv,
                       int n_head);
void attention_backward(AttentionEnv& env, const Tensor& dqkv, const Tensor& scratch,
                        const Tensor& dout, const Tensor& qkv, const Tensor& probs, int n_head);

}  // namespace tb::cuda
