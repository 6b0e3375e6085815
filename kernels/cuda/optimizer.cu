// Optimizer updates on fp32 master weights and fp32 state, with the CPU backend's formulas
// (kernels/cpu/optimizer.cpp) term for term. LAMB's two norms are summed in double per fixed
// chunk and the chunks in order, as reduce.cu does, so they are deterministic.
#include "device_math.cuh"

namespace tb::cuda {

namespace {

constexpr int kBlock = 256;
constexpr I64 kChunk = I64{kBlock} * 64;
constexpr int kFinishBlock = 1024;

// AdamW (Loshchilov & Hutter 2019, Alg. 2) with Adam's bias correction (Kingma & Ba 2015):
//   g = grad_scale·∇;  m = β1·m + (1−β1)·g;  v = β2·v + (1−β2)·g²
//   p −= lr · ( m/(1−β1ᵗ) / (√(v/(1−β2ᵗ)) + ε) + wd·p )
__global__ void adamw_kernel(float* params, const float* grads, float* m, float* v, I64 n,
                             AdamWScalars s) {
  for (I64 i = thread_index(); i < n; i += grid_threads()) {
    const float g = grads[i] * s.grad_scale;
    const float mi = s.beta1 * m[i] + (1.0f - s.beta1) * g;
    const float vi = s.beta2 * v[i] + (1.0f - s.beta2) * g * g;
    m[i] = mi;
    v[i] = vi;
    const float p = params[i];
    params[i] = p - s.lr * ((mi * s.bias_correction1) / (sqrtf(vi * s.bias_correction2) + s.eps) +
                            s.weight_decay * p);
  }
}

// SGD with momentum, PyTorch's semantics (tb/backend.h, SgdParams):
//   g = grad_scale·∇ + wd·p;  v = μ·v + g;  p −= lr·v      (no buffer: p −= lr·g)
__global__ void sgd_kernel(float* params, const float* grads, float* momentum_buf, I64 n,
                           SgdScalars s) {
  for (I64 i = thread_index(); i < n; i += grid_threads()) {
    const float p = params[i];
    const float g = grads[i] * s.grad_scale + s.weight_decay * p;
    if (momentum_buf) {
      const float vi = s.momentum * momentum_buf[i] + g;
      momentum_buf[i] = vi;
      params[i] = p - s.lr * vi;
    } else {
      params[i] = p - s.lr * g;
    }
  }
}

// LAMB's per-element half (You et al. 2019, Alg. 2):
//   g = grad_scale·∇;  m = β1·m + (1−β1)·g;  v = β2·v + (1−β2)·g²
//   r = m/(1−β1ᵗ) / (√(v/(1−β2ᵗ)) + ε) + λ·p;   partial ‖p‖², ‖r‖² per chunk
__global__ void lamb_kernel(float* update, const float* params, const float* grads, float* m,
                            float* v, I64 n, LambScalars s, double* partial_p, double* partial_r) {
  __shared__ double shared[32];
  for (I64 k = blockIdx.x; k * kChunk < n; k += gridDim.x) {
    const I64 end = min(n, (k + 1) * kChunk);
    double sp = 0, sr = 0;
    for (I64 i = k * kChunk + threadIdx.x; i < end; i += blockDim.x) {
      const float g = grads[i] * s.grad_scale;
      const float mi = s.beta1 * m[i] + s.one_minus_beta1 * g;
      const float vi = s.beta2 * v[i] + s.one_minus_beta2 * g * g;
      m[i] = mi;
      v[i] = vi;
      const float p = params[i];
      const float r =
          (mi * s.bias_correction1) / (sqrtf(vi * s.bias_correction2) + s.eps) + s.weight_decay * p;
      update[i] = r;
      sp += static_cast<double>(p) * p;
      sr += static_cast<double>(r) * r;
    }
    sp = block_sum(sp, shared);
    sr = block_sum(sr, shared);
    if (threadIdx.x == 0) {
      partial_p[k] = sp;
      partial_r[k] = sr;
    }
  }
}

__global__ void lamb_finish_kernel(const double* partial_p, const double* partial_r, I64 chunks,
                                   double* result) {
  __shared__ double shared[32];
  double sp = 0, sr = 0;
  for (I64 k = threadIdx.x; k < chunks; k += blockDim.x) {
    sp += partial_p[k];
    sr += partial_r[k];
  }
  sp = block_sum(sp, shared);
  sr = block_sum(sr, shared);
  if (threadIdx.x == 0) {
    result[0] = sp;
    result[1] = sr;
  }
}

I64 chunk_count(I64 n) { return (n + kChunk - 1) / kChunk; }

}  // namespace

void adamw_update(float* params, const float* grads, float* m, float* v, I64 n,
                  const AdamWScalars& s, cudaStream_t stream) {
  if (n <= 0) return;
  adamw_kernel<<<grid_blocks(n, kBlock), kBlock, 0, stream>>>(params, grads, m, v, n, s);
  check_launch("adamw_kernel");
}

void sgd_update(float* params, const float* grads, float* momentum_buf, I64 n, const SgdScalars& s,
                cudaStream_t stream) {
  if (n <= 0) return;
  sgd_kernel<<<grid_blocks(n, kBlock), kBlock, 0, stream>>>(params, grads, momentum_buf, n, s);
  check_launch("sgd_kernel");
}

std::size_t lamb_scratch_bytes(I64 n) {
  return 2 * static_cast<std::size_t>(std::max<I64>(1, chunk_count(n))) * sizeof(double);
}

void lamb_direction(float* update, const float* params, const float* grads, float* m, float* v,
                    I64 n, const LambScalars& s, double* result, void* scratch,
                    cudaStream_t stream) {
  if (n <= 0) {
    TB_CUDA_CHECK(cudaMemsetAsync(result, 0, 2 * sizeof(double), stream));
    return;
  }
  const I64 chunks = chunk_count(n);
  auto* partial_p = static_cast<double*>(scratch);
  double* partial_r = partial_p + chunks;
  lamb_kernel<<<static_cast<unsigned>(std::min<I64>(chunks, I64{1} << 20)), kBlock, 0, stream>>>(
      update, params, grads, m, v, n, s, partial_p, partial_r);
  check_launch("lamb_kernel");
  lamb_finish_kernel<<<1, kFinishBlock, 0, stream>>>(partial_p, partial_r, chunks, result);
  check_launch("lamb_finish_kernel");
}

}  // namespace tb::cuda
