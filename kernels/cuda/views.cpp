#include "views.h"

namespace tb::cuda {

void fail(const char* op, const std::string& what) {
  throw std::invalid_argument(std::string(op) + ": " + what);
}

Elem elem_of(const Tensor& t, const char* op, const char* name) {
  switch (t.dtype) {
    case DType::f32:
      return Elem::f32;
    case DType::bf16:
      return Elem::bf16;
    case DType::f16:
      return Elem::f16;
    case DType::f64:
      fail(op, std::string(name) +
                   " is f64; the CUDA backend takes f32, bf16 or f16 (the f64 path is the CPU "
                   "reference)");
    default:
      fail(op, std::string(name) + " is " + std::string(dtype_name(t.dtype)) +
                   " (expected f32, bf16 or f16)");
  }
}

std::size_t elem_size(Elem e) { return e == Elem::f32 ? 4 : 2; }

DType dtype_of(Elem e) {
  switch (e) {
    case Elem::bf16:
      return DType::bf16;
    case Elem::f16:
      return DType::f16;
    default:
      return DType::f32;
  }
}

cudaDataType_t lt_type(Elem e) {
  switch (e) {
    case Elem::bf16:
      return CUDA_R_16BF;
    case Elem::f16:
      return CUDA_R_16F;
    default:
      return CUDA_R_32F;
  }
}

}  // namespace tb::cuda
