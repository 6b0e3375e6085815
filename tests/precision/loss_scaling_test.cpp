// Dynamic loss scaling (harness/train/loss_scaler.h; Micikevicius et al. 2018, §3.2, with
// PyTorch GradScaler's defaults): the scaler's state machine against hand-written sequences,
// and the training step end to end — an overflowing step is skipped (weights, optimizer
// state and step count untouched), the scale backs off until the gradients are finite, then
// grows again after growth_interval good steps; with scaling off nothing is ever skipped.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "data/markov_source.h"
#include "model/gpt.h"
#include "numerics/numerics_util.h"
#include "profile/profiler.h"
#include "tb/cpu_backend.h"
#include "train/loss_scaler.h"
#include "train/trainer.h"

namespace tb::test {
namespace {

TEST(LossScaler, BacksOffOnOverflowAndGrowsAfterInterval) {
  LossScalingConfig c;
  c.dynamic = true;
  c.init_scale = 1024;
  c.growth_interval = 3;
  LossScaler s(c);
  EXPECT_EQ(s.scale(), 1024);
  EXPECT_FALSE(s.update(true));  // overflow: skip, 1024 → 512
  EXPECT_EQ(s.scale(), 512);
  EXPECT_FALSE(s.update(true));
  EXPECT_EQ(s.scale(), 256);
  EXPECT_EQ(s.skipped_steps(), 2);
  EXPECT_TRUE(s.update(false));
  EXPECT_TRUE(s.update(false));
  EXPECT_EQ(s.scale(), 256);     // 2 good steps: not yet
  EXPECT_TRUE(s.update(false));  // 3rd: grows
  EXPECT_EQ(s.scale(), 512);
  EXPECT_EQ(s.growths(), 1);
  EXPECT_TRUE(s.update(false));
  EXPECT_TRUE(s.update(false));
  EXPECT_FALSE(s.update(true));  // an overflow resets the good-step count
  EXPECT_EQ(s.scale(), 256);
  EXPECT_TRUE(s.update(false));
  EXPECT_TRUE(s.update(false));
  EXPECT_EQ(s.scale(), 256);
  EXPECT_TRUE(s.update(false));
  EXPECT_EQ(s.scale(), 512);
  EXPECT_EQ(s.skipped_steps(), 3);
}

TEST(LossScaler, OffMeansScaleOneAndNothingSkipped) {
  LossScaler s;  // dynamic = false
  EXPECT_EQ(s.scale(), 1);
  EXPECT_TRUE(s.update(true));
  EXPECT_EQ(s.scale(), 1);
  EXPECT_EQ(s.skipped_steps(), 0);
}

TEST(LossScaler, BadSettingsNameTheValue) {
  LossScalingConfig c;
  c.dynamic = true;
  c.init_scale = 0;
  EXPECT_THROW({ LossScaler s(c); }, std::invalid_argument);
  c.init_scale = 8;
  c.growth_interval = 0;
  try {
    LossScaler s(c);
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("loss_scale_growth_interval = 0"), std::string::npos);
  }
  c.growth_interval = 1;
  c.backoff_factor = 1.5;
  EXPECT_THROW({ LossScaler s(c); }, std::invalid_argument);
}

std::vector<float> host_params(GptModel& m) {
  std::vector<float> v(static_cast<std::size_t>(m.params().numel()));
  m.backend().copy_to_host(v.data(), m.params());
  return v;
}

// fp16 training with an initial scale of 2^40: the scaled output gradient overflows fp16
// (max 65504) in the activation gradients, so the first steps must be skipped with the
// scale halving each time, until it is small enough; then steps apply and the scale grows
// after growth_interval good steps.
TEST(LossScalingTraining, SkipsOverflowingStepsBacksOffThenGrows) {
  auto be = make_cpu_backend();
  const ModelConfig cfg = model_config(2, 32, 2, 16, 40);
  GptModel model(*be, cfg, DType::f32);
  model.set_precision({PrecisionMode::fp16});
  model.init_weights(3);
  MarkovSource data(cfg.vocab, 4, 5);
  Profiler prof;
  TrainingConfig t(4);
  t.loss_scaling.dynamic = true;
  t.loss_scaling.init_scale = 0x1p40;
  t.loss_scaling.growth_interval = 4;
  OptimizerConfig opt;
  opt.lr = 1e-3;
  Trainer trainer(model, data, opt, t, prof);

  const auto before = host_params(model);
  int skipped = 0;
  double scale = t.loss_scaling.init_scale;
  StepRecord r = trainer.step();
  while (r.skipped) {
    ++skipped;
    EXPECT_EQ(r.loss_scale, scale);
    scale /= 2;
    EXPECT_EQ(trainer.loss_scaler().scale(), scale);
    EXPECT_EQ(trainer.optimizer().steps_taken(), 0);
    const auto now = host_params(model);
    ASSERT_EQ(std::memcmp(before.data(), now.data(), before.size() * sizeof(float)), 0)
        << "a skipped step changed the weights";
    ASSERT_LT(skipped, 40) << "never stopped overflowing";
    r = trainer.step();
  }
  noted("skipped steps from 2^40", skipped);
  EXPECT_GT(skipped, 10);  // 2^40 · |dlogits| overflows fp16 for many halvings
  EXPECT_EQ(trainer.optimizer().steps_taken(), 1);
  const double applied_scale = trainer.loss_scaler().scale();
  EXPECT_EQ(applied_scale, scale);
  // Four good steps in a row (the one just taken counts): the scale doubles.
  bool overflowed = false;
  for (int i = 0; i < 3; ++i) overflowed |= trainer.step().skipped;
  if (!overflowed) {
    EXPECT_EQ(trainer.loss_scaler().scale(), 2 * applied_scale);
  }
  EXPECT_EQ(trainer.loss_scaler().skipped_steps(), skipped + (overflowed ? 1 : 0));
}

// Without loss scaling the same overflow is not skipped: the step applies non-finite
// gradients (what fp16 without a scaler does), which the harness then reports as diverged.
TEST(LossScalingTraining, WithoutScalingNothingIsSkipped) {
  auto be = make_cpu_backend();
  const ModelConfig cfg = model_config(1, 16, 2, 8, 20);
  GptModel model(*be, cfg, DType::f32);
  model.set_precision({PrecisionMode::fp16});
  model.init_weights(3);
  MarkovSource data(cfg.vocab, 4, 5);
  Profiler prof;
  Trainer trainer(model, data, OptimizerConfig{}, TrainingConfig(2), prof);
  for (int i = 0; i < 3; ++i) {
    const StepRecord r = trainer.step();
    EXPECT_FALSE(r.skipped);
    EXPECT_EQ(r.loss_scale, 1.0);
  }
  EXPECT_EQ(trainer.optimizer().steps_taken(), 3);
}

// Loss scaling is exact where nothing overflows or underflows: in fp32, scaling the loss by
// a power of two and dividing it out gives bit-identical weights.
TEST(LossScalingTraining, PowerOfTwoScaleIsExactInFp32) {
  auto run = [](bool dynamic) {
    auto be = make_cpu_backend();
    const ModelConfig cfg = model_config(2, 16, 2, 8, 20);
    GptModel model(*be, cfg, DType::f32);
    model.init_weights(4);
    MarkovSource data(cfg.vocab, 4, 6);
    Profiler prof;
    TrainingConfig t(2);
    t.loss_scaling.dynamic = dynamic;
    t.loss_scaling.init_scale = 1024;
    Trainer trainer(model, data, OptimizerConfig{}, t, prof);
    for (int i = 0; i < 3; ++i) trainer.step();
    return host_params(model);
  };
  const auto a = run(false), b = run(true);
  EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)), 0);
}

}  // namespace
}  // namespace tb::test
