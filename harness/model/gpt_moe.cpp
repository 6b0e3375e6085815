// GptModel's mixture-of-experts blocks: the MLP half of a block replaced by a router and E
// expert MLPs (moe_routing.h has the routing, its formulas and sources). The router's GEMM
// runs in fp32 whatever the precision mode (Switch Transformer's "selective precision",
// Fedus et al. 2022, §2.4); the experts' GEMMs run like the dense MLP's. Routing decisions
// are made on the host from the router logits, so each MoE block synchronizes the device
// once forward (the logits) and once backward (the gate gradients).
#include <string>
#include <vector>

#include "../parallel/comm.h"
#include "gpt.h"

namespace tb {

namespace {

std::string block(int l) { return "blocks." + std::to_string(l) + "."; }

std::vector<double> to_host(Backend& be, const Tensor& t) {
  std::vector<double> out(static_cast<std::size_t>(t.numel()));
  if (t.dtype == DType::f64) {
    be.copy_to_host(out.data(), t);
  } else {
    std::vector<float> f(out.size());
    be.copy_to_host(f.data(), t);
    out.assign(f.begin(), f.end());
  }
  return out;
}

void from_host(Backend& be, const Tensor& t, const std::vector<double>& v) {
  if (t.dtype == DType::f64) {
    be.copy_from_host(t, v.data());
  } else {
    const std::vector<float> f(v.begin(), v.end());
    be.copy_from_host(t, f.data());
  }
}

}  // namespace

std::int64_t GptModel::moe_rows_max(int B) const {
  const MoeConfig& m = config_.moe;
  if (!m.enabled()) return 0;
  const std::int64_t N = std::int64_t{B} * config_.seq_len;
  const std::int64_t cap = moe_capacity(static_cast<int>(N), m.experts, m.top_k, m.capacity_factor);
  // Expert parallelism exchanges fixed-size blocks: every expert's `cap` rows, padded.
  if (ep() > 1) return cap * m.experts;
  return std::min(cap * m.experts, N * m.top_k);
}

Tensor GptModel::expert_view(const Tensor& flat, const std::string& name, int e) const {
  const ParameterSpec& p = layout_.find(name);
  const std::vector<std::int64_t> shape(p.shape.begin() + 1, p.shape.end());
  const std::int64_t per = p.numel() / p.shape[0];
  return flat.slice(p.offset + per * e, shape);
}

void GptModel::reset_moe_stats() { moe_stats_ = {}; }

std::vector<GptModel::ExpertBlock> GptModel::expert_blocks(const LayerActivations& la) const {
  const MoeRouting& r = la.routing;
  std::vector<ExpertBlock> blocks;
  if (ep() == 1) {
    for (int e = 0; e < r.experts; ++e) {
      blocks.push_back({e, r.row_begin[static_cast<std::size_t>(e)], r.rows_of(e)});
    }
    return blocks;
  }
  // Received from source p: its rows for local expert j at block (p·E/P + j) of cap rows.
  const int local = r.experts / ep();
  for (int p = 0; p < ep(); ++p) {
    for (int j = 0; j < local; ++j) {
      const std::int64_t block = std::int64_t{p} * local + j;
      blocks.push_back(
          {j, block * r.capacity, la.moe_recv_counts[static_cast<std::size_t>(block)]});
    }
  }
  return blocks;
}

namespace {
// One block's rows of an MoE layer's saved tensors: inputs, and hidden activations before and
// after the GELU.
struct BlockRows {
  Tensor x, h, g;
  BlockRows(const LayerActivations& la, std::int64_t begin, std::int64_t rows, std::int64_t C)
      : x(la.moe_in.slice(begin * C, {rows, C})),
        h(la.moe_fch.slice(begin * 4 * C, {rows, 4 * C})),
        g(la.moe_fch_gelu.slice(begin * 4 * C, {rows, 4 * C})) {}
};
}  // namespace

// y(rows, C) = proj(GELU(fc(x))) for each block of la.moe_in, hidden activations saved.
void GptModel::experts_forward(const LayerActivations& la, int l, const Tensor& y) {
  auto& be = backend_;
  const std::int64_t C = config_.d_model;
  const std::string b = block(shard_.layer_begin + l);
  const std::string fc = b + "mlp.experts.fc.", proj = b + "mlp.experts.proj.";
  const Tensor& weights = weights_lp_.empty() ? params_all_ : weights_lp_;
  for (const ExpertBlock& k : expert_blocks(la)) {
    if (k.rows == 0) continue;
    const auto [x, h, g] = BlockRows(la, k.begin, k.rows, C);
    be.matmul_forward(h, x, expert_view(weights, fc + "weight", k.expert),
                      expert_view(params_all_, fc + "bias", k.expert), false, gemm_precision(l, 2));
    be.gelu_forward(g, h);
    be.matmul_forward(
        y.slice(k.begin * C, {k.rows, C}), g, expert_view(weights, proj + "weight", k.expert),
        expert_view(params_all_, proj + "bias", k.expert), false, gemm_precision(l, 3));
  }
}

// d_rows holds the gradient of each block's output on entry and of its input on exit.
void GptModel::experts_backward(const LayerActivations& la, int l, const Tensor& d_rows) {
  auto& be = backend_;
  const std::int64_t C = config_.d_model;
  const std::string b = block(shard_.layer_begin + l);
  const std::string fc = b + "mlp.experts.fc.", proj = b + "mlp.experts.proj.";
  const Tensor& weights = weights_lp_.empty() ? params_all_ : weights_lp_;
  for (const ExpertBlock& k : expert_blocks(la)) {
    if (k.rows == 0) continue;
    const auto [x, h, g] = BlockRows(la, k.begin, k.rows, C);
    const Tensor dy = d_rows.slice(k.begin * C, {k.rows, C});
    const Tensor dh = d_moe_fch_.slice(k.begin * 4 * C, {k.rows, 4 * C});
    be.matmul_backward(dh, expert_view(grads_all_, proj + "weight", k.expert),
                       expert_view(grads_all_, proj + "bias", k.expert), dy, g,
                       expert_view(weights, proj + "weight", k.expert), gemm_precision(l, 3));
    be.gelu_backward(dh, h, dh);
    // The rows' input gradient overwrites their output gradient (read above, no longer needed).
    be.matmul_backward(dy, expert_view(grads_all_, fc + "weight", k.expert),
                       expert_view(grads_all_, fc + "bias", k.expert), dh, x,
                       expert_view(weights, fc + "weight", k.expert), gemm_precision(l, 2));
  }
}

void GptModel::moe_forward(LayerActivations& la, int l) {
  const MoeConfig& mc = config_.moe;
  auto& be = backend_;
  const int layer = shard_.layer_begin + l;
  const std::string b = block(layer);
  const std::int64_t C = config_.d_model, N = std::int64_t{B_} * config_.seq_len;
  const Tensor ln2 = la.ln2.slice(0, {N, C});
  be.matmul_forward(la.router_logits, ln2, param(b + "mlp.router.weight"), Tensor{}, false, {});
  be.synchronize();
  la.routing = moe_route(to_host(be, la.router_logits), static_cast<int>(N), mc.experts, mc.top_k,
                         mc.capacity_factor, /*padded=*/ep() > 1);
  const MoeRouting& r = la.routing;
  const std::int64_t M = r.rows();
  const Tensor index = la.moe_index.slice(0, {M}), gates = la.moe_gates.slice(0, {M});
  be.copy_from_host(index, r.row_token.data());
  be.copy_from_host(la.moe_slots, r.slots.data());
  from_host(be, gates, r.row_gate);
  const Tensor out = la.moe_out.slice(0, {M, C});
  if (ep() == 1) {
    be.gather_rows(la.moe_in.slice(0, {M, C}), ln2, index, Tensor{});
    experts_forward(la, l, out);
  } else {
    // Dispatch: every expert's block of cap rows to the rank that holds it (GShard's
    // all-to-all), with the rows' counts; the experts run on what they received; combine:
    // the outputs go back the same way.
    const Tensor send = d_moe_rows_.slice(0, {M, C});
    be.gather_rows(send, ln2, index, Tensor{});
    std::vector<double> counts(r.row_count.begin(), r.row_count.end()), got(counts.size());
    be.synchronize();
    ep_comm_->all_to_all(Tensor(got.data(), DType::f64, {std::int64_t(got.size())}),
                         Tensor(counts.data(), DType::f64, {std::int64_t(counts.size())}));
    la.moe_recv_counts.assign(got.begin(), got.end());
    ep_comm_->all_to_all(la.moe_in.slice(0, {M, C}), send);
    be.fill_zero(send);  // padding rows go back as zeros
    experts_forward(la, l, send);
    be.synchronize();
    ep_comm_->all_to_all(out, send);
  }
  // res_mlp = res_att + Σ_{kept choices} gate·expert(ln2)
  be.copy(la.res_mlp, la.res_att);
  be.combine_rows(la.res_mlp.slice(0, {N, C}), out, la.moe_slots, gates);

  moe_aux_loss_ += mc.aux_loss_coef * r.load_balance_loss + mc.z_loss_coef * r.z_loss;
  if (recomputing_ || !moe_stats_on_) return;
  MoeStats& st = moe_stats_;
  std::size_t i = 0;
  while (i < st.layers.size() && st.layers[i] != layer) ++i;
  if (i == st.layers.size()) {
    st.layers.push_back(layer);
    st.dispatched.emplace_back(static_cast<std::size_t>(mc.experts), 0);
    st.first_choice.emplace_back(static_cast<std::size_t>(mc.experts), 0);
  }
  for (int e = 0; e < mc.experts; ++e) {
    st.dispatched[i][static_cast<std::size_t>(e)] += r.rows_of(e);
    st.first_choice[i][static_cast<std::size_t>(e)] += r.first_choice[static_cast<std::size_t>(e)];
  }
  st.choices += N * mc.top_k;
  st.dropped += r.dropped;
  st.load_balance_loss += r.load_balance_loss;
  st.z_loss += r.z_loss;
  ++st.forwards;
}

Tensor GptModel::moe_backward(LayerActivations& la, int l) {
  const MoeConfig& mc = config_.moe;
  auto& be = backend_;
  const std::string b = block(shard_.layer_begin + l);
  const std::int64_t C = config_.d_model, N = std::int64_t{B_} * config_.seq_len;
  const MoeRouting& r = la.routing;
  const std::int64_t M = r.rows();
  const Tensor index = la.moe_index.slice(0, {M}), gates = la.moe_gates.slice(0, {M});
  const Tensor d_out = d_residual_.slice(0, {N, C});  // d(loss)/d(res_mlp)
  // d gate = ⟨d_out[token], expert output⟩; d expert output = gate·d_out[token].
  const Tensor d_gates = d_moe_gates_.slice(0, {M});
  be.gathered_row_dot(d_gates, d_out, index, la.moe_out.slice(0, {M, C}));
  const Tensor d_rows = d_moe_rows_.slice(0, {M, C});
  be.gather_rows(d_rows, d_out, index, gates);
  if (ep() == 1) {
    experts_backward(la, l, d_rows);
  } else {
    // The output gradients to the experts' ranks, their input gradients back.
    const Tensor recv = d_moe_recv_.slice(0, {M, C});
    be.synchronize();
    ep_comm_->all_to_all(recv, d_rows);
    experts_backward(la, l, recv);
    be.synchronize();
    ep_comm_->all_to_all(d_rows, recv);
  }
  // d ln2 = Σ over each token's kept rows of their input gradients + the router's.
  const Tensor d_ln2 = d_tmp_.slice(0, {N, C});
  be.fill_zero(d_ln2);
  be.combine_rows(d_ln2, d_rows, la.moe_slots, Tensor{});
  be.synchronize();
  from_host(
      be, d_router_,
      moe_router_backward(r, to_host(be, d_gates), mc.aux_loss_coef, mc.z_loss_coef, loss_scale_));
  const Tensor d_router_in = d_qkv_.slice(0, {N, C});  // free until the attention's backward
  be.matmul_backward(d_router_in, grad(b + "mlp.router.weight"), Tensor{}, d_router_,
                     la.ln2.slice(0, {N, C}), param(b + "mlp.router.weight"), {});
  be.add(d_ln2, d_ln2, d_router_in);
  return d_tmp_;
}

}  // namespace tb
