// LayerNorm over the last dimension (Ba et al. 2016), eps 1e-5 (GPT-2 / PyTorch default).
// One block per row (grid-stride over rows); the mean and the variance are two passes over the
// row, as the CPU backend computes them, for accuracy; the row stays in L1/L2 between passes.
#include "column_sum.cuh"

namespace tb::cuda {

namespace {

constexpr float kLayerNormEps = 1e-5f;

int row_block(I64 C) { return C >= 1024 ? 256 : 128; }

// y = (x − μ)·rstd·w + b, rstd = 1/√(σ² + ε), σ² the biased variance.
__global__ void layernorm_forward_kernel(Out out, Out mean, Out rstd, In inp, In weight, In bias,
                                         I64 N, I64 C) {
  __shared__ float shared[32];
  for (I64 row = blockIdx.x; row < N; row += gridDim.x) {
    const I64 base = row * C;
    float s = 0;
    for (I64 c = threadIdx.x; c < C; c += blockDim.x) s += ld(inp, base + c);
    const float m = block_sum(s, shared) / static_cast<float>(C);
    float v = 0;
    for (I64 c = threadIdx.x; c < C; c += blockDim.x) {
      const float d = ld(inp, base + c) - m;
      v += d * d;
    }
    const float var = block_sum(v, shared) / static_cast<float>(C);
    const float r = 1.0f / sqrtf(var + kLayerNormEps);
    for (I64 c = threadIdx.x; c < C; c += blockDim.x) {
      st(out, base + c, (ld(inp, base + c) - m) * r * ld(weight, c) + ld(bias, c));
    }
    if (threadIdx.x == 0) {
      st(mean, row, m);
      st(rstd, row, r);
    }
  }
}

// With x̂ = (x − μ)·rstd and g = dout·w:  dx += rstd·(g − mean(g) − x̂·mean(g·x̂)).
__global__ void layernorm_backward_kernel(Out dinp, In dout, In inp, In weight, In mean, In rstd,
                                          I64 N, I64 C) {
  __shared__ float shared[32];
  for (I64 row = blockIdx.x; row < N; row += gridDim.x) {
    const I64 base = row * C;
    const float m = ld(mean, row), r = ld(rstd, row);
    float g_sum = 0, gx_sum = 0;
    for (I64 c = threadIdx.x; c < C; c += blockDim.x) {
      const float g = ld(dout, base + c) * ld(weight, c);
      g_sum += g;
      gx_sum += g * (ld(inp, base + c) - m) * r;
    }
    const float g_mean = block_sum(g_sum, shared) / static_cast<float>(C);
    const float gx_mean = block_sum(gx_sum, shared) / static_cast<float>(C);
    for (I64 c = threadIdx.x; c < C; c += blockDim.x) {
      const float xhat = (ld(inp, base + c) - m) * r;
      const float g = ld(dout, base + c) * ld(weight, c);
      st(dinp, base + c, ld(dinp, base + c) + r * (g - g_mean - xhat * gx_mean));
    }
  }
}

// (dweight, dbias) entries of row r, column c: (dout·x̂, dout).
struct LayerNormParamGrad {
  In dout, inp, mean, rstd;
  I64 C;
  __device__ float2 operator()(I64 r, I64 c) const {
    const I64 i = r * C + c;
    const float d = ld(dout, i);
    return make_float2(d * (ld(inp, i) - ld(mean, r)) * ld(rstd, r), d);
  }
};

}  // namespace

void layernorm_forward(Out out, Out mean, Out rstd, In inp, In weight, In bias, I64 N, I64 C,
                       cudaStream_t stream) {
  if (N <= 0 || C <= 0) return;
  const int block = row_block(C);
  layernorm_forward_kernel<<<grid_blocks(N, 1), block, 0, stream>>>(out, mean, rstd, inp, weight,
                                                                    bias, N, C);
  check_launch("layernorm_forward_kernel");
}

void layernorm_backward(Out dinp, Out dweight, Out dbias, In dout, In inp, In weight, In mean,
                        In rstd, I64 N, I64 C, void* scratch, cudaStream_t stream) {
  if (N <= 0 || C <= 0) return;
  const int block = row_block(C);
  layernorm_backward_kernel<<<grid_blocks(N, 1), block, 0, stream>>>(dinp, dout, inp, weight, mean,
                                                                     rstd, N, C);
  check_launch("layernorm_backward_kernel");
  column_sum(LayerNormParamGrad{dout, inp, mean, rstd, C}, N, C, dweight, dbias, scratch, stream);
}

}  // namespace tb::cuda
