// Scenario files: reading, `--set` overrides, validation with one-line errors that name the
// file and the JSON pointer, and sweep expansion. The format is described in
// docs/scenarios.md; the JSON helpers are in scenario_json.*.
#include "scenario.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <limits>
#include <unordered_map>
#include <utility>

#include "../train/pruning_config.h"
#include "scenario_json.h"

namespace tb {

namespace {

using scenario_detail::compact;
using scenario_detail::nearest;
using scenario_detail::ojson;
using scenario_detail::one_line;
using scenario_detail::pointer_append;

// Sizes beyond these would overflow the parameter and activation arithmetic (int64) long
// before they fit in any memory; they are documented in docs/scenarios.md.
constexpr std::int64_t kMaxLayers = 65536;
constexpr std::int64_t kMaxWidth = 1 << 20;  // d_model and heads
constexpr std::int64_t kMaxSeq = 1 << 20;
constexpr std::int64_t kMaxVocab = 1 << 24;
constexpr std::int64_t kMaxMicroBatch = 1 << 20;
constexpr std::int64_t kMaxRanks = 1 << 16;
constexpr std::int64_t kMaxThreads = 4096;
constexpr double kMaxWidthScale = 1024;
constexpr std::int64_t kIntMax = std::numeric_limits<int>::max();
constexpr std::int64_t kInt64Max = std::numeric_limits<std::int64_t>::max();
constexpr std::size_t kMaxVariants = 10000;
constexpr std::size_t kMaxFileBytes = std::size_t{16} << 20;

const std::vector<std::string> kTopLevelKeys = {"name",       "description", "base",    "sweep",
                                                "sweep_mode", "baseline",    "measure", "accuracy"};
const std::vector<std::string> kMeasureKeys = {"warmup_steps", "min_steps", "max_steps",
                                               "target_rel_noise", "time_budget_s"};
const std::vector<std::string> kAccuracyKeys = {"train_steps", "eval_interval", "eval_batches",
                                                "seeds",       "seed",          "target_loss"};

std::string join(const std::vector<std::string>& items, const char* sep = ", ") {
  std::string out;
  for (const auto& s : items) out += (out.empty() ? "" : sep) + s;
  return out;
}

bool contains(const std::vector<std::string>& v, const std::string& s) {
  for (const auto& x : v) {
    if (x == s) return true;
  }
  return false;
}

// Builds the one-line messages: "<path>: <pointer>: <problem>".
class Ctx {
 public:
  explicit Ctx(std::string path) : path_(std::move(path)) {}

  [[noreturn]] void fail(const std::string& pointer, const std::string& problem) const {
    // Pointers and problems are clipped: a 100 kB key makes a useless message.
    throw ScenarioError(one_line(
        path_ + ": " + (pointer.empty() ? "" : scenario_detail::clip(pointer, 200) + ": ") +
        scenario_detail::clip(problem, 1000)));
  }
  [[noreturn]] void bad_value(const std::string& pointer, const ojson& v,
                              const std::string& expected) const {
    fail(pointer, compact(v) + " (expected " + expected + ")");
  }
  void check_keys(const ojson& obj, const std::string& pointer,
                  const std::vector<std::string>& known) const {
    for (const auto& [k, v] : obj.items()) {
      if (!contains(known, k)) {
        fail(pointer_append(pointer, k),
             "unknown key (did you mean \"" + nearest(k, known) + "\"?)");
      }
    }
  }

 private:
  std::string path_;
};

// ---- typed values ----

// An integer-valued JSON number (2.0 counts; 2.5 does not) that fits in int64.
std::optional<std::int64_t> integer_value(const ojson& v) {
  if (v.is_number_unsigned()) {
    const auto u = v.get<std::uint64_t>();
    if (u > static_cast<std::uint64_t>(kInt64Max)) return std::nullopt;
    return static_cast<std::int64_t>(u);
  }
  if (v.is_number_integer()) return v.get<std::int64_t>();
  if (v.is_number_float()) {
    const double d = v.get<double>();
    // ±2^63 are not representable in int64; stay strictly inside.
    if (!std::isfinite(d) || d != std::floor(d) || d <= -9.2e18 || d >= 9.2e18) {
      return std::nullopt;
    }
    return static_cast<std::int64_t>(d);
  }
  return std::nullopt;
}

std::string int_range(std::int64_t lo, std::int64_t hi) {
  if (hi >= kIntMax) {
    if (lo == 1) return "a positive integer";
    return "an integer >= " + std::to_string(lo);
  }
  return "an integer from " + std::to_string(lo) + " to " + std::to_string(hi);
}

std::int64_t get_int(const Ctx& c, const ojson& v, const std::string& ptr, std::int64_t lo,
                     std::int64_t hi, const std::string& expected = {}) {
  const auto i = integer_value(v);
  if (!i || *i < lo || *i > hi)
    c.bad_value(ptr, v, expected.empty() ? int_range(lo, hi) : expected);
  return *i;
}

std::uint64_t get_u64(const Ctx& c, const ojson& v, const std::string& ptr) {
  if (v.is_number_unsigned()) return v.get<std::uint64_t>();
  if (v.is_number_integer() && v.get<std::int64_t>() >= 0) {
    return static_cast<std::uint64_t>(v.get<std::int64_t>());
  }
  if (v.is_number_float()) {
    const double d = v.get<double>();
    if (std::isfinite(d) && d == std::floor(d) && d >= 0 && d < 18446744073709551616.0) {
      return static_cast<std::uint64_t>(d);
    }
  }
  c.bad_value(ptr, v, "an integer from 0 to 18446744073709551615");
}

enum class Bound { positive, non_negative, any };

double get_number(const Ctx& c, const ojson& v, const std::string& ptr, Bound bound,
                  double hi = std::numeric_limits<double>::infinity()) {
  std::string expected = bound == Bound::positive       ? "a positive number"
                         : bound == Bound::non_negative ? "a number >= 0"
                                                        : "a finite number";
  if (std::isfinite(hi)) expected += " up to " + compact(ojson(hi));
  if (!v.is_number()) c.bad_value(ptr, v, expected);
  const double d = v.get<double>();
  const bool ok = std::isfinite(d) && d <= hi &&
                  (bound == Bound::positive       ? d > 0
                   : bound == Bound::non_negative ? d >= 0
                                                  : true);
  if (!ok) c.bad_value(ptr, v, expected);
  return d;
}

std::string get_enum(const Ctx& c, const ojson& v, const std::string& ptr,
                     const std::vector<std::string>& choices) {
  if (v.is_string() && contains(choices, v.get_ref<const std::string&>())) {
    return v.get<std::string>();
  }
  c.bad_value(ptr, v, "one of: " + join(choices));
}

// A decay factor in [0, 1).
double get_beta(const Ctx& c, const ojson& v, const std::string& ptr) {
  if (!v.is_number() || !(v.get<double>() >= 0) || !(v.get<double>() < 1)) {
    c.bad_value(ptr, v, "a number from 0 to below 1");
  }
  return v.get<double>();
}

// ---- configuration keys ----

using Apply = void (*)(const Ctx&, const ojson&, const std::string&, RunConfig&);

struct KeyDef {
  ConfigKeyInfo info;
  Apply apply;
};

std::optional<int> proxy_int(const Ctx& c, const ojson& v, const std::string& ptr,
                             std::int64_t hi) {
  if (v.is_null()) return std::nullopt;
  return static_cast<int>(
      get_int(c, v, ptr, 1, hi, int_range(1, hi) + ", or null for the preset's"));
}

std::vector<std::string> preset_names() {
  std::vector<std::string> names;
  for (const auto& p : gpt3_presets()) names.push_back(p.name);
  return names;
}

const std::vector<KeyDef>& key_defs() {
  static const std::vector<KeyDef> defs = {
      {{"preset", "enum", preset_names(), "GPT-3 size to start from (default gpt3-125m)"},
       [](const Ctx& c, const ojson& v, const std::string& p, RunConfig& r) {
         if (!v.is_string()) c.bad_value(p, v, "a preset name, e.g. \"gpt3-125m\"");
         r.preset = v.get<std::string>();  // checked per variant (unknown preset)
       }},
      {{"layers", "integer", {}, "proxy: transformer blocks (default: the preset's)"},
       [](const Ctx& c, const ojson& v, const std::string& p, RunConfig& r) {
         r.proxy.n_layer = proxy_int(c, v, p, kMaxLayers);
       }},
      {{"width_scale", "number", {}, "proxy: scale the head count, keeping d_head (default 1)"},
       [](const Ctx& c, const ojson& v, const std::string& p, RunConfig& r) {
         if (v.is_null()) {
           r.proxy.width_scale.reset();
           return;
         }
         if (!v.is_number() || !(v.get<double>() > 0) || !(v.get<double>() <= kMaxWidthScale)) {
           c.bad_value(p, v, "a positive number up to 1024, or null");
         }
         r.proxy.width_scale = v.get<double>();
       }},
      {{"d_model", "integer", {}, "proxy: width, overriding the preset's"},
       [](const Ctx& c, const ojson& v, const std::string& p, RunConfig& r) {
         r.proxy.d_model = proxy_int(c, v, p, kMaxWidth);
       }},
      {{"heads", "integer", {}, "proxy: attention heads, overriding the preset's"},
       [](const Ctx& c, const ojson& v, const std::string& p, RunConfig& r) {
         r.proxy.n_head = proxy_int(c, v, p, kMaxWidth);
       }},
      {{"seq", "integer", {}, "proxy: sequence length (context; default the preset's 2048)"},
       [](const Ctx& c, const ojson& v, const std::string& p, RunConfig& r) {
         r.proxy.seq_len = proxy_int(c, v, p, kMaxSeq);
       }},
      {{"vocab", "integer", {}, "proxy: vocabulary size (default the preset's 50257)"},
       [](const Ctx& c, const ojson& v, const std::string& p, RunConfig& r) {
         r.proxy.vocab = proxy_int(c, v, p, kMaxVocab);
       }},
      {{"micro_batch", "integer", {}, "sequences per training step (default 4)"},
       [](const Ctx& c, const ojson& v, const std::string& p, RunConfig& r) {
         r.micro_batch = static_cast<int>(get_int(c, v, p, 1, kMaxMicroBatch));
       }},
      {{"global_batch",
        "integer",
        {},
        "sequences per optimizer step, a multiple of micro_batch (default null: micro_batch)"},
       [](const Ctx& c, const ojson& v, const std::string& p, RunConfig& r) {
         if (v.is_null()) {
           r.global_batch.reset();
           return;
         }
         r.global_batch = static_cast<int>(
             get_int(c, v, p, 1, kMaxMicroBatch,
                     int_range(1, kMaxMicroBatch) + " (a multiple of micro_batch), or null"));
       }},
      {{"precision",
        "enum",
        {"fp32", "tf32", "bf16", "fp16", "fp8"},
        "GEMM operand and activation precision; fp32 master weights always (default fp32)"},
       [](const Ctx& c, const ojson& v, const std::string& p, RunConfig& r) {
         r.precision = get_enum(c, v, p, {"fp32", "tf32", "bf16", "fp16", "fp8"});
       }},
      {{"loss_scaling",
        "enum",
        {"auto", "dynamic", "none"},
        "loss scaling: dynamic (skip overflowing steps, back off, grow) or none; auto: "
        "dynamic for fp16 only (default auto)"},
       [](const Ctx& c, const ojson& v, const std::string& p, RunConfig& r) {
         r.loss_scaling = get_enum(c, v, p, {"auto", "dynamic", "none"});
       }},
      {{"loss_scale_init", "number", {}, "dynamic loss scaling: initial scale (default 65536)"},
       [](const Ctx& c, const ojson& v, const std::string& p, RunConfig& r) {
         if (!v.is_number() || !std::isfinite(v.get<double>()) || !(v.get<double>() > 0) ||
             v.get<double>() > 0x1p100) {
           c.bad_value(p, v, "a number in (0, 2^100]");
         }
         r.loss_scale_init = v.get<double>();
       }},
      {{"loss_scale_growth_interval",
        "integer",
        {},
        "dynamic loss scaling: steps without overflow before the scale doubles (default 2000)"},
       [](const Ctx& c, const ojson& v, const std::string& p, RunConfig& r) {
         r.loss_scale_growth_interval = static_cast<int>(get_int(c, v, p, 1, kIntMax));
       }},
      {{"fp8_amax_history",
        "integer",
        {},
        "fp8 delayed scaling: amaxes remembered per tensor, 1 to 1024 (default 16)"},
       [](const Ctx& c, const ojson& v, const std::string& p, RunConfig& r) {
         r.fp8_amax_history = static_cast<int>(get_int(c, v, p, 1, 1024));
       }},
      {{"fp8_margin", "integer", {}, "fp8: scale = max / (amax * 2^margin), 0 to 16 (default 0)"},
       [](const Ctx& c, const ojson& v, const std::string& p, RunConfig& r) {
         r.fp8_margin = static_cast<int>(get_int(c, v, p, 0, 16));
       }},
      {{"checkpoint_interval",
        "integer",
        {},
        "activation checkpointing: keep every k-th block's input, recompute the rest (0: off)"},
       [](const Ctx& c, const ojson& v, const std::string& p, RunConfig& r) {
         r.checkpoint_interval = static_cast<int>(get_int(c, v, p, 0, kMaxLayers));
       }},
      {{"checkpoint_selective",
        "boolean",
        {},
        "recompute only attention probabilities (Korthikanti et al. 2022); needs interval 0"},
       [](const Ctx& c, const ojson& v, const std::string& p, RunConfig& r) {
         if (!v.is_boolean()) c.bad_value(p, v, "true or false");
         r.checkpoint_selective = v.get<bool>();
       }},
      {{"dp", "integer", {}, "data-parallel replicas (default 1); ranks = dp·tp·pp"},
       [](const Ctx& c, const ojson& v, const std::string& p, RunConfig& r) {
         r.dp = static_cast<int>(get_int(c, v, p, 1, kMaxRanks));
       }},
      {{"tp", "integer", {}, "tensor-parallel ranks, dividing heads (default 1)"},
       [](const Ctx& c, const ojson& v, const std::string& p, RunConfig& r) {
         r.tp = static_cast<int>(get_int(c, v, p, 1, kMaxRanks));
       }},
      {{"pp", "integer", {}, "pipeline stages, at most layers (default 1)"},
       [](const Ctx& c, const ojson& v, const std::string& p, RunConfig& r) {
         r.pp = static_cast<int>(get_int(c, v, p, 1, kMaxRanks));
       }},
      {{"pp_schedule", "enum", {"gpipe", "1f1b"}, "pipeline schedule (default 1f1b)"},
       [](const Ctx& c, const ojson& v, const std::string& p, RunConfig& r) {
         r.pp_schedule = get_enum(c, v, p, {"gpipe", "1f1b"});
       }},
      {{"virtual_stages",
        "integer",
        {},
        "model chunks per pipeline stage, interleaved 1F1B (default 1; only 1 is built)"},
       [](const Ctx& c, const ojson& v, const std::string& p, RunConfig& r) {
         r.virtual_stages = static_cast<int>(get_int(c, v, p, 1, kMaxLayers));
       }},
      {{"zero", "integer", {}, "ZeRO stage: 0 or 1 (optimizer state sharded over dp)"},
       [](const Ctx& c, const ojson& v, const std::string& p, RunConfig& r) {
         r.zero = static_cast<int>(get_int(c, v, p, 0, 1));
       }},
      {{"sequence_parallel",
        "boolean",
        {},
        "sequence parallelism in the tensor-parallel group (Korthikanti et al. 2022; tp > 1)"},
       [](const Ctx& c, const ojson& v, const std::string& p, RunConfig& r) {
         if (!v.is_boolean()) c.bad_value(p, v, "true or false");
         r.sequence_parallel = v.get<bool>();
       }},
      {{"bucket_mb", "number", {}, "data-parallel all-reduce bucket size in MiB (default 25)"},
       [](const Ctx& c, const ojson& v, const std::string& p, RunConfig& r) {
         r.bucket_mb = get_number(c, v, p, Bound::positive, 65536);
       }},
      {{"experts", "integer", {}, "mixture of experts: experts per MoE block (default 0: dense)"},
       [](const Ctx& c, const ojson& v, const std::string& p, RunConfig& r) {
         r.experts = static_cast<int>(get_int(c, v, p, 0, 4096));
       }},
      {{"top_k", "integer", {}, "mixture of experts: experts per token, <= experts (default 1)"},
       [](const Ctx& c, const ojson& v, const std::string& p, RunConfig& r) {
         r.top_k = static_cast<int>(get_int(c, v, p, 1, 4096));
       }},
      {{"capacity_factor",
        "number",
        {},
        "mixture of experts: rows per expert = capacity_factor·top_k·tokens/experts; choices "
        "beyond it are dropped (default 1.25)"},
       [](const Ctx& c, const ojson& v, const std::string& p, RunConfig& r) {
         r.capacity_factor = get_number(c, v, p, Bound::positive, 1024);
       }},
      {{"moe_every", "integer", {}, "mixture of experts: every n-th block has experts (default 1)"},
       [](const Ctx& c, const ojson& v, const std::string& p, RunConfig& r) {
         r.moe_every = static_cast<int>(get_int(c, v, p, 1, kMaxLayers));
       }},
      {{"moe_aux_loss",
        "number",
        {},
        "mixture of experts: load-balancing loss coefficient (Switch Eq. 4; default 0.01)"},
       [](const Ctx& c, const ojson& v, const std::string& p, RunConfig& r) {
         r.moe_aux_loss = get_number(c, v, p, Bound::non_negative, 100);
       }},
      {{"moe_z_loss",
        "number",
        {},
        "mixture of experts: router z-loss coefficient (ST-MoE Eq. 5; default 0: off)"},
       [](const Ctx& c, const ojson& v, const std::string& p, RunConfig& r) {
         r.moe_z_loss = get_number(c, v, p, Bound::non_negative, 100);
       }},
      {{"expert_parallel",
        "boolean",
        {},
        "mixture of experts: split the experts over the dp ranks, tokens exchanged by "
        "all-to-all (GShard; needs dp > 1 dividing experts; default false)"},
       [](const Ctx& c, const ojson& v, const std::string& p, RunConfig& r) {
         if (!v.is_boolean()) c.bad_value(p, v, "true or false");
         r.expert_parallel = v.get<bool>();
       }},
      {{"optimizer", "enum", {"adamw", "lamb", "sgd"}, "optimizer (default adamw)"},
       [](const Ctx& c, const ojson& v, const std::string& p, RunConfig& r) {
         r.optimizer = get_enum(c, v, p, {"adamw", "lamb", "sgd"});
       }},
      {{"lr", "number", {}, "peak learning rate (default null: the preset's)"},
       [](const Ctx& c, const ojson& v, const std::string& p, RunConfig& r) {
         if (v.is_null()) {
           r.lr.reset();
           return;
         }
         if (!v.is_number() || !std::isfinite(v.get<double>()) || !(v.get<double>() > 0)) {
           c.bad_value(p, v, "a positive number, or null for the preset's");
         }
         r.lr = v.get<double>();
       }},
      {{"lr_schedule",
        "enum",
        {"constant", "cosine"},
        "constant, or cosine decay to min_lr_ratio at train_steps (default constant)"},
       [](const Ctx& c, const ojson& v, const std::string& p, RunConfig& r) {
         r.lr_schedule = get_enum(c, v, p, {"constant", "cosine"});
       }},
      {{"lr_warmup_steps", "integer", {}, "linear lr warm-up, optimizer steps (default 0)"},
       [](const Ctx& c, const ojson& v, const std::string& p, RunConfig& r) {
         r.lr_warmup_steps = static_cast<int>(get_int(c, v, p, 0, kIntMax));
       }},
      {{"min_lr_ratio", "number", {}, "cosine: final lr as a fraction of the peak (default 0.1)"},
       [](const Ctx& c, const ojson& v, const std::string& p, RunConfig& r) {
         if (!v.is_number() || !(v.get<double>() >= 0) || !(v.get<double>() <= 1)) {
           c.bad_value(p, v, "a number from 0 to 1");
         }
         r.min_lr_ratio = v.get<double>();
       }},
      {{"weight_decay",
        "number",
        {},
        "weight decay: decoupled for adamw and lamb, L2 for sgd (default 0.1)"},
       [](const Ctx& c, const ojson& v, const std::string& p, RunConfig& r) {
         r.weight_decay = get_number(c, v, p, Bound::non_negative);
       }},
      {{"grad_clip", "number", {}, "global gradient-norm clip; <= 0 disables (default 1)"},
       [](const Ctx& c, const ojson& v, const std::string& p, RunConfig& r) {
         r.grad_clip = get_number(c, v, p, Bound::any);
       }},
      {{"beta1", "number", {}, "adamw, lamb: first-moment decay, 0 to < 1 (default 0.9)"},
       [](const Ctx& c, const ojson& v, const std::string& p, RunConfig& r) {
         r.beta1 = get_beta(c, v, p);
       }},
      {{"beta2", "number", {}, "adamw, lamb: second-moment decay, 0 to < 1 (default 0.95)"},
       [](const Ctx& c, const ojson& v, const std::string& p, RunConfig& r) {
         r.beta2 = get_beta(c, v, p);
       }},
      {{"momentum", "number", {}, "sgd: heavy-ball momentum, 0 to < 1 (default 0.9)"},
       [](const Ctx& c, const ojson& v, const std::string& p, RunConfig& r) {
         r.momentum = get_beta(c, v, p);
       }},
      {{"prune_sparsity",
        "number",
        {},
        "magnitude pruning of the block weights: target fraction of zeros, 0 to < 1 (default 0: "
        "off)"},
       [](const Ctx& c, const ojson& v, const std::string& p, RunConfig& r) {
         if (!v.is_number() || !(v.get<double>() >= 0) || !(v.get<double>() < 1)) {
           c.bad_value(p, v, "a number from 0 to below 1 (0: no pruning)");
         }
         r.prune_sparsity = v.get<double>();
       }},
      {{"prune_pattern",
        "string",
        {},
        "pruning: \"unstructured\" or \"N:M\" (keep N of every M along the input dim, e.g. "
        "2:4; sparsity 1 - N/M) (default unstructured)"},
       [](const Ctx& c, const ojson& v, const std::string& p, RunConfig& r) {
         PruningConfig scratch;
         try {
           if (!v.is_string()) throw std::invalid_argument("");
           parse_prune_pattern(v.get<std::string>(), scratch);
         } catch (const std::invalid_argument&) {
           c.bad_value(p, v, "\"unstructured\" or \"N:M\" with 1 <= N < M <= 65536, e.g. \"2:4\"");
         }
         r.prune_pattern = v.get<std::string>();
       }},
      {{"prune_schedule",
        "enum",
        {"oneshot", "gradual"},
        "pruning: oneshot at prune_begin_step, or gradual (Zhu & Gupta 2017 cubic) to "
        "prune_end_step (default oneshot)"},
       [](const Ctx& c, const ojson& v, const std::string& p, RunConfig& r) {
         r.prune_schedule = get_enum(c, v, p, {"oneshot", "gradual"});
       }},
      {{"prune_begin_step",
        "integer",
        {},
        "pruning: the optimizer step that prunes (oneshot) or starts pruning (gradual) "
        "(default 0)"},
       [](const Ctx& c, const ojson& v, const std::string& p, RunConfig& r) {
         r.prune_begin_step = static_cast<int>(get_int(c, v, p, 0, kIntMax));
       }},
      {{"prune_end_step",
        "integer",
        {},
        "gradual pruning: the optimizer step reaching the target (default null; required "
        "with gradual)"},
       [](const Ctx& c, const ojson& v, const std::string& p, RunConfig& r) {
         if (v.is_null()) {
           r.prune_end_step.reset();
           return;
         }
         r.prune_end_step = static_cast<int>(
             get_int(c, v, p, 1, kIntMax, "a positive integer, or null (oneshot)"));
       }},
      {{"prune_frequency",
        "integer",
        {},
        "gradual pruning: optimizer steps between mask updates (default 1)"},
       [](const Ctx& c, const ojson& v, const std::string& p, RunConfig& r) {
         r.prune_frequency = static_cast<int>(get_int(c, v, p, 1, kIntMax));
       }},
      {{"device", "enum", {"auto", "cpu", "cuda"}, "where to train (default auto)"},
       [](const Ctx& c, const ojson& v, const std::string& p, RunConfig& r) {
         r.device = get_enum(c, v, p, {"auto", "cpu", "cuda"});
       }},
      {{"threads", "integer", {}, "CPU threads; 0: OpenMP default (default 0)"},
       [](const Ctx& c, const ojson& v, const std::string& p, RunConfig& r) {
         r.threads = static_cast<int>(get_int(c, v, p, 0, kMaxThreads));
       }},
      {{"data", "string", {}, "\"synthetic\" (Markov chain) or a token file path"},
       [](const Ctx& c, const ojson& v, const std::string& p, RunConfig& r) {
         if (!v.is_string() || v.get_ref<const std::string&>().empty()) {
           c.bad_value(p, v, "\"synthetic\" or a token file path");
         }
         r.data = v.get<std::string>();
       }},
      {{"data_format", "enum", {"bytes", "u16"}, "token file format (default bytes)"},
       [](const Ctx& c, const ojson& v, const std::string& p, RunConfig& r) {
         r.data_format = get_enum(c, v, p, {"bytes", "u16"});
       }},
      {{"markov_branching", "integer", {}, "synthetic data: successors per token (default 4)"},
       [](const Ctx& c, const ojson& v, const std::string& p, RunConfig& r) {
         r.markov_branching = static_cast<int>(get_int(c, v, p, 1, kMaxVocab));
       }},
      {{"memory_limit_bytes", "integer", {}, "allocations beyond this are oom (0: none)"},
       [](const Ctx& c, const ojson& v, const std::string& p, RunConfig& r) {
         r.memory_limit_bytes = get_int(c, v, p, 0, kInt64Max, "an integer >= 0 (0: no limit)");
       }},
  };
  return defs;
}

const std::vector<std::string>& config_key_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> n;
    for (const auto& d : key_defs()) n.push_back(d.info.key);
    return n;
  }();
  return names;
}

const KeyDef* find_key(const std::string& key) {
  for (const auto& d : key_defs()) {
    if (d.info.key == key) return &d;
  }
  return nullptr;
}

// ---- --set overrides ----

bool all_digits(const std::string& s) {
  if (s.empty() || s.size() > 9) return false;
  for (char ch : s) {
    if (ch < '0' || ch > '9') return false;
  }
  return true;
}

void apply_set(const Ctx& c, ojson& doc, const std::string& set) {
  const std::string label = "--set '" + scenario_detail::clip(set, 200) + "'";
  const auto eq = set.find('=');
  if (eq == std::string::npos || eq == 0) {
    c.fail("", label +
                   ": malformed override (expected KEY=VALUE, e.g. micro_batch=8 or "
                   "measure.max_steps=10)");
  }
  const std::string key = set.substr(0, eq), text = set.substr(eq + 1);

  std::vector<std::string> path;
  for (std::size_t start = 0;;) {
    const auto dot = key.find('.', start);
    path.push_back(key.substr(start, dot == std::string::npos ? std::string::npos : dot - start));
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  for (const auto& seg : path) {
    if (seg.empty()) {
      c.fail("", label + ": empty name in the key (expected a dotted path such as base.lr)");
    }
  }
  if (path.size() > static_cast<std::size_t>(scenario_detail::kMaxDepth)) {
    c.fail("", label + ": the key has more than " + std::to_string(scenario_detail::kMaxDepth) +
                   " parts (expected a dotted path such as base.lr)");
  }
  if (path.size() == 1) {
    if (find_key(path[0])) {
      path.insert(path.begin(), "base");
    } else if (!contains(kTopLevelKeys, path[0])) {
      std::vector<std::string> known = config_key_names();
      known.insert(known.end(), kTopLevelKeys.begin(), kTopLevelKeys.end());
      c.fail("", label + ": unknown key \"" + path[0] + "\" (did you mean \"" +
                     nearest(path[0], known) + "\"?)");
    }
  }

  ojson value;
  auto parsed = scenario_detail::parse_json(text);
  if (parsed.value) {
    value = std::move(*parsed.value);
  } else if (parsed.syntax) {
    // Not JSON: a plain string, so that precision=fp32 works. Results files are JSON, so
    // the string must be UTF-8 (JSON text read from the file is checked by the parser).
    if (!scenario_detail::valid_utf8(text)) {
      c.fail("", label + ": the value is not valid UTF-8 (expected JSON or UTF-8 text)");
    }
    value = text;
  } else {
    c.fail("", label + ": " + parsed.error);
  }

  ojson* node = &doc;
  std::string where;  // the pointer of *node
  for (std::size_t i = 0; i < path.size(); ++i) {
    const std::string& seg = path[i];
    const bool last = i + 1 == path.size();
    if (node->is_null()) *node = ojson::object();
    if (node->is_object()) {
      node = &(*node)[seg];
    } else if (node->is_array() && all_digits(seg) && std::stoul(seg) <= node->size()) {
      const auto idx = static_cast<std::size_t>(std::stoul(seg));
      if (idx == node->size()) node->push_back(nullptr);
      node = &(*node)[idx];
    } else {
      c.fail("", label + ": " + (where.empty() ? std::string("the document") : where) + " is " +
                     (node->is_array() ? "an array of " + std::to_string(node->size())
                                       : std::string("a ") + scenario_detail::type_word(*node)) +
                     " (expected an object to set \"" + seg + "\" in" +
                     (node->is_array() ? ", or an index up to the array's size)" : ")"));
    }
    where = pointer_append(where, seg);
    if (last) *node = std::move(value);
  }
}

// ---- the document ----

const ojson* section(const ojson& doc, const char* key) {
  const auto it = doc.find(key);
  if (it == doc.end() || it->is_null()) return nullptr;
  return &*it;
}

struct Axis {
  std::string key;
  const KeyDef* def = nullptr;
  std::vector<ojson> values;
};

void read_measure(const Ctx& c, const ojson& doc, MeasureSettings& m) {
  const ojson* s = section(doc, "measure");
  if (!s) return;
  if (!s->is_object()) c.bad_value("/measure", *s, "an object: " + join(kMeasureKeys));
  c.check_keys(*s, "/measure", kMeasureKeys);
  for (const auto& [k, v] : s->items()) {
    const std::string p = pointer_append("/measure", k);
    if (k == "warmup_steps") m.warmup_steps = static_cast<int>(get_int(c, v, p, 0, kIntMax));
    if (k == "min_steps") m.min_steps = static_cast<int>(get_int(c, v, p, 1, kIntMax));
    if (k == "max_steps") m.max_steps = static_cast<int>(get_int(c, v, p, 1, kIntMax));
    if (k == "target_rel_noise") m.target_rel_noise = get_number(c, v, p, Bound::positive);
    if (k == "time_budget_s") m.time_budget_s = get_number(c, v, p, Bound::positive);
  }
  if (m.max_steps < m.min_steps) {
    if (s->contains("max_steps")) {
      c.bad_value("/measure/max_steps", ojson(m.max_steps),
                  "an integer >= min_steps = " + std::to_string(m.min_steps));
    }
    c.bad_value("/measure/min_steps", ojson(m.min_steps),
                "an integer <= max_steps = " + std::to_string(m.max_steps) + ", the default");
  }
}

// accuracy.target_loss: a loss in nats (> 0), {"floor_ratio": r} (r ≥ 1: r × the data's
// entropy floor), or null (no target).
void read_target_loss(const Ctx& c, const ojson& v, const std::string& p, AccuracySettings& a) {
  const std::string expected =
      "a held-out loss in nats > 0, {\"floor_ratio\": r} with r >= 1 (r times the data's "
      "entropy floor), or null";
  if (v.is_null()) return;
  if (v.is_number()) {
    const double d = v.get<double>();
    if (!std::isfinite(d) || !(d > 0)) c.bad_value(p, v, expected);
    a.target_loss = d;
    return;
  }
  if (!v.is_object()) c.bad_value(p, v, expected);
  c.check_keys(v, p, {"floor_ratio"});
  const auto it = v.find("floor_ratio");
  if (it == v.end()) c.bad_value(p, v, expected);
  const double r = it->is_number() ? it->get<double>() : 0;
  if (!it->is_number() || !std::isfinite(r) || !(r >= 1)) {
    c.bad_value(pointer_append(p, "floor_ratio"), *it,
                "a number >= 1: the target is this multiple of the data's entropy floor, e.g. "
                "1.05");
  }
  a.target_floor_ratio = r;
}

void read_accuracy(const Ctx& c, const ojson& doc, AccuracySettings& a) {
  const ojson* s = section(doc, "accuracy");
  if (!s) return;
  if (!s->is_object()) c.bad_value("/accuracy", *s, "an object: " + join(kAccuracyKeys));
  c.check_keys(*s, "/accuracy", kAccuracyKeys);
  for (const auto& [k, v] : s->items()) {
    const std::string p = pointer_append("/accuracy", k);
    if (k == "train_steps") a.train_steps = static_cast<int>(get_int(c, v, p, 0, kIntMax));
    if (k == "eval_interval") a.eval_interval = static_cast<int>(get_int(c, v, p, 0, kIntMax));
    if (k == "eval_batches") a.eval_batches = static_cast<int>(get_int(c, v, p, 1, kIntMax));
    if (k == "seeds") a.seeds = static_cast<int>(get_int(c, v, p, 1, kIntMax));
    if (k == "seed") a.seed = get_u64(c, v, p);
    if (k == "target_loss") read_target_loss(c, v, p, a);
  }
}

std::vector<Axis> read_sweep(const Ctx& c, const ojson& doc) {
  std::vector<Axis> axes;
  const ojson* s = section(doc, "sweep");
  if (!s) return axes;
  if (!s->is_object()) {
    c.bad_value("/sweep", *s, "an object: configuration key → array of values");
  }
  c.check_keys(*s, "/sweep", config_key_names());
  for (const auto& [k, v] : s->items()) {
    const std::string p = pointer_append("/sweep", k);
    if (!v.is_array() || v.empty()) c.bad_value(p, v, "a non-empty array of values");
    Axis a{k, find_key(k), {}};
    RunConfig scratch;
    for (std::size_t i = 0; i < v.size(); ++i) {
      a.def->apply(c, v[i], pointer_append(p, i), scratch);
      a.values.push_back(v[i]);
    }
    axes.push_back(std::move(a));
  }
  return axes;
}

// Where a key of this variant came from: its sweep value, or /base/key, or "" (a default).
struct Origin {
  const std::vector<Axis>* axes;
  const std::vector<std::size_t>* choice;  // value index per axis
  const ojson* base;                       // the base object, or null

  std::string of(std::initializer_list<const char*> keys) const {
    for (const char* k : keys) {
      for (std::size_t a = 0; a < axes->size(); ++a) {
        if ((*axes)[a].key == k) return pointer_append(pointer_append("/sweep", k), (*choice)[a]);
      }
    }
    for (const char* k : keys) {
      if (base && base->contains(k)) return pointer_append("/base", k);
    }
    return {};
  }
};

// The parallel split against the model it splits (docs/parallel.md).
void validate_parallel(const Ctx& c, const Origin& origin, const std::string& label,
                       const RunConfig& r, const ModelConfig& full) {
  ModelConfig m;
  try {
    m = variant_model(r, full);
  } catch (const std::invalid_argument&) {
    return;  // reported with the model shape
  }
  if (m.n_head % r.tp != 0) {
    c.fail(origin.of({"tp", "heads", "width_scale"}),
           label + "tp = " + std::to_string(r.tp) + " does not divide heads = " +
               std::to_string(m.n_head) + " (expected a divisor of the head count)");
  }
  if (r.pp > m.n_layer) {
    c.fail(origin.of({"pp", "layers"}), label + "pp = " + std::to_string(r.pp) +
                                            " exceeds layers = " + std::to_string(m.n_layer) +
                                            " (expected at most one stage per layer)");
  }
  if (r.virtual_stages != 1) {
    c.fail(origin.of({"virtual_stages"}),
           label + "virtual_stages = " + std::to_string(r.virtual_stages) +
               " (expected 1: interleaved 1F1B is not built; gpipe and 1f1b are)");
  }
  if (r.sequence_parallel && r.tp == 1) {
    c.fail(origin.of({"sequence_parallel", "tp"}),
           label +
               "sequence_parallel = true with tp = 1 (expected tp > 1: sequence parallelism "
               "splits the tensor-parallel group's replicated regions)");
  }
  if (r.experts > 0 && r.tp > 1) {
    c.fail(origin.of({"experts", "tp"}),
           label + "experts = " + std::to_string(r.experts) + " with tp = " + std::to_string(r.tp) +
               " (expected tp = 1: experts are not split over tensor-parallel ranks)");
  }
  if (r.expert_parallel && (r.experts == 0 || r.dp < 2 || r.experts % r.dp != 0 || r.zero != 0)) {
    c.fail(origin.of({"expert_parallel", "experts", "dp", "zero"}),
           label + "expert_parallel = true with experts = " + std::to_string(r.experts) +
               ", dp = " + std::to_string(r.dp) + ", zero = " + std::to_string(r.zero) +
               " (expected dp > 1 dividing experts > 0, and zero = 0)");
  }
  if (r.experts > 0 && r.precision == "fp8") {
    c.fail(origin.of({"experts", "precision"}),
           label + "experts = " + std::to_string(r.experts) +
               " with precision fp8 (expected fp32, tf32, bf16 or fp16: fp8 delayed scaling "
               "keeps one scale per linear layer, not per expert)");
  }
  if (r.optimizer == "lamb" && (r.tp > 1 || r.zero == 1)) {
    c.fail(origin.of({"optimizer", "tp", "zero"}),
           label + "optimizer lamb with tp = " + std::to_string(r.tp) +
               ", zero = " + std::to_string(r.zero) +
               " (expected adamw or sgd: LAMB's per-tensor trust ratio needs whole tensors)");
  }
}

// Pruning's keys together (train/pruning.h), and N:M against the model's widths.
void validate_pruning(const Ctx& c, const Origin& origin, const std::string& label,
                      const RunConfig& r, const ModelConfig& full) {
  if (!r.pruning()) return;
  PruningConfig pc;
  parse_prune_pattern(r.prune_pattern, pc);  // checked with the key
  if (pc.pattern == PrunePattern::n_of_m && r.prune_sparsity != 0 &&
      std::abs(r.prune_sparsity - pc.target()) > 1e-9) {
    c.fail(origin.of({"prune_sparsity", "prune_pattern"}),
           label + "prune_sparsity = " + compact(ojson(r.prune_sparsity)) + " with prune_pattern " +
               r.prune_pattern + " (expected 0 or " + compact(ojson(pc.target())) +
               " = 1 - N/M: an N:M pattern fixes the sparsity)");
  }
  if (r.prune_schedule == "gradual") {
    if (!r.prune_end_step) {
      c.fail(origin.of({"prune_schedule", "prune_end_step"}),
             label +
                 "prune_schedule gradual without prune_end_step (expected an integer > "
                 "prune_begin_step = " +
                 std::to_string(r.prune_begin_step) + ": the step reaching the target)");
    }
    if (*r.prune_end_step <= r.prune_begin_step) {
      c.fail(origin.of({"prune_end_step", "prune_begin_step"}),
             label + "prune_end_step = " + std::to_string(*r.prune_end_step) +
                 " (expected > prune_begin_step = " + std::to_string(r.prune_begin_step) + ")");
    }
  }
  if (pc.pattern == PrunePattern::n_of_m) {
    ModelConfig m;
    try {
      m = reduce(full, r.proxy);
    } catch (const std::invalid_argument&) {
      return;  // reported with the model shape
    }
    // The narrowest input dimension of a pruned weight: attn.proj's d_model/tp.
    const int width = m.d_model / r.tp;
    if (width % pc.m != 0) {
      c.fail(origin.of({"prune_pattern", "d_model", "width_scale", "tp"}),
             label + "prune_pattern " + r.prune_pattern +
                 ": blocks.*.attn.proj.weight has input dimension d_model/tp = " +
                 std::to_string(width) + " (expected a multiple of M = " + std::to_string(pc.m) +
                 ": groups run along the input dimension)");
    }
  }
}

// The combinations no single key can rule out: the model shape and the data source.
void check_variant(const Ctx& c, const Variant& v, const Origin& origin) {
  const std::string label = "variant " + std::to_string(v.index) + " (" + v.id + "): ";
  const RunConfig& r = v.config;
  ModelConfig full;
  try {
    full = preset(r.preset);
  } catch (const std::invalid_argument& e) {
    c.fail(origin.of({"preset"}), label + e.what());
  }
  if (r.proxy.width_scale) {
    const long heads = std::max(1L, std::lround(full.n_head * *r.proxy.width_scale));
    const double width = double(heads) * full.head_dim();
    if (!r.proxy.d_model && width > double(kMaxWidth)) {
      c.fail(origin.of({"width_scale"}),
             label + "width_scale = " + compact(ojson(*r.proxy.width_scale)) +
                 " gives d_model = " + std::to_string(static_cast<long long>(width)) +
                 " (expected at most " + std::to_string(kMaxWidth) + ")");
    }
  }
  try {
    const ModelConfig m = variant_model(r, full);
    validate(m);
  } catch (const std::invalid_argument& e) {
    const std::string what = e.what();
    std::string where;
    if (what.rfind("top_k", 0) == 0) {
      where = origin.of({"top_k", "experts"});
    } else if (what.rfind("capacity_factor", 0) == 0) {
      where = origin.of({"capacity_factor"});
    } else if (what.rfind("moe_every", 0) == 0) {
      where = origin.of({"moe_every", "layers"});
    } else if (what.rfind("moe_", 0) == 0 || what.rfind("experts", 0) == 0) {
      where = origin.of({"experts", "moe_aux_loss", "moe_z_loss"});
    } else if (what.find("does not divide") != std::string::npos) {
      where = origin.of({"heads", "d_model", "width_scale"});
    } else if (what.rfind("layers", 0) == 0) {
      where = origin.of({"layers"});
    } else if (what.rfind("d_model", 0) == 0) {
      where = origin.of({"d_model", "width_scale"});
    } else if (what.rfind("heads", 0) == 0) {
      where = origin.of({"heads", "width_scale"});
    } else if (what.rfind("seq_len", 0) == 0) {
      where = origin.of({"seq"});
    } else if (what.rfind("vocab", 0) == 0) {
      where = origin.of({"vocab"});
    } else if (what.rfind("width_scale", 0) == 0) {
      where = origin.of({"width_scale"});
    }
    c.fail(where, label + what);
  }
  if (r.checkpoint_selective && r.checkpoint_interval != 0) {
    c.fail(origin.of({"checkpoint_selective", "checkpoint_interval"}),
           label + "checkpoint_selective = true with checkpoint_interval = " +
               std::to_string(r.checkpoint_interval) +
               " (expected checkpoint_interval 0: selective recompute replaces full recompute)");
  }
  const int per_step = r.micro_batch * r.dp;
  if (r.global_batch && (*r.global_batch < per_step || *r.global_batch % per_step != 0)) {
    c.fail(origin.of({"global_batch", "micro_batch", "dp"}),
           label + "global_batch = " + std::to_string(*r.global_batch) +
               " is not a multiple of micro_batch·dp = " + std::to_string(per_step) +
               " (expected a multiple >= micro_batch·dp, or null for micro_batch·dp)");
  }
  validate_parallel(c, origin, label, r, full);
  validate_pruning(c, origin, label, r, full);
  if (r.data == "synthetic") {
    const int vocab = r.proxy.vocab.value_or(full.vocab);
    if (vocab < 2) {
      c.fail(origin.of({"vocab"}),
             label + "vocab = " + std::to_string(vocab) + " (expected >= 2 for synthetic data)");
    }
    if (r.markov_branching > vocab) {
      c.fail(origin.of({"markov_branching", "vocab"}),
             label + "markov_branching = " + std::to_string(r.markov_branching) +
                 " exceeds vocab = " + std::to_string(vocab) +
                 " (expected 1 to vocab for synthetic data)");
    }
  }
}

std::size_t variant_count(const Ctx& c, const std::vector<Axis>& axes, SweepMode mode) {
  if (axes.empty()) return 1;
  if (mode == SweepMode::zip) {
    const std::size_t n = axes[0].values.size();
    for (std::size_t a = 1; a < axes.size(); ++a) {
      if (axes[a].values.size() != n) {
        c.fail(pointer_append("/sweep", axes[a].key),
               std::to_string(axes[a].values.size()) + " values (expected " + std::to_string(n) +
                   ", as many as /sweep/" + scenario_detail::pointer_token(axes[0].key) +
                   ": sweep_mode \"zip\" pairs the i-th values of every axis)");
      }
    }
    if (n > kMaxVariants) {
      c.fail("/sweep", std::to_string(n) + " variants (expected at most " +
                           std::to_string(kMaxVariants) + ")");
    }
    return n;
  }
  std::size_t n = 1;
  for (const auto& a : axes) {
    if (a.values.size() > kMaxVariants / n) {
      c.fail("/sweep", "the product of the axes has more than " + std::to_string(kMaxVariants) +
                           " variants (expected at most " + std::to_string(kMaxVariants) + ")");
    }
    n *= a.values.size();
  }
  return n;
}

void select_baseline(const Ctx& c, const ojson& doc, const std::vector<Axis>& axes,
                     std::vector<Variant>& variants) {
  const ojson* b = section(doc, "baseline");
  if (!b) {
    variants.front().is_baseline = true;
    return;
  }
  if (!b->is_object()) c.bad_value("/baseline", *b, "an object: sweep axis → value");
  std::vector<std::string> axis_names;
  for (const auto& a : axes) axis_names.push_back(a.key);
  for (const auto& [k, v] : b->items()) {
    const std::string p = pointer_append("/baseline", k);
    const Axis* axis = nullptr;
    for (const auto& a : axes) {
      if (a.key == k) axis = &a;
    }
    if (!axis) {
      if (axes.empty()) c.fail(p, "not a sweep axis (expected no baseline: there is no sweep)");
      if (!find_key(k)) {
        c.fail(p, "unknown key (did you mean \"" + nearest(k, axis_names) + "\"?)");
      }
      c.fail(p, "not a sweep axis (expected one of: " + join(axis_names) + ")");
    }
    bool found = false;
    std::string values;
    for (const auto& x : axis->values) {
      if (x == v) found = true;
      if (values.size() < 120) values += (values.empty() ? "" : ", ") + compact(x, 40);
    }
    if (!found) {
      c.bad_value(
          p, v, "one of the values of /sweep/" + scenario_detail::pointer_token(k) + ": " + values);
    }
  }
  const nlohmann::json wanted(*b);
  std::vector<std::size_t> selected;
  for (const auto& var : variants) {
    bool match = true;
    for (const auto& [k, v] : wanted.items()) {
      const auto it = var.keys.find(k);
      if (it == var.keys.end() || *it != v) {
        match = false;
        break;
      }
    }
    if (match) selected.push_back(var.index);
  }
  if (selected.empty()) {
    c.fail("/baseline", compact(*b) +
                            " selects no variant (expected exactly one; with sweep_mode \"zip\" "
                            "the values must sit at the same position in their arrays)");
  }
  if (selected.size() > 1) {
    std::string ids;
    for (std::size_t i = 0; i < selected.size() && i < 3; ++i) {
      ids += (ids.empty() ? "" : "; ") + variants[selected[i]].id;
    }
    if (selected.size() > 3) ids += "; …";
    c.fail("/baseline", compact(*b) + " selects " + std::to_string(selected.size()) +
                            " variants: " + ids +
                            " (expected exactly one: give a value for more of the axes)");
  }
  variants[selected.front()].is_baseline = true;
}

Scenario build(const Ctx& c, const ojson& doc, const std::string& path) {
  Scenario s;
  s.path = path;
  c.check_keys(doc, "", kTopLevelKeys);

  const auto name = doc.find("name");
  if (name == doc.end()) c.fail("/name", "missing (expected a string naming the scenario)");
  if (!name->is_string() || name->get_ref<const std::string&>().empty()) {
    c.bad_value("/name", *name, "a non-empty string");
  }
  s.name = name->get<std::string>();
  if (const ojson* d = section(doc, "description")) {
    if (!d->is_string()) c.bad_value("/description", *d, "a string");
    s.description = d->get<std::string>();
  }

  const ojson* base = section(doc, "base");
  if (base) {
    if (!base->is_object()) c.bad_value("/base", *base, "an object of configuration keys");
    c.check_keys(*base, "/base", config_key_names());
    for (const auto& [k, v] : base->items()) {
      find_key(k)->apply(c, v, pointer_append("/base", k), s.base);
    }
  }

  if (const ojson* m = section(doc, "sweep_mode")) {
    s.mode = get_enum(c, *m, "/sweep_mode", {"product", "zip"}) == "zip" ? SweepMode::zip
                                                                         : SweepMode::product;
  }
  const std::vector<Axis> axes = read_sweep(c, doc);
  for (const auto& a : axes) s.axes.push_back(a.key);
  read_measure(c, doc, s.measure);
  read_accuracy(c, doc, s.accuracy);

  // Expansion: product with the last axis varying fastest, or zip.
  const std::size_t n = variant_count(c, axes, s.mode);
  std::vector<std::size_t> choice(axes.size(), 0);
  std::unordered_map<std::string, std::size_t> seen;
  s.variants.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    if (s.mode == SweepMode::zip) {
      std::fill(choice.begin(), choice.end(), i);
    } else if (i > 0) {
      for (std::size_t a = axes.size(); a-- > 0;) {
        if (++choice[a] < axes[a].values.size()) break;
        choice[a] = 0;
      }
    }
    Variant v;
    v.index = i;
    v.config = s.base;  // sweep values win over the base's
    v.keys = nlohmann::json::object();
    for (std::size_t a = 0; a < axes.size(); ++a) {
      const ojson& value = axes[a].values[choice[a]];
      axes[a].def->apply(c, value, pointer_append(pointer_append("/sweep", axes[a].key), choice[a]),
                         v.config);  // validated when the sweep was read: cannot fail
      v.keys[axes[a].key] = nlohmann::json(value);
      v.id += (a ? "," : "") + axes[a].key + "=" + scenario_detail::id_text(value);
    }
    if (axes.empty()) v.id = "base";
    const auto [it, fresh] = seen.emplace(v.id, i);
    if (!fresh) {
      // Name the first axis whose value differs in position: a repeated value there.
      const Variant& first = s.variants[it->second];
      std::size_t a = 0;
      std::vector<std::size_t> first_choice(axes.size());
      if (s.mode == SweepMode::zip) {
        std::fill(first_choice.begin(), first_choice.end(), first.index);
      } else {
        std::size_t rest = first.index;
        for (std::size_t k = axes.size(); k-- > 0;) {
          first_choice[k] = rest % axes[k].values.size();
          rest /= axes[k].values.size();
        }
      }
      while (a + 1 < axes.size() && first_choice[a] == choice[a]) ++a;
      const std::string p = pointer_append(pointer_append("/sweep", axes[a].key), choice[a]);
      c.fail(p, "variants " + std::to_string(first.index) + " and " + std::to_string(i) +
                    " would both be \"" + v.id + "\" (expected distinct values: /sweep/" +
                    scenario_detail::pointer_token(axes[a].key) + "/" +
                    std::to_string(first_choice[a]) + " is the same)");
    }
    check_variant(c, v, Origin{&axes, &choice, base});
    const RunConfig& r = v.config;
    if (r.lr_schedule == "cosine" && s.accuracy.train_steps > 0 &&
        r.lr_warmup_steps >= s.accuracy.train_steps) {
      c.fail(
          Origin{&axes, &choice, base}.of({"lr_warmup_steps", "lr_schedule"}),
          "variant " + std::to_string(v.index) + " (" + v.id +
              "): lr_warmup_steps = " + std::to_string(r.lr_warmup_steps) +
              " leaves no cosine decay in train_steps = " + std::to_string(s.accuracy.train_steps) +
              " (expected lr_warmup_steps < /accuracy/train_steps)");
    }
    if (s.accuracy.target_floor_ratio && s.accuracy.train_steps > 0 && r.data != "synthetic") {
      c.fail("/accuracy/target_loss",
             "{\"floor_ratio\": " + compact(ojson(*s.accuracy.target_floor_ratio)) +
                 "} needs the data's entropy floor, but variant " + std::to_string(v.index) + " (" +
                 v.id + ") reads " + r.data +
                 ", which has none (expected an absolute loss in nats, or synthetic data)");
    }
    // The accuracy run must reach the pruning target (the timing run prunes at its step 0).
    const int last_prune =
        r.prune_schedule == "gradual" ? r.prune_end_step.value_or(0) : r.prune_begin_step;
    if (r.pruning() && s.accuracy.train_steps > 0 && last_prune >= s.accuracy.train_steps) {
      const bool gradual = r.prune_schedule == "gradual";
      c.fail(Origin{&axes, &choice, base}.of(
                 {gradual ? "prune_end_step" : "prune_begin_step", "prune_schedule"}),
             "variant " + std::to_string(v.index) + " (" + v.id +
                 "): " + (gradual ? "prune_end_step = " : "prune_begin_step = ") +
                 std::to_string(last_prune) +
                 " is not reached in train_steps = " + std::to_string(s.accuracy.train_steps) +
                 " (expected " + (gradual ? "prune_end_step" : "prune_begin_step") +
                 " < /accuracy/train_steps: the accuracy run would not reach the target)");
    }
    s.variants.push_back(std::move(v));
  }
  select_baseline(c, doc, axes, s.variants);
  return s;
}

}  // namespace

ModelConfig variant_model(const RunConfig& r, const ModelConfig& full) {
  ModelConfig m = reduce(full, r.proxy);
  m.moe = r.moe();
  return m;
}

nlohmann::json RunConfig::to_json() const {
  auto opt = [](const auto& o) { return o ? nlohmann::json(*o) : nlohmann::json(nullptr); };
  return {{"preset", preset},
          {"layers", opt(proxy.n_layer)},
          {"width_scale", opt(proxy.width_scale)},
          {"d_model", opt(proxy.d_model)},
          {"heads", opt(proxy.n_head)},
          {"seq", opt(proxy.seq_len)},
          {"vocab", opt(proxy.vocab)},
          {"micro_batch", micro_batch},
          {"global_batch", opt(global_batch)},
          {"precision", precision},
          {"loss_scaling", loss_scaling},
          {"loss_scale_init", loss_scale_init},
          {"loss_scale_growth_interval", loss_scale_growth_interval},
          {"fp8_amax_history", fp8_amax_history},
          {"fp8_margin", fp8_margin},
          {"checkpoint_interval", checkpoint_interval},
          {"checkpoint_selective", checkpoint_selective},
          {"optimizer", optimizer},
          {"lr", opt(lr)},
          {"lr_schedule", lr_schedule},
          {"lr_warmup_steps", lr_warmup_steps},
          {"min_lr_ratio", min_lr_ratio},
          {"weight_decay", weight_decay},
          {"grad_clip", grad_clip},
          {"beta1", beta1},
          {"beta2", beta2},
          {"momentum", momentum},
          {"device", device},
          {"threads", threads},
          {"data", data},
          {"data_format", data_format},
          {"markov_branching", markov_branching},
          {"memory_limit_bytes", memory_limit_bytes},
          {"dp", dp},
          {"tp", tp},
          {"pp", pp},
          {"pp_schedule", pp_schedule},
          {"virtual_stages", virtual_stages},
          {"zero", zero},
          {"sequence_parallel", sequence_parallel},
          {"bucket_mb", bucket_mb},
          {"experts", experts},
          {"top_k", top_k},
          {"capacity_factor", capacity_factor},
          {"moe_every", moe_every},
          {"moe_aux_loss", moe_aux_loss},
          {"moe_z_loss", moe_z_loss},
          {"expert_parallel", expert_parallel},
          {"prune_sparsity", prune_sparsity},
          {"prune_pattern", prune_pattern},
          {"prune_schedule", prune_schedule},
          {"prune_begin_step", prune_begin_step},
          {"prune_end_step", opt(prune_end_step)},
          {"prune_frequency", prune_frequency}};
}

Scenario parse_scenario(const std::string& text, const std::string& path,
                        const std::vector<std::string>& sets) {
  const Ctx c(path);
  auto parsed = scenario_detail::parse_json(text);
  if (!parsed.value) c.fail("", parsed.error);
  ojson& doc = *parsed.value;
  if (!doc.is_object()) {
    c.bad_value("", doc, "a JSON object with \"name\", \"base\", \"sweep\", …");
  }
  for (const auto& set : sets) apply_set(c, doc, set);
  Scenario s = build(c, doc, path);
  s.document = nlohmann::json(doc);
  return s;
}

Scenario load_scenario(const std::string& path, const std::vector<std::string>& sets) {
  auto fail = [&](const char* what) {
    throw ScenarioError(
        one_line(std::string(what) + " scenario file '" + path + "': " + std::strerror(errno)));
  };
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail("cannot open");
  std::string text;
  char buf[65536];
  for (;;) {
    const ssize_t got = ::read(fd, buf, sizeof buf);
    if (got < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      errno = err;
      fail("cannot read");
    }
    if (got == 0) break;
    text.append(buf, static_cast<std::size_t>(got));
    if (text.size() > kMaxFileBytes) {
      ::close(fd);
      throw ScenarioError(one_line("scenario file '" + path + "' is larger than 16 MiB " +
                                   "(expected a small JSON document)"));
    }
  }
  ::close(fd);
  return parse_scenario(text, path, sets);
}

const std::vector<ConfigKeyInfo>& config_keys() {
  static const std::vector<ConfigKeyInfo> keys = [] {
    std::vector<ConfigKeyInfo> k;
    for (const auto& d : key_defs()) k.push_back(d.info);
    return k;
  }();
  return keys;
}

}  // namespace tb
