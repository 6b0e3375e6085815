#include "config.h"

#include <cmath>
#include <stdexcept>

namespace tb {

namespace {

constexpr int kGpt3Context = 2048;
constexpr int kGpt3Vocab = 50257;  // GPT-2's BPE vocabulary, reused by GPT-3

ModelConfig gpt3(std::string name, int layers, int d_model, int heads, double batch_mtokens,
                 double lr, std::string note = {}) {
  ModelConfig c;
  c.name = std::move(name);
  c.n_layer = layers;
  c.d_model = d_model;
  c.n_head = heads;
  c.seq_len = kGpt3Context;
  c.vocab = kGpt3Vocab;
  c.batch_tokens = static_cast<std::int64_t>(std::llround(batch_mtokens * 1e6));
  c.lr = lr;
  c.note = std::move(note);
  return c;
}

void positive(const char* field, long long v) {
  if (v <= 0) {
    throw std::invalid_argument(std::string(field) + " = " + std::to_string(v) +
                                " (expected a positive integer)");
  }
}

}  // namespace

const std::vector<ModelConfig>& gpt3_presets() {
  // Brown et al. 2020, Table 2.1: n_layers, d_model, n_heads, batch size (tokens), lr.
  static const std::vector<ModelConfig> presets = {
      gpt3("gpt3-125m", 12, 768, 12, 0.5, 6.0e-4),
      gpt3("gpt3-350m", 24, 1024, 16, 0.5, 3.0e-4),
      gpt3("gpt3-760m", 24, 1536, 16, 0.5, 2.5e-4),
      gpt3("gpt3-1.3b", 24, 2048, 16, 1.0, 2.0e-4,
           "Table 2.1 lists 24 heads of 128, which does not divide d_model 2048; 16 heads keep "
           "the published head dimension 128"),
      gpt3("gpt3-2.7b", 32, 2560, 32, 1.0, 1.6e-4),
      gpt3("gpt3-6.7b", 32, 4096, 32, 2.0, 1.2e-4),
      gpt3("gpt3-13b", 40, 5120, 40, 2.0, 1.0e-4,
           "Table 2.1 lists d_model 5140, which 40 heads do not divide (its divisors near 40 "
           "are 20 and 257); 5120 = 40 x 128 keeps the published heads and head dimension"),
      gpt3("gpt3-175b", 96, 12288, 96, 3.2, 0.6e-4),
  };
  return presets;
}

ModelConfig preset(const std::string& name) {
  std::string known;
  for (const auto& p : gpt3_presets()) {
    if (p.name == name) return p;
    known += (known.empty() ? "" : ", ") + p.name;
  }
  throw std::invalid_argument("unknown preset '" + name + "' (expected one of: " + known + ")");
}

void validate(const ModelConfig& c) {
  positive("layers", c.n_layer);
  positive("d_model", c.d_model);
  positive("heads", c.n_head);
  positive("seq_len", c.seq_len);
  positive("vocab", c.vocab);
  if (c.d_model % c.n_head != 0) {
    throw std::invalid_argument("heads = " + std::to_string(c.n_head) +
                                " does not divide d_model = " + std::to_string(c.d_model) +
                                " (expected a divisor of the width)");
  }
  const MoeConfig& m = c.moe;
  if (m.experts < 0) {
    throw std::invalid_argument("experts = " + std::to_string(m.experts) +
                                " (expected 0 for dense MLPs, or >= 1)");
  }
  if (!m.enabled()) return;
  if (m.top_k < 1 || m.top_k > m.experts) {
    throw std::invalid_argument("top_k = " + std::to_string(m.top_k) + " with experts = " +
                                std::to_string(m.experts) + " (expected 1 <= top_k <= experts)");
  }
  if (!(m.capacity_factor > 0) || !std::isfinite(m.capacity_factor)) {
    throw std::invalid_argument("capacity_factor = " + std::to_string(m.capacity_factor) +
                                " (expected a finite number > 0)");
  }
  if (m.every < 1 || m.every > c.n_layer) {
    throw std::invalid_argument("moe_every = " + std::to_string(m.every) +
                                " with layers = " + std::to_string(c.n_layer) +
                                " (expected 1 <= moe_every <= layers, so some block has experts)");
  }
  if (!(m.aux_loss_coef >= 0) || !(m.z_loss_coef >= 0) || !std::isfinite(m.aux_loss_coef) ||
      !std::isfinite(m.z_loss_coef)) {
    throw std::invalid_argument("moe_aux_loss = " + std::to_string(m.aux_loss_coef) +
                                ", moe_z_loss = " + std::to_string(m.z_loss_coef) +
                                " (expected finite numbers >= 0)");
  }
}

ModelConfig reduce(const ModelConfig& full, const ProxyReduction& r) {
  ModelConfig c = full;
  if (!r.any()) return c;
  if (r.n_layer) c.n_layer = *r.n_layer;
  if (r.width_scale) {
    if (!(*r.width_scale > 0) || !std::isfinite(*r.width_scale)) {
      throw std::invalid_argument("width_scale = " + std::to_string(*r.width_scale) +
                                  " (expected a positive number)");
    }
    const int hd = full.head_dim();
    c.n_head = std::max(1, static_cast<int>(std::lround(full.n_head * *r.width_scale)));
    c.d_model = c.n_head * hd;
  }
  if (r.d_model) c.d_model = *r.d_model;
  if (r.n_head) c.n_head = *r.n_head;
  if (r.seq_len) c.seq_len = *r.seq_len;
  if (r.vocab) c.vocab = *r.vocab;
  c.name = full.name + "-proxy";
  return c;
}

namespace {
// Blocks with `experts_used` of E experts counted in each mixture-of-experts block.
std::int64_t parameters_with(const ModelConfig& c, std::int64_t experts_used) {
  const std::int64_t d = c.d_model, L = c.n_layer;
  const std::int64_t dense =
      std::int64_t{c.vocab} * d + std::int64_t{c.seq_len} * d + L * (12 * d * d + 13 * d) + 2 * d;
  if (!c.moe.enabled()) return dense;
  const std::int64_t mlp = 8 * d * d + 5 * d, E = c.moe.experts;
  return dense + c.moe.moe_layers(c.n_layer) * ((experts_used - 1) * mlp + E * d);
}
}  // namespace

std::int64_t parameter_count(const ModelConfig& c) { return parameters_with(c, c.moe.experts); }

std::int64_t active_parameter_count(const ModelConfig& c) {
  return parameters_with(c, c.moe.top_k);
}

double model_flops_per_token(const ModelConfig& c) {
  const double n_matmul = double(active_parameter_count(c)) - double(c.seq_len) * c.d_model;
  return 6.0 * n_matmul + 12.0 * c.n_layer * double(c.d_model) * c.seq_len;
}

}  // namespace tb
