#include "moe_results.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <vector>

#include "../model/moe_routing.h"

namespace tb {

using nlohmann::json;

void accumulate(MoeStats& into, const MoeStats& from) {
  for (std::size_t j = 0; j < from.layers.size(); ++j) {
    std::size_t i = 0;
    while (i < into.layers.size() && into.layers[i] != from.layers[j]) ++i;
    if (i == into.layers.size()) {
      into.layers.push_back(from.layers[j]);
      into.dispatched.emplace_back(from.dispatched[j].size(), 0);
      into.first_choice.emplace_back(from.first_choice[j].size(), 0);
    }
    for (std::size_t e = 0; e < from.dispatched[j].size(); ++e) {
      into.dispatched[i][e] += from.dispatched[j][e];
      into.first_choice[i][e] += from.first_choice[j][e];
    }
  }
  into.choices += from.choices;
  into.dropped += from.dropped;
  into.load_balance_loss += from.load_balance_loss;
  into.z_loss += from.z_loss;
  into.forwards += from.forwards;
}

namespace {

json stats_to_json(const MoeStats& s) {
  return {{"layers", s.layers},
          {"dispatched", s.dispatched},
          {"first_choice", s.first_choice},
          {"choices", s.choices},
          {"dropped", s.dropped},
          {"load_balance_loss", s.load_balance_loss},
          {"z_loss", s.z_loss},
          {"forwards", s.forwards}};
}

MoeStats stats_from_json(const json& j) {
  MoeStats s;
  s.layers = j.at("layers").get<std::vector<int>>();
  s.dispatched = j.at("dispatched").get<std::vector<std::vector<std::int64_t>>>();
  s.first_choice = j.at("first_choice").get<std::vector<std::vector<std::int64_t>>>();
  s.choices = j.at("choices").get<std::int64_t>();
  s.dropped = j.at("dropped").get<std::int64_t>();
  s.load_balance_loss = j.at("load_balance_loss").get<double>();
  s.z_loss = j.at("z_loss").get<double>();
  s.forwards = j.at("forwards").get<std::int64_t>();
  return s;
}

}  // namespace

json moe_json(const ModelConfig& m, const MoeStats& mine, const RankSetup& rs, int micro_batch,
              const std::string& measured_over) {
  MoeStats st;
  for (const json& r : gather_json(rs, stats_to_json(mine))) accumulate(st, stats_from_json(r));
  // Per block: rows per expert against their mean — max/mean (1 = balanced; E = everything on
  // one expert) and the coefficient of variation.
  json tokens = json::object(), firsts = json::object();
  double max_over_mean = 0, cv = 0;
  for (std::size_t i = 0; i < st.layers.size(); ++i) {
    const auto& d = st.dispatched[i];
    tokens[std::to_string(st.layers[i])] = d;
    firsts[std::to_string(st.layers[i])] = st.first_choice[i];
    double mean = 0, var = 0, mx = 0;
    for (auto n : d) mean += double(n) / double(d.size());
    for (auto n : d) {
      var += (double(n) - mean) * (double(n) - mean) / double(d.size());
      mx = std::max(mx, double(n));
    }
    if (mean > 0) {
      max_over_mean += mx / mean / double(st.layers.size());
      cv += std::sqrt(var) / mean / double(st.layers.size());
    }
  }
  const int N = micro_batch * m.seq_len;
  const double forwards = st.forwards > 0 ? double(st.forwards) : 1.0;
  const std::int64_t total = parameter_count(m), active = active_parameter_count(m);
  return {{"experts", m.moe.experts},
          {"top_k", m.moe.top_k},
          {"capacity_factor", m.moe.capacity_factor},
          {"every", m.moe.every},
          {"aux_loss_coef", m.moe.aux_loss_coef},
          {"z_loss_coef", m.moe.z_loss_coef},
          {"moe_blocks", m.moe.moe_layers(m.n_layer)},
          // Ranks the experts are split over (the data-parallel group), 1 when replicated.
          {"expert_parallel", rs.shard.expert_parallel_size},
          {"parameters", total},
          {"active_parameters", active},
          {"capacity_rows_per_expert",
           moe_capacity(N, m.moe.experts, m.moe.top_k, m.moe.capacity_factor)},
          {"execution",
           "routing on the host from the router logits (one device sync per block forward and "
           "backward); gather, per-expert GEMMs and combine on the device"},
          {"routing",
           {{"measured_over", measured_over},
            {"block_forwards", st.forwards},
            {"choices", st.choices},
            {"dropped", st.dropped},
            {"dropped_fraction", st.choices > 0 ? double(st.dropped) / double(st.choices) : 0.0},
            {"tokens_per_expert", tokens},
            {"first_choice_per_expert", firsts},
            {"load_balance_max_over_mean", max_over_mean},
            {"load_balance_cv", cv},
            {"load_balance_loss_mean", st.load_balance_loss / forwards},
            {"z_loss_mean", st.z_loss / forwards}}}};
}

}  // namespace tb
