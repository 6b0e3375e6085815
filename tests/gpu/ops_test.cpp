// The CUDA backend's non-GEMM operations against the CPU backend on fresh random inputs, in
// f32 and with 16-bit activations (bf16, f16): conversions, GELU, add, mul, scale, LayerNorm,
// embeddings, softmax cross-entropy, the sum of squares and the optimizer updates. Outputs are
// poisoned before each run; tolerances are norm-relative (gpu_test_util.h).
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "gpu_test_util.h"

namespace tb::gpu_test {
namespace {

using I64 = std::int64_t;

class GpuOps : public GpuTest, public ::testing::WithParamInterface<DType> {};

std::string dtype_param_name(const ::testing::TestParamInfo<DType>& info) {
  return std::string(dtype_name(info.param));
}

// ---- conversions and copies -----------------------------------------------------------------

TEST_F(GpuTest, ConvertMatchesCpuBitForBit) {
  // Ordinary values, ties at bf16/fp16 precision, fp16 overflow (→ inf), subnormals, ±0, inf.
  std::vector<float> v = randn(4000, 11, 3.0);
  const float specials[] = {0.0f,          -0.0f,          65504.0f,
                            65520.0f,      70000.0f,       -1e6f,
                            1.0009765625f, 1.00048828125f, 1e-8f,
                            -3e-7f,        6e-5f,          std::numeric_limits<float>::infinity(),
                            3.3895314e38f};
  for (std::size_t i = 0; i < std::size(specials); ++i) v[i] = specials[i];
  for (DType from : {DType::f32, DType::bf16, DType::f16}) {
    for (DType to : {DType::f32, DType::bf16, DType::f16}) {
      SCOPED_TRACE(std::string(dtype_name(from)) + " -> " + std::string(dtype_name(to)));
      const Pair src = t().make(from, {40, 100}, v);
      const Pair dst = t().output(to, {4000});
      cpu_->convert(dst.cpu, src.cpu);
      gpu_->convert(dst.gpu, src.gpu);
      EXPECT_TRUE(same_values(t().cpu(dst), t().gpu(dst)));
    }
  }
}

TEST_F(GpuTest, CopyAndFillZero) {
  const std::vector<float> v = randn(777, 12);
  const Pair a = t().make(DType::f32, {777}, v);
  const Pair b = t().output(DType::f32, {777});
  gpu_->copy(b.gpu, a.gpu);
  EXPECT_TRUE(same_values(v, t().gpu(b)));
  gpu_->fill_zero(b.gpu);
  EXPECT_TRUE(same_values(std::vector<float>(777, 0.0f), t().gpu(b)));
  const Pair h = t().output(DType::bf16, {3});
  EXPECT_THROW(gpu_->copy(h.gpu, a.gpu), std::invalid_argument);
}

// ---- elementwise --------------------------------------------------------------------------------

TEST_P(GpuOps, GeluForwardAndBackward) {
  const DType d = GetParam();
  const I64 n = 4099;
  const Pair x = t().make(d, {n}, randn(n, 21, 2.0));
  const Pair dy = t().make(d, {n}, randn(n, 22));
  const Pair y = t().output(d, {n});
  cpu_->gelu_forward(y.cpu, x.cpu);
  gpu_->gelu_forward(y.gpu, x.gpu);
  EXPECT_TRUE(close(t().cpu(y), t().gpu(y), output_tolerance(d)));

  const Pair dx = t().output(d, {n});
  cpu_->gelu_backward(dx.cpu, x.cpu, dy.cpu);
  gpu_->gelu_backward(dx.gpu, x.gpu, dy.gpu);
  EXPECT_TRUE(close(t().cpu(dx), t().gpu(dx), output_tolerance(d)));

  // In place, as the model calls it: dinp is dout.
  cpu_->gelu_backward(dy.cpu, x.cpu, dy.cpu);
  gpu_->gelu_backward(dy.gpu, x.gpu, dy.gpu);
  EXPECT_TRUE(close(t().cpu(dy), t().gpu(dy), output_tolerance(d)));
}

TEST_P(GpuOps, AddAndScale) {
  const DType d = GetParam();
  const I64 n = 3001;
  const Pair a = t().make(d, {n}, randn(n, 31));
  const Pair b = t().make(d, {n}, randn(n, 32));
  const Pair o = t().output(d, {n});
  cpu_->add(o.cpu, a.cpu, b.cpu);
  gpu_->add(o.gpu, a.gpu, b.gpu);
  EXPECT_TRUE(close(t().cpu(o), t().gpu(o), output_tolerance(d)));
  cpu_->scale(a.cpu, -0.37);
  gpu_->scale(a.gpu, -0.37);
  EXPECT_TRUE(close(t().cpu(a), t().gpu(a), output_tolerance(d)));
}

// Pruning's masking (harness/train/pruning.h): w <- w·mask in place; pruned elements become
// exactly 0, kept ones are unchanged, and both backends agree bit for bit.
TEST_P(GpuOps, MulByMask) {
  const DType d = GetParam();
  const I64 n = 3001;
  std::vector<float> m(static_cast<std::size_t>(n));
  for (std::size_t i = 0; i < m.size(); ++i) m[i] = i % 4 < 2 ? 0.0f : 1.0f;
  const Pair w = t().make(d, {n}, randn(n, 33));
  const Pair mask = t().make(d, {n}, m);
  const std::vector<float> before = t().gpu(w);
  cpu_->mul(w.cpu, w.cpu, mask.cpu);
  gpu_->mul(w.gpu, w.gpu, mask.gpu);
  const std::vector<float> after = t().gpu(w);
  EXPECT_EQ(t().cpu(w), after);
  for (std::size_t i = 0; i < m.size(); ++i) {
    ASSERT_EQ(after[i], m[i] == 0 ? 0.0f : before[i]) << i;
  }
}

// Mixture-of-experts row moves against the CPU: dispatch with and without gates, the
// per-token combine (a dropped slot, −1, included) and the gate gradients.
TEST_P(GpuOps, MoeRowMoves) {
  const DType d = GetParam();
  const I64 N = 37, C = 130, K = 2, M = 50;
  std::vector<std::int32_t> index(static_cast<std::size_t>(M)),
      slots(static_cast<std::size_t>(N * K));
  for (I64 i = 0; i < M; ++i)
    index[static_cast<std::size_t>(i)] = static_cast<std::int32_t>((i * 7) % N);
  for (I64 i = 0; i < N * K; ++i)
    slots[static_cast<std::size_t>(i)] = i % 5 == 3 ? -1 : static_cast<std::int32_t>((i * 11) % M);
  const Pair idx = t().make_ids({M}, index), sl = t().make_ids({N, K}, slots);
  const Pair inp = t().make(d, {N, C}, randn(N * C, 51));
  const Pair gate = t().make(DType::f32, {M}, randn(M, 52));
  const Pair rows = t().make(d, {M, C}, randn(M * C, 53));
  const Pair out = t().make(d, {N, C}, randn(N * C, 54));
  const Pair dots = t().make(DType::f32, {M}, randn(M, 55));
  cpu_->gather_rows(rows.cpu, inp.cpu, idx.cpu, gate.cpu);
  gpu_->gather_rows(rows.gpu, inp.gpu, idx.gpu, gate.gpu);
  EXPECT_TRUE(close(t().cpu(rows), t().gpu(rows), d == DType::f32 ? 1e-6 : 1e-2));
  cpu_->combine_rows(out.cpu, rows.cpu, sl.cpu, gate.cpu);
  gpu_->combine_rows(out.gpu, rows.gpu, sl.gpu, gate.gpu);
  EXPECT_TRUE(close(t().cpu(out), t().gpu(out), d == DType::f32 ? 1e-5 : 1e-2));
  cpu_->gathered_row_dot(dots.cpu, inp.cpu, idx.cpu, rows.cpu);
  gpu_->gathered_row_dot(dots.gpu, inp.gpu, idx.gpu, rows.gpu);
  EXPECT_TRUE(close(t().cpu(dots), t().gpu(dots), 1e-4));
}

TEST_F(GpuTest, Axpy) {
  const I64 n = 100003;
  const Pair y = t().make(DType::f32, {n}, randn(n, 41));
  const Pair x = t().make(DType::f32, {n}, randn(n, 42));
  cpu_->axpy(y.cpu, -0.25, x.cpu);
  gpu_->axpy(y.gpu, -0.25, x.gpu);
  EXPECT_TRUE(close(t().cpu(y), t().gpu(y), 1e-6));
}

// ---- LayerNorm ----------------------------------------------------------------------------------

TEST_P(GpuOps, LayerNormForwardAndBackward) {
  const DType d = GetParam();
  // C below and above the kernels' 1024-wide block switch; N across the one-chunk and
  // multi-chunk column sums of the parameter gradients.
  for (const auto& [N, C] : {std::pair<I64, I64>{37, 200}, {300, 1536}}) {
    SCOPED_TRACE("N=" + std::to_string(N) + " C=" + std::to_string(C));
    const Pair x = t().make(d, {N, C}, randn(N * C, 51, 1.5, 0.3));
    const Pair w = t().make(DType::f32, {C}, randn(C, 52, 0.5, 1.0));
    const Pair b = t().make(DType::f32, {C}, randn(C, 53, 0.2));
    const Pair y = t().output(d, {N, C});
    const Pair mean = t().output(DType::f32, {N}), rstd = t().output(DType::f32, {N});
    cpu_->layernorm_forward(y.cpu, mean.cpu, rstd.cpu, x.cpu, w.cpu, b.cpu);
    gpu_->layernorm_forward(y.gpu, mean.gpu, rstd.gpu, x.gpu, w.gpu, b.gpu);
    EXPECT_TRUE(close(t().cpu(y), t().gpu(y), output_tolerance(d)));
    EXPECT_TRUE(close(t().cpu(mean), t().gpu(mean), 1e-5));
    EXPECT_TRUE(close(t().cpu(rstd), t().gpu(rstd), 1e-5));

    // Backward accumulates into dinp, dweight and dbias: they start with values.
    const Pair dy = t().make(d, {N, C}, randn(N * C, 54));
    const Pair dx = t().make(d, {N, C}, randn(N * C, 55));
    const Pair dw = t().make(DType::f32, {C}, randn(C, 56));
    const Pair db = t().make(DType::f32, {C}, randn(C, 57));
    cpu_->layernorm_backward(dx.cpu, dw.cpu, db.cpu, dy.cpu, x.cpu, w.cpu, mean.cpu, rstd.cpu);
    gpu_->layernorm_backward(dx.gpu, dw.gpu, db.gpu, dy.gpu, x.gpu, w.gpu, mean.gpu, rstd.gpu);
    EXPECT_TRUE(close(t().cpu(dx), t().gpu(dx), output_tolerance(d)));
    EXPECT_TRUE(close(t().cpu(dw), t().gpu(dw), 1e-4));
    EXPECT_TRUE(close(t().cpu(db), t().gpu(db), 1e-4));
  }
}

TEST_F(GpuTest, LayerNormBackwardIsDeterministic) {
  const I64 N = 1000, C = 96;
  const Pair x = t().make(DType::f32, {N, C}, randn(N * C, 61));
  const Pair w = t().make(DType::f32, {C}, randn(C, 62, 0.5, 1.0));
  const Pair b = t().make(DType::f32, {C}, randn(C, 63));
  const Pair y = t().output(DType::f32, {N, C});
  const Pair mean = t().output(DType::f32, {N}), rstd = t().output(DType::f32, {N});
  gpu_->layernorm_forward(y.gpu, mean.gpu, rstd.gpu, x.gpu, w.gpu, b.gpu);
  const Pair dy = t().make(DType::f32, {N, C}, randn(N * C, 64));
  std::vector<float> first;
  for (int run = 0; run < 2; ++run) {
    const Pair dx = t().make(DType::f32, {N, C}, std::vector<float>(N * C, 0.0f));
    const Pair dw = t().make(DType::f32, {C}, std::vector<float>(C, 0.0f));
    const Pair db = t().make(DType::f32, {C}, std::vector<float>(C, 0.0f));
    gpu_->layernorm_backward(dx.gpu, dw.gpu, db.gpu, dy.gpu, x.gpu, w.gpu, mean.gpu, rstd.gpu);
    std::vector<float> all = t().gpu(dw);
    const std::vector<float> bias_grad = t().gpu(db);
    all.insert(all.end(), bias_grad.begin(), bias_grad.end());
    if (run == 0) {
      first = all;
    } else {
      EXPECT_TRUE(same_values(first, all));
    }
  }
}

// ---- embeddings
// ----------------------------------------------------------------------------------

TEST_P(GpuOps, EmbeddingForwardAndBackward) {
  const DType d = GetParam();
  const I64 B = 3, T = 17, C = 40, V = 50, maxT = 20;  // V small: tokens repeat
  const Pair tokens = t().make_ids({B, T}, random_ids(B * T, V, 71));
  const Pair wte = t().make(DType::f32, {V, C}, randn(V * C, 72, 0.02));
  const Pair wpe = t().make(DType::f32, {maxT, C}, randn(maxT * C, 73, 0.02));
  const Pair out = t().output(d, {B, T, C});
  cpu_->embedding_forward(out.cpu, tokens.cpu, wte.cpu, wpe.cpu);
  gpu_->embedding_forward(out.gpu, tokens.gpu, wte.gpu, wpe.gpu);
  EXPECT_TRUE(close(t().cpu(out), t().gpu(out), output_tolerance(d)));

  const Pair dout = t().make(d, {B, T, C}, randn(B * T * C, 74));
  const Pair dwte = t().make(DType::f32, {V, C}, randn(V * C, 75));
  const Pair dwpe = t().make(DType::f32, {maxT, C}, randn(maxT * C, 76));
  cpu_->embedding_backward(dwte.cpu, dwpe.cpu, dout.cpu, tokens.cpu);
  gpu_->embedding_backward(dwte.gpu, dwpe.gpu, dout.gpu, tokens.gpu);
  EXPECT_TRUE(close(t().cpu(dwte), t().gpu(dwte), 1e-6));
  EXPECT_TRUE(close(t().cpu(dwpe), t().gpu(dwpe), 1e-6));
}

TEST_F(GpuTest, EmbeddingBackwardIsDeterministic) {
  const I64 B = 8, T = 256, C = 64, V = 37;  // many repeats of each token
  const Pair tokens = t().make_ids({B, T}, random_ids(B * T, V, 81));
  const Pair dout = t().make(DType::f32, {B, T, C}, randn(B * T * C, 82));
  std::vector<float> first;
  for (int run = 0; run < 2; ++run) {
    const Pair dwte = t().make(DType::f32, {V, C}, std::vector<float>(V * C, 0.0f));
    const Pair dwpe = t().make(DType::f32, {T, C}, std::vector<float>(T * C, 0.0f));
    gpu_->embedding_backward(dwte.gpu, dwpe.gpu, dout.gpu, tokens.gpu);
    if (run == 0) {
      first = t().gpu(dwte);
      cpu_->embedding_backward(dwte.cpu, dwpe.cpu, dout.cpu, tokens.cpu);
      EXPECT_TRUE(close(t().cpu(dwte), first, 1e-6));
      EXPECT_TRUE(close(t().cpu(dwpe), t().gpu(dwpe), 1e-6));
    } else {
      EXPECT_TRUE(same_values(first, t().gpu(dwte)));
    }
  }
}

// ---- softmax cross-entropy
// ------------------------------------------------------------------------

TEST_F(GpuTest, SoftmaxCrossEntropyForwardAndBackward) {
  for (const auto& [N, V] : {std::pair<I64, I64>{45, 97}, {64, 5003}}) {
    SCOPED_TRACE("N=" + std::to_string(N) + " V=" + std::to_string(V));
    const std::vector<float> z = randn(N * V, 91, 3.0);
    const Pair logits = t().make(DType::f32, {N, V}, z);
    const Pair losses = t().output(DType::f32, {N});
    const Pair targets = t().make_ids({N}, random_ids(N, static_cast<int>(V), 92));
    const double mean_cpu =
        cpu_->softmax_cross_entropy_forward(logits.cpu, losses.cpu, targets.cpu);
    const double mean_gpu =
        gpu_->softmax_cross_entropy_forward(logits.gpu, losses.gpu, targets.gpu);
    EXPECT_NEAR(mean_gpu, mean_cpu, 1e-5 * std::abs(mean_cpu));
    EXPECT_TRUE(close(t().cpu(losses), t().gpu(losses), 1e-5));
    EXPECT_TRUE(close(t().cpu(logits), t().gpu(logits), 1e-5));
    const double scale = 1.0 / static_cast<double>(N);
    cpu_->softmax_cross_entropy_backward(logits.cpu, targets.cpu, scale);
    gpu_->softmax_cross_entropy_backward(logits.gpu, targets.gpu, scale);
    EXPECT_TRUE(close(t().cpu(logits), t().gpu(logits), 1e-5));
  }
}

// ---- reductions and optimizers
// --------------------------------------------------------------------

TEST_P(GpuOps, SumSquares) {
  const DType d = GetParam();
  for (const I64 n : {I64{1}, I64{1001}, I64{300000}}) {
    const Pair x = t().make(d, {n}, randn(static_cast<std::size_t>(n), 101, 0.7));
    const double want = cpu_->sum_squares(x.cpu), got = gpu_->sum_squares(x.gpu);
    EXPECT_NEAR(got, want, 1e-12 * want) << "n=" << n;
  }
}

TEST_F(GpuTest, SumSquaresPropagatesInfAndNan) {
  std::vector<float> v = randn(50000, 111);
  v[31337] = std::numeric_limits<float>::infinity();
  const Pair x = t().make(DType::f32, {50000}, v);
  EXPECT_TRUE(std::isinf(gpu_->sum_squares(x.gpu)));
  v[4242] = std::numeric_limits<float>::quiet_NaN();
  t().set(x, v);
  EXPECT_TRUE(std::isnan(gpu_->sum_squares(x.gpu)));
}

TEST_F(GpuTest, AdamWUpdate) {
  const I64 n = 70001;
  const Pair p = t().make(DType::f32, {n}, randn(n, 121, 0.05));
  const Pair g = t().make(DType::f32, {n}, randn(n, 122, 0.01));
  const Pair m = t().make(DType::f32, {n}, randn(n, 123, 0.001));
  const Pair v = t().make(DType::f32, {n}, randn(n, 124, 1e-5, 2e-5));
  AdamWParams hp;
  hp.lr = 3e-3;
  hp.weight_decay = 0.1;
  hp.step = 3;
  hp.grad_scale = 0.7;
  cpu_->adamw_update(p.cpu, g.cpu, m.cpu, v.cpu, hp);
  gpu_->adamw_update(p.gpu, g.gpu, m.gpu, v.gpu, hp);
  EXPECT_TRUE(close(t().cpu(p), t().gpu(p), 1e-6));
  EXPECT_TRUE(close(t().cpu(m), t().gpu(m), 1e-6));
  EXPECT_TRUE(close(t().cpu(v), t().gpu(v), 1e-6));
}

TEST_F(GpuTest, SgdUpdate) {
  const I64 n = 5003;
  for (const double momentum : {0.0, 0.9}) {
    SCOPED_TRACE("momentum " + std::to_string(momentum));
    const Pair p = t().make(DType::f32, {n}, randn(n, 131, 0.05));
    const Pair g = t().make(DType::f32, {n}, randn(n, 132, 0.01));
    const Pair buf = t().make(DType::f32, {n}, randn(n, 133, 0.01));
    SgdParams hp;
    hp.lr = 0.1;
    hp.momentum = momentum;
    hp.weight_decay = 1e-4;
    hp.grad_scale = 0.5;
    cpu_->sgd_update(p.cpu, g.cpu, momentum != 0 ? buf.cpu : Tensor{}, hp);
    gpu_->sgd_update(p.gpu, g.gpu, momentum != 0 ? buf.gpu : Tensor{}, hp);
    EXPECT_TRUE(close(t().cpu(p), t().gpu(p), 1e-6));
    EXPECT_TRUE(close(t().cpu(buf), t().gpu(buf), 1e-6));
  }
}

TEST_F(GpuTest, LambDirection) {
  const I64 n = 40000;
  const Pair p = t().make(DType::f32, {n}, randn(n, 141, 0.05));
  const Pair g = t().make(DType::f32, {n}, randn(n, 142, 0.01));
  const Pair m = t().make(DType::f32, {n}, randn(n, 143, 0.001));
  const Pair v = t().make(DType::f32, {n}, randn(n, 144, 1e-5, 2e-5));
  const Pair r = t().output(DType::f32, {n});
  LambParams hp;
  hp.weight_decay = 0.01;
  hp.step = 5;
  const LambNorms want = cpu_->lamb_direction(r.cpu, p.cpu, g.cpu, m.cpu, v.cpu, hp);
  const LambNorms got = gpu_->lamb_direction(r.gpu, p.gpu, g.gpu, m.gpu, v.gpu, hp);
  EXPECT_NEAR(got.param_sq, want.param_sq, 1e-12 * want.param_sq);
  EXPECT_NEAR(got.update_sq, want.update_sq, 1e-5 * want.update_sq);
  EXPECT_TRUE(close(t().cpu(r), t().gpu(r), 1e-6));
  EXPECT_TRUE(close(t().cpu(m), t().gpu(m), 1e-6));
  EXPECT_TRUE(close(t().cpu(v), t().gpu(v), 1e-6));
}

INSTANTIATE_TEST_SUITE_P(Dtypes, GpuOps, ::testing::Values(DType::f32, DType::bf16, DType::f16),
                         dtype_param_name);

}  // namespace
}  // namespace tb::gpu_test
