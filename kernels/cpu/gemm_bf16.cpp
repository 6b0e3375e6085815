#include "gemm_bf16.h"

#include <cblas.h>

#include <algorithm>
#include <bit>
#include <cstddef>
#include <vector>

namespace tb::cpu {

namespace {
CBLAS_TRANSPOSE op(bool t) { return t ? CblasTrans : CblasNoTrans; }

// Decodes the rows × cols bf16 matrix stored row-major with leading dimension ld into a dense
// rows × cols fp32 matrix (bf16 → fp32 is exact: the bits shifted up by 16, as decode_bf16).
std::vector<float> decode_matrix(const std::uint16_t* src, int rows, int cols, int ld) {
  std::vector<float> out(static_cast<std::size_t>(rows) * static_cast<std::size_t>(cols));
  float* dst = out.data();
  const bool big = static_cast<std::int64_t>(rows) * cols >= (1 << 15);
#pragma omp parallel for schedule(static) if (big)
  for (int r = 0; r < rows; ++r) {
    const std::uint16_t* s = src + static_cast<std::ptrdiff_t>(r) * ld;
    float* d = dst + static_cast<std::ptrdiff_t>(r) * cols;
    for (int c = 0; c < cols; ++c) d[c] = std::bit_cast<float>(std::uint32_t{s[c]} << 16);
  }
  return out;
}
}  // namespace

void gemm_bf16_emulated(bool ta, bool tb_, int M, int N, int K, float alpha, const std::uint16_t* A,
                        int lda, const std::uint16_t* B, int ldb, float beta, float* C, int ldc) {
  // Stored shapes: A is M×K (K×M when transposed), B is K×N (N×K when transposed).
  const int a_rows = ta ? K : M, a_cols = ta ? M : K;
  const int b_rows = tb_ ? N : K, b_cols = tb_ ? K : N;
  const std::vector<float> a = decode_matrix(A, a_rows, a_cols, lda);
  const std::vector<float> b = decode_matrix(B, b_rows, b_cols, ldb);
  cblas_sgemm(CblasRowMajor, op(ta), op(tb_), M, N, K, alpha, a.data(), std::max(1, a_cols),
              b.data(), std::max(1, b_cols), beta, C, ldc);
}

}  // namespace tb::cpu
