// Backend tensors as the kernels' typed views (kernels.h), with the checks every operation
// shares: a floating tensor must be f32, bf16 or f16 (the f64 path is the CPU reference).
#pragma once
#include <cuda_runtime_api.h>
#include <library_types.h>

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "kernels.h"
#include "tb/tensor.h"

namespace tb::cuda {

// Throws std::invalid_argument "op: what".
[[noreturn]] void fail(const char* op, const std::string& what);
inline void expect(bool ok, const char* op, const std::string& what) {
  if (!ok) fail(op, what);
}

// The element type of a floating tensor; throws naming op and the tensor for any other dtype.
Elem elem_of(const Tensor& t, const char* op, const char* name);
inline In in(const Tensor& t, const char* op, const char* name) {
  return In{t.ptr, elem_of(t, op, name)};
}
inline Out out(const Tensor& t, const char* op, const char* name) {
  return Out{t.ptr, elem_of(t, op, name)};
}
// An absent optional tensor: a null view.
inline In in_or_null(const Tensor& t, const char* op, const char* name) {
  return t.empty() ? In{} : in(t, op, name);
}

std::size_t elem_size(Elem e);
DType dtype_of(Elem e);
cudaDataType_t lt_type(Elem e);

// t's data pointer moved `elems` elements on (elements of t's dtype).
inline void* offset(const Tensor& t, std::int64_t elems) {
  return static_cast<unsigned char*>(t.ptr) +
         elems * static_cast<std::int64_t>(dtype_size(t.dtype));
}

}  // namespace tb::cuda
