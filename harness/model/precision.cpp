#include "precision.h"

#include <stdexcept>

namespace tb {

namespace {
constexpr PrecisionMode kModes[] = {PrecisionMode::fp32, PrecisionMode::tf32, PrecisionMode::bf16,
                                    PrecisionMode::fp16, PrecisionMode::fp8};
}

std::string_view precision_mode_name(PrecisionMode m) {
  switch (m) {
    case PrecisionMode::fp32:
      return "fp32";
    case PrecisionMode::tf32:
      return "tf32";
    case PrecisionMode::bf16:
      return "bf16";
    case PrecisionMode::fp16:
      return "fp16";
    case PrecisionMode::fp8:
      return "fp8";
  }
  return "?";
}

const std::vector<std::string>& precision_mode_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> v;
    for (PrecisionMode m : kModes) v.emplace_back(precision_mode_name(m));
    return v;
  }();
  return names;
}

PrecisionMode parse_precision_mode(std::string_view s) {
  for (PrecisionMode m : kModes) {
    if (precision_mode_name(m) == s) return m;
  }
  throw std::invalid_argument("precision = '" + std::string(s) +
                              "' (expected fp32, tf32, bf16, fp16 or fp8)");
}

DType activation_dtype(PrecisionMode m) {
  switch (m) {
    case PrecisionMode::bf16:
    case PrecisionMode::fp8:
      return DType::bf16;
    case PrecisionMode::fp16:
      return DType::f16;
    default:
      return DType::f32;
  }
}

DType gemm_weight_dtype(PrecisionMode m) { return activation_dtype(m); }

NumberFormat forward_gemm_format(PrecisionMode m) {
  switch (m) {
    case PrecisionMode::fp32:
      return NumberFormat::fp32;
    case PrecisionMode::tf32:
      return NumberFormat::tf32;
    case PrecisionMode::bf16:
      return NumberFormat::bf16;
    case PrecisionMode::fp16:
      return NumberFormat::fp16;
    case PrecisionMode::fp8:
      return NumberFormat::e4m3;
  }
  return NumberFormat::fp32;
}

NumberFormat gradient_gemm_format(PrecisionMode m) {
  return m == PrecisionMode::fp8 ? NumberFormat::e5m2 : forward_gemm_format(m);
}

}  // namespace tb
