// The softmax halves of causal attention (the GEMMs run in attention.cpp through cuBLASLt):
// one warp per row of a (T × T) score matrix, row r belonging to query i = r mod T, which sees
// keys 0 … i. Forward: an online max/sum pass (Milakov & Gimelshein 2018, "Online normalizer
// calculation for softmax", Alg. 3), then one pass writing the probabilities and the zeros above
// the diagonal. Backward: dS = P ⊙ (dP − Σ_j P·dP)·scale (the softmax Jacobian-vector product).
#include "device_math.cuh"

namespace tb::cuda {

namespace {

constexpr int kBlock = 256;  // 8 warps, 8 rows per block and pass

struct MaxSum {
  float m, s;  // running maximum and Σ e^{x − m}
};

// Combines two partial (max, sum) pairs; an empty pair (m = −inf) is the identity.
__device__ __forceinline__ MaxSum combine(MaxSum a, MaxSum b) {
  if (a.m == -INFINITY) return b;
  if (b.m == -INFINITY) return a;
  const float m = fmaxf(a.m, b.m);
  return {m, a.s * expf(a.m - m) + b.s * expf(b.m - m)};
}

__device__ __forceinline__ I64 warp_index() { return thread_index() >> 5; }
__device__ __forceinline__ I64 grid_warps() { return grid_threads() >> 5; }

__global__ void causal_softmax_forward_kernel(Out probs, const float* scores, I64 n_rows, I64 T) {
  const int lane = static_cast<int>(threadIdx.x & 31u);
  for (I64 r = warp_index(); r < n_rows; r += grid_warps()) {
    const I64 i = r % T;
    const float* s = scores + r * T;
    MaxSum acc{-INFINITY, 0.0f};
    for (I64 j = lane; j <= i; j += 32) {
      const float x = s[j];
      if (x > acc.m) {
        acc.s = acc.s * expf(acc.m - x) + 1.0f;
        acc.m = x;
      } else {
        acc.s += expf(x - acc.m);
      }
    }
    for (int o = 16; o > 0; o >>= 1) {
      const MaxSum other{__shfl_xor_sync(kFullMask, acc.m, o),
                         __shfl_xor_sync(kFullMask, acc.s, o)};
      acc = combine(acc, other);
    }
    const float inv = 1.0f / acc.s;
    // s[j] is read before probs[r·T + j] is written, by the same lane: scores may alias probs.
    for (I64 j = lane; j < T; j += 32)
      st(probs, r * T + j, j <= i ? expf(s[j] - acc.m) * inv : 0.0f);
  }
}

__global__ void causal_softmax_backward_kernel(Out dscores, const float* dprobs, In probs,
                                               I64 n_rows, I64 T, float scale) {
  const int lane = static_cast<int>(threadIdx.x & 31u);
  for (I64 r = warp_index(); r < n_rows; r += grid_warps()) {
    const I64 i = r % T, base = r * T;
    float dot = 0;
    for (I64 j = lane; j <= i; j += 32) dot += ld(probs, base + j) * dprobs[base + j];
    dot = warp_sum(dot);
    for (I64 j = lane; j < T; j += 32) {
      const float v = j <= i ? ld(probs, base + j) * (dprobs[base + j] - dot) * scale : 0.0f;
      st(dscores, base + j, v);
    }
  }
}

}  // namespace

void causal_softmax_forward(Out probs, const float* scores, I64 n_rows, I64 T,
                            cudaStream_t stream) {
  if (n_rows <= 0 || T <= 0) return;
  causal_softmax_forward_kernel<<<grid_blocks(n_rows, kBlock / 32), kBlock, 0, stream>>>(
      probs, scores, n_rows, T);
  check_launch("causal_softmax_forward_kernel");
}

void causal_softmax_backward(Out dscores, const float* dprobs, In probs, I64 n_rows, I64 T,
                             float scale, cudaStream_t stream) {
  if (n_rows <= 0 || T <= 0) return;
  causal_softmax_backward_kernel<<<grid_blocks(n_rows, kBlock / 32), kBlock, 0, stream>>>(
      dscores, dprobs, probs, n_rows, T, scale);
  check_launch("causal_softmax_backward_kernel");
}

}  // namespace tb::cuda
