// Model configurations: GPT-3's eight sizes (Brown et al. 2020, Table 2.1), a proxy
// reduction that shrinks any of them to something a benchmark machine can train, and the
// parameter and FLOP accounting of both the full model and the proxy.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace tb {

// Mixture-of-experts MLPs (Shazeer et al. 2017; GShard, Lepikhin et al. 2021; Switch
// Transformer, Fedus et al. 2022): every `every`-th block (blocks every−1, 2·every−1, …) has
// `experts` MLPs of the dense width and a linear router; a token runs through its top_k
// experts (moe_routing.h). experts = 0: every block is dense.
struct MoeConfig {
  int experts = 0;
  int top_k = 1;
  // Rows each expert takes per micro-batch: ⌈capacity_factor·top_k·N/E⌉ of N tokens (at most
  // N); choices beyond it are dropped (the token's residual passes through).
  double capacity_factor = 1.25;
  int every = 1;
  double aux_loss_coef = 0.01;  // load-balancing loss α (Switch Transformer, Eq. 4; α = 10⁻²)
  double z_loss_coef = 0;       // router z-loss (Zoph et al. 2022, ST-MoE, Eq. 5; 10⁻³ there)
  bool enabled() const { return experts > 0; }
  bool is_moe_layer(int layer) const { return experts > 0 && (layer + 1) % every == 0; }
  int moe_layers(int n_layer) const { return experts > 0 ? n_layer / every : 0; }
};

struct ModelConfig {
  std::string name;  // preset name, e.g. "gpt3-125m"
  int n_layer = 0;
  int d_model = 0;
  int n_head = 0;
  int seq_len = 0;  // context length; also the size of the position table
  int vocab = 0;
  // Training settings as published, carried for capacity planning.
  std::int64_t batch_tokens = 0;
  double lr = 0;
  std::string note;  // where a preset departs from the published table, and why
  MoeConfig moe;     // dense unless moe.experts > 0

  int head_dim() const { return d_model / n_head; }
};

// Throws std::invalid_argument naming the offending field and value.
void validate(const ModelConfig& c);

const std::vector<ModelConfig>& gpt3_presets();
// Throws std::invalid_argument("unknown preset 'x' (expected one of: …)").
ModelConfig preset(const std::string& name);

// Shrinks a preset while keeping its shape. Each field left empty keeps the preset's value.
// width_scale scales the head count and keeps the head dimension: heads' = max(1,
// round(heads·s)), d' = heads'·d_head. d_model/n_head override the width outright.
struct ProxyReduction {
  std::optional<int> n_layer;
  std::optional<double> width_scale;
  std::optional<int> d_model;
  std::optional<int> n_head;
  std::optional<int> seq_len;
  std::optional<int> vocab;
  bool any() const { return n_layer || width_scale || d_model || n_head || seq_len || vocab; }
};
ModelConfig reduce(const ModelConfig& full, const ProxyReduction& r);

// Parameter count with the LM head tied to the token embedding:
// V·d + T·d (embeddings) + L·(12d² + 13d) (blocks) + 2d (final LayerNorm). Each of the L_moe
// mixture-of-experts blocks has E MLPs of 8d² + 5d and a router of E·d instead of one MLP:
// + L_moe·((E − 1)·(8d² + 5d) + E·d).
std::int64_t parameter_count(const ModelConfig& c);
// The parameters one token uses: as parameter_count with top_k experts in place of E (the
// router's E·d is used by every token).
std::int64_t active_parameter_count(const ModelConfig& c);

// Model FLOPs per trained token, PaLM convention (Chowdhery et al. 2022, App. B):
// 6N + 12·L·d·T, with N the parameters that take part in matrix multiplies — all but the
// position table, as nanoGPT's estimate_mfu counts them (the tied token table is the LM head).
// With experts N counts the active parameters: a token's FLOPs are its top_k experts' (as
// Switch Transformer's "FLOP-matched" comparisons count them).
double model_flops_per_token(const ModelConfig& c);

}  // namespace tb
