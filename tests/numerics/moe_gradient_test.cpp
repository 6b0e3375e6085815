// Mixture-of-experts blocks (model/gpt_moe.cpp, model/moe_routing.h) in f64: backward()
// against central finite differences of the training loss — mean cross-entropy plus the
// load-balancing and router z-losses — for every tensor (router included), at top-1 and
// top-2, with and without capacity drops; the routing statistics those runs must show; and a
// one-expert MoE (E = 1, k = 1, capacity ≥ 1) equal to the dense model.
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "model/gpt.h"
#include "numerics/numerics_util.h"
#include "tb/cpu_backend.h"

namespace tb::test {
namespace {

constexpr int kB = 2, kT = 8, kVocab = 11;

ModelConfig moe_config(int experts, int top_k, double capacity_factor, double z_coef = 1e-3) {
  ModelConfig c = model_config(2, 16, 2, kT, kVocab);
  c.moe.experts = experts;
  c.moe.top_k = top_k;
  c.moe.capacity_factor = capacity_factor;
  c.moe.every = 1;
  c.moe.aux_loss_coef = 0.05;  // large enough that its gradient matters in the check
  c.moe.z_loss_coef = z_coef;
  return c;
}

struct Case {
  const char* name;
  int experts, top_k;
  double capacity_factor;
  bool drops;  // whether the capacity must drop choices here
};

class MoeGradient : public ::testing::TestWithParam<Case> {};

TEST_P(MoeGradient, EveryTensorAgainstFiniteDifferences) {
  const Case& k = GetParam();
  auto be = make_cpu_backend();
  GptModel model(*be, moe_config(k.experts, k.top_k, k.capacity_factor), DType::f64);
  model.init_weights(3);
  // O(0.3) weights everywhere (as the dense model's check does), routers included, so the
  // routing is far from uniform and the gates' gradients are not negligible.
  Rng rng(11);
  std::vector<double> theta = normal_vec(rng, static_cast<std::size_t>(model.layout().total), 0.3);
  for (const auto& p : model.layout().tensors) {
    if (p.name.ends_with("ln1.weight") || p.name.ends_with("ln2.weight") || p.name == "lnf.weight")
      for (std::int64_t i = 0; i < p.numel(); ++i)
        theta[static_cast<std::size_t>(p.offset + i)] += 1;
  }
  const auto inputs = ids_vec(rng, kB * kT, kVocab), targets = ids_vec(rng, kB * kT, kVocab);
  auto loss = [&] {
    upload(*be, model.params(), theta);
    return model.forward(inputs.data(), targets.data(), kB) + model.moe_aux_loss();
  };
  model.zero_grad();
  model.reset_moe_stats();
  const double l0 = loss();
  model.backward();
  const auto g = download(*be, model.grads());
  const MoeStats st = model.moe_stats();
  ASSERT_EQ(st.layers.size(), 2u);
  EXPECT_EQ(st.choices, 2 * kB * kT * k.top_k);
  if (k.drops) {
    EXPECT_GT(st.dropped, 0) << "the case must drop choices";
  } else {
    EXPECT_EQ(st.dropped, 0);
  }
  for (std::size_t i = 0; i < st.layers.size(); ++i) {
    std::int64_t rows = 0, firsts = 0;
    for (auto n : st.dispatched[i]) rows += n;
    for (auto n : st.first_choice[i]) firsts += n;
    EXPECT_EQ(firsts, kB * kT);
    const int cap = moe_capacity(kB * kT, k.experts, k.top_k, k.capacity_factor);
    for (auto n : st.dispatched[i]) EXPECT_LE(n, cap);
    EXPECT_LE(rows, kB * kT * k.top_k);
  }
  EXPECT_GT(model.moe_aux_loss(), 0);
  noted("loss with auxiliary losses", l0);

  double worst = 0;
  for (const auto& p : model.layout().tensors) {
    std::vector<double> x(theta.begin() + p.offset, theta.begin() + p.offset + p.numel());
    const std::vector<double> a(g.begin() + p.offset, g.begin() + p.offset + p.numel());
    auto tensor_loss = [&] {
      std::copy(x.begin(), x.end(), theta.begin() + p.offset);
      return loss();
    };
    const double err = fd_rel_err(x, a, tensor_loss, 48, 5);
    std::copy(x.begin(), x.end(), theta.begin() + p.offset);
    EXPECT_LT(err, kFdTolerance) << p.name;
    worst = std::max(worst, err);
  }
  noted("worst tensor rel_err", worst);
}

INSTANTIATE_TEST_SUITE_P(Routing, MoeGradient,
                         ::testing::Values(Case{"top1", 4, 1, 4.0, false},
                                           Case{"top2", 4, 2, 4.0, false},
                                           Case{"top1_drops", 4, 1, 0.5, true},
                                           Case{"top2_drops", 4, 2, 0.5, true}),
                         [](const auto& param_info) { return std::string(param_info.param.name); });

// E = 1, k = 1, capacity factor 1: every token goes to the one expert with gate softmax = 1,
// so the block is the dense MLP. The router's only gradients are the z-loss's (off here) and
// the load-balancing loss's, which is the constant α·1·1·1 with zero gradient.
// In f64 and in f32 the same operations run on the same values (the gather and combine move
// rows and multiply by exactly 1), so losses and gradients are bit-identical.
class MoeOneExpert : public ::testing::TestWithParam<DType> {};

TEST_P(MoeOneExpert, EqualsTheDenseModelBitForBit) {
  auto be = make_cpu_backend();
  ModelConfig dense_cfg = model_config(2, 16, 2, kT, kVocab);
  GptModel dense(*be, dense_cfg, GetParam());
  GptModel moe(*be, moe_config(1, 1, 1.0, /*z_coef=*/0), GetParam());
  dense.init_weights(7);
  moe.init_weights(9);
  // The dense model's weights in the MoE's tensors (mlp.X → mlp.experts.X).
  for (const auto& p : moe.layout().tensors) {
    std::string name = p.name;
    if (const auto at = name.find("mlp.experts."); at != std::string::npos)
      name.replace(at, 12, "mlp.");
    if (!dense.layout().find_if_present(name)) continue;
    upload(*be, moe.param(p.name), download(*be, dense.param(name)));
  }
  Rng rng(4);
  const auto inputs = ids_vec(rng, kB * kT, kVocab), targets = ids_vec(rng, kB * kT, kVocab);
  dense.zero_grad();
  moe.zero_grad();
  const double ld = dense.forward(inputs.data(), targets.data(), kB);
  const double lm = moe.forward(inputs.data(), targets.data(), kB);
  EXPECT_EQ(noted("|loss difference|", std::abs(lm - ld)), 0.0);
  EXPECT_DOUBLE_EQ(moe.moe_aux_loss(), 2 * moe.config().moe.aux_loss_coef);  // 2 blocks
  dense.backward();
  moe.backward();
  double worst = 0;
  for (const auto& p : moe.layout().tensors) {
    const auto gm = download(*be, moe.grad(p.name));
    if (p.name.find("router") != std::string::npos) {
      for (double v : gm) EXPECT_EQ(v, 0.0) << p.name;
      continue;
    }
    std::string name = p.name;
    if (const auto at = name.find("mlp.experts."); at != std::string::npos)
      name.replace(at, 12, "mlp.");
    const double err = rel_err(gm, download(*be, dense.grad(name)));
    EXPECT_EQ(err, 0.0) << p.name;
    worst = std::max(worst, err);
  }
  noted("worst gradient rel_err vs dense", worst);
  EXPECT_EQ(moe.moe_stats().dropped, 0);
}

INSTANTIATE_TEST_SUITE_P(Dtypes, MoeOneExpert, ::testing::Values(DType::f64, DType::f32),
                         [](const auto& param_info) {
                           return std::string(dtype_name(param_info.param));
                         });

}  // namespace
}  // namespace tb::test
