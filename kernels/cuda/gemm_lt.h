// cuBLASLt matmuls in cuBLAS's column-major terms,
//   D(m × n) = alpha·scale_a·scale_b·op(A)·op(B) + beta·D  [+ bias(m), broadcast over columns],
// optionally strided-batched. D is also C (in place; with beta = 0 it is not read). The
// algorithm comes from cublasLtMatmulAlgoGetHeuristic once per problem description (shape,
// transposes, leading dimensions, batch strides, types, compute type, epilogue, pointer
// alignments) and is cached with its descriptors; every matmul shares one workspace.
//
// Row-major callers: a row-major (r × c) matrix with row length ld is a column-major (c × r)
// matrix with the same ld, so row-major C = A·B is column-major Cᵀ = Bᵀ·Aᵀ.
#pragma once
#include <cublasLt.h>
#include <cuda_runtime.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>

namespace tb::cuda {

[[noreturn]] void throw_cublas_error(cublasStatus_t status, const std::string& call);
inline void check(cublasStatus_t status, const char* call) {
  if (status != CUBLAS_STATUS_SUCCESS) throw_cublas_error(status, call);
}

struct LtMatrix {
  const void* ptr = nullptr;
  cudaDataType_t type = CUDA_R_32F;
  std::int64_t ld = 0;            // column-major leading dimension, in elements
  std::int64_t batch_stride = 0;  // elements between consecutive matrices of a batch
};

struct LtMatmul {
  cublasOperation_t trans_a = CUBLAS_OP_N, trans_b = CUBLAS_OP_N;
  std::int64_t m = 0, n = 0, k = 0;
  int batch = 1;
  LtMatrix a, b, d;  // A is m × k after op, B is k × n after op, D is m × n
  cublasComputeType_t compute = CUBLAS_COMPUTE_32F;
  float alpha = 1, beta = 0;
  const void* bias = nullptr;      // CUBLASLT_EPILOGUE_BIAS: m elements of d.type
  const float* a_scale = nullptr;  // device pointers (FP8 dequantisation factors)
  const float* b_scale = nullptr;
};

// "f32", "bf16", "e4m3", … for messages.
const char* lt_type_name(cudaDataType_t t);

class LtContext {
 public:
  LtContext(cudaStream_t stream, void* workspace, std::size_t workspace_bytes);
  ~LtContext();
  LtContext(const LtContext&) = delete;
  LtContext& operator=(const LtContext&) = delete;

  // Runs g; false (and nothing enqueued) when cuBLASLt has no algorithm for it — a type,
  // layout or alignment combination it does not support. Other failures throw.
  bool try_run(const LtMatmul& g);
  // As try_run, but a missing algorithm throws too; `what` names the caller in the message.
  void run(const LtMatmul& g, const char* what);

  static constexpr std::size_t kWorkspaceBytes = std::size_t{32}
                                                 << 20;  // NVIDIA's advice for Hopper

 private:
  struct Plan;
  using Key = std::array<std::int64_t, 23>;
  Plan& plan_for(const LtMatmul& g, const Key& key);

  cublasLtHandle_t handle_ = nullptr;
  cudaStream_t stream_;
  void* workspace_;
  std::size_t workspace_bytes_;
  std::map<Key, std::unique_ptr<Plan>> plans_;
  std::string last_failure_;  // why the last try_run returned false
};

}  // namespace tb::cuda
