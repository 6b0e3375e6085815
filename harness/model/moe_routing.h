// Routing of a mixture-of-experts block, on the host in double precision: the router's
// softmax, top-k choice with capacity, the combine weights (gates), the auxiliary losses and
// the router's backward. The device does the rest (GptModel's MoE layers; Backend::
// gather_rows, combine_rows, gathered_row_dot).
//
// Forward, for N tokens x with router logits z(x) ∈ R^E and p(x) = softmax(z(x)):
// - choice: the top_k experts by p (ties to the lower index); token x's j-th choice e_j(x).
// - gates: k = 1, g = p_e (Switch Transformer, Fedus et al. 2022, §2.1); k ≥ 2, renormalised
//   over the k choices, g_j = p_{e_j} / Σ_i p_{e_i} (GShard, Lepikhin et al. 2021, Alg. 1).
// - capacity: each expert takes at most cap = min(N, ⌈capacity_factor·k·N/E⌉) rows; every
//   token's first choice is placed before any second choice (GShard's order), tokens in
//   order; a choice beyond its expert's capacity is dropped — it adds nothing to the output,
//   so a token with all choices dropped passes through the residual unchanged.
// - output: y(x) = Σ_{j kept} g_j(x)·MLP_{e_j}(x).
// Auxiliary losses, added to the micro-batch's mean cross-entropy:
// - load balance (Switch, Eq. 4): α·E·Σ_i f_i·P_i, with f_i the fraction of tokens whose first
//   choice is expert i (not differentiated) and P_i = (1/N)·Σ_x p_i(x).
// - router z-loss (ST-MoE, Zoph et al. 2022, Eq. 5): β·(1/N)·Σ_x (log Σ_j exp z_j(x))².
// Rows: the dispatched (token, choice) pairs in expert order — expert e's rows are
// [row_begin[e], row_begin[e] + row_count[e]), in placement order — so each expert's GEMMs
// run on one contiguous block. Packed, the blocks follow each other (row_begin[e+1] =
// row_begin[e] + row_count[e]); padded (expert parallelism's fixed-size all-to-all, as
// GShard's dispatch tensor), row_begin[e] = e·capacity and the rows past row_count[e] are
// padding: token 0, gate 0, choice −1, referenced by no slot.
#pragma once
#include <cstdint>
#include <vector>

namespace tb {

struct MoeRouting {
  int tokens = 0, experts = 0, top_k = 0, capacity = 0;
  std::vector<double> probs;               // (N, E) softmax of the router logits
  std::vector<double> lse;                 // (N) log Σ exp z
  std::vector<std::int32_t> choice;        // (N, k) expert of each choice
  std::vector<double> choice_gate;         // (N, k) gate of each choice (kept or not)
  std::vector<std::int32_t> slots;         // (N, k) row of each choice, −1 when dropped
  std::vector<std::int32_t> row_token;     // (M) token of each row
  std::vector<std::int32_t> row_choice;    // (M) which of its token's choices
  std::vector<double> row_gate;            // (M) gate of each row
  std::vector<std::int32_t> row_begin;     // (E + 1)
  std::vector<std::int32_t> row_count;     // (E) rows (kept choices) of each expert
  std::vector<std::int64_t> first_choice;  // (E) tokens whose first choice is e (f_i·N)
  std::int64_t dropped = 0;                // choices dropped for capacity
  double load_balance_loss = 0;            // E·Σ f_i·P_i (before α)
  double z_loss = 0;                       // (1/N)·Σ lse² (before β)
  int rows() const { return static_cast<int>(row_token.size()); }
  int rows_of(int e) const { return row_count[static_cast<std::size_t>(e)]; }
};

// Rows each expert takes: min(N, ⌈capacity_factor·k·N/E⌉).
int moe_capacity(int tokens, int experts, int top_k, double capacity_factor);

// logits: (N, E) row-major.
MoeRouting moe_route(const std::vector<double>& logits, int tokens, int experts, int top_k,
                     double capacity_factor, bool padded = false);

// The gradient of the router logits, (N, E), from d(loss)/d(gate) of every row (d_row_gate,
// (M)) plus the auxiliary losses' gradients (coefficients α and β), all times loss_scale.
std::vector<double> moe_router_backward(const MoeRouting& r, const std::vector<double>& d_row_gate,
                                        double aux_coef, double z_coef, double loss_scale);

}  // namespace tb
