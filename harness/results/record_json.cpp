#include "record_json.h"

namespace tb {

using json = nlohmann::json;

json model_json(const ModelConfig& c) {
  return {{"name", c.name},
          {"n_layer", c.n_layer},
          {"d_model", c.d_model},
          {"n_head", c.n_head},
          {"d_head", c.head_dim()},
          {"seq_len", c.seq_len},
          {"vocab", c.vocab},
          {"parameters", parameter_count(c)},
          {"active_parameters", active_parameter_count(c)},  // one token's (experts: top_k)
          {"model_flops_per_token", model_flops_per_token(c)},
          {"note", c.note}};
}

json summary_json(const Summary& s) {
  return {{"n", s.n},     {"median", s.median}, {"p10", s.p10},
          {"p90", s.p90}, {"mean", s.mean},     {"stddev", s.stddev},
          {"cv", s.cv()}, {"min", s.min},       {"max", s.max}};
}

}  // namespace tb
