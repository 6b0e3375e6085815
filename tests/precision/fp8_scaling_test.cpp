// FP8 delayed scaling (harness/model/fp8_scaling.h) against hand computations of
// scale = max_format / (max of the last H amaxes · 2^margin), and the model's use of it:
// scales start at 1, change only after a backward, and follow the tensors' amaxes.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "model/fp8_scaling.h"
#include "model/gpt.h"
#include "numerics/numerics_util.h"
#include "tb/cpu_backend.h"

namespace tb::test {
namespace {

void record(DelayedScaling& d, float amax) {
  *d.amax_slot() = amax;
  d.commit();
}

TEST(DelayedScaling, ScaleFromMaxOfHistoryWindow) {
  DelayedScaling d(NumberFormat::e4m3, 3, 0);
  EXPECT_EQ(d.scale(), 1.0f);  // nothing recorded yet
  d.commit();                  // a commit without a cast records nothing
  EXPECT_TRUE(d.history().empty());
  record(d, 2.0f);
  EXPECT_EQ(d.scale(), 448.0f / 2.0f);
  record(d, 8.0f);
  EXPECT_EQ(d.scale(), 448.0f / 8.0f);
  record(d, 1.0f);  // window {2, 8, 1}: max 8
  EXPECT_EQ(d.scale(), 448.0f / 8.0f);
  record(d, 4.0f);  // {8, 1, 4}
  EXPECT_EQ(d.scale(), 448.0f / 8.0f);
  record(d, 0.5f);  // {1, 4, 0.5}: 8 has left the window
  EXPECT_EQ(d.scale(), 448.0f / 4.0f);
  EXPECT_EQ(d.history().size(), 3u);
}

TEST(DelayedScaling, MarginAndE5m2) {
  DelayedScaling d(NumberFormat::e5m2, 4, 2);
  record(d, 3.0f);
  EXPECT_FLOAT_EQ(d.scale(), 57344.0f / 3.0f / 4.0f);
}

TEST(DelayedScaling, KeepsPreviousScaleForZeroOrNonFiniteAmax) {
  DelayedScaling d(NumberFormat::e4m3, 2, 0);
  record(d, 0.0f);
  EXPECT_EQ(d.scale(), 1.0f);
  record(d, 7.0f);
  EXPECT_EQ(d.scale(), 64.0f);
  record(d, std::numeric_limits<float>::infinity());
  EXPECT_EQ(d.scale(), 64.0f);
  record(d, std::numeric_limits<float>::quiet_NaN());
  EXPECT_EQ(d.scale(), 64.0f);  // {inf, NaN}
  record(d, 14.0f);
  EXPECT_EQ(d.scale(), 64.0f);  // {NaN, 14}: still not finite
  record(d, 28.0f);
  EXPECT_EQ(d.scale(), 16.0f);  // {14, 28}
}

TEST(DelayedScaling, BadSettingsThrow) {
  EXPECT_THROW(DelayedScaling(NumberFormat::bf16, 4, 0), std::invalid_argument);
  EXPECT_THROW(DelayedScaling(NumberFormat::e4m3, 0, 0), std::invalid_argument);
  EXPECT_THROW(DelayedScaling(NumberFormat::e4m3, 4, -1), std::invalid_argument);
}

// In the model: 3 scalings per linear layer; after one forward+backward every scale is
// max_format / amax of exactly the tensor that GEMM saw (history of one).
TEST(Fp8Model, ScalesFollowEachGemmsAmaxAfterBackward) {
  auto be = make_cpu_backend();
  const ModelConfig cfg = model_config(2, 32, 2, 16, 30);
  GptModel model(*be, cfg, DType::f32);
  model.set_precision({PrecisionMode::fp8, 1, 0});
  model.init_weights(9);
  ASSERT_EQ(model.fp8_scaling().size(), 3u * 4 * 2);
  Rng rng(2);
  const auto in = ids_vec(rng, 2 * 16, 30), tg = ids_vec(rng, 2 * 16, 30);
  model.forward(in.data(), tg.data(), 2);
  for (const auto& d : model.fp8_scaling()) EXPECT_EQ(d.scale(), 1.0f);  // not before backward
  model.backward();
  // The qkv weight of block 0 (scaling index 1): amax of its values as the GEMM read them
  // (the bf16 weight copy).
  const Tensor w = model.param("blocks.0.attn.qkv.weight");
  std::vector<float> host(static_cast<std::size_t>(w.numel()));
  be->copy_to_host(host.data(), w);
  round_array(NumberFormat::bf16, host.data(), std::int64_t(host.size()));
  const float a = amax(host.data(), std::int64_t(host.size()));
  EXPECT_EQ(model.fp8_scaling()[1].scale(), 448.0f / a);
  for (std::size_t i = 0; i < model.fp8_scaling().size(); ++i) {
    const auto& d = model.fp8_scaling()[i];
    ASSERT_EQ(d.history().size(), 1u) << i;
    EXPECT_GT(d.history()[0], 0.0f) << i;
    EXPECT_EQ(d.format(), i % 3 == 2 ? NumberFormat::e5m2 : NumberFormat::e4m3) << i;
  }
}

}  // namespace
}  // namespace tb::test
