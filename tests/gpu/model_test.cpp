// The whole model (harness/model/gpt.h) on the CUDA backend against the CPU backend: the same
// weights (GPT-2 initialisation from one seed, copied from the host) and the same batch, one
// forward and backward; the loss and every parameter's gradient must agree — tightly in fp32,
// loosely in the reduced-precision modes (where the two backends round at slightly different
// points: the GPU adds a 16-bit copy of the bias in the GEMM epilogue, multiplies rounded
// attention probabilities, and keeps dS in 16 bits). Also: the GPU's step is deterministic.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "gpu_test_util.h"
#include "model/config.h"
#include "model/gpt.h"
#include "model/precision.h"

namespace tb::gpu_test {
namespace {

ModelConfig small_config() {
  ModelConfig c;
  c.name = "gpu-test";
  c.n_layer = 2;
  c.d_model = 64;
  c.n_head = 4;
  c.seq_len = 32;
  c.vocab = 96;  // every GEMM dimension a multiple of 16: FP8 runs cuBLASLt's FP8 kernels
  return c;
}

constexpr int kBatch = 2;

struct StepResult {
  double loss = 0;
  std::vector<float> grads;
  std::vector<ParameterSpec> layout;
};

// fp16 runs with a loss scale (as the trainer's dynamic scaling would), so that activation
// gradients stay above fp16's subnormal range; the gradients are compared as they are, scaled.
StepResult one_step(Backend& be, PrecisionMode mode) {
  const ModelConfig cfg = small_config();
  GptModel model(be, cfg, DType::f32);
  PrecisionPolicy policy;
  policy.mode = mode;
  model.set_precision(policy);
  model.init_weights(7);
  const auto n = static_cast<std::size_t>(kBatch * cfg.seq_len);
  const std::vector<std::int32_t> inputs = random_ids(n, cfg.vocab, 401);
  const std::vector<std::int32_t> targets = random_ids(n, cfg.vocab, 402);
  StepResult r;
  r.loss = model.forward(inputs.data(), targets.data(), kBatch);
  model.backward(nullptr, mode == PrecisionMode::fp16 ? 1024.0 : 1.0);
  be.synchronize();
  r.grads = Twins::get(be, model.grads());
  r.layout = model.layout().tensors;
  return r;
}

struct ModelCase {
  PrecisionMode mode;
  double loss_tol, grad_tol, tensor_tol;  // relative: the loss, all gradients, each tensor's
};

void PrintTo(const ModelCase& c, std::ostream* os) { *os << precision_mode_name(c.mode); }

class GpuModel : public GpuTest, public ::testing::WithParamInterface<ModelCase> {};

TEST_P(GpuModel, LossAndGradientsMatchCpu) {
  const ModelCase& c = GetParam();
  if (c.mode == PrecisionMode::fp8 && !gpu_has_fp8()) {
    EXPECT_THROW(one_step(*gpu_, c.mode), std::runtime_error);
    GTEST_SKIP() << "FP8 needs compute capability 8.9; this GPU throws, as it should";
  }
  const StepResult want = one_step(*cpu_, c.mode);
  const StepResult got = one_step(*gpu_, c.mode);
  ASSERT_TRUE(std::isfinite(got.loss));
  EXPECT_NEAR(got.loss, want.loss, c.loss_tol * std::abs(want.loss));
  EXPECT_TRUE(close(want.grads, got.grads, c.grad_tol)) << "all gradients";
  for (const ParameterSpec& p : want.layout) {
    const auto b = want.grads.begin() + p.offset, e = b + p.numel();
    const auto gb = got.grads.begin() + p.offset;
    EXPECT_TRUE(
        close(std::vector<float>(b, e), std::vector<float>(gb, gb + p.numel()), c.tensor_tol))
        << p.name;
  }
}

std::string mode_name(const ::testing::TestParamInfo<ModelCase>& info) {
  return std::string(precision_mode_name(info.param.mode));
}

INSTANTIATE_TEST_SUITE_P(Precisions, GpuModel,
                         ::testing::Values(ModelCase{PrecisionMode::fp32, 1e-5, 1e-4, 2e-3},
                                           ModelCase{PrecisionMode::tf32, 2e-3, 2e-2, 5e-2},
                                           ModelCase{PrecisionMode::bf16, 1e-2, 5e-2, 1.5e-1},
                                           ModelCase{PrecisionMode::fp16, 5e-3, 2e-2, 1e-1},
                                           ModelCase{PrecisionMode::fp8, 2e-2, 1.5e-1, 3e-1}),
                         mode_name);

TEST_F(GpuTest, ModelStepIsDeterministic) {
  for (const PrecisionMode mode : {PrecisionMode::fp32, PrecisionMode::bf16}) {
    SCOPED_TRACE(std::string(precision_mode_name(mode)));
    const StepResult a = one_step(*gpu_, mode);
    const StepResult b = one_step(*gpu_, mode);
    EXPECT_EQ(a.loss, b.loss);
    EXPECT_TRUE(same_values(a.grads, b.grads));
  }
}

// The memory tracker sees the model's buffers in their categories.
TEST_F(GpuTest, ModelMemoryIsTracked) {
  const ModelConfig cfg = small_config();
  {
    GptModel model(*gpu_, cfg, DType::f32);
    const std::size_t params = static_cast<std::size_t>(parameter_count(cfg)) * sizeof(float);
    EXPECT_EQ(gpu_->memory().current_bytes(MemoryCategory::parameters), params);
    EXPECT_EQ(gpu_->memory().current_bytes(MemoryCategory::gradients), params);
  }
  EXPECT_EQ(gpu_->memory().current_bytes(MemoryCategory::parameters), 0u);
  EXPECT_EQ(gpu_->memory().current_bytes(MemoryCategory::gradients), 0u);
}

}  // namespace
}  // namespace tb::gpu_test
