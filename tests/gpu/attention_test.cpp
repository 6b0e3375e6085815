// The CUDA backend's causal attention (batched cuBLASLt GEMMs + softmax kernels) against the
// CPU backend: probabilities (zero above the diagonal), output, and the backward's dqkv, in
// f32, bf16 and f16, at an odd sequence length, and with tensors of mixed types (staged).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "gpu_test_util.h"

namespace tb::gpu_test {
namespace {

using I64 = std::int64_t;

struct AttnShape {
  I64 B, T, C, NH;
};

class GpuAttention : public GpuTest, public ::testing::WithParamInterface<DType> {};

// 16-bit: the GPU multiplies the rounded probabilities by v and keeps dS in the 16-bit scratch,
// where the CPU's stand-ins are fp32.
double attention_tolerance(DType t) {
  switch (t) {
    case DType::bf16:
      return 3e-2;
    case DType::f16:
      return 5e-3;
    default:
      return 1e-5;
  }
}

void check_attention(Twins& t, Backend& cpu, Backend& gpu, const AttnShape& s, DType qkv_t,
                     DType probs_t, DType out_t, double tol) {
  const I64 B = s.B, T = s.T, C = s.C, NH = s.NH;
  const Pair qkv = t.make(qkv_t, {B, T, 3 * C}, randn(B * T * 3 * C, 301, 1.0));
  const Pair probs = t.output(probs_t, {B, NH, T, T});
  const Pair out = t.output(out_t, {B, T, C});
  cpu.attention_forward(out.cpu, probs.cpu, qkv.cpu, static_cast<int>(NH));
  gpu.attention_forward(out.gpu, probs.gpu, qkv.gpu, static_cast<int>(NH));
  const std::vector<float> p_gpu = t.gpu(probs);
  EXPECT_TRUE(close(t.cpu(probs), p_gpu, tol)) << "probs";
  EXPECT_TRUE(close(t.cpu(out), t.gpu(out), tol)) << "out";
  // The mask: exact zeros above the diagonal.
  for (I64 bh = 0; bh < B * NH; ++bh) {
    for (I64 i = 0; i < T; ++i) {
      for (I64 j = i + 1; j < T; ++j) {
        ASSERT_EQ(p_gpu[static_cast<std::size_t>((bh * T + i) * T + j)], 0.0f)
            << "bh " << bh << " row " << i << " col " << j;
      }
    }
  }

  const Pair dout = t.make(out_t, {B, T, C}, randn(B * T * C, 302, 0.5));
  const Pair dqkv = t.output(qkv_t, {B, T, 3 * C});
  const Pair scratch = t.output(probs_t, {B, NH, T, T});
  cpu.attention_backward(dqkv.cpu, scratch.cpu, dout.cpu, qkv.cpu, probs.cpu, static_cast<int>(NH));
  gpu.attention_backward(dqkv.gpu, scratch.gpu, dout.gpu, qkv.gpu, probs.gpu, static_cast<int>(NH));
  EXPECT_TRUE(close(t.cpu(dqkv), t.gpu(dqkv), tol)) << "dqkv";
}

TEST_P(GpuAttention, ForwardAndBackwardMatchCpu) {
  const DType d = GetParam();
  for (const AttnShape& s : {AttnShape{2, 33, 48, 3}, AttnShape{1, 64, 128, 2}}) {
    SCOPED_TRACE("B=" + std::to_string(s.B) + " T=" + std::to_string(s.T) +
                 " C=" + std::to_string(s.C) + " NH=" + std::to_string(s.NH));
    check_attention(t(), *cpu_, *gpu_, s, d, d, d, attention_tolerance(d));
  }
}

std::string dtype_param_name(const ::testing::TestParamInfo<DType>& info) {
  return std::string(dtype_name(info.param));
}

INSTANTIATE_TEST_SUITE_P(Dtypes, GpuAttention,
                         ::testing::Values(DType::f32, DType::bf16, DType::f16), dtype_param_name);

// bf16 qkv and output with fp32 probabilities: not one type, so the call runs staged in fp32.
TEST_F(GpuTest, AttentionMixedTypes) {
  check_attention(t(), *cpu_, *gpu_, AttnShape{2, 20, 32, 2}, DType::bf16, DType::f32, DType::bf16,
                  1e-2);
}

}  // namespace
}  // namespace tb::gpu_test
