// Element types a backend stores. Enumerators are serialised by name (dtype_name) and
// never change meaning; new ones are appended.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace tb {

// bf16 and f16 are storage types: 16-bit encodings (tb/number_format.h) of tensors that a
// reduced-precision training step keeps (saved activations, activation gradients, the
// low-precision copy of the weights). Arithmetic on them is in fp32.
enum class DType : std::uint8_t { f32, f64, i32, bf16, f16 };

constexpr std::size_t dtype_size(DType t) {
  switch (t) {
    case DType::f32:
      return 4;
    case DType::f64:
      return 8;
    case DType::i32:
      return 4;
    case DType::bf16:
    case DType::f16:
      return 2;
  }
  return 0;
}

constexpr std::string_view dtype_name(DType t) {
  switch (t) {
    case DType::f32:
      return "f32";
    case DType::f64:
      return "f64";
    case DType::i32:
      return "i32";
    case DType::bf16:
      return "bf16";
    case DType::f16:
      return "f16";
  }
  return "?";
}

// A 16-bit storage type (bf16, f16).
constexpr bool is_reduced_float(DType t) { return t == DType::bf16 || t == DType::f16; }

template <class T>
constexpr DType dtype_of();
template <>
constexpr DType dtype_of<float>() {
  return DType::f32;
}
template <>
constexpr DType dtype_of<double>() {
  return DType::f64;
}
template <>
constexpr DType dtype_of<std::int32_t>() {
  return DType::i32;
}

}  // namespace tb
