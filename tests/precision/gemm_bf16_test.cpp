// The emulated bf16 GEMM (kernels/cpu/gemm_bf16.h: decode + cblas_sgemm) against fp32 GEMM of
// the decoded inputs. The native one, through oneDNN, is dnnl_gemm_test.cpp's.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "cpu_kernels.h"
#include "gemm_bf16.h"
#include "tb/number_format.h"

namespace {

std::vector<std::uint16_t> random_bf16(std::size_t n, std::mt19937& rng) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<std::uint16_t> v(n);
  for (auto& b : v) b = tb::encode_bf16(normal(rng));
  return v;
}

std::vector<float> decode(const std::vector<std::uint16_t>& b) {
  std::vector<float> f(b.size());
  tb::decode_array(tb::NumberFormat::bf16, b.data(), f.data(), static_cast<std::int64_t>(b.size()));
  return f;
}

using GemmFn = void (*)(bool, bool, int, int, int, float, const std::uint16_t*, int,
                        const std::uint16_t*, int, float, float*, int);

// Every transpose combination, padded leading dimensions, alpha and beta.
void check_against_sgemm(GemmFn gemm, const char* what) {
  std::mt19937 rng(42);
  const int M = 37, N = 29, K = 53, pad = 3;
  const float alpha = 1.5f, beta = -0.5f;
  for (bool ta : {false, true}) {
    for (bool tb_ : {false, true}) {
      SCOPED_TRACE(std::string(what) + " ta=" + std::to_string(ta) + " tb=" + std::to_string(tb_));
      const int a_rows = ta ? K : M, a_cols = ta ? M : K;
      const int b_rows = tb_ ? N : K, b_cols = tb_ ? K : N;
      const int lda = a_cols + pad, ldb = b_cols + pad, ldc = N + pad;
      const auto A = random_bf16(static_cast<std::size_t>(a_rows) * lda, rng);
      const auto B = random_bf16(static_cast<std::size_t>(b_rows) * ldb, rng);
      const std::vector<float> Af = decode(A), Bf = decode(B);
      std::vector<float> C0(static_cast<std::size_t>(M) * ldc);
      std::normal_distribution<float> normal(0.0f, 1.0f);
      for (float& c : C0) c = normal(rng);
      std::vector<float> got = C0, want = C0;
      gemm(ta, tb_, M, N, K, alpha, A.data(), lda, B.data(), ldb, beta, got.data(), ldc);
      tb::cpu::gemm<float>(ta, tb_, M, N, K, alpha, Af.data(), lda, Bf.data(), ldb, beta,
                           want.data(), ldc);
      int bad = 0;
      for (int i = 0; i < M; ++i) {
        for (int j = 0; j < ldc; ++j) {
          const std::size_t ij = static_cast<std::size_t>(i) * ldc + j;
          if (j >= N) {  // padding is untouched
            bad += got[ij] != C0[ij];
            continue;
          }
          // Error bound for fp32 accumulation in any order: K·u·(|alpha|·Σ|a||b| + |beta·c|).
          double mag = std::fabs(beta * C0[ij]);
          for (int k = 0; k < K; ++k) {
            const float a = ta ? Af[static_cast<std::size_t>(k) * lda + i]
                               : Af[static_cast<std::size_t>(i) * lda + k];
            const float b = tb_ ? Bf[static_cast<std::size_t>(j) * ldb + k]
                                : Bf[static_cast<std::size_t>(k) * ldb + j];
            mag += std::fabs(alpha) * std::fabs(double{a} * b);
          }
          const double tol = 2.0 * (K + 2) * std::ldexp(1.0, -24) * mag;
          if (!(std::fabs(double{got[ij]} - want[ij]) <= tol) && bad++ < 5) {
            ADD_FAILURE() << "C(" << i << "," << j << ") = " << got[ij] << ", sgemm " << want[ij]
                          << ", tolerance " << tol;
          }
        }
      }
      EXPECT_EQ(bad, 0);
    }
  }
}

TEST(GemmBf16, EmulatedPathMatchesSgemmOfDecodedInputs) {
  check_against_sgemm(tb::cpu::gemm_bf16_emulated, "gemm_bf16_emulated");
}

// With K = 1 each output is one product: bf16·bf16 has a 16-bit significand, exact in fp32.
TEST(GemmBf16, ProductsAreExact) {
  std::mt19937 rng(9);
  const int M = 64, N = 64;
  const auto A = random_bf16(M, rng);
  const auto B = random_bf16(N, rng);
  std::vector<float> C(static_cast<std::size_t>(M) * N, 0.0f);
  tb::cpu::gemm_bf16_emulated(false, false, M, N, 1, 1.0f, A.data(), 1, B.data(), N, 0.0f, C.data(),
                              N);
  int bad = 0;
  for (int i = 0; i < M; ++i) {
    for (int j = 0; j < N; ++j) {
      const double exact = double{tb::decode_bf16(A[i])} * tb::decode_bf16(B[j]);
      bad += double{C[static_cast<std::size_t>(i) * N + j]} != exact;
    }
  }
  EXPECT_EQ(bad, 0);
}

// K = 0: C = beta·C.
TEST(GemmBf16, EmptyInnerDimensionScalesC) {
  std::vector<float> C = {1.0f, -2.0f, 3.0f, 4.0f};
  const std::uint16_t dummy[1] = {0};
  tb::cpu::gemm_bf16_emulated(false, false, 2, 2, 0, 1.0f, dummy, 1, dummy, 2, 0.5f, C.data(), 2);
  EXPECT_EQ(C, (std::vector<float>{0.5f, -1.0f, 1.5f, 2.0f}));
}

}  // namespace
