// Conversions between storage types, the casts that turn a GEMM operand into the number format
// it is multiplied in (tb/number_format.h's rounding rules), the amax of delayed FP8 scaling,
// and the bias / accumulation epilogues of GEMMs that cuBLASLt cannot fuse.
#include <cuda_fp8.h>

#include "device_math.cuh"

namespace tb::cuda {

namespace {

constexpr int kBlock = 256;

// x rounded to tf32 (8-bit exponent, 10 explicit mantissa bits), RNE at bit 13; carrying into
// the exponent gives the next binade or +-inf, as IEEE 754 §7.4 asks. NaN becomes the quiet NaN
// S.11111111.1000000000 with x's sign (tb/number_format.h).
__device__ __forceinline__ float tf32_value(float x) {
  unsigned u = __float_as_uint(x);
  if ((u & 0x7fffffffu) > 0x7f800000u) return __uint_as_float((u & 0x80000000u) | 0x7fc00000u);
  u += 0x0fffu + ((u >> 13) & 1u);
  return __uint_as_float(u & 0xffffe000u);
}

__device__ __forceinline__ __nv_fp8_interpretation_t fp8_kind(NumberFormat f) {
  return f == NumberFormat::e5m2 ? __NV_E5M2 : __NV_E4M3;
}

// The FP8 encoding of saturate(x), RNE; NaN stays NaN (cuda_fp8.h, __NV_SATFINITE).
__device__ __forceinline__ __nv_fp8_storage_t fp8_bits(float x, NumberFormat f) {
  return __nv_cvt_float_to_fp8(x, __NV_SATFINITE, fp8_kind(f));
}

// An FP8 value as a float: every E4M3 and E5M2 value is exact in fp16, hence in fp32.
__device__ __forceinline__ float fp8_value(__nv_fp8_storage_t b, NumberFormat f) {
  return __half2float(__half(__nv_cvt_fp8_to_halfraw(b, fp8_kind(f))));
}

__device__ __forceinline__ float round_value(float x, NumberFormat f, float scale) {
  switch (f) {
    case NumberFormat::tf32:
      return tf32_value(x);
    case NumberFormat::bf16:
      return __bfloat162float(__float2bfloat16_rn(x));
    case NumberFormat::fp16:
      return __half2float(__float2half_rn(x));
    case NumberFormat::e4m3:
    case NumberFormat::e5m2:
      return fp8_value(fp8_bits(x * scale, f), f);
    default:
      return x;
  }
}

__global__ void convert_kernel(Out dst, In src, I64 n) {
  for (I64 i = thread_index(); i < n; i += grid_threads()) st(dst, i, ld(src, i));
}

__global__ void round_kernel(Out dst, In src, I64 n, NumberFormat f, float scale,
                             float* amax_slot) {
  unsigned amax_bits = 0;
  for (I64 i = thread_index(); i < n; i += grid_threads()) {
    const float x = ld(src, i);
    amax_bits = max(amax_bits, abs_bits(x));
    st(dst, i, round_value(x, f, scale));
  }
  if (amax_slot) amax_commit(amax_slot, amax_bits);
}

__global__ void cast_fp8_kernel(std::uint8_t* dst, In src, I64 n, NumberFormat f, float scale,
                                float* amax_slot, float* inv_scale_slot) {
  if (inv_scale_slot && blockIdx.x == 0 && threadIdx.x == 0) *inv_scale_slot = 1.0f / scale;
  unsigned amax_bits = 0;
  for (I64 i = thread_index(); i < n; i += grid_threads()) {
    const float x = ld(src, i);
    amax_bits = max(amax_bits, abs_bits(x));
    dst[i] = fp8_bits(x * scale, f);
  }
  if (amax_slot) amax_commit(amax_slot, amax_bits);
}

// Transposing cast through a 32 × 32 tile in shared memory: reads along src's rows and writes
// along dst's rows, both coalesced. Block (32, 8); tiles are visited grid-stride in both
// dimensions, so any size fits the grid limits.
constexpr int kTile = 32, kTileRows = 8;

__global__ void cast_fp8_transpose_kernel(std::uint8_t* dst, In src, I64 rows, I64 cols,
                                          NumberFormat f, float scale, float* amax_slot,
                                          float* inv_scale_slot) {
  __shared__ std::uint8_t tile[kTile][kTile + 1];
  if (inv_scale_slot && blockIdx.x == 0 && blockIdx.y == 0 && threadIdx.x == 0 &&
      threadIdx.y == 0) {
    *inv_scale_slot = 1.0f / scale;
  }
  const I64 tile_rows = (rows + kTile - 1) / kTile, tile_cols = (cols + kTile - 1) / kTile;
  unsigned amax_bits = 0;
  for (I64 ty = blockIdx.y; ty < tile_rows; ty += gridDim.y) {
    for (I64 tx = blockIdx.x; tx < tile_cols; tx += gridDim.x) {
      const I64 r0 = ty * kTile, c0 = tx * kTile;
      for (int k = threadIdx.y; k < kTile; k += kTileRows) {
        const I64 r = r0 + k, c = c0 + threadIdx.x;
        if (r < rows && c < cols) {
          const float x = ld(src, r * cols + c);
          amax_bits = max(amax_bits, abs_bits(x));
          tile[k][threadIdx.x] = fp8_bits(x * scale, f);
        }
      }
      __syncthreads();
      for (int k = threadIdx.y; k < kTile; k += kTileRows) {
        const I64 c = c0 + k, r = r0 + threadIdx.x;  // dst row c, column r
        if (r < rows && c < cols) dst[c * rows + r] = tile[threadIdx.x][k];
      }
      __syncthreads();
    }
  }
  // Each warp is one threadIdx.y row of 32 lanes (blockDim.x == 32).
  if (amax_slot) amax_commit(amax_slot, amax_bits);
}

__global__ void amax_kernel(In src, I64 n, float* amax_slot) {
  unsigned amax_bits = 0;
  for (I64 i = thread_index(); i < n; i += grid_threads()) {
    amax_bits = max(amax_bits, abs_bits(ld(src, i)));
  }
  amax_commit(amax_slot, amax_bits);
}

__global__ void add_bias_kernel(Out out, In bias, I64 rows, I64 cols) {
  const I64 n = rows * cols;
  for (I64 i = thread_index(); i < n; i += grid_threads()) {
    st(out, i, ld(out, i) + ld(bias, i % cols));
  }
}

__global__ void add_gemm_result_kernel(Out out, const float* d, In bias, I64 rows, I64 cols,
                                       bool accumulate) {
  const I64 n = rows * cols;
  for (I64 i = thread_index(); i < n; i += grid_threads()) {
    float v = accumulate ? ld(out, i) : 0.0f;
    if (bias.ptr) v += ld(bias, i % cols);
    st(out, i, v + d[i]);
  }
}

}  // namespace

void convert(Out dst, In src, I64 n, cudaStream_t stream) {
  if (n <= 0) return;
  convert_kernel<<<grid_blocks(n, kBlock), kBlock, 0, stream>>>(dst, src, n);
  check_launch("convert_kernel");
}

void round_to_format(Out dst, In src, I64 n, NumberFormat f, float scale, float* amax_slot,
                     cudaStream_t stream) {
  if (n <= 0) return;
  round_kernel<<<grid_blocks(n, kBlock), kBlock, 0, stream>>>(dst, src, n, f, scale, amax_slot);
  check_launch("round_kernel");
}

void cast_fp8(std::uint8_t* dst, In src, I64 rows, I64 cols, bool transpose, NumberFormat f,
              float scale, float* amax_slot, float* inv_scale_slot, cudaStream_t stream) {
  const I64 n = rows * cols;
  if (n <= 0) return;
  if (!transpose) {
    cast_fp8_kernel<<<grid_blocks(n, kBlock), kBlock, 0, stream>>>(dst, src, n, f, scale, amax_slot,
                                                                   inv_scale_slot);
    check_launch("cast_fp8_kernel");
    return;
  }
  const I64 tile_rows = (rows + kTile - 1) / kTile, tile_cols = (cols + kTile - 1) / kTile;
  const dim3 grid(static_cast<unsigned>(std::min<I64>(tile_cols, I64{1} << 16)),
                  static_cast<unsigned>(std::min<I64>(tile_rows, 65535)));
  cast_fp8_transpose_kernel<<<grid, dim3(kTile, kTileRows), 0, stream>>>(
      dst, src, rows, cols, f, scale, amax_slot, inv_scale_slot);
  check_launch("cast_fp8_transpose_kernel");
}

void amax(In src, I64 n, float* amax_slot, cudaStream_t stream) {
  if (n <= 0) return;
  amax_kernel<<<grid_blocks(n, kBlock), kBlock, 0, stream>>>(src, n, amax_slot);
  check_launch("amax_kernel");
}

void add_bias(Out out, In bias, I64 rows, I64 cols, cudaStream_t stream) {
  if (rows <= 0 || cols <= 0) return;
  add_bias_kernel<<<grid_blocks(rows * cols, kBlock), kBlock, 0, stream>>>(out, bias, rows, cols);
  check_launch("add_bias_kernel");
}

void add_gemm_result(Out out, const float* d, In bias, I64 rows, I64 cols, bool accumulate,
                     cudaStream_t stream) {
  if (rows <= 0 || cols <= 0) return;
  add_gemm_result_kernel<<<grid_blocks(rows * cols, kBlock), kBlock, 0, stream>>>(
      out, d, bias, rows, cols, accumulate);
  check_launch("add_gemm_result_kernel");
}

}  // namespace tb::cuda
