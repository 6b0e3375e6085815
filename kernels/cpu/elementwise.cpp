#include <cmath>

#include "cpu_kernels.h"
#include "vec_math.h"

namespace tb::cpu {

namespace {
// GELU, tanh form (Hendrycks & Gimpel 2016): 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))).
constexpr double kGeluScale = 0.7978845608028654;  // √(2/π)
constexpr double kGeluCubic = 0.044715;

// tanh(u) = 1 − 2/(e^{2u} + 1); exp saturates cleanly at both ends.
template <class T>
inline T tanh_via_exp(T u) {
  return T(1) - T(2) / (exp_approx(T(2) * u) + T(1));
}
}  // namespace

template <class T>
void gelu_forward(T* out, const T* inp, std::int64_t n) {
#pragma omp parallel for simd schedule(static)
  for (std::int64_t i = 0; i < n; ++i) {
    const T x = inp[i];
    const T u = T(kGeluScale) * (x + T(kGeluCubic) * x * x * x);
    out[i] = T(0.5) * x * (T(1) + tanh_via_exp(u));
  }
}

template <class T>
void gelu_backward(T* dinp, const T* inp, const T* dout, std::int64_t n) {
#pragma omp parallel for simd schedule(static)
  for (std::int64_t i = 0; i < n; ++i) {
    const T x = inp[i];
    const T u = T(kGeluScale) * (x + T(kGeluCubic) * x * x * x);
    const T th = tanh_via_exp(u);
    const T du = T(kGeluScale) * (T(1) + T(3 * kGeluCubic) * x * x);
    const T grad = T(0.5) * (T(1) + th) + T(0.5) * x * (T(1) - th * th) * du;
    dinp[i] = grad * dout[i];
  }
}

template <class T>
void add(T* out, const T* a, const T* b, std::int64_t n) {
#pragma omp parallel for simd schedule(static)
  for (std::int64_t i = 0; i < n; ++i) out[i] = a[i] + b[i];
}

template <class T>
void mul(T* out, const T* a, const T* b, std::int64_t n) {
#pragma omp parallel for simd schedule(static)
  for (std::int64_t i = 0; i < n; ++i) out[i] = a[i] * b[i];
}

template <class T>
void scale(T* x, T s, std::int64_t n) {
#pragma omp parallel for simd schedule(static)
  for (std::int64_t i = 0; i < n; ++i) x[i] *= s;
}

template void gelu_forward<float>(float*, const float*, std::int64_t);
template void gelu_forward<double>(double*, const double*, std::int64_t);
template void gelu_backward<float>(float*, const float*, const float*, std::int64_t);
template void gelu_backward<double>(double*, const double*, const double*, std::int64_t);
template void add<float>(float*, const float*, const float*, std::int64_t);
template void add<double>(double*, const double*, const double*, std::int64_t);
template void mul<float>(float*, const float*, const float*, std::int64_t);
template void mul<double>(double*, const double*, const double*, std::int64_t);
template void scale<float>(float*, float, std::int64_t);
template void scale<double>(double*, double, std::int64_t);

}  // namespace tb::cpu
