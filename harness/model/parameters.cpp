#include "parameters.h"

#include <stdexcept>

namespace tb {

const ParameterSpec& ParameterLayout::find(const std::string& name) const {
  for (const auto& t : tensors) {
    if (t.name == name) return t;
  }
  throw std::out_of_range("no parameter named '" + name + "'");
}

const ParameterSpec* ParameterLayout::find_if_present(const std::string& name) const {
  for (const auto& t : tensors) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

ParameterLayout make_parameter_layout(const ModelConfig& c, const ShardSpec& s) {
  validate(c);
  const int tp = s.tensor_parallel_size;
  const int end = s.layer_end < 0 ? c.n_layer : s.layer_end;
  if (tp <= 0 || s.tensor_parallel_rank < 0 || s.tensor_parallel_rank >= tp) {
    throw std::invalid_argument("tensor_parallel rank " + std::to_string(s.tensor_parallel_rank) +
                                " of size " + std::to_string(tp) + " (expected 0 <= rank < size)");
  }
  if (c.n_head % tp != 0) {
    throw std::invalid_argument("tensor_parallel = " + std::to_string(tp) +
                                " does not divide heads = " + std::to_string(c.n_head));
  }
  if (s.layer_begin < 0 || s.layer_begin >= end || end > c.n_layer) {
    throw std::invalid_argument("layer range [" + std::to_string(s.layer_begin) + ", " +
                                std::to_string(end) + ") (expected within [0, " +
                                std::to_string(c.n_layer) + "))");
  }
  const int ep = s.expert_parallel_size;
  if (ep < 1 || s.expert_parallel_rank < 0 || s.expert_parallel_rank >= ep ||
      (ep > 1 && (!c.moe.enabled() || c.moe.experts % ep != 0))) {
    throw std::invalid_argument(
        "expert_parallel size " + std::to_string(ep) + ", rank " +
        std::to_string(s.expert_parallel_rank) +
        " with experts = " + std::to_string(c.moe.experts) +
        " (expected 0 <= rank < size, and a size that divides experts > 0)");
  }
  if (tp > 1 && c.moe.enabled()) {
    throw std::invalid_argument("tensor_parallel = " + std::to_string(tp) +
                                " with experts = " + std::to_string(c.moe.experts) +
                                " (experts are not split over tensor-parallel ranks: expected "
                                "tensor_parallel = 1)");
  }
  const std::int64_t C = c.d_model, Ct = C / tp;
  ParameterLayout L;
  auto add = [&](std::string name, std::vector<std::int64_t> shape, bool decay,
                 bool split = false) {
    ParameterSpec p{std::move(name), std::move(shape), L.total, decay, split, false};
    L.total += p.numel();
    L.tensors.push_back(std::move(p));
  };
  const bool first = s.layer_begin == 0, last = end == c.n_layer;
  if (first || last) add("wte", {c.vocab, C}, true);  // tied: the last stage's LM head
  if (first) add("wpe", {c.seq_len, C}, true);
  for (int l = s.layer_begin; l < end; ++l) {
    const std::string b = "blocks." + std::to_string(l) + ".";
    add(b + "ln1.weight", {C}, false);
    add(b + "ln1.bias", {C}, false);
    add(b + "attn.qkv.weight", {3 * Ct, C}, true, true);
    add(b + "attn.qkv.bias", {3 * Ct}, false, true);
    add(b + "attn.proj.weight", {C, Ct}, true, true);
    add(b + "attn.proj.bias", {C}, false);
    add(b + "ln2.weight", {C}, false);
    add(b + "ln2.bias", {C}, false);
    if (c.moe.is_moe_layer(l)) {
      // Mixture of experts (moe_routing.h): a router and E MLPs stacked along a first axis.
      // With expert parallelism a rank's stacks hold its E/P experts.
      const std::int64_t E = c.moe.experts, El = E / ep;
      add(b + "mlp.router.weight", {E, C}, true);
      const std::size_t first_expert = L.tensors.size();
      add(b + "mlp.experts.fc.weight", {El, 4 * C, C}, true);
      add(b + "mlp.experts.fc.bias", {El, 4 * C}, false);
      add(b + "mlp.experts.proj.weight", {El, C, 4 * C}, true);
      add(b + "mlp.experts.proj.bias", {El, C}, false);
      for (std::size_t i = first_expert; i < L.tensors.size(); ++i) {
        L.tensors[i].expert_parallel_split = ep > 1;
      }
      continue;
    }
    add(b + "mlp.fc.weight", {4 * Ct, C}, true, true);
    add(b + "mlp.fc.bias", {4 * Ct}, false, true);
    add(b + "mlp.proj.weight", {C, 4 * Ct}, true, true);
    add(b + "mlp.proj.bias", {C}, false);
  }
  if (last) {
    add("lnf.weight", {C}, false);
    add("lnf.bias", {C}, false);
  }
  return L;
}

}  // namespace tb
