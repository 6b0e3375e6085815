#include "staging.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "tb/number_format.h"

namespace tb::cpu {

namespace {

NumberFormat storage_format(DType t) {
  return t == DType::bf16 ? NumberFormat::bf16 : NumberFormat::fp16;
}

}  // namespace

Tensor Staging::scratch_like(const Tensor& t, DType dtype) {
  const std::size_t bytes = static_cast<std::size_t>(t.numel()) * dtype_size(dtype);
  return Tensor(arena_.take(bytes), dtype, t.shape);
}

Tensor Staging::in(const Tensor& t) {
  if (t.empty() || !is_reduced_float(t.dtype)) return t;
  Tensor f = scratch_like(t, DType::f32);
  decode_array(storage_format(t.dtype), static_cast<const std::uint16_t*>(t.ptr),
               static_cast<float*>(f.ptr), t.numel());
  return f;
}

Tensor Staging::out(const Tensor& t, bool load) {
  if (t.empty() || !is_reduced_float(t.dtype)) return t;
  Tensor f = load ? in(t) : scratch_like(t, DType::f32);
  outputs_.emplace_back(t, f);
  return f;
}

Tensor Staging::temp(const Tensor& t) {
  if (t.empty() || !is_reduced_float(t.dtype)) return t;
  return scratch_like(t, DType::f32);
}

void count_rounding(NumberFormat f, const float* x, std::int64_t n, float scale,
                    RoundingStats& stats) {
  const NumberFormatInfo info = number_format_info(f);
  // RNE at the format's spacing: |v| ≤ min_subnormal/2 rounds to zero (the tie goes to the
  // even zero); below min_normal the result is subnormal; at or beyond max + ½ulp (e4m3:
  // beyond) it overflows, unless the cast saturates (FP8 operands).
  const double zero_below = 0.5 * info.min_subnormal, normal = info.min_normal;
  const double half_ulp_max = std::ldexp(1.0, std::ilogb(info.max_finite) - info.mantissa_bits - 1);
  const double overflow_at = double(info.max_finite) + half_ulp_max;
  const bool saturating = f == NumberFormat::e4m3 || f == NumberFormat::e5m2;
  std::int64_t under = 0, sub = 0, over = 0;
#pragma omp parallel for reduction(+ : under, sub, over) schedule(static)
  for (std::int64_t i = 0; i < n; ++i) {
    const double v = std::fabs(double(x[i]) * scale);
    if (v == 0 || !std::isfinite(v)) continue;
    if (v <= zero_below) {
      ++under;
    } else if (v < normal) {
      ++sub;
    } else if (!saturating && v >= overflow_at) {
      ++over;
    }
  }
  stats.values += n;
  stats.underflow += under;
  stats.subnormal += sub;
  stats.overflow += over;
}

Tensor Staging::gemm_operand(const Tensor& x, const Tensor& stored, const GemmOperand& op,
                             bool counted) {
  if (op.amax)
    *op.amax = x.dtype == DType::f32 ? amax(static_cast<const float*>(x.ptr), x.numel())
                                     : std::numeric_limits<float>::quiet_NaN();
  if (op.format == NumberFormat::fp32) return x;
  if (x.dtype != DType::f32) {
    throw std::invalid_argument(
        "GEMM operand format " + std::string(number_format_name(op.format)) +
        " needs fp32 or 16-bit tensors, got " + std::string(dtype_name(x.dtype)));
  }
  const bool already = (op.format == NumberFormat::bf16 && stored.dtype == DType::bf16) ||
                       (op.format == NumberFormat::fp16 && stored.dtype == DType::f16);
  if (already) return x;  // decoding was exact: the values are the format's
  const auto* src = static_cast<const float*>(x.ptr);
  const bool fp8 = op.format == NumberFormat::e4m3 || op.format == NumberFormat::e5m2;
  if (counted && stats_) count_rounding(op.format, src, x.numel(), fp8 ? op.scale : 1.0f, *stats_);
  Tensor r = scratch_like(x, DType::f32);
  auto* dst = static_cast<float*>(r.ptr);
  if (fp8) {
    if (!(op.scale > 0) || !std::isfinite(op.scale)) {
      throw std::invalid_argument("FP8 GEMM operand scale = " + std::to_string(op.scale) +
                                  " (expected a finite value > 0)");
    }
    quantize_scaled(op.format, src, op.scale, dst, x.numel());
  } else {
    round_array(op.format, src, dst, x.numel());
  }
  return r;
}

void Staging::commit() {
  for (const auto& [t, f] : outputs_) {
    if (stats_) {
      count_rounding(storage_format(t.dtype), static_cast<const float*>(f.ptr), t.numel(), 1.0f,
                     *stats_);
    }
    encode_array(storage_format(t.dtype), static_cast<const float*>(f.ptr),
                 static_cast<std::uint16_t*>(t.ptr), t.numel());
  }
  outputs_.clear();
}

void convert(const Tensor& dst, const Tensor& src) {
  if (dst.numel() != src.numel()) {
    throw std::invalid_argument("convert: dst " + shape_string(dst.shape) + " and src " +
                                shape_string(src.shape) + " differ in size");
  }
  const auto ok = [](DType t) { return t == DType::f32 || is_reduced_float(t); };
  if (!ok(dst.dtype) || !ok(src.dtype)) {
    throw std::invalid_argument("convert: " + std::string(dtype_name(src.dtype)) + " -> " +
                                std::string(dtype_name(dst.dtype)) +
                                " (expected f32, bf16 or f16 on both sides)");
  }
  const std::int64_t n = src.numel();
  if (dst.dtype == src.dtype) {
    std::memcpy(dst.ptr, src.ptr, dst.bytes());
  } else if (src.dtype == DType::f32) {
    encode_array(storage_format(dst.dtype), static_cast<const float*>(src.ptr),
                 static_cast<std::uint16_t*>(dst.ptr), n);
  } else if (dst.dtype == DType::f32) {
    decode_array(storage_format(src.dtype), static_cast<const std::uint16_t*>(src.ptr),
                 static_cast<float*>(dst.ptr), n);
  } else {
    // bf16 <-> f16 through fp32, which holds every value of both exactly.
    std::vector<float> tmp(static_cast<std::size_t>(n));
    decode_array(storage_format(src.dtype), static_cast<const std::uint16_t*>(src.ptr), tmp.data(),
                 n);
    encode_array(storage_format(dst.dtype), tmp.data(), static_cast<std::uint16_t*>(dst.ptr), n);
  }
}

}  // namespace tb::cpu
