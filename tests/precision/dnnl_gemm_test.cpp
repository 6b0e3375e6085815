// oneDNN's 16-bit GEMM (kernels/cpu/dnnl_gemm.h) against a double-precision GEMM of the decoded
// inputs, and what runs it on this CPU.
//
// Error bound. A bf16·bf16 (fp16·fp16) product is exact in fp32, so a GEMM accumulating in fp32
// errs only by its additions: at most (K − 1)·u·Σ|a·b| for K terms in any order (u = 2⁻²⁴;
// Higham, "Accuracy and Stability of Numerical Algorithms", 2002, §3.1), plus a rounding each
// for alpha, beta·c and its addition, and the bias's. The test allows twice that —
// (K + 3)·2⁻²³·(|α|·Σ|a·b| + |β·c| + |bias|) — and, for a 16-bit C, the final rounding's
// u_C·|C| on top (u_C = 2⁻⁸ bf16, 2⁻¹¹ fp16). AVX512-BF16's VDPBF16PS and AMX's TDPBF16PS add
// the products one at a time in fp32 (RNE; subnormals flushed, which normal data never meets).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "dnnl_gemm.h"
#include "precision/gemm_path_scope.h"
#include "tb/cpu_backend.h"
#include "tb/number_format.h"

namespace tb::test {
namespace {

using cpu::DnnlGemm;
using cpu::DnnlImpl;
using cpu::GemmType;

NumberFormat format(GemmType t) {
  return t == GemmType::bf16 ? NumberFormat::bf16 : NumberFormat::fp16;
}
double decode16(GemmType t, std::uint16_t bits) {
  return t == GemmType::bf16 ? decode_bf16(bits) : decode_fp16(bits);
}
double unit_roundoff(GemmType t) {
  return t == GemmType::bf16 ? 0x1p-8 : t == GemmType::f16 ? 0x1p-11 : 0.0;
}

// Whether /proc/cpuinfo lists `flag` for this CPU.
bool cpu_flag(const std::string& flag) {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("flags", 0) != 0) continue;
    std::istringstream words(line);
    std::string w;
    while (words >> w) {
      if (w == flag) return true;
    }
    return false;
  }
  return false;
}

// 64-byte aligned scratchpad for a GEMM.
struct Scratchpad {
  explicit Scratchpad(std::size_t bytes)
      : p(bytes ? std::aligned_alloc(64, (bytes + 63) / 64 * 64) : nullptr, std::free) {}
  std::unique_ptr<void, decltype(&std::free)> p;
};

void run(const DnnlGemm& g, const void* A, const void* B, const float* bias, void* C) {
  const DnnlImpl impl = cpu::dnnl_gemm_impl(g);
  Scratchpad pad(impl.scratchpad_bytes);
  cpu::dnnl_gemm(g, A, B, bias, C, pad.p.get());
}

// A matrix of 16-bit values (type t) and their decoded values.
struct Matrix16 {
  std::vector<std::uint16_t> bits;
  std::vector<double> values;
};
Matrix16 random16(GemmType t, std::size_t n, std::mt19937& rng) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  Matrix16 m;
  m.bits.resize(n);
  std::vector<float> f(n), back(n);
  for (auto& x : f) x = normal(rng);
  encode_array(format(t), f.data(), m.bits.data(), std::int64_t(n));
  decode_array(format(t), m.bits.data(), back.data(), std::int64_t(n));
  m.values.assign(back.begin(), back.end());
  return m;
}

struct Shape {
  int M, N, K;
};
// Odd shapes, none a multiple of the 16-element blocks of AVX-512 and AMX tiles, and one that is.
constexpr Shape kShapes[] = {{1, 1, 1}, {17, 33, 65}, {127, 5, 300}, {64, 48, 96}};

struct Scalars {
  float alpha, beta;
  bool bias;
};

// One GEMM of types ab and c, against the f64 GEMM of the decoded inputs; padded leading
// dimensions, whose padding must stay untouched. Returns the number of elements out of bound.
int check_gemm(GemmType ab, GemmType c, bool ta, bool tb, Shape s, Scalars k, std::mt19937& rng) {
  const int pad = 3;
  const int a_rows = ta ? s.K : s.M, a_cols = ta ? s.M : s.K;
  const int b_rows = tb ? s.N : s.K, b_cols = tb ? s.K : s.N;
  DnnlGemm g;
  g.trans_a = ta;
  g.trans_b = tb;
  g.M = s.M;
  g.N = s.N;
  g.K = s.K;
  g.lda = a_cols + pad;
  g.ldb = b_cols + pad;
  g.ldc = s.N + pad;
  g.ab = ab;
  g.c = c;
  g.bias = k.bias;
  g.alpha = k.alpha;
  g.beta = k.beta;
  const Matrix16 A = random16(ab, std::size_t(a_rows) * g.lda, rng);
  const Matrix16 B = random16(ab, std::size_t(b_rows) * g.ldb, rng);
  const std::size_t c_elems = std::size_t(s.M) * g.ldc;
  std::vector<float> bias(std::size_t(s.N));
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (float& b : bias) b = normal(rng);
  // C's initial values (as C's type holds them) and storage.
  Matrix16 C16;
  std::vector<float> C32(c_elems);
  std::vector<double> c0(c_elems);
  if (c == GemmType::f32) {
    for (std::size_t i = 0; i < c_elems; ++i) c0[i] = C32[i] = normal(rng);
  } else {
    C16 = random16(c, c_elems, rng);
    c0 = C16.values;
  }
  const Matrix16 C16_before = C16;
  const std::vector<float> C32_before = C32;
  void* C = c == GemmType::f32 ? static_cast<void*>(C32.data()) : C16.bits.data();
  run(g, A.bits.data(), B.bits.data(), k.bias ? bias.data() : nullptr, C);

  int bad = 0;
  for (int i = 0; i < s.M; ++i) {
    for (int j = 0; j < g.ldc; ++j) {
      const std::size_t ij = std::size_t(i) * g.ldc + std::size_t(j);
      const double got = c == GemmType::f32 ? double(C32[ij]) : decode16(c, C16.bits[ij]);
      if (j >= s.N) {  // padding is untouched
        bad += c == GemmType::f32 ? C32[ij] != C32_before[ij] : C16.bits[ij] != C16_before.bits[ij];
        continue;
      }
      double sum = 0, mag = 0;
      for (int p = 0; p < s.K; ++p) {
        const double a =
            ta ? A.values[std::size_t(p) * g.lda + i] : A.values[std::size_t(i) * g.lda + p];
        const double b =
            tb ? B.values[std::size_t(j) * g.ldb + p] : B.values[std::size_t(p) * g.ldb + j];
        sum += a * b;
        mag += std::fabs(a * b);
      }
      const double cb = k.beta == 0 ? 0.0 : double(k.beta) * c0[ij];
      const double want = double(k.alpha) * sum + (k.bias ? bias[std::size_t(j)] : 0.0) + cb;
      const double fp32_bound = (s.K + 3) * 0x1p-23 *
                                (std::fabs(k.alpha) * mag + std::fabs(cb) +
                                 (k.bias ? std::fabs(bias[std::size_t(j)]) : 0.0));
      const double tol = fp32_bound + unit_roundoff(c) * (std::fabs(want) + fp32_bound);
      if (!(std::fabs(got - want) <= tol) && bad++ < 5) {
        ADD_FAILURE() << "C(" << i << "," << j << ") = " << got << ", f64 " << want << ", bound "
                      << tol;
      }
    }
  }
  return bad;
}

// A square GEMM with an fp32 result, as the backend's probe runs.
DnnlGemm square(GemmType ab) {
  DnnlGemm g;
  g.M = g.N = g.K = g.lda = g.ldb = g.ldc = 64;
  g.ab = ab;
  return g;
}

TEST(DnnlGemm, NativeWhereTheCpuHasBf16Instructions) {
  const DnnlImpl bf16 = cpu::dnnl_gemm_impl(square(GemmType::bf16));
  const DnnlImpl f16 = cpu::dnnl_gemm_impl(square(GemmType::f16));
  std::printf("[ oneDNN ] %s, ISA %s\n[ oneDNN ] bf16: %s (%s)\n[ oneDNN ] fp16: %s (%s)\n",
              cpu::dnnl_built() ? ("version " + cpu::dnnl_version()).c_str() : "not built",
              cpu::dnnl_isa().c_str(), bf16.impl.c_str(), bf16.native ? "native" : "not native",
              f16.impl.c_str(), f16.native ? "native" : "not native");
  std::printf("[ oneDNN ] bf16 GEMMs: %s\n", cpu_gemm_description(DType::bf16).c_str());
  RecordProperty("bf16_gemm", cpu_gemm_description(DType::bf16));
  RecordProperty("fp16_gemm", cpu_gemm_description(DType::f16));
  EXPECT_EQ(cpu_native_bf16_gemm(), bf16.native);
  EXPECT_EQ(cpu_native_fp16_gemm(), f16.native);
  if (!cpu::dnnl_built()) {
    EXPECT_FALSE(bf16.native);
    EXPECT_TRUE(cpu::dnnl_isa().empty());
    EXPECT_NE(cpu_gemm_description(DType::bf16).find("built without oneDNN"), std::string::npos);
    return;
  }
  EXPECT_FALSE(cpu::dnnl_isa().empty());
  EXPECT_EQ(cpu_gemm_isa(), cpu::dnnl_isa());
  // A CPU with bf16 dot-product instructions runs bf16 GEMMs in jitted code, named with the ISA.
  if (cpu_flag("avx512_bf16") || cpu_flag("amx_bf16")) {
    EXPECT_TRUE(bf16.native) << bf16.impl;
    EXPECT_NE(bf16.impl.rfind("ref", 0), 0u) << bf16.impl;
    EXPECT_NE(cpu::dnnl_isa().find("avx512_core"), std::string::npos) << cpu::dnnl_isa();
    EXPECT_NE(cpu_gemm_description(DType::bf16).find("native, ISA " + cpu::dnnl_isa()),
              std::string::npos)
        << cpu_gemm_description(DType::bf16);
  }
  // A type oneDNN has no matmul for (fp16 in oneDNN 2.6) is named as such.
  if (f16.impl == "unimplemented") {
    EXPECT_NE(cpu_gemm_description(DType::f16).find("has no fp16 matmul on ISA " + cpu::dnnl_isa()),
              std::string::npos)
        << cpu_gemm_description(DType::f16);
  }
  // Forcing the emulation: nothing is native, and the description says why.
  const GemmPathScope emulated(CpuGemmPath::emulated);
  EXPECT_FALSE(cpu_native_bf16_gemm());
  EXPECT_FALSE(cpu_native_fp16_gemm());
  EXPECT_NE(cpu_gemm_description(DType::bf16).find("emulated path forced"), std::string::npos);
}

// Every transpose combination and odd shapes, fp32 C: alpha and beta, and accumulation (β = 1).
TEST(DnnlGemm, Bf16MatchesF64OfDecodedInputs) {
  if (!cpu::dnnl_built()) GTEST_SKIP() << "built without oneDNN";
  std::mt19937 rng(42);
  for (const Shape s : kShapes) {
    for (bool ta : {false, true}) {
      for (bool tb : {false, true}) {
        for (const Scalars k : {Scalars{1, 0, false}, Scalars{0.75f, -0.5f, false},
                                Scalars{1, 1, false}, Scalars{1, 1, true}}) {
          SCOPED_TRACE(testing::Message()
                       << s.M << "x" << s.N << "x" << s.K << " ta=" << ta << " tb=" << tb
                       << " alpha=" << k.alpha << " beta=" << k.beta << " bias=" << k.bias);
          EXPECT_EQ(check_gemm(GemmType::bf16, GemmType::f32, ta, tb, s, k, rng), 0);
        }
      }
    }
  }
}

// A bf16 C (the backend's bf16 activations and input gradients): one rounding of the fp32
// result, reading C when accumulating.
TEST(DnnlGemm, Bf16ResultRoundedOnce) {
  if (!cpu::dnnl_built()) GTEST_SKIP() << "built without oneDNN";
  std::mt19937 rng(7);
  for (const Shape s : kShapes) {
    for (bool ta : {false, true}) {
      for (bool tb : {false, true}) {
        for (const Scalars k : {Scalars{1, 0, false}, Scalars{1, 1, true}}) {
          SCOPED_TRACE(testing::Message() << s.M << "x" << s.N << "x" << s.K << " ta=" << ta
                                          << " tb=" << tb << " beta=" << k.beta);
          EXPECT_EQ(check_gemm(GemmType::bf16, GemmType::bf16, ta, tb, s, k, rng), 0);
        }
      }
    }
  }
}

// fp16 operands: natively where oneDNN has an implementation for this CPU; its reference code
// otherwise (which the backend does not use, but whose descriptors must still be right).
TEST(DnnlGemm, Fp16MatchesF64OfDecodedInputs) {
  const DnnlImpl impl = cpu::dnnl_gemm_impl(square(GemmType::f16));
  if (!cpu::dnnl_built() || impl.impl == "unimplemented") GTEST_SKIP() << impl.impl;
  std::mt19937 rng(5);
  for (const Shape s : {Shape{17, 33, 65}, Shape{1, 1, 1}}) {
    for (bool ta : {false, true}) {
      for (bool tb : {false, true}) {
        SCOPED_TRACE(testing::Message()
                     << s.M << "x" << s.N << "x" << s.K << " ta=" << ta << " tb=" << tb);
        EXPECT_EQ(check_gemm(GemmType::f16, GemmType::f32, ta, tb, s, {1, 1, true}, rng), 0);
        EXPECT_EQ(check_gemm(GemmType::f16, GemmType::f16, ta, tb, s, {1, 0, false}, rng), 0);
      }
    }
  }
}

// With K = 1 each output is one product: bf16·bf16 has a 16-bit significand, exact in fp32.
TEST(DnnlGemm, ProductsAreExact) {
  if (!cpu::dnnl_built()) GTEST_SKIP() << "built without oneDNN";
  std::mt19937 rng(9);
  const int M = 64, N = 64;
  const Matrix16 A = random16(GemmType::bf16, M, rng), B = random16(GemmType::bf16, N, rng);
  DnnlGemm g;
  g.M = M;
  g.N = N;
  g.K = 1;
  g.lda = 1;
  g.ldb = g.ldc = N;
  std::vector<float> C(std::size_t(M) * N);
  run(g, A.bits.data(), B.bits.data(), nullptr, C.data());
  int bad = 0;
  for (int i = 0; i < M; ++i) {
    for (int j = 0; j < N; ++j)
      bad += double(C[std::size_t(i) * N + j]) != A.values[i] * B.values[j];
  }
  EXPECT_EQ(bad, 0);
}

// K = 0: C = beta·C + bias (C not read when beta = 0).
TEST(DnnlGemm, EmptyInnerDimension) {
  if (!cpu::dnnl_built()) GTEST_SKIP() << "built without oneDNN";
  DnnlGemm g;
  g.M = g.N = 2;
  g.K = 0;
  g.lda = 1;
  g.ldb = g.ldc = 2;
  g.beta = 0.5f;
  const std::uint16_t dummy[1] = {0};
  std::vector<float> C = {1.0f, -2.0f, 3.0f, 4.0f};
  EXPECT_TRUE(cpu::dnnl_gemm_impl(g).native);
  cpu::dnnl_gemm(g, dummy, dummy, nullptr, C.data(), nullptr);
  EXPECT_EQ(C, (std::vector<float>{0.5f, -1.0f, 1.5f, 2.0f}));
  g.beta = 0;
  g.bias = true;
  const float bias[2] = {0.25f, -0.75f};
  C = {NAN, 1.0f, 2.0f, 3.0f};
  cpu::dnnl_gemm(g, dummy, dummy, bias, C.data(), nullptr);
  EXPECT_EQ(C, (std::vector<float>{0.25f, -0.75f, 0.25f, -0.75f}));
}

// What the API does not define is an error naming it, with or without oneDNN in the build.
TEST(DnnlGemm, RejectsUndefinedDescriptions) {
  if (!cpu::dnnl_built()) GTEST_SKIP() << "built without oneDNN";
  DnnlGemm g = square(GemmType::bf16);
  g.bias = true;
  g.alpha = 2;
  EXPECT_THROW(cpu::dnnl_gemm_impl(g), std::invalid_argument);
  g = square(GemmType::bf16);
  g.lda = 63;
  EXPECT_THROW(cpu::dnnl_gemm_impl(g), std::invalid_argument);
  g = square(GemmType::bf16);
  g.c = GemmType::f16;
  EXPECT_THROW(cpu::dnnl_gemm_impl(g), std::invalid_argument);
  g.ab = GemmType::f32;
  g.c = GemmType::f32;
  EXPECT_THROW(cpu::dnnl_gemm_impl(g), std::invalid_argument);
}

}  // namespace
}  // namespace tb::test
