// Device-side helpers shared by the kernels: typed loads and stores (kernels.h's In/Out),
// launch sizes for grid-stride loops, deterministic warp and block reductions.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <cstdint>

#include "cuda_check.h"
#include "kernels.h"

namespace tb::cuda {

__device__ __forceinline__ float ld(In a, I64 i) {
  switch (a.type) {
    case Elem::bf16:
      return __bfloat162float(static_cast<const __nv_bfloat16*>(a.ptr)[i]);
    case Elem::f16:
      return __half2float(static_cast<const __half*>(a.ptr)[i]);
    default:
      return static_cast<const float*>(a.ptr)[i];
  }
}

// Rounds to nearest even when narrowing; __float2half_rn overflows to ±inf (IEEE 754 §7.4).
__device__ __forceinline__ void st(Out a, I64 i, float v) {
  switch (a.type) {
    case Elem::bf16:
      static_cast<__nv_bfloat16*>(a.ptr)[i] = __float2bfloat16_rn(v);
      return;
    case Elem::f16:
      static_cast<__half*>(a.ptr)[i] = __float2half_rn(v);
      return;
    default:
      static_cast<float*>(a.ptr)[i] = v;
      return;
  }
}

__device__ __forceinline__ float ld(Out a, I64 i) { return ld(In{a.ptr, a.type}, i); }

// Global index and stride of a 1-D grid-stride loop, in 64 bits.
__device__ __forceinline__ I64 thread_index() {
  return static_cast<I64>(blockIdx.x) * blockDim.x + threadIdx.x;
}
__device__ __forceinline__ I64 grid_threads() { return static_cast<I64>(gridDim.x) * blockDim.x; }

// Blocks for a grid-stride loop over n items, `per_block` items per block and pass; capped so
// one launch never exceeds the grid limit (the loop covers the rest).
inline unsigned grid_blocks(I64 n, I64 per_block, I64 cap = I64{1} << 20) {
  const I64 b = (n + per_block - 1) / per_block;
  return static_cast<unsigned>(std::max<I64>(1, std::min(b, cap)));
}

constexpr unsigned kFullMask = 0xffffffffu;

template <class T>
__device__ __forceinline__ T warp_sum(T v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(kFullMask, v, o);
  return v;
}

// Sum over a 1-D block (blockDim.x a multiple of 32, at most 1024), returned to every thread.
// The butterfly order is fixed, so the result is deterministic. `shared` holds 32 values; the
// leading barrier lets consecutive calls reuse it.
template <class T>
__device__ T block_sum(T v, T* shared) {
  const unsigned lane = threadIdx.x & 31u, warp = threadIdx.x >> 5;
  const unsigned n_warps = (blockDim.x + 31u) >> 5;
  v = warp_sum(v);
  __syncthreads();
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  return warp_sum(lane < n_warps ? shared[lane] : T(0));
}

// max |x| as the bit pattern of a non-negative float: for those, integer order is value order,
// and a NaN (sign cleared) compares above +inf, so the maximum is NaN when any element is.
__device__ __forceinline__ unsigned abs_bits(float x) { return __float_as_uint(fabsf(x)); }

// Raises *slot (a float read as its bits) to the warp's largest abs_bits.
__device__ __forceinline__ void amax_commit(float* slot, unsigned bits) {
  for (int o = 16; o > 0; o >>= 1) bits = max(bits, __shfl_xor_sync(kFullMask, bits, o));
  if ((threadIdx.x & 31u) == 0) atomicMax(reinterpret_cast<unsigned*>(slot), bits);
}

}  // namespace tb::cuda
