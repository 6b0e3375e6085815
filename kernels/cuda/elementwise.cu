// Elementwise operations: GELU forward and backward, add, mul, scale, axpy. Grid-stride loops in
// fp32 through the typed loads and stores of device_math.cuh.
#include "device_math.cuh"

namespace tb::cuda {

namespace {

constexpr int kBlock = 256;

// GELU, tanh form (Hendrycks & Gimpel 2016, §2): 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))).
constexpr float kGeluScale = 0.7978845608028654f;  // √(2/π)
constexpr float kGeluCubic = 0.044715f;

__global__ void gelu_forward_kernel(Out out, In inp, I64 n) {
  for (I64 i = thread_index(); i < n; i += grid_threads()) {
    const float x = ld(inp, i);
    const float u = kGeluScale * (x + kGeluCubic * x * x * x);
    st(out, i, 0.5f * x * (1.0f + tanhf(u)));
  }
}

// d/dx = 0.5·(1 + tanh u) + 0.5·x·(1 − tanh² u)·√(2/π)·(1 + 3·0.044715·x²).
__global__ void gelu_backward_kernel(Out dinp, In inp, In dout, I64 n) {
  for (I64 i = thread_index(); i < n; i += grid_threads()) {
    const float x = ld(inp, i);
    const float u = kGeluScale * (x + kGeluCubic * x * x * x);
    const float th = tanhf(u);
    const float du = kGeluScale * (1.0f + 3.0f * kGeluCubic * x * x);
    const float grad = 0.5f * (1.0f + th) + 0.5f * x * (1.0f - th * th) * du;
    st(dinp, i, grad * ld(dout, i));  // dout[i] is read before dinp[i] is written
  }
}

__global__ void add_kernel(Out out, In a, In b, I64 n) {
  for (I64 i = thread_index(); i < n; i += grid_threads()) st(out, i, ld(a, i) + ld(b, i));
}

__global__ void mul_kernel(Out out, In a, In b, I64 n) {
  for (I64 i = thread_index(); i < n; i += grid_threads()) st(out, i, ld(a, i) * ld(b, i));
}

__global__ void scale_kernel(Out t, float s, I64 n) {
  for (I64 i = thread_index(); i < n; i += grid_threads()) st(t, i, ld(t, i) * s);
}

__global__ void axpy_kernel(Out y, float alpha, In x, I64 n) {
  for (I64 i = thread_index(); i < n; i += grid_threads()) st(y, i, ld(y, i) + alpha * ld(x, i));
}

}  // namespace

void gelu_forward(Out out, In inp, I64 n, cudaStream_t stream) {
  if (n <= 0) return;
  gelu_forward_kernel<<<grid_blocks(n, kBlock), kBlock, 0, stream>>>(out, inp, n);
  check_launch("gelu_forward_kernel");
}

void gelu_backward(Out dinp, In inp, In dout, I64 n, cudaStream_t stream) {
  if (n <= 0) return;
  gelu_backward_kernel<<<grid_blocks(n, kBlock), kBlock, 0, stream>>>(dinp, inp, dout, n);
  check_launch("gelu_backward_kernel");
}

void add(Out out, In a, In b, I64 n, cudaStream_t stream) {
  if (n <= 0) return;
  add_kernel<<<grid_blocks(n, kBlock), kBlock, 0, stream>>>(out, a, b, n);
  check_launch("add_kernel");
}

void mul(Out out, In a, In b, I64 n, cudaStream_t stream) {
  if (n <= 0) return;
  mul_kernel<<<grid_blocks(n, kBlock), kBlock, 0, stream>>>(out, a, b, n);
  check_launch("mul_kernel");
}

void scale(Out t, float s, I64 n, cudaStream_t stream) {
  if (n <= 0) return;
  scale_kernel<<<grid_blocks(n, kBlock), kBlock, 0, stream>>>(t, s, n);
  check_launch("scale_kernel");
}

void axpy(Out y, float alpha, In x, I64 n, cudaStream_t stream) {
  if (n <= 0) return;
  axpy_kernel<<<grid_blocks(n, kBlock), kBlock, 0, stream>>>(y, alpha, x, n);
  check_launch("axpy_kernel");
}

}  // namespace tb::cuda
