// Deterministic reductions: the bias gradient (column sums) and sums over a whole tensor in
// double (the gradient norm's Σx², the mean loss). A sum over n elements runs in two passes:
// block k adds the fixed chunk [k·kChunk, (k+1)·kChunk) (strided over its threads, then a
// butterfly), and one block adds the chunks' partials. The order depends only on n, so the
// result is bit-identical from run to run (global-norm clipping must not depend on timing).
#include "column_sum.cuh"

namespace tb::cuda {

namespace {

constexpr int kBlock = 256;
constexpr I64 kChunk = I64{kBlock} * 64;
constexpr int kFinishBlock = 1024;

I64 chunk_count(I64 n) { return (n + kChunk - 1) / kChunk; }

struct DoutColumn {
  In dout;
  I64 cols;
  __device__ float2 operator()(I64 r, I64 c) const {
    return make_float2(ld(dout, r * cols + c), 0.0f);
  }
};

template <bool kSquare>
__global__ void sum_partials_kernel(In x, I64 n, double* partials) {
  __shared__ double shared[32];
  for (I64 k = blockIdx.x; k * kChunk < n; k += gridDim.x) {
    const I64 end = min(n, (k + 1) * kChunk);
    double s = 0;
    for (I64 i = k * kChunk + threadIdx.x; i < end; i += blockDim.x) {
      const double v = ld(x, i);
      s += kSquare ? v * v : v;
    }
    s = block_sum(s, shared);
    if (threadIdx.x == 0) partials[k] = s;
  }
}

__global__ void sum_finish_kernel(const double* partials, I64 chunks, double* result) {
  __shared__ double shared[32];
  double s = 0;
  for (I64 k = threadIdx.x; k < chunks; k += blockDim.x) s += partials[k];
  s = block_sum(s, shared);
  if (threadIdx.x == 0) *result = s;
}

template <bool kSquare>
void sum_impl(double* result, In x, I64 n, void* scratch, cudaStream_t stream) {
  if (n <= 0) {
    TB_CUDA_CHECK(cudaMemsetAsync(result, 0, sizeof(double), stream));
    return;
  }
  const I64 chunks = chunk_count(n);
  auto* partials = static_cast<double*>(scratch);
  sum_partials_kernel<kSquare>
      <<<static_cast<unsigned>(std::min<I64>(chunks, I64{1} << 20)), kBlock, 0, stream>>>(x, n,
                                                                                          partials);
  check_launch("sum_partials_kernel");
  sum_finish_kernel<<<1, kFinishBlock, 0, stream>>>(partials, chunks, result);
  check_launch("sum_finish_kernel");
}

}  // namespace

std::size_t column_sum_scratch_bytes(I64 rows, I64 cols) {
  if (rows <= 0 || cols <= 0) return 0;
  const ColumnSumPlan plan = column_sum_plan(rows, cols);
  return plan.chunks > 1 ? static_cast<std::size_t>(plan.chunks * cols) * sizeof(float2) : 0;
}

void bias_backward(Out dbias, In dout, I64 rows, I64 cols, void* scratch, cudaStream_t stream) {
  column_sum(DoutColumn{dout, cols}, rows, cols, dbias, Out{}, scratch, stream);
}

std::size_t sum_scratch_bytes(I64 n) {
  return static_cast<std::size_t>(std::max<I64>(1, chunk_count(n))) * sizeof(double);
}

void sum_squares(double* result, In x, I64 n, void* scratch, cudaStream_t stream) {
  sum_impl<true>(result, x, n, scratch, stream);
}

void sum(double* result, In x, I64 n, void* scratch, cudaStream_t stream) {
  sum_impl<false>(result, x, n, scratch, stream);
}

}  // namespace tb::cuda
