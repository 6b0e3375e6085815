// Scenario files: a base configuration, sweep axes expanded into variants (cartesian product
// or zipped), a baseline, measurement and accuracy settings. Format: docs/scenarios.md.
// Every problem is reported as one ScenarioError line naming the file, the JSON pointer
// (RFC 6901, e.g. /sweep/precision/2) and what was expected.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "../model/config.h"

namespace tb {

class ScenarioError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Everything one variant runs with. Field names are the scenario's configuration keys.
struct RunConfig {
  std::string preset = "gpt3-125m";
  ProxyReduction proxy;  // keys: layers, width_scale, d_model, heads, seq, vocab
  int micro_batch = 4;
  // Sequences per optimizer step over the whole job: a multiple of micro_batch·dp (each
  // replica accumulates global_batch/(micro_batch·dp) micro-batches); unset: micro_batch·dp.
  std::optional<int> global_batch;
  std::string precision = "fp32";         // fp32 | tf32 | bf16 | fp16 | fp8 (model/precision.h)
  std::string loss_scaling = "auto";      // auto (dynamic for fp16, else none) | dynamic | none
  double loss_scale_init = 65536.0;       // dynamic loss scaling: initial scale
  int loss_scale_growth_interval = 2000;  // good steps before the scale doubles
  int fp8_amax_history = 16;              // fp8 delayed scaling: amaxes remembered per tensor
  int fp8_margin = 0;                     // fp8: scale = max / (amax · 2^margin)
  int checkpoint_interval = 0;            // keep every k-th block's input; 0: off
  bool checkpoint_selective = false;      // recompute only attention probabilities
  std::string optimizer = "adamw";        // adamw | lamb | sgd
  std::optional<double> lr;               // default: the preset's published lr
  std::string lr_schedule = "constant";   // constant | cosine (to the accuracy run's train_steps)
  int lr_warmup_steps = 0;                // linear warm-up, in optimizer steps
  double min_lr_ratio = 0.1;              // cosine: final lr / peak
  double weight_decay = 0.1;
  double grad_clip = 1.0;
  double beta1 = 0.9;                 // adamw, lamb
  double beta2 = 0.95;                // adamw, lamb
  double momentum = 0.9;              // sgd
  std::string device = "auto";        // auto | cpu | cuda
  int threads = 0;                    // 0: OpenMP default
  std::string data = "synthetic";     // "synthetic" or a token file path
  std::string data_format = "bytes";  // bytes | u16
  int markov_branching = 4;
  std::int64_t memory_limit_bytes = 0;  // 0: none; allocations beyond it are `oom`
  // Parallel splits (docs/parallel.md): ranks = dp·tp·pp, each an MPI process.
  int dp = 1;                        // data-parallel replicas
  int tp = 1;                        // tensor-parallel ranks (divides heads)
  int pp = 1;                        // pipeline stages (<= layers)
  std::string pp_schedule = "1f1b";  // gpipe | 1f1b
  int virtual_stages = 1;            // model chunks per stage (interleaved 1F1B)
  int zero = 0;                      // 1: ZeRO stage 1 (optimizer state sharded over dp)
  bool sequence_parallel = false;    // Korthikanti et al. 2022 (needs tp > 1)
  double bucket_mb = 25;             // data-parallel all-reduce bucket, MiB
  // Mixture of experts (model/config.h MoeConfig; docs/scenarios.md): 0 experts is dense.
  int experts = 0;
  int top_k = 1;
  double capacity_factor = 1.25;
  int moe_every = 1;
  double moe_aux_loss = 0.01;
  double moe_z_loss = 0;
  bool expert_parallel = false;  // experts split over the dp group (all-to-all; needs dp > 1)
  MoeConfig moe() const {
    return {experts, top_k, capacity_factor, moe_every, moe_aux_loss, moe_z_loss};
  }
  // Magnitude pruning of the blocks' weights (train/pruning.h; docs/scenarios.md): on when
  // prune_sparsity > 0 or prune_pattern is N:M (which fixes the sparsity at 1 − N/M).
  double prune_sparsity = 0;                   // target fraction of zeros per tensor, [0, 1)
  std::string prune_pattern = "unstructured";  // unstructured | N:M, e.g. 2:4
  std::string prune_schedule = "oneshot";      // oneshot | gradual (Zhu & Gupta 2017)
  int prune_begin_step = 0;                    // oneshot: the step that prunes; gradual: t0
  std::optional<int> prune_end_step;           // gradual: the step reaching the target
  int prune_frequency = 1;                     // gradual: steps between mask updates

  // The resolved configuration as a flat JSON object keyed by configuration key (all keys,
  // defaults filled in; lr null when it defaults to the preset's).
  nlohmann::json to_json() const;
  // global_batch, or micro_batch·dp (one micro-batch per replica) when unset.
  int resolved_global_batch() const { return global_batch.value_or(micro_batch * dp); }
  int ranks() const { return dp * tp * pp; }
  bool pruning() const { return prune_sparsity > 0 || prune_pattern != "unstructured"; }
  // Micro-batches each replica's pipeline runs per optimizer step.
  int micro_batches() const { return resolved_global_batch() / (micro_batch * dp); }
  // loss_scaling with auto resolved: true when the loss is scaled dynamically.
  bool dynamic_loss_scaling() const {
    return loss_scaling == "dynamic" || (loss_scaling == "auto" && precision == "fp16");
  }
};

// Measurement: warm up, then time steps until the median's relative noise is under the
// target (after min_steps) or max_steps or the time budget is reached.
struct MeasureSettings {
  int warmup_steps = 2;
  int min_steps = 5;
  int max_steps = 50;
  double target_rel_noise = 0.02;  // relative standard error of the median
  double time_budget_s = 30;       // per variant, timed steps only
};

// Accuracy: for each of `seeds` seeds (seed, seed+1, …), train `train_steps` steps from
// scratch, evaluating every `eval_interval` steps (0: only at the end) on `eval_batches`
// held-out micro-batches. train_steps 0 skips the accuracy run.
struct AccuracySettings {
  int train_steps = 100;
  int eval_interval = 0;
  int eval_batches = 4;
  int seeds = 3;
  std::uint64_t seed = 1;
  // `target_loss`: the held-out loss whose first crossing is timed (steps, tokens, training
  // seconds): `target_loss` nats (> 0), or `target_floor_ratio` (≥ 1) × the data's entropy
  // floor; at most one is set, neither when the key is null or absent.
  std::optional<double> target_loss;
  std::optional<double> target_floor_ratio;
};

enum class SweepMode { product, zip };

struct Variant {
  std::size_t index = 0;
  std::string id;       // "key=value,key=value" over the sweep axes in file order; "base" if none
  nlohmann::json keys;  // object: axis → value (keys sorted; Scenario::axes has file order)
  RunConfig config;
  bool is_baseline = false;
};

struct Scenario {
  std::string path;  // as given; used in error messages
  std::string name;
  std::string description;
  nlohmann::json document;  // the file after --set overrides
  RunConfig base;
  std::vector<std::string> axes;  // sweep keys in file order
  SweepMode mode = SweepMode::product;
  MeasureSettings measure;
  AccuracySettings accuracy;
  std::vector<Variant> variants;  // exactly one has is_baseline
};

// The model a variant trains: `full` reduced to the proxy, with the variant's experts.
ModelConfig variant_model(const RunConfig& r, const ModelConfig& full);

// Reads, applies `--set KEY=VALUE` overrides in order, validates and expands.
// Throws ScenarioError (one line: "<path>: <pointer>: <problem> (expected …)").
Scenario load_scenario(const std::string& path, const std::vector<std::string>& sets = {});
// The same from text; `path` only labels errors.
Scenario parse_scenario(const std::string& text, const std::string& path,
                        const std::vector<std::string>& sets = {});

// Names of the configuration keys and the values each accepts, for `trainbench list`.
struct ConfigKeyInfo {
  std::string key;
  std::string type;                  // "string", "integer", "number", "enum"
  std::vector<std::string> choices;  // for enums
  std::string help;
};
const std::vector<ConfigKeyInfo>& config_keys();

}  // namespace tb
