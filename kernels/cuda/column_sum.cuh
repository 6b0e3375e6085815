// Deterministic column sums over a row-major (rows × cols) matrix whose entries a functor
// computes: dst0[c] += Σ_r f(r, c).x and dst1[c] += Σ_r f(r, c).y (bias, LayerNorm-parameter
// and position-embedding gradients). The rows are split into chunks that depend only on the
// sizes; a block of 32 columns × 8 row lanes sums one chunk (lane by lane, then the 8 lanes in
// order), and the chunks' partial sums are added in chunk order. So the result is the same on
// every run and every GPU, without atomics.
#pragma once
#include <algorithm>

#include "device_math.cuh"

namespace tb::cuda {

constexpr int kColumnTile = 32, kRowLanes = 8;

struct ColumnSumPlan {
  I64 chunks = 1;
  I64 rows_per_chunk = 0;
};

// At least 64 rows per chunk, at most 1024 chunks and 2^22 partial pairs (32 MiB of scratch).
inline ColumnSumPlan column_sum_plan(I64 rows, I64 cols) {
  I64 chunks = std::min<I64>((rows + 63) / 64, 1024);
  chunks = std::min<I64>(chunks, std::max<I64>(1, (I64{1} << 22) / std::max<I64>(cols, 1)));
  chunks = std::max<I64>(chunks, 1);
  return {chunks, (rows + chunks - 1) / chunks};
}

// One chunk of rows per blockIdx.y. With one chunk the sums go straight into dst.
template <class F>
__global__ void column_sum_kernel(F f, I64 rows, I64 cols, I64 rows_per_chunk, float2* partial,
                                  Out dst0, Out dst1) {
  __shared__ float2 acc[kRowLanes][kColumnTile];
  for (I64 tile = blockIdx.x; tile * kColumnTile < cols; tile += gridDim.x) {
    const I64 c = tile * kColumnTile + threadIdx.x;
    const I64 r0 = static_cast<I64>(blockIdx.y) * rows_per_chunk;
    const I64 r1 = min(rows, r0 + rows_per_chunk);
    float2 s = make_float2(0.0f, 0.0f);
    if (c < cols) {
      for (I64 r = r0 + threadIdx.y; r < r1; r += kRowLanes) {
        const float2 v = f(r, c);
        s.x += v.x;
        s.y += v.y;
      }
    }
    acc[threadIdx.y][threadIdx.x] = s;
    __syncthreads();
    if (threadIdx.y == 0 && c < cols) {
      float2 t = acc[0][threadIdx.x];
      for (int k = 1; k < kRowLanes; ++k) {
        t.x += acc[k][threadIdx.x].x;
        t.y += acc[k][threadIdx.x].y;
      }
      if (partial) {
        partial[static_cast<I64>(blockIdx.y) * cols + c] = t;
      } else {
        st(dst0, c, ld(dst0, c) + t.x);
        if (dst1.ptr) st(dst1, c, ld(dst1, c) + t.y);
      }
    }
    __syncthreads();  // acc is rewritten by the next tile
  }
}

// dst[c] += the chunks' partial sums, in chunk order. (A template only so that every file that
// includes this header may define it.)
template <int kUnused = 0>
__global__ void column_sum_finish_kernel(const float2* partial, I64 chunks, I64 cols, Out dst0,
                                         Out dst1) {
  for (I64 c = thread_index(); c < cols; c += grid_threads()) {
    float2 t = partial[c];
    for (I64 k = 1; k < chunks; ++k) {
      t.x += partial[k * cols + c].x;
      t.y += partial[k * cols + c].y;
    }
    st(dst0, c, ld(dst0, c) + t.x);
    if (dst1.ptr) st(dst1, c, ld(dst1, c) + t.y);
  }
}

// Launches the sums; scratch holds column_sum_scratch_bytes(rows, cols) (kernels.h).
template <class F>
void column_sum(F f, I64 rows, I64 cols, Out dst0, Out dst1, void* scratch, cudaStream_t stream) {
  if (rows <= 0 || cols <= 0) return;
  const ColumnSumPlan plan = column_sum_plan(rows, cols);
  float2* partial = plan.chunks > 1 ? static_cast<float2*>(scratch) : nullptr;
  const I64 tiles = (cols + kColumnTile - 1) / kColumnTile;
  const dim3 grid(static_cast<unsigned>(std::min<I64>(tiles, I64{1} << 20)),
                  static_cast<unsigned>(plan.chunks));
  column_sum_kernel<<<grid, dim3(kColumnTile, kRowLanes), 0, stream>>>(
      f, rows, cols, plan.rows_per_chunk, partial, dst0, dst1);
  check_launch("column_sum_kernel");
  if (partial) {
    constexpr int kBlock = 256;
    column_sum_finish_kernel<>
        <<<grid_blocks(cols, kBlock), kBlock, 0, stream>>>(partial, plan.chunks, cols, dst0, dst1);
    check_launch("column_sum_finish_kernel");
  }
}

}  // namespace tb::cuda
