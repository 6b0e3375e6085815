// Reduced-precision number formats for mixed-precision training: bf16, fp16, tf32 and the
// two FP8 formats. Pure numerics: round-to-nearest-even (RNE) conversions float → format →
// float, bit encodings for storage at reduced width, array versions (OpenMP), amax and the
// scaled FP8 casts of delayed scaling. Nothing here knows about models or backends.
//
// Semantics follow IEEE 754-2019 (§4.3.1 roundTiesToEven; §7.4 overflow: a result rounds
// "as though the exponent range were unbounded", and overflows when that rounded value
// exceeds the largest finite number) and, for FP8, Micikevicius et al. 2022, "FP8 Formats
// for Deep Learning" (arXiv:2209.05433, Table 1) / the OCP 8-bit Floating Point
// Specification (OFP8) v1.0:
//   format  exp/man  bias  max finite        min normal  min subnormal  inf  NaN
//   fp32    8 / 23   127   (2−2⁻²³)·2¹²⁷     2⁻¹²⁶       2⁻¹⁴⁹          yes  yes
//   tf32    8 / 10   127   (2−2⁻¹⁰)·2¹²⁷     2⁻¹²⁶       2⁻¹³⁶          yes  yes
//   bf16    8 / 7    127   (2−2⁻⁷)·2¹²⁷      2⁻¹²⁶       2⁻¹³³          yes  yes
//   fp16    5 / 10   15    65504             2⁻¹⁴        2⁻²⁴           yes  yes
//   e4m3    4 / 3    7     448               2⁻⁶         2⁻⁹            no   S.1111.111 only
//   e5m2    5 / 2    15    57344             2⁻¹⁴        2⁻¹⁶           yes  yes (IEEE-like)
// tf32 is fp32 with the low 13 mantissa bits zero (stored in 4 bytes); fp32 subnormals are
// rounded to 10 mantissa bits too, so its subnormal spacing is 2⁻¹²⁶·2⁻¹⁰ = 2⁻¹³⁶.
//
// Rounding rules (all formats):
//   * finite values: RNE at the format's spacing, subnormals included (spacing = min
//     subnormal below the min normal); the sign of a zero result is the input's sign.
//   * overflow, Overflow::format_default: a value overflows when RNE with an unbounded
//     exponent gives a magnitude above max finite. For fp16/bf16/tf32/e5m2 (max has an odd
//     mantissa, all ones) that is |x| ≥ max + ½ulp, e.g. fp16 65520 → inf, e5m2 61440 → inf;
//     the result is ±inf. e4m3 has no inf and its max 1.110₂·2⁸ = 448 has an EVEN mantissa,
//     so the tie 464 = 448 + ½ulp rounds to 448 and only |x| > 464 overflows — to NaN
//     (OFP8 non-saturating mode). This is the threshold of NVIDIA's cuda_fp8.hpp
//     (__nv_cvt_double_to_fp8: "FP8_OVERFLOW_THRESHOLD = maxnorm + 1/2ulp", overflow iff
//     |x| > it for E4M3, |x| ≥ it for E5M2).
//   * overflow, Overflow::saturate: ±max finite instead (OFP8 saturating mode,
//     __NV_SATFINITE), including for ±inf inputs.
//   * ±inf in → ±inf (format_default; e4m3: NaN) or ±max (saturate).
//   * NaN in → NaN out (sign kept; quiet). e4m3's only NaN is S.1111.111.
// fp32 is the identity except that Overflow::saturate maps ±inf to ±FLT_MAX.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace tb {

enum class NumberFormat : std::uint8_t { fp32, tf32, bf16, fp16, e4m3, e5m2 };

enum class Overflow : std::uint8_t {
  format_default,  // ±inf (fp32, tf32, bf16, fp16, e5m2); NaN (e4m3, which has no inf)
  saturate,        // ±max finite
};

struct NumberFormatInfo {
  int exponent_bits;
  int mantissa_bits;  // explicit (stored) fraction bits
  int exponent_bias;
  float max_finite;
  float min_normal;
  float min_subnormal;
  bool has_infinity;
  std::size_t storage_bytes;  // tf32 is stored in 4 bytes (an fp32 with 13 zero bits)
};

constexpr NumberFormatInfo number_format_info(NumberFormat f) {
  switch (f) {
    case NumberFormat::fp32:
      return {8, 23, 127, 0x1.fffffep127f, 0x1p-126f, 0x1p-149f, true, 4};
    case NumberFormat::tf32:
      return {8, 10, 127, 0x1.ffcp127f, 0x1p-126f, 0x1p-136f, true, 4};
    case NumberFormat::bf16:
      return {8, 7, 127, 0x1.fep127f, 0x1p-126f, 0x1p-133f, true, 2};
    case NumberFormat::fp16:
      return {5, 10, 15, 65504.0f, 0x1p-14f, 0x1p-24f, true, 2};
    case NumberFormat::e4m3:
      return {4, 3, 7, 448.0f, 0x1p-6f, 0x1p-9f, false, 1};
    case NumberFormat::e5m2:
      return {5, 2, 15, 57344.0f, 0x1p-14f, 0x1p-16f, true, 1};
  }
  return {};
}

inline constexpr NumberFormat kAllNumberFormats[] = {NumberFormat::fp32, NumberFormat::tf32,
                                                     NumberFormat::bf16, NumberFormat::fp16,
                                                     NumberFormat::e4m3, NumberFormat::e5m2};

// "fp32", "tf32", "bf16", "fp16", "e4m3", "e5m2".
constexpr std::string_view number_format_name(NumberFormat f) {
  switch (f) {
    case NumberFormat::fp32:
      return "fp32";
    case NumberFormat::tf32:
      return "tf32";
    case NumberFormat::bf16:
      return "bf16";
    case NumberFormat::fp16:
      return "fp16";
    case NumberFormat::e4m3:
      return "e4m3";
    case NumberFormat::e5m2:
      return "e5m2";
  }
  return "?";
}

// Inverse of number_format_name; throws std::invalid_argument naming the string otherwise.
NumberFormat parse_number_format(std::string_view s);

// ---- scalar conversions -------------------------------------------------------------------

// x rounded to the nearest value of f (ties to even), returned as a float (exact: every
// value of every format is a float). See the rules above.
float round_to(NumberFormat f, float x, Overflow o = Overflow::format_default);

// Storage encodings: encode = round_to then pack; decode is exact. A NaN encodes as the
// format's canonical quiet NaN with the input's sign (bf16 S.11111111.1000000, fp16
// S.11111.1000000000, e5m2 S.11111.10, e4m3 S.1111.111), and round_to gives that NaN as a
// float (tf32: S.11111111.1000000000; fp32 returns a NaN input unchanged). Every NaN pattern
// decodes to a float NaN of the same sign (bf16 decode is the 16-bit shift, payload kept;
// fp16 and FP8 NaNs decode to the canonical quiet float NaN).
std::uint16_t encode_bf16(float x, Overflow o = Overflow::format_default);
float decode_bf16(std::uint16_t bits);
std::uint16_t encode_fp16(float x, Overflow o = Overflow::format_default);
float decode_fp16(std::uint16_t bits);
std::uint8_t encode_e4m3(float x, Overflow o = Overflow::format_default);
float decode_e4m3(std::uint8_t bits);
std::uint8_t encode_e5m2(float x, Overflow o = Overflow::format_default);
float decode_e5m2(std::uint8_t bits);

// ---- arrays (OpenMP-threaded; results identical to the scalar functions) ------------------

// x[i] = round_to(f, x[i], o).
void round_array(NumberFormat f, float* x, std::int64_t n, Overflow o = Overflow::format_default);
// out[i] = round_to(f, x[i], o). out may equal x.
void round_array(NumberFormat f, const float* x, float* out, std::int64_t n,
                 Overflow o = Overflow::format_default);

// 16-bit storage: f is bf16 or fp16; 8-bit storage: f is e4m3 or e5m2. Any other format
// throws std::invalid_argument.
void encode_array(NumberFormat f, const float* x, std::uint16_t* out, std::int64_t n,
                  Overflow o = Overflow::format_default);
void decode_array(NumberFormat f, const std::uint16_t* bits, float* out, std::int64_t n);
void encode_array(NumberFormat f, const float* x, std::uint8_t* out, std::int64_t n,
                  Overflow o = Overflow::format_default);
void decode_array(NumberFormat f, const std::uint8_t* bits, float* out, std::int64_t n);

// max |x[i]| (0 for n = 0); NaN when any element is NaN. +inf when any is ±inf (and none NaN).
float amax(const float* x, std::int64_t n);

// ---- scaled FP8 (delayed scaling: the scale comes from an amax history) ------------------
// f is e4m3 or e5m2 (else std::invalid_argument). encode: out[i] = encode(x[i]·scale), the
// product formed in fp32 as Transformer Engine's cast kernels do (exact when scale is a power
// of two). The default is Overflow::saturate, as in those kernels (__NV_SATFINITE): with a
// scale from past amaxes a new, larger value must clip to ±max, not become NaN/inf.
// decode: out[i] = decode(bits[i]) / scale (one correctly rounded fp32 division).
void encode_scaled(NumberFormat f, const float* x, float scale, std::uint8_t* out, std::int64_t n,
                   Overflow o = Overflow::saturate);
void decode_scaled(NumberFormat f, const std::uint8_t* bits, float scale, float* out,
                   std::int64_t n);
// The round trip of both in one pass, for GEMM emulation: out[i] = decode(encode(x[i]·scale))
// / scale, identical to decode_scaled(encode_scaled(x)). out may equal x.
void quantize_scaled(NumberFormat f, const float* x, float scale, float* out, std::int64_t n,
                     Overflow o = Overflow::saturate);

}  // namespace tb
