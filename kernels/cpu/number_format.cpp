// Number-format conversions (tb/number_format.h) by integer manipulation of IEEE 754 binary32
// bit patterns: exact, branch-light, and independent of the FPU rounding mode.
//
// The core step is RNE on a bit pattern. For a finite, non-negative fp32 magnitude a,
//   (a + (2^(d−1) − 1) + ((a >> d) & 1)) >> d
// keeps all but the low d bits, rounding to nearest with ties to the even kept pattern: the
// addend carries into bit d exactly when the dropped part exceeds half, or equals half and the
// kept LSB is odd. A carry out of the mantissa increments the exponent field, which is again
// the correctly rounded value (1.11…1·2^e → 1.0·2^(e+1)) and, at the top binade, the IEEE
// infinity pattern — IEEE 754-2019 §7.4's "round as though the exponent range were
// unbounded, then overflow". Formats with the fp32 exponent range (bf16, tf32) need nothing
// else; fp16 and FP8 rebias the exponent first and treat their subnormal range separately.
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>

#include "tb/number_format.h"

namespace tb {

namespace {

constexpr std::uint32_t kF32Sign = 0x80000000u;
constexpr std::uint32_t kF32Abs = 0x7FFFFFFFu;
constexpr std::uint32_t kF32Inf = 0x7F800000u;
constexpr std::uint32_t kF32Max = 0x7F7FFFFFu;
constexpr std::uint32_t kF32QuietNaN = 0x7FC00000u;

// Below this many elements the array functions stay on the calling thread.
constexpr std::int64_t kParallelMin = 1 << 15;

inline std::uint32_t to_bits(float x) { return std::bit_cast<std::uint32_t>(x); }
inline constexpr float from_bits(std::uint32_t b) { return std::bit_cast<float>(b); }

// RNE of v to a multiple of 2^d, returned divided by 2^d (1 ≤ d ≤ 30, v < 2^31).
template <int kDrop>
inline constexpr std::uint32_t rne_shift(std::uint32_t v) {
  static_assert(kDrop >= 1 && kDrop <= 30);
  return (v + ((1u << (kDrop - 1)) - 1u) + ((v >> kDrop) & 1u)) >> kDrop;
}
inline constexpr std::uint32_t rne_shift(std::uint32_t v, int d) {
  return (v + ((1u << (d - 1)) - 1u) + ((v >> d) & 1u)) >> d;
}

// ---- formats with the fp32 exponent range: bf16 (drop 16 bits), tf32 (drop 13 bits) ----
// Returns the fp32 bit pattern of the rounded value.
template <int kDrop>
inline std::uint32_t round_fp32_range(std::uint32_t u, Overflow o) {
  constexpr std::uint32_t kMax = kF32Inf - (1u << kDrop);  // all-ones kept mantissa
  const std::uint32_t s = u & kF32Sign;
  const std::uint32_t a = u & kF32Abs;
  if (a > kF32Inf) return s | kF32QuietNaN;
  if (a == kF32Inf) return o == Overflow::saturate ? (s | kMax) : u;
  std::uint32_t r = rne_shift<kDrop>(a) << kDrop;  // ≤ kF32Inf since a ≤ kF32Max
  if (r == kF32Inf && o == Overflow::saturate) r = kMax;
  return s | r;
}

inline std::uint16_t encode_bf16_impl(float x, Overflow o) {
  return static_cast<std::uint16_t>(round_fp32_range<16>(to_bits(x), o) >> 16);
}
inline constexpr float decode_bf16_impl(std::uint16_t b) {
  return from_bits(static_cast<std::uint32_t>(b) << 16);
}
inline float round_tf32_impl(float x, Overflow o) {
  return from_bits(round_fp32_range<13>(to_bits(x), o));
}
inline float round_fp32_impl(float x, Overflow o) {
  if (o == Overflow::saturate) {
    const std::uint32_t u = to_bits(x);
    if ((u & kF32Abs) == kF32Inf) return from_bits((u & kF32Sign) | kF32Max);
  }
  return x;
}

// ---- narrow formats: fp16 (5/10), e5m2 (5/2) — IEEE-like — and e4m3 (4/3, no inf) ----
// Bias 2^(E−1) − 1. IEEE-like: exponent all ones is inf (mantissa 0) or NaN. e4m3 (OFP8
// "E4M3FN"): exponent all ones is an ordinary binade except S.1111.111, the only NaN.
template <int E, int M, bool kIeee>
struct Narrow {
  static constexpr int kBias = (1 << (E - 1)) - 1;
  static constexpr int kEmin = 1 - kBias;  // unbiased exponent of the min normal
  static constexpr std::uint32_t kSign = 1u << (E + M);
  static constexpr std::uint32_t kExpMask = (1u << E) - 1u;
  static constexpr std::uint32_t kManMask = (1u << M) - 1u;
  static constexpr std::uint32_t kInf = kExpMask << M;  // IEEE-like only
  static constexpr std::uint32_t kNaN = kIeee ? (kInf | (1u << (M - 1))) : (kSign - 1u);
  static constexpr std::uint32_t kMax = kIeee ? kInf - 1u : kNaN - 1u;
  static constexpr std::uint32_t kOverflow = kIeee ? kInf : kNaN;  // format_default

  static std::uint32_t encode(float x, Overflow o) {
    const std::uint32_t u = to_bits(x);
    const std::uint32_t s = (u >> 31) << (E + M);
    const std::uint32_t a = u & kF32Abs;
    if (a > kF32Inf) return s | kNaN;
    if (a == kF32Inf) return s | (o == Overflow::saturate ? kMax : kOverflow);
    const int ef = static_cast<int>(a >> 23);  // biased fp32 exponent
    std::uint32_t r;
    if (ef - 127 >= kEmin) {
      // Normal in the target (or overflowing): rebias the exponent field, then RNE to M
      // mantissa bits; a carry into the exponent is the right answer (see the file comment).
      r = rne_shift<23 - M>(a - (static_cast<std::uint32_t>(127 - kBias) << 23));
    } else {
      // Subnormal in the target (or zero): |x| = sig·2^(e−150) with the 24-bit significand
      // (no implicit bit for fp32 subnormals, whose exponent is that of field 1). The target's
      // spacing here is 2^(kEmin−M), so the result pattern is RNE(sig / 2^shift); a result of
      // 2^M is the min normal's pattern, again correct.
      const std::uint32_t sig = ef ? ((a & 0x7FFFFFu) | 0x800000u) : a;
      const int e = ef ? ef : 1;
      const int shift = 150 + kEmin - M - e;  // > 23 − M ≥ 13
      // sig < 2^24: shift ≥ 25 leaves |x| < spacing/2, which rounds to zero.
      r = shift >= 25 ? 0u : rne_shift(sig, shift);
    }
    if (r > kMax) r = o == Overflow::saturate ? kMax : kOverflow;
    return s | r;
  }

  static constexpr float decode(std::uint32_t b) {
    const std::uint32_t s = ((b >> (E + M)) & 1u) << 31;
    const std::uint32_t ex = (b >> M) & kExpMask;
    const std::uint32_t man = b & kManMask;
    if (kIeee && ex == kExpMask) return from_bits(s | (man ? kF32QuietNaN : kF32Inf));
    if (!kIeee && ex == kExpMask && man == kManMask) return from_bits(s | kF32QuietNaN);
    if (ex == 0) {
      if (man == 0) return from_bits(s);
      // man·2^(kEmin−M) = 1.f·2^(kEmin−M+p) with p the position of man's leading one.
      const int p = std::bit_width(man) - 1;
      const auto fe = static_cast<std::uint32_t>(kEmin - M + p + 127);
      return from_bits(s | (fe << 23) | ((man ^ (1u << p)) << (23 - p)));
    }
    const auto fe = static_cast<std::uint32_t>(static_cast<int>(ex) - kBias + 127);
    return from_bits(s | (fe << 23) | (man << (23 - M)));
  }
};

using Fp16 = Narrow<5, 10, true>;
using E5m2 = Narrow<5, 2, true>;
using E4m3 = Narrow<4, 3, false>;

template <class F>
struct Table256 {
  float v[256];
  constexpr Table256() : v() {
    for (std::uint32_t b = 0; b < 256; ++b) v[b] = F::decode(b);
  }
};
constexpr Table256<E4m3> kE4m3Table;
constexpr Table256<E5m2> kE5m2Table;

inline std::uint8_t encode_e4m3_impl(float x, Overflow o) {
  return static_cast<std::uint8_t>(E4m3::encode(x, o));
}
inline std::uint8_t encode_e5m2_impl(float x, Overflow o) {
  return static_cast<std::uint8_t>(E5m2::encode(x, o));
}
inline std::uint16_t encode_fp16_impl(float x, Overflow o) {
  return static_cast<std::uint16_t>(Fp16::encode(x, o));
}
inline float decode_fp16_impl(std::uint16_t b) { return Fp16::decode(b); }

inline float round_impl(NumberFormat f, float x, Overflow o) {
  switch (f) {
    case NumberFormat::fp32:
      return round_fp32_impl(x, o);
    case NumberFormat::tf32:
      return round_tf32_impl(x, o);
    case NumberFormat::bf16:
      return decode_bf16_impl(encode_bf16_impl(x, o));
    case NumberFormat::fp16:
      return decode_fp16_impl(encode_fp16_impl(x, o));
    case NumberFormat::e4m3:
      return kE4m3Table.v[encode_e4m3_impl(x, o)];
    case NumberFormat::e5m2:
      return kE5m2Table.v[encode_e5m2_impl(x, o)];
  }
  return x;
}

// out[i] = fn(in[i]) over [0, n), threaded for large n.
template <class In, class Out, class Fn>
void map_array(const In* in, Out* out, std::int64_t n, Fn fn) {
#pragma omp parallel for schedule(static) if (parallel : n >= kParallelMin)
  for (std::int64_t i = 0; i < n; ++i) out[i] = fn(in[i]);
}

[[noreturn]] void bad_storage(NumberFormat f, const char* what) {
  throw std::invalid_argument(std::string(what) + ": number format " +
                              std::string(number_format_name(f)) +
                              " has no storage encoding of this width");
}

}  // namespace

NumberFormat parse_number_format(std::string_view s) {
  for (NumberFormat f : kAllNumberFormats) {
    if (number_format_name(f) == s) return f;
  }
  throw std::invalid_argument("number format '" + std::string(s) +
                              "' (expected fp32, tf32, bf16, fp16, e4m3 or e5m2)");
}

float round_to(NumberFormat f, float x, Overflow o) { return round_impl(f, x, o); }

std::uint16_t encode_bf16(float x, Overflow o) { return encode_bf16_impl(x, o); }
float decode_bf16(std::uint16_t bits) { return decode_bf16_impl(bits); }
std::uint16_t encode_fp16(float x, Overflow o) { return encode_fp16_impl(x, o); }
float decode_fp16(std::uint16_t bits) { return decode_fp16_impl(bits); }
std::uint8_t encode_e4m3(float x, Overflow o) { return encode_e4m3_impl(x, o); }
float decode_e4m3(std::uint8_t bits) { return kE4m3Table.v[bits]; }
std::uint8_t encode_e5m2(float x, Overflow o) { return encode_e5m2_impl(x, o); }
float decode_e5m2(std::uint8_t bits) { return kE5m2Table.v[bits]; }

void round_array(NumberFormat f, float* x, std::int64_t n, Overflow o) {
  round_array(f, x, x, n, o);
}

void round_array(NumberFormat f, const float* x, float* out, std::int64_t n, Overflow o) {
  switch (f) {
    case NumberFormat::fp32:
      return map_array(x, out, n, [o](float v) { return round_fp32_impl(v, o); });
    case NumberFormat::tf32:
      return map_array(x, out, n, [o](float v) { return round_tf32_impl(v, o); });
    case NumberFormat::bf16:
      return map_array(x, out, n,
                       [o](float v) { return decode_bf16_impl(encode_bf16_impl(v, o)); });
    case NumberFormat::fp16:
      return map_array(x, out, n,
                       [o](float v) { return decode_fp16_impl(encode_fp16_impl(v, o)); });
    case NumberFormat::e4m3:
      return map_array(x, out, n, [o](float v) { return kE4m3Table.v[encode_e4m3_impl(v, o)]; });
    case NumberFormat::e5m2:
      return map_array(x, out, n, [o](float v) { return kE5m2Table.v[encode_e5m2_impl(v, o)]; });
  }
}

void encode_array(NumberFormat f, const float* x, std::uint16_t* out, std::int64_t n, Overflow o) {
  if (f == NumberFormat::bf16)
    return map_array(x, out, n, [o](float v) { return encode_bf16_impl(v, o); });
  if (f == NumberFormat::fp16)
    return map_array(x, out, n, [o](float v) { return encode_fp16_impl(v, o); });
  bad_storage(f, "encode_array (16-bit)");
}

void decode_array(NumberFormat f, const std::uint16_t* bits, float* out, std::int64_t n) {
  if (f == NumberFormat::bf16) {
    return map_array(bits, out, n, [](std::uint16_t b) { return decode_bf16_impl(b); });
  }
  if (f == NumberFormat::fp16) {
    return map_array(bits, out, n, [](std::uint16_t b) { return decode_fp16_impl(b); });
  }
  bad_storage(f, "decode_array (16-bit)");
}

void encode_array(NumberFormat f, const float* x, std::uint8_t* out, std::int64_t n, Overflow o) {
  if (f == NumberFormat::e4m3)
    return map_array(x, out, n, [o](float v) { return encode_e4m3_impl(v, o); });
  if (f == NumberFormat::e5m2)
    return map_array(x, out, n, [o](float v) { return encode_e5m2_impl(v, o); });
  bad_storage(f, "encode_array (8-bit)");
}

void decode_array(NumberFormat f, const std::uint8_t* bits, float* out, std::int64_t n) {
  if (f == NumberFormat::e4m3) {
    return map_array(bits, out, n, [](std::uint8_t b) { return kE4m3Table.v[b]; });
  }
  if (f == NumberFormat::e5m2) {
    return map_array(bits, out, n, [](std::uint8_t b) { return kE5m2Table.v[b]; });
  }
  bad_storage(f, "decode_array (8-bit)");
}

float amax(const float* x, std::int64_t n) {
  float m = 0.0f;
  int any_nan = 0;
#pragma omp parallel for simd schedule(static) reduction(max  \
                                                         : m) \
    reduction(|                                               \
              : any_nan) if (parallel                         \
                             : n >= kParallelMin)
  for (std::int64_t i = 0; i < n; ++i) {
    const float a = std::fabs(x[i]);
    any_nan |= std::isnan(a) ? 1 : 0;
    m = a > m ? a : m;  // NaN compares false and is skipped; any_nan records it
  }
  return any_nan ? std::numeric_limits<float>::quiet_NaN() : m;
}

void encode_scaled(NumberFormat f, const float* x, float scale, std::uint8_t* out, std::int64_t n,
                   Overflow o) {
  if (f == NumberFormat::e4m3)
    return map_array(x, out, n, [o, scale](float v) { return encode_e4m3_impl(v * scale, o); });
  if (f == NumberFormat::e5m2)
    return map_array(x, out, n, [o, scale](float v) { return encode_e5m2_impl(v * scale, o); });
  bad_storage(f, "encode_scaled");
}

void decode_scaled(NumberFormat f, const std::uint8_t* bits, float scale, float* out,
                   std::int64_t n) {
  if (f == NumberFormat::e4m3) {
    return map_array(bits, out, n, [scale](std::uint8_t b) { return kE4m3Table.v[b] / scale; });
  }
  if (f == NumberFormat::e5m2) {
    return map_array(bits, out, n, [scale](std::uint8_t b) { return kE5m2Table.v[b] / scale; });
  }
  bad_storage(f, "decode_scaled");
}

void quantize_scaled(NumberFormat f, const float* x, float scale, float* out, std::int64_t n,
                     Overflow o) {
  if (f == NumberFormat::e4m3) {
    return map_array(x, out, n, [o, scale](float v) {
      return kE4m3Table.v[encode_e4m3_impl(v * scale, o)] / scale;
    });
  }
  if (f == NumberFormat::e5m2) {
    return map_array(x, out, n, [o, scale](float v) {
      return kE5m2Table.v[encode_e5m2_impl(v * scale, o)] / scale;
    });
  }
  bad_storage(f, "quantize_scaled");
}

}  // namespace tb
