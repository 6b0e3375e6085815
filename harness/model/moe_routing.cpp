#include "moe_routing.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>
#include <string>

namespace tb {

int moe_capacity(int tokens, int experts, int top_k, double capacity_factor) {
  const double c = std::ceil(capacity_factor * top_k * double(tokens) / double(experts));
  return static_cast<int>(std::min<double>(tokens, std::max(1.0, c)));
}

MoeRouting moe_route(const std::vector<double>& logits, int tokens, int experts, int top_k,
                     double capacity_factor, bool padded) {
  const int N = tokens, E = experts, K = top_k;
  if (N < 1 || E < 1 || K < 1 || K > E || !(capacity_factor > 0) ||
      logits.size() != static_cast<std::size_t>(N) * E) {
    throw std::invalid_argument("moe_route: tokens = " + std::to_string(N) + ", experts = " +
                                std::to_string(E) + ", top_k = " + std::to_string(K) +
                                " (expected 1 <= top_k <= experts, capacity_factor > 0, N·E "
                                "logits)");
  }
  MoeRouting r;
  r.tokens = N;
  r.experts = E;
  r.top_k = K;
  r.capacity = moe_capacity(N, E, K, capacity_factor);
  r.probs.resize(logits.size());
  r.lse.resize(static_cast<std::size_t>(N));
  r.choice.resize(static_cast<std::size_t>(N) * K);
  r.choice_gate.resize(r.choice.size());
  r.slots.assign(r.choice.size(), -1);
  r.first_choice.assign(static_cast<std::size_t>(E), 0);
  std::vector<int> order(static_cast<std::size_t>(E));
  for (int n = 0; n < N; ++n) {
    const double* z = &logits[static_cast<std::size_t>(n) * E];
    double* p = &r.probs[static_cast<std::size_t>(n) * E];
    const double zmax = *std::max_element(z, z + E);
    double sum = 0;
    for (int e = 0; e < E; ++e) sum += p[e] = std::exp(z[e] - zmax);
    for (int e = 0; e < E; ++e) p[e] /= sum;
    r.lse[static_cast<std::size_t>(n)] = zmax + std::log(sum);
    std::iota(order.begin(), order.end(), 0);
    std::partial_sort(order.begin(), order.begin() + K, order.end(),
                      [&](int a, int b) { return p[a] > p[b] || (p[a] == p[b] && a < b); });
    double top = 0;
    for (int j = 0; j < K; ++j) top += p[order[static_cast<std::size_t>(j)]];
    for (int j = 0; j < K; ++j) {
      const int e = order[static_cast<std::size_t>(j)];
      const auto at = static_cast<std::size_t>(n) * K + static_cast<std::size_t>(j);
      r.choice[at] = e;
      r.choice_gate[at] = K == 1 ? p[e] : p[e] / top;
    }
    ++r.first_choice[static_cast<std::size_t>(order[0])];
  }
  // Placement: all first choices (tokens in order), then all second choices, …
  std::vector<int> fill(static_cast<std::size_t>(E), 0);
  std::vector<int> pos(r.choice.size(), -1);  // position within its expert
  for (int j = 0; j < K; ++j) {
    for (int n = 0; n < N; ++n) {
      const auto at = static_cast<std::size_t>(n) * K + static_cast<std::size_t>(j);
      int& f = fill[static_cast<std::size_t>(r.choice[at])];
      if (f < r.capacity) {
        pos[at] = f++;
      } else {
        ++r.dropped;
      }
    }
  }
  r.row_begin.assign(static_cast<std::size_t>(E) + 1, 0);
  r.row_count.assign(fill.begin(), fill.end());
  for (int e = 0; e < E; ++e) {
    const auto i = static_cast<std::size_t>(e);
    r.row_begin[i + 1] = padded ? (e + 1) * r.capacity : r.row_begin[i] + fill[i];
  }
  const auto M = static_cast<std::size_t>(r.row_begin[static_cast<std::size_t>(E)]);
  r.row_token.assign(M, 0);
  r.row_choice.assign(M, -1);
  r.row_gate.assign(M, 0.0);
  for (int n = 0; n < N; ++n) {
    for (int j = 0; j < K; ++j) {
      const auto at = static_cast<std::size_t>(n) * K + static_cast<std::size_t>(j);
      if (pos[at] < 0) continue;
      const int row = r.row_begin[static_cast<std::size_t>(r.choice[at])] + pos[at];
      r.slots[at] = row;
      r.row_token[static_cast<std::size_t>(row)] = n;
      r.row_choice[static_cast<std::size_t>(row)] = j;
      r.row_gate[static_cast<std::size_t>(row)] = r.choice_gate[at];
    }
  }
  // Switch Eq. 4 (before α): E·Σ_i f_i·P_i; ST-MoE Eq. 5 (before β): mean lse².
  double lb = 0, z2 = 0;
  for (int e = 0; e < E; ++e) {
    double P = 0;
    for (int n = 0; n < N; ++n) P += r.probs[static_cast<std::size_t>(n) * E + e];
    lb += double(r.first_choice[static_cast<std::size_t>(e)]) / N * (P / N);
  }
  for (double l : r.lse) z2 += l * l;
  r.load_balance_loss = E * lb;
  r.z_loss = z2 / N;
  return r;
}

std::vector<double> moe_router_backward(const MoeRouting& r, const std::vector<double>& d_row_gate,
                                        double aux_coef, double z_coef, double loss_scale) {
  const int N = r.tokens, E = r.experts, K = r.top_k;
  if (d_row_gate.size() != static_cast<std::size_t>(r.rows())) {
    throw std::invalid_argument("moe_router_backward: " + std::to_string(d_row_gate.size()) +
                                " gate gradients (expected one per row, " +
                                std::to_string(r.rows()) + ")");
  }
  std::vector<double> dz(static_cast<std::size_t>(N) * E);
  std::vector<double> dp(static_cast<std::size_t>(E)), dg(static_cast<std::size_t>(K));
  for (int n = 0; n < N; ++n) {
    const double* p = &r.probs[static_cast<std::size_t>(n) * E];
    std::fill(dp.begin(), dp.end(), 0.0);
    // d(loss)/d(gate) of each choice; a dropped choice's gate reaches nothing.
    for (int j = 0; j < K; ++j) {
      const int row = r.slots[static_cast<std::size_t>(n) * K + static_cast<std::size_t>(j)];
      dg[static_cast<std::size_t>(j)] = row >= 0 ? d_row_gate[static_cast<std::size_t>(row)] : 0.0;
    }
    if (K == 1) {
      dp[static_cast<std::size_t>(r.choice[static_cast<std::size_t>(n)])] += dg[0];
    } else {
      // g_j = p_{e_j}/S, S = Σ_i p_{e_i}: ∂g_j/∂p_{e_i} = (δ_ij − g_j)/S, so
      // ∂L/∂p_{e_i} = (dg_i − Σ_j dg_j·g_j)/S.
      double S = 0, dot = 0;
      for (int j = 0; j < K; ++j) {
        const auto at = static_cast<std::size_t>(n) * K + static_cast<std::size_t>(j);
        S += p[r.choice[at]];
        dot += dg[static_cast<std::size_t>(j)] * r.choice_gate[at];
      }
      for (int j = 0; j < K; ++j) {
        const auto at = static_cast<std::size_t>(n) * K + static_cast<std::size_t>(j);
        dp[static_cast<std::size_t>(r.choice[at])] += (dg[static_cast<std::size_t>(j)] - dot) / S;
      }
    }
    // Load balance: ∂(α·E·Σ f_i·P_i)/∂p_i(x) = α·E·f_i/N.
    for (int e = 0; e < E; ++e) {
      const double f = double(r.first_choice[static_cast<std::size_t>(e)]) / N;
      dp[static_cast<std::size_t>(e)] += aux_coef * E * f / N;
    }
    // Softmax: ∂L/∂z_e = p_e·(∂L/∂p_e − Σ_i p_i·∂L/∂p_i); z-loss: β·(2/N)·lse·p_e.
    double pdp = 0;
    for (int e = 0; e < E; ++e) pdp += p[e] * dp[static_cast<std::size_t>(e)];
    const double zl = z_coef * 2.0 / N * r.lse[static_cast<std::size_t>(n)];
    for (int e = 0; e < E; ++e) {
      dz[static_cast<std::size_t>(n) * E + e] =
          loss_scale * (p[e] * (dp[static_cast<std::size_t>(e)] - pdp) + zl * p[e]);
    }
  }
  return dz;
}

}  // namespace tb
