// Mixture-of-experts row moves: the dispatch of token rows to the experts' row blocks, the
// combine of their outputs, the gates' gradients. Each output element is written by one
// thread in a fixed order (no atomics), so results are deterministic.
#include "device_math.cuh"

namespace tb::cuda {

namespace {

constexpr int kBlock = 256;
constexpr int kDotBlock = 128;

__device__ __forceinline__ float weight_at(In w, I64 i) { return w.ptr ? ld(w, i) : 1.0f; }

__global__ void gather_rows_kernel(Out out, In inp, const std::int32_t* index, In w, I64 M, I64 C) {
  for (I64 e = thread_index(); e < M * C; e += grid_threads()) {
    const I64 i = e / C, c = e % C;
    st(out, e, weight_at(w, i) * ld(inp, I64{index[i]} * C + c));
  }
}

__global__ void combine_rows_kernel(Out out, In inp, const std::int32_t* slots, In w, I64 N, int K,
                                    I64 C) {
  for (I64 e = thread_index(); e < N * C; e += grid_threads()) {
    const I64 n = e / C, c = e % C;
    float acc = ld(out, e);
    for (int j = 0; j < K; ++j) {
      const std::int32_t r = slots[n * K + j];
      if (r >= 0) acc += weight_at(w, r) * ld(inp, I64{r} * C + c);
    }
    st(out, e, acc);
  }
}

// One block per output row.
__global__ void gathered_row_dot_kernel(Out out, In a, const std::int32_t* index, In b, I64 M,
                                        I64 C) {
  __shared__ float shared[32];
  for (I64 i = blockIdx.x; i < M; i += gridDim.x) {
    const I64 ra = I64{index[i]} * C, rb = i * C;
    float acc = 0;
    for (I64 c = threadIdx.x; c < C; c += blockDim.x) acc += ld(a, ra + c) * ld(b, rb + c);
    acc = block_sum(acc, shared);
    if (threadIdx.x == 0) st(out, i, acc);
  }
}

}  // namespace

void gather_rows(Out out, In inp, const std::int32_t* index, In w, I64 M, I64 C,
                 cudaStream_t stream) {
  if (M * C <= 0) return;
  gather_rows_kernel<<<grid_blocks(M * C, kBlock), kBlock, 0, stream>>>(out, inp, index, w, M, C);
  check_launch("gather_rows_kernel");
}

void combine_rows(Out out, In inp, const std::int32_t* slots, In w, I64 N, int K, I64 C,
                  cudaStream_t stream) {
  if (N * C <= 0) return;
  combine_rows_kernel<<<grid_blocks(N * C, kBlock), kBlock, 0, stream>>>(out, inp, slots, w, N, K,
                                                                         C);
  check_launch("combine_rows_kernel");
}

void gathered_row_dot(Out out, In a, const std::int32_t* index, In b, I64 M, I64 C,
                      cudaStream_t stream) {
  if (M <= 0) return;
  gathered_row_dot_kernel<<<grid_blocks(M, 1, I64{1} << 16), kDotBlock, 0, stream>>>(out, a, index,
                                                                                     b, M, C);
  check_launch("gathered_row_dot_kernel");
}

}  // namespace tb::cuda
