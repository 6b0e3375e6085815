#include <algorithm>
#include <bit>

#include "cpu_kernels.h"
#include "tb/number_format.h"

namespace tb::cpu {

// out(N,OC) = inp(N,C)·Wᵀ + b: the bias is broadcast into out first, then one GEMM with β = 1.
namespace {
// out = bias broadcast over N rows (+ out when accumulating); returns the GEMM's β.
template <class T>
T broadcast_bias(T* out, const T* bias, std::int64_t N, int OC, bool accumulate_out) {
  if (!bias) return accumulate_out ? T(1) : T(0);
  {
#pragma omp parallel for schedule(static)
    for (std::int64_t n = 0; n < N; ++n) {
      T* o = out + n * OC;
      if (accumulate_out) {
        for (int j = 0; j < OC; ++j) o[j] += bias[j];
      } else {
        for (int j = 0; j < OC; ++j) o[j] = bias[j];
      }
    }
  }
  return T(1);
}
}  // namespace

template <class T>
void matmul_forward(T* out, const T* inp, const T* weight, const T* bias, std::int64_t N, int C,
                    int OC, bool accumulate_out) {
  const T beta = broadcast_bias(out, bias, N, OC, accumulate_out);
  gemm<T>(false, true, static_cast<int>(N), OC, C, T(1), inp, C, weight, C, beta, out, OC);
}

template <class T>
void matmul_backward(T* dinp, T* dweight, T* dbias, const T* dout, const T* inp, const T* weight,
                     std::int64_t N, int C, int OC) {
  const int n = static_cast<int>(N);
  if (dinp) gemm<T>(false, false, n, C, OC, T(1), dout, OC, weight, C, T(0), dinp, C);
  gemm<T>(true, false, OC, C, n, T(1), dout, OC, inp, C, T(1), dweight, C);
  if (dbias) bias_backward(dbias, dout, N, OC);
}

namespace {
// dbias += column sums of dout (N × OC), each element read through load(): blocks of 64
// columns in parallel, the rows of a block summed in order — a fixed order, whatever the
// thread count.
template <class T, class In, class Load>
void column_sums(T* dbias, const In* dout, std::int64_t N, int OC, Load load) {
  constexpr int kBlock = 64;
  const int n_blocks = (OC + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static)
  for (int blk = 0; blk < n_blocks; ++blk) {
    const int j0 = blk * kBlock, j1 = std::min(OC, j0 + kBlock);
    T acc[kBlock] = {};
    for (std::int64_t r = 0; r < N; ++r) {
      const In* d = dout + r * OC;
      for (int j = j0; j < j1; ++j) acc[j - j0] += load(d[j]);
    }
    for (int j = j0; j < j1; ++j) dbias[j] += acc[j - j0];
  }
}
}  // namespace

template <class T>
void bias_backward(T* dbias, const T* dout, std::int64_t N, int OC) {
  column_sums(dbias, dout, N, OC, [](T v) { return v; });
}

void bias_backward_16(float* dbias, const std::uint16_t* dout, NumberFormat f, std::int64_t N,
                      int OC) {
  if (f == NumberFormat::bf16) {
    // bf16 → fp32 is the 16-bit shift (decode_bf16), inlined here.
    column_sums(dbias, dout, N, OC,
                [](std::uint16_t b) { return std::bit_cast<float>(std::uint32_t{b} << 16); });
  } else {
    column_sums(dbias, dout, N, OC, [](std::uint16_t b) { return decode_fp16(b); });
  }
}

template void matmul_forward<float>(float*, const float*, const float*, const float*, std::int64_t,
                                    int, int, bool);
template void matmul_forward<double>(double*, const double*, const double*, const double*,
                                     std::int64_t, int, int, bool);
template void matmul_backward<float>(float*, float*, float*, const float*, const float*,
                                     const float*, std::int64_t, int, int);
template void bias_backward<float>(float*, const float*, std::int64_t, int);
template void bias_backward<double>(double*, const double*, std::int64_t, int);
template void matmul_backward<double>(double*, double*, double*, const double*, const double*,
                                      const double*, std::int64_t, int, int);

}  // namespace tb::cpu
