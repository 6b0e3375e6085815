// The mixture-of-experts routing (model/moe_routing.h) on hand-made router logits: top-k
// choice with ties, gates (Switch's p for top-1, GShard's renormalised pair for top-2),
// capacity and the order choices are placed in, the load-balancing and z-losses computed by
// hand, and the router's backward against finite differences.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "model/config.h"
#include "model/moe_routing.h"

namespace tb {
namespace {

const double kLn3 = std::log(3.0);

TEST(MoeRouting, TopOneGatesCapacityAndLossesByHand) {
  // Four tokens, two experts: p = (1/4, 3/4) for tokens 0, 1, 3 and (3/4, 1/4) for token 2.
  const std::vector<double> z = {0, kLn3, 0, kLn3, kLn3, 0, 0, kLn3};
  // capacity = ⌈1·1·4/2⌉ = 2: expert 1 takes tokens 0 and 1, token 3 is dropped.
  const MoeRouting r = moe_route(z, 4, 2, 1, 1.0);
  EXPECT_EQ(r.capacity, 2);
  EXPECT_EQ(r.dropped, 1);
  EXPECT_EQ(r.rows(), 3);
  EXPECT_EQ(r.row_begin, (std::vector<std::int32_t>{0, 1, 3}));
  EXPECT_EQ(r.row_token, (std::vector<std::int32_t>{2, 0, 1}));
  EXPECT_EQ(r.slots, (std::vector<std::int32_t>{1, 2, 0, -1}));
  for (double g : r.row_gate) EXPECT_NEAR(g, 0.75, 1e-15);  // top-1: the probability itself
  EXPECT_EQ(r.first_choice, (std::vector<std::int64_t>{1, 3}));
  // f = (1/4, 3/4), P = (1.5/4, 2.5/4): E·Σ f·P = 2·(0.25·0.375 + 0.75·0.625) = 1.125.
  EXPECT_NEAR(r.load_balance_loss, 1.125, 1e-15);
  // log Σ exp z = log 4 for every token.
  EXPECT_NEAR(r.z_loss, std::log(4.0) * std::log(4.0), 1e-14);
}

TEST(MoeRouting, TiesGoToTheLowerExpert) {
  const MoeRouting r = moe_route({0.5, 0.5, 0.5}, 1, 3, 2, 8.0);
  EXPECT_EQ(r.choice, (std::vector<std::int32_t>{0, 1}));
  EXPECT_NEAR(r.choice_gate[0], 0.5, 1e-15);
  EXPECT_NEAR(r.choice_gate[1], 0.5, 1e-15);
}

TEST(MoeRouting, TopTwoRenormalisesAndPlacesFirstChoicesFirst) {
  // p = (1/6, 2/6, 3/6): choices 2 then 1, gates 0.6 and 0.4.
  const std::vector<double> one = {0, std::log(2.0), kLn3};
  std::vector<double> z;
  for (int n = 0; n < 3; ++n) z.insert(z.end(), one.begin(), one.end());
  const MoeRouting r = moe_route(z, 3, 3, 2, 0.5);  // capacity ⌈0.5·2·3/3⌉ = 1
  EXPECT_EQ(r.capacity, 1);
  EXPECT_EQ(r.choice[0], 2);
  EXPECT_EQ(r.choice[1], 1);
  EXPECT_NEAR(r.choice_gate[0], 0.6, 1e-15);
  EXPECT_NEAR(r.choice_gate[1], 0.4, 1e-15);
  // Token 0's first choice takes expert 2; token 0's second choice takes expert 1 (placed in
  // the second round, after every first choice — which all wanted expert 2 and were dropped).
  EXPECT_EQ(r.slots, (std::vector<std::int32_t>{1, 0, -1, -1, -1, -1}));
  EXPECT_EQ(r.dropped, 4);
}

// Expert parallelism's layout: every expert a block of `capacity` rows, padding after its
// rows (token 0, gate 0, no slot points at it).
TEST(MoeRouting, PaddedLayoutGivesEveryExpertCapacityRows) {
  const std::vector<double> z = {0, kLn3, 0, kLn3, kLn3, 0, 0, kLn3};
  const MoeRouting r = moe_route(z, 4, 2, 1, 1.0, /*padded=*/true);
  EXPECT_EQ(r.rows(), 4);  // 2 experts × capacity 2
  EXPECT_EQ(r.row_begin, (std::vector<std::int32_t>{0, 2, 4}));
  EXPECT_EQ(r.row_count, (std::vector<std::int32_t>{1, 2}));
  EXPECT_EQ(r.row_token, (std::vector<std::int32_t>{2, 0, 0, 1}));
  EXPECT_EQ(r.slots, (std::vector<std::int32_t>{2, 3, 0, -1}));
  EXPECT_EQ(r.row_gate[1], 0.0);  // padding
  EXPECT_EQ(r.row_choice[1], -1);
  EXPECT_EQ(r.dropped, 1);
}

TEST(MoeRouting, CapacityFormula) {
  EXPECT_EQ(moe_capacity(64, 8, 1, 1.25), 10);  // ⌈1.25·64/8⌉
  EXPECT_EQ(moe_capacity(64, 8, 2, 1.0), 16);
  EXPECT_EQ(moe_capacity(64, 1, 1, 2.0), 64);  // never more than the tokens
  EXPECT_EQ(moe_capacity(4, 8, 1, 0.01), 1);   // at least one row
}

// L = Σ_rows c_row·gate_row + α·(load balance) + β·(z-loss); ∂L/∂z by moe_router_backward
// against central differences (the routing does not change within ±h here).
TEST(MoeRouting, RouterBackwardAgainstFiniteDifferences) {
  for (int k : {1, 2}) {
    const int N = 5, E = 4;
    std::vector<double> z = {0.3,  -1.2, 0.8, 0.1,  1.1, 0.2,  -0.4, 0.5, -0.7, 0.9,
                             0.05, 0.6,  0.4, -0.2, 1.3, -0.9, 0.2,  0.7, -0.3, -1.0};
    const double alpha = 0.3, beta = 0.2, scale = 2.0;
    const MoeRouting r0 = moe_route(z, N, E, k, 0.8);  // with drops
    ASSERT_GT(r0.dropped, 0);
    std::vector<double> c(static_cast<std::size_t>(r0.rows()));
    for (std::size_t i = 0; i < c.size(); ++i) c[i] = std::sin(double(i) + 1.0);
    auto loss = [&](const std::vector<double>& zz) {
      const MoeRouting r = moe_route(zz, N, E, k, 0.8);
      EXPECT_EQ(r.row_token, r0.row_token);
      double l = alpha * r.load_balance_loss + beta * r.z_loss;
      for (std::size_t i = 0; i < c.size(); ++i) l += c[i] * r.row_gate[i];
      return scale * l;
    };
    const std::vector<double> g = moe_router_backward(r0, c, alpha, beta, scale);
    const double h = 1e-6;
    for (std::size_t i = 0; i < z.size(); ++i) {
      const double saved = z[i];
      z[i] = saved + h;
      const double lp = loss(z);
      z[i] = saved - h;
      const double lm = loss(z);
      z[i] = saved;
      EXPECT_NEAR(g[i], (lp - lm) / (2 * h), 1e-8) << "k = " << k << ", logit " << i;
    }
  }
}

TEST(MoeParameters, TotalAndActiveCounts) {
  ModelConfig c;
  c.n_layer = 4;
  c.d_model = 8;
  c.n_head = 2;
  c.seq_len = 16;
  c.vocab = 32;
  const std::int64_t dense = parameter_count(c);
  c.moe.experts = 4;
  c.moe.top_k = 2;
  c.moe.every = 2;  // blocks 1 and 3
  const std::int64_t mlp = 8 * 64 + 5 * 8, router = 4 * 8;
  EXPECT_EQ(parameter_count(c), dense + 2 * (3 * mlp + router));
  EXPECT_EQ(active_parameter_count(c), dense + 2 * (1 * mlp + router));
  // FLOPs count what a token uses: 6·(active − position table) + 12·L·d·T.
  EXPECT_DOUBLE_EQ(model_flops_per_token(c),
                   6.0 * double(active_parameter_count(c) - 16 * 8) + 12.0 * 4 * 8 * 16);
}

}  // namespace
}  // namespace tb
