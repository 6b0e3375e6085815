// Mixture-of-experts row moves: dispatch (gather) of token rows to the experts' row blocks,
// combine of the experts' outputs back into the token rows, and the gates' gradients. Each
// output row is written by one thread, in a fixed order: deterministic for any thread count.
#include "cpu_kernels.h"

namespace tb::cpu {

template <class T>
void gather_rows(T* out, const T* inp, const std::int32_t* index, const T* w, std::int64_t M,
                 std::int64_t C) {
#pragma omp parallel for schedule(static)
  for (std::int64_t i = 0; i < M; ++i) {
    const T s = w ? w[i] : T(1);
    const T* x = inp + std::int64_t{index[i]} * C;
    T* o = out + i * C;
#pragma omp simd
    for (std::int64_t c = 0; c < C; ++c) o[c] = s * x[c];
  }
}

template <class T>
void combine_rows(T* out, const T* inp, const std::int32_t* slots, const T* w, std::int64_t N,
                  int K, std::int64_t C) {
#pragma omp parallel for schedule(static)
  for (std::int64_t n = 0; n < N; ++n) {
    T* o = out + n * C;
    for (int j = 0; j < K; ++j) {
      const std::int32_t r = slots[n * K + j];
      if (r < 0) continue;
      const T s = w ? w[r] : T(1);
      const T* x = inp + std::int64_t{r} * C;
#pragma omp simd
      for (std::int64_t c = 0; c < C; ++c) o[c] += s * x[c];
    }
  }
}

template <class T>
void gathered_row_dot(T* out, const T* a, const std::int32_t* index, const T* b, std::int64_t M,
                      std::int64_t C) {
#pragma omp parallel for schedule(static)
  for (std::int64_t i = 0; i < M; ++i) {
    const T* x = a + std::int64_t{index[i]} * C;
    const T* y = b + i * C;
    T acc = 0;
    for (std::int64_t c = 0; c < C; ++c) acc += x[c] * y[c];
    out[i] = acc;
  }
}

template void gather_rows<float>(float*, const float*, const std::int32_t*, const float*,
                                 std::int64_t, std::int64_t);
template void gather_rows<double>(double*, const double*, const std::int32_t*, const double*,
                                  std::int64_t, std::int64_t);
template void combine_rows<float>(float*, const float*, const std::int32_t*, const float*,
                                  std::int64_t, int, std::int64_t);
template void combine_rows<double>(double*, const double*, const std::int32_t*, const double*,
                                   std::int64_t, int, std::int64_t);
template void gathered_row_dot<float>(float*, const float*, const std::int32_t*, const float*,
                                      std::int64_t, std::int64_t);
template void gathered_row_dot<double>(double*, const double*, const std::int32_t*, const double*,
                                       std::int64_t, std::int64_t);

}  // namespace tb::cpu
