// Softmax cross-entropy over rows of logits, in place. One block per row (grid-stride over
// rows): an online max/sum pass (Milakov & Gimelshein 2018, Alg. 3) reduced over the block in a
// fixed order, then one pass writing p = e^{z−max}/Σ; loss = log Σ − (z[y] − max).
#include "device_math.cuh"

namespace tb::cuda {

namespace {

constexpr int kRowBlock = 512;
constexpr int kBlock = 256;

struct MaxSum {
  float m, s;
};

__device__ __forceinline__ MaxSum combine(MaxSum a, MaxSum b) {
  if (a.m == -INFINITY) return b;
  if (b.m == -INFINITY) return a;
  const float m = fmaxf(a.m, b.m);
  return {m, a.s * expf(a.m - m) + b.s * expf(b.m - m)};
}

__device__ __forceinline__ MaxSum warp_combine(MaxSum v) {
  for (int o = 16; o > 0; o >>= 1) {
    v = combine(v, MaxSum{__shfl_xor_sync(kFullMask, v.m, o), __shfl_xor_sync(kFullMask, v.s, o)});
  }
  return v;
}

__global__ void softmax_cross_entropy_forward_kernel(Out logits, Out losses,
                                                     const std::int32_t* targets, I64 N, I64 V) {
  __shared__ float shared_m[32], shared_s[32];
  const unsigned lane = threadIdx.x & 31u, warp = threadIdx.x >> 5;
  const unsigned n_warps = blockDim.x >> 5;
  for (I64 row = blockIdx.x; row < N; row += gridDim.x) {
    const I64 base = row * V;
    const I64 y = targets[row];
    const bool valid = y >= 0 && y < V;
    // z[y] is read before any thread of the block overwrites the row (after the barriers below).
    const float zy = (threadIdx.x == 0 && valid) ? ld(logits, base + y) : 0.0f;
    MaxSum acc{-INFINITY, 0.0f};
    for (I64 v = threadIdx.x; v < V; v += blockDim.x) {
      const float z = ld(logits, base + v);
      if (z > acc.m) {
        acc.s = acc.s * expf(acc.m - z) + 1.0f;
        acc.m = z;
      } else {
        acc.s += expf(z - acc.m);
      }
    }
    acc = warp_combine(acc);
    __syncthreads();  // the shared arrays may still be read for the previous row
    if (lane == 0) {
      shared_m[warp] = acc.m;
      shared_s[warp] = acc.s;
    }
    __syncthreads();
    acc = lane < n_warps ? MaxSum{shared_m[lane], shared_s[lane]} : MaxSum{-INFINITY, 0.0f};
    acc = warp_combine(acc);  // every warp reduces the same values in the same order
    const float inv = 1.0f / acc.s;
    for (I64 v = threadIdx.x; v < V; v += blockDim.x) {
      st(logits, base + v, expf(ld(logits, base + v) - acc.m) * inv);
    }
    if (threadIdx.x == 0) {
      st(losses, row, valid ? logf(acc.s) - (zy - acc.m) : __int_as_float(0x7fc00000));
    }
  }
}

__global__ void softmax_cross_entropy_backward_kernel(Out probs, const std::int32_t* targets, I64 N,
                                                      I64 V, float dloss_scale) {
  const I64 n = N * V;
  for (I64 i = thread_index(); i < n; i += grid_threads()) {
    const I64 row = i / V, col = i % V;
    float d = ld(probs, i) * dloss_scale;
    if (col == targets[row]) d -= dloss_scale;
    st(probs, i, d);
  }
}

}  // namespace

void softmax_cross_entropy_forward(Out logits_to_probs, Out losses, const std::int32_t* targets,
                                   I64 N, I64 V, cudaStream_t stream) {
  if (N <= 0 || V <= 0) return;
  softmax_cross_entropy_forward_kernel<<<grid_blocks(N, 1), kRowBlock, 0, stream>>>(
      logits_to_probs, losses, targets, N, V);
  check_launch("softmax_cross_entropy_forward_kernel");
}

void softmax_cross_entropy_backward(Out probs_to_dlogits, const std::int32_t* targets, I64 N, I64 V,
                                    float dloss_scale, cudaStream_t stream) {
  if (N <= 0 || V <= 0) return;
  softmax_cross_entropy_backward_kernel<<<grid_blocks(N * V, kBlock), kBlock, 0, stream>>>(
      probs_to_dlogits, targets, N, V, dloss_scale);
  check_launch("softmax_cross_entropy_backward_kernel");
}

}  // namespace tb::cuda
