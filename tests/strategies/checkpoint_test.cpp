// Activation checkpointing in GptModel (CheckpointPolicy): full recomputation every k blocks
// (Chen et al. 2016, "Training Deep Nets with Sublinear Memory Cost") and selective
// recomputation of the attention probabilities (Korthikanti et al. 2022, "Reducing
// Activation Recomputation in Large Transformer Models", §4.2).
// - Gradients: the recomputed forward runs the same kernels on the same inputs, so the loss
//   and every gradient bit are those of the model without checkpointing, in f32 and f64, for
//   intervals that split 5 layers into even and uneven segments (1, 2, 3, 5, 7) and for
//   selective, over two accumulated forward/backward rounds. T = 72 crosses the attention
//   kernel's 64-row blocks.
// - Memory: the tracker's activations peak against a count written from the policy alone.
// - Timing: Phase::recompute records time exactly when something is recomputed.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "model/gpt.h"
#include "numerics/numerics_util.h"
#include "profile/profiler.h"
#include "tb/cpu_backend.h"

namespace tb {
inline void PrintTo(const CheckpointPolicy& p, std::ostream* os) {
  *os << "{interval " << p.interval << ", selective " << p.selective << "}";
}
}  // namespace tb

namespace tb::test {
namespace {

std::string policy_name(CheckpointPolicy p) {
  if (p.selective) return "selective";
  return p.interval == 0 ? "off" : "every" + std::to_string(p.interval);
}

// Parameters of O(0.3) everywhere (LayerNorm weights around 1), so attention is far from
// uniform and every block far from linear; the same values for every policy.
std::vector<double> test_weights(const ParameterLayout& layout) {
  Rng rng(21);
  auto theta = normal_vec(rng, static_cast<std::size_t>(layout.total), 0.3);
  for (const auto& p : layout.tensors) {
    if (p.name.ends_with("ln1.weight") || p.name.ends_with("ln2.weight") || p.name == "lnf.weight")
      for (std::int64_t i = 0; i < p.numel(); ++i)
        theta[static_cast<std::size_t>(p.offset + i)] += 1;
  }
  return theta;
}

std::vector<unsigned char> raw_bytes(Backend& be, const Tensor& t) {
  std::vector<unsigned char> v(t.bytes());
  be.copy_to_host(v.data(), t);
  return v;
}

// Losses and raw gradient bytes after each of two forward/backward rounds (different
// batches, gradients accumulated).
struct Trace {
  std::vector<double> losses;
  std::vector<std::vector<unsigned char>> grads;
};

constexpr int kLayers = 5, kWidth = 16, kHeads = 2, kSeq = 72, kVocab = 37, kBatch = 2;

Trace train_rounds(CheckpointPolicy policy, DType dtype, PrecisionMode mode) {
  auto be = make_cpu_backend();
  GptModel model(*be, model_config(kLayers, kWidth, kHeads, kSeq, kVocab), dtype);
  model.set_checkpointing(policy);
  model.set_precision({mode});
  upload(*be, model.params(), test_weights(model.layout()));
  model.zero_grad();
  Rng rng(5);
  const auto n = static_cast<std::size_t>(kBatch * kSeq);
  Trace t;
  for (int round = 0; round < 2; ++round) {
    const auto inputs = ids_vec(rng, n, kVocab), targets = ids_vec(rng, n, kVocab);
    t.losses.push_back(model.forward(inputs.data(), targets.data(), kBatch));
    model.backward();
    t.grads.push_back(raw_bytes(*be, model.grads()));
  }
  return t;
}

// The parameter tensor and element of the first differing gradient byte, or "".
std::string first_difference(const std::vector<unsigned char>& a,
                             const std::vector<unsigned char>& b, DType dtype) {
  const auto it = std::mismatch(a.begin(), a.end(), b.begin()).first;
  if (it == a.end()) return "";
  const auto elem =
      static_cast<std::int64_t>(it - a.begin()) / static_cast<std::int64_t>(dtype_size(dtype));
  const auto layout =
      make_parameter_layout(model_config(kLayers, kWidth, kHeads, kSeq, kVocab), {});
  for (const auto& p : layout.tensors) {
    if (elem >= p.offset && elem < p.offset + p.numel())
      return p.name + "[" + std::to_string(elem - p.offset) + "]";
  }
  return "element " + std::to_string(elem);
}

struct GradCase {
  DType dtype;
  CheckpointPolicy policy;
  PrecisionMode mode = PrecisionMode::fp32;
};
void PrintTo(const GradCase& c, std::ostream* os) {
  *os << dtype_name(c.dtype) << " " << precision_mode_name(c.mode) << " ";
  PrintTo(c.policy, os);
}

class CheckpointGradients : public ::testing::TestWithParam<GradCase> {};

TEST_P(CheckpointGradients, BitIdenticalToNoCheckpointing) {
  const GradCase c = GetParam();
  const Trace ref = train_rounds({}, c.dtype, c.mode);
  const Trace got = train_rounds(c.policy, c.dtype, c.mode);
  for (std::size_t r = 0; r < ref.losses.size(); ++r) {
    SCOPED_TRACE("round " + std::to_string(r + 1));
    EXPECT_EQ(std::memcmp(&ref.losses[r], &got.losses[r], sizeof(double)), 0)
        << ref.losses[r] << " vs " << got.losses[r];
    ASSERT_EQ(ref.grads[r].size(), got.grads[r].size());
    EXPECT_EQ(std::memcmp(ref.grads[r].data(), got.grads[r].data(), ref.grads[r].size()), 0)
        << "first difference at " << first_difference(ref.grads[r], got.grads[r], c.dtype);
  }
}

std::vector<GradCase> grad_cases() {
  std::vector<GradCase> v;
  for (DType t : {DType::f32, DType::f64}) {
    for (int k : {1, 2, 3, 5, 7}) v.push_back({t, {k, false}});
    v.push_back({t, {0, true}});
  }
  // Reduced precision: recomputation rounds the same values the same way (and, in fp8,
  // casts with the forward's scales: they update only after backward).
  for (PrecisionMode m :
       {PrecisionMode::tf32, PrecisionMode::bf16, PrecisionMode::fp16, PrecisionMode::fp8}) {
    for (int k : {1, 2}) v.push_back({DType::f32, {k, false}, m});
    v.push_back({DType::f32, {0, true}, m});
  }
  return v;
}

INSTANTIATE_TEST_SUITE_P(Policies, CheckpointGradients, ::testing::ValuesIn(grad_cases()),
                         [](const ::testing::TestParamInfo<GradCase>& p) {
                           std::string s = policy_name(p.param.policy) + "_";
                           s += dtype_name(p.param.dtype);
                           if (p.param.mode != PrecisionMode::fp32) {
                             s += "_";
                             s += precision_mode_name(p.param.mode);
                           }
                           return s;
                         });

// What the policy keeps, counted from the architecture (not from the allocation code), in
// elements of the model dtype; see tests/numerics/activation_memory_test.cpp for the
// per-layer count P = 16·B·T·C + 4·B·T + NH·B·T² and its relation to Korthikanti et al.
// 2022, Eq. 2 (s·b·h·(34 + 5·a·s/h) bytes per layer in 16-bit, i.e. 16·sbh + a·s²·b values
// without dropout, LayerNorm statistics neglected).
//   off:          the embeddings B·T·C + L·P + the ends.
//   interval k:   Chen et al. 2016, §4: only each segment's input stays, ⌈L/k⌉ tensors of
//                 B·T·C (the embeddings are segment 0's input), plus one segment's
//                 activations, min(k, L)·P, recomputed into during backward; the ends as
//                 before. (Korthikanti et al. 2022, §4.2, full recompute: 2·sbh bytes = one
//                 B·T·C tensor per checkpointed block.)
//   selective:    Korthikanti et al. 2022, §4.2: Eq. 2 without its 5·a·s²·b term, i.e. P less
//                 NH·B·T² per layer, plus one layer's NH·B·T² buffer in which forward
//                 produces, and backward recomputes, each layer's probabilities.
//   ends:         final LayerNorm B·T·C + 2·B·T, logits B·T·V, losses B·T; plus the token ids,
//                 2·B·T int32.
//   precision:    the stored activations (everything but the LayerNorm statistics, logits
//                 and losses) take `act` bytes per value (2 in bf16/fp16/fp8 modes); the
//                 statistics, logits and losses 4 (fp32).
std::size_t expected_activation_bytes(const ModelConfig& c, std::int64_t B, CheckpointPolicy p,
                                      DType dtype, DType act) {
  const std::int64_t T = c.seq_len, C = c.d_model, NH = c.n_head, L = c.n_layer, V = c.vocab;
  const std::int64_t scores = NH * B * T * T;
  const std::int64_t stored_per_layer = 16 * B * T * C + scores, stats_per_layer = 4 * B * T;
  std::int64_t stored = B * T * C, stats = 0;  // the final LayerNorm's output and statistics
  stats += 2 * B * T + B * T * V + B * T;      // and the logits and losses
  if (p.selective) {
    stored += B * T * C + L * (stored_per_layer - scores) + scores;
    stats += L * stats_per_layer;
  } else if (p.interval > 0) {
    const std::int64_t k = p.interval;
    stored += (L + k - 1) / k * B * T * C + std::min(k, L) * stored_per_layer;
    stats += std::min(k, L) * stats_per_layer;
  } else {
    stored += B * T * C + L * stored_per_layer;
    stats += L * stats_per_layer;
  }
  return static_cast<std::size_t>(stored) * dtype_size(act) +
         static_cast<std::size_t>(stats) * dtype_size(dtype) +
         static_cast<std::size_t>(2 * B * T) * sizeof(std::int32_t);
}

struct MemCase {
  CheckpointPolicy policy;
  PrecisionMode mode = PrecisionMode::fp32;
};

class CheckpointMemory : public ::testing::TestWithParam<MemCase> {};

TEST_P(CheckpointMemory, ActivationPeakMatchesPolicyCount) {
  const CheckpointPolicy policy = GetParam().policy;
  const PrecisionMode mode = GetParam().mode;
  const DType act = activation_dtype(mode);
  const ModelConfig cfg = model_config(6, 32, 4, 96, 50);
  const int B = 2;
  auto be = make_cpu_backend();
  GptModel model(*be, cfg, DType::f32);
  model.set_checkpointing(policy);
  model.set_precision({mode});
  model.init_weights(1);
  Rng rng(8);
  const auto n = static_cast<std::size_t>(B * cfg.seq_len);
  const auto inputs = ids_vec(rng, n, cfg.vocab), targets = ids_vec(rng, n, cfg.vocab);
  model.forward(inputs.data(), targets.data(), B);
  const double expected = double(expected_activation_bytes(cfg, B, policy, DType::f32, act));
  const double peak = double(be->memory().peak_bytes(MemoryCategory::activations));
  noted("activation bytes", peak);
  noted("peak / expected", peak / expected);
  EXPECT_NEAR(peak, expected, 0.10 * expected);

  // Recomputation reuses the buffers carved at forward: neither category grows in backward.
  model.backward();
  EXPECT_EQ(double(be->memory().peak_bytes(MemoryCategory::activations)), peak);
  // The workspace also holds the CPU's GEMM arena (oneDNN's scratchpad and 16-bit operand
  // copies in bf16), which grows to its largest call — a backward one — in the first step:
  // from the second step on, backward allocates nothing beyond what forward holds.
  be->memory().reset_peaks();
  model.forward(inputs.data(), targets.data(), B);
  const double workspace = double(be->memory().peak_bytes(MemoryCategory::workspace));
  model.backward();
  EXPECT_EQ(double(be->memory().peak_bytes(MemoryCategory::activations)), peak);
  EXPECT_EQ(double(be->memory().peak_bytes(MemoryCategory::workspace)), workspace);

  // Below no checkpointing whenever something is dropped; interval ≥ L keeps the embeddings
  // and one segment of all L layers, which is what no checkpointing keeps.
  const double off = double(expected_activation_bytes(cfg, B, {}, DType::f32, act));
  if (policy.selective || (policy.interval > 0 && policy.interval < cfg.n_layer)) {
    EXPECT_LT(peak, off);
  } else {
    EXPECT_EQ(peak, off);
  }
}

std::vector<MemCase> mem_cases() {
  std::vector<MemCase> v;
  for (PrecisionMode m : {PrecisionMode::fp32, PrecisionMode::bf16}) {
    for (int k : {0, 1, 2, 3, 4, 6, 9}) v.push_back({{k, false}, m});
    v.push_back({{0, true}, m});
  }
  return v;
}

INSTANTIATE_TEST_SUITE_P(Policies, CheckpointMemory, ::testing::ValuesIn(mem_cases()),
                         [](const ::testing::TestParamInfo<MemCase>& p) {
                           return policy_name(p.param.policy) + "_" +
                                  std::string(precision_mode_name(p.param.mode));
                         });

// 16-bit activations halve every stored activation: the bf16 peak is the fp32 count with
// 2-byte values, measured side by side.
TEST(CheckpointMemory, Bf16StoresActivationsAtHalfWidth) {
  const ModelConfig cfg = model_config(4, 32, 4, 64, 50);
  const int B = 2;
  auto peak = [&](PrecisionMode m) {
    auto be = make_cpu_backend();
    GptModel model(*be, cfg, DType::f32);
    model.set_precision({m});
    model.init_weights(1);
    Rng rng(8);
    const auto n = static_cast<std::size_t>(B * cfg.seq_len);
    const auto in = ids_vec(rng, n, cfg.vocab), tg = ids_vec(rng, n, cfg.vocab);
    model.forward(in.data(), tg.data(), B);
    return double(be->memory().peak_bytes(MemoryCategory::activations));
  };
  const double fp32 = peak(PrecisionMode::fp32), bf16 = peak(PrecisionMode::bf16);
  noted("bf16 / fp32 activation bytes", bf16 / fp32);
  EXPECT_LT(bf16, 0.6 * fp32);
  EXPECT_NEAR(bf16, double(expected_activation_bytes(cfg, B, {}, DType::f32, DType::bf16)),
              0.02 * bf16);
}

class CheckpointProfile : public ::testing::TestWithParam<CheckpointPolicy> {};

TEST_P(CheckpointProfile, RecomputePhaseTimedOnlyWhenRecomputing) {
  const CheckpointPolicy policy = GetParam();
  auto be = make_cpu_backend();
  GptModel model(*be, model_config(3, 16, 2, 32, 20), DType::f32);
  model.set_checkpointing(policy);
  model.init_weights(2);
  Rng rng(3);
  const auto inputs = ids_vec(rng, 2 * 32, 20), targets = ids_vec(rng, 2 * 32, 20);
  Profiler prof;
  {
    auto fwd = prof.range(Phase::forward);
    model.forward(inputs.data(), targets.data(), 2);
  }
  {
    auto bwd = prof.range(Phase::backward);
    model.backward(&prof);
  }
  const auto s = prof.take_phase_seconds();
  const double recompute = s[static_cast<std::size_t>(Phase::recompute)];
  EXPECT_GT(s[static_cast<std::size_t>(Phase::backward)], 0.0);
  if (policy.selective || policy.interval > 0) {
    EXPECT_GT(recompute, 0.0);
  } else {
    EXPECT_EQ(recompute, 0.0);
  }
}

INSTANTIATE_TEST_SUITE_P(Policies, CheckpointProfile,
                         ::testing::Values(CheckpointPolicy{0, false}, CheckpointPolicy{1, false},
                                           CheckpointPolicy{2, false}, CheckpointPolicy{0, true}),
                         [](const ::testing::TestParamInfo<CheckpointPolicy>& p) {
                           return policy_name(p.param);
                         });

TEST(CheckpointPolicy, RejectsInvalidPolicies) {
  auto be = make_cpu_backend();
  GptModel model(*be, model_config(2, 16, 2, 8, 11), DType::f32);
  try {
    model.set_checkpointing({2, true});
    FAIL() << "selective with interval 2 accepted";
  } catch (const std::invalid_argument& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("selective"), std::string::npos) << msg;
    EXPECT_NE(msg.find("interval = 2"), std::string::npos) << msg;
  }
  EXPECT_THROW(model.set_checkpointing({-1, false}), std::invalid_argument);
  EXPECT_EQ(model.checkpointing().interval, 0);  // unchanged by the rejected calls
  EXPECT_FALSE(model.checkpointing().selective);
}

// A policy change between steps re-carves the buffers: the segment's layers and inputs.
TEST(CheckpointPolicy, ChangingPolicyBetweenStepsRecarves) {
  auto be = make_cpu_backend();
  GptModel model(*be, model_config(5, 16, 2, 8, 11), DType::f32);
  model.init_weights(4);
  Rng rng(9);
  const auto inputs = ids_vec(rng, 16, 11), targets = ids_vec(rng, 16, 11);
  const double l0 = model.forward(inputs.data(), targets.data(), 2);
  EXPECT_EQ(model.activations().layers.size(), 5u);
  model.set_checkpointing({2, false});
  EXPECT_EQ(model.forward(inputs.data(), targets.data(), 2), l0);
  EXPECT_EQ(model.activations().layers.size(), 2u);
  EXPECT_EQ(model.activations().segment_inputs.size(), 3u);
  model.backward();
  model.set_checkpointing({});
  EXPECT_EQ(model.forward(inputs.data(), targets.data(), 2), l0);
  EXPECT_EQ(model.activations().layers.size(), 5u);
  EXPECT_TRUE(model.activations().segment_inputs.empty());
}

}  // namespace
}  // namespace tb::test
