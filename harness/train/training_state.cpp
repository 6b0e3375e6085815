#include "training_state.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <set>
#include <stdexcept>
#include <utility>
#include <vector>

#include "../common/decimal.h"
#include "../io/safetensors_file.h"

namespace tb {

namespace {

using Clock = std::chrono::steady_clock;
using Meta = std::map<std::string, std::string>;
constexpr const char* kStateVersion = "1";
constexpr const char* kWhat = "state file";

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

std::string tensor_dtype(DType t) {
  if (t == DType::f32) return "F32";
  if (t == DType::f64) return "F64";
  throw std::invalid_argument("training state of a model of dtype " + std::string(dtype_name(t)) +
                              " (expected f32 or f64 master weights)");
}

void require_single_process(const Trainer& trainer) {
  if (trainer.parallel()) {
    throw std::invalid_argument(
        "training-state checkpoint of a parallel run (dp·tp·pp > 1 ranks; expected a single "
        "process)");
  }
}

// The optimizer's state tensors (flat over its partition) by kind: m and v, or momentum.
std::vector<std::pair<std::string, Tensor>> optimizer_state(const Optimizer& opt) {
  if (const auto* a = dynamic_cast<const AdamW*>(&opt))
    return {{"m", a->first_moment()}, {"v", a->second_moment()}};
  if (const auto* l = dynamic_cast<const Lamb*>(&opt))
    return {{"m", l->first_moment()}, {"v", l->second_moment()}};
  if (const auto* s = dynamic_cast<const Sgd*>(&opt)) {
    if (s->momentum_buffer().empty()) return {};
    return {{"momentum", s->momentum_buffer()}};
  }
  throw std::invalid_argument("training state of optimizer '" + opt.name() +
                              "' (expected adamw, lamb or sgd)");
}

// Every tensor of the optimizer state, as (file name, view of its part of the flat state).
std::vector<std::pair<std::string, Tensor>> optimizer_tensors(const GptModel& model,
                                                              const Optimizer& opt) {
  if (opt.partition_begin() != 0 || opt.partition_end() != model.layout().total) {
    throw std::invalid_argument(
        "training state of a partitioned optimizer (ZeRO; expected one "
        "process holding the whole state)");
  }
  std::vector<std::pair<std::string, Tensor>> out;
  for (const auto& [kind, flat] : optimizer_state(opt)) {
    for (const auto& spec : model.layout().tensors) {
      out.emplace_back("optimizer." + kind + "." + spec.name,
                       flat.slice(spec.offset - opt.partition_begin(), spec.shape));
    }
  }
  return out;
}

std::string fp8_history_name(std::size_t i) { return "fp8." + std::to_string(i) + ".amax_history"; }

void put_model_config(Meta& m, const ModelConfig& c) {
  // The weights file's keys, so that a state file is also a weights file.
  m["format"] = kTrainingStateFormat;
  m["state_version"] = kStateVersion;
  m["name"] = c.name;
  m["n_layer"] = std::to_string(c.n_layer);
  m["d_model"] = std::to_string(c.d_model);
  m["n_head"] = std::to_string(c.n_head);
  m["seq_len"] = std::to_string(c.seq_len);
  m["vocab"] = std::to_string(c.vocab);
  m["moe.experts"] = std::to_string(c.moe.experts);
  m["moe.top_k"] = std::to_string(c.moe.top_k);
  m["moe.every"] = std::to_string(c.moe.every);
  m["moe.capacity_factor"] = to_decimal(c.moe.capacity_factor);
}

// ---- reading ----

const std::string& meta_str(const SafetensorsReader& r, const std::string& key) {
  const auto it = r.metadata().find(key);
  if (it == r.metadata().end()) {
    r.fail("__metadata__ lacks '" + key +
           "' (expected a training-state file written by trainbench step --save-state)");
  }
  return it->second;
}

template <class T>
T meta_num(const SafetensorsReader& r, const std::string& key) {
  const std::string& s = meta_str(r, key);
  const std::optional<T> v = parse_decimal<T>(s);
  if (!v) r.fail("__metadata__ '" + key + "' = '" + s + "' is not a number");
  return *v;
}

void check_format(const SafetensorsReader& r) {
  const auto it = r.metadata().find("format");
  if (it == r.metadata().end()) {
    r.fail(
        "has no __metadata__ 'format' (expected a training-state file written by trainbench step "
        "--save-state)");
  }
  if (it->second == "trainbench") {
    r.fail(
        "is a weights file (format 'trainbench': weights only, no optimizer state; expected "
        "format 'trainbench-state' from --save-state — start from weights alone with "
        "--load-weights)");
  }
  if (it->second != kTrainingStateFormat) {
    r.fail("has format '" + it->second + "' (expected '" + kTrainingStateFormat +
           "' from trainbench step --save-state)");
  }
  const std::string& v = meta_str(r, "state_version");
  if (v != kStateVersion) {
    r.fail("has state_version '" + v + "' (expected '" + kStateVersion +
           "'; written by another trainbench version)");
  }
}

// "holds <what> = <saved> (this run's <what> = <ours>)" when they differ.
void require_same(const SafetensorsReader& r, const std::string& key, const std::string& ours,
                  const std::string& what) {
  const std::string& saved = meta_str(r, key);
  if (saved != ours) {
    r.fail("was saved with " + what + " = " + saved + " (this run's " + what + " = " + ours +
           "; expected the same)");
  }
}

void check_model_config(const SafetensorsReader& r, const ModelConfig& c) {
  const std::pair<const char*, int> fields[] = {
      {"n_layer", c.n_layer},     {"d_model", c.d_model},    {"n_head", c.n_head},
      {"seq_len", c.seq_len},     {"vocab", c.vocab},        {"moe.experts", c.moe.experts},
      {"moe.top_k", c.moe.top_k}, {"moe.every", c.moe.every}};
  for (const auto& [key, ours] : fields) {
    const int saved = meta_num<int>(r, key);
    if (saved != ours) {
      r.fail("holds a model with " + std::string(key) + " = " + std::to_string(saved) +
             " (this run's model has " + key + " = " + std::to_string(ours) + ")");
    }
  }
}

}  // namespace

StateFileStats save_training_state(const std::string& path, Trainer& trainer) {
  require_single_process(trainer);
  const auto t0 = Clock::now();
  GptModel& model = trainer.model();
  Optimizer& opt = trainer.optimizer();
  Backend& be = model.backend();
  const std::string dt = tensor_dtype(model.dtype());
  const Meta position = trainer.data().train_position();
  if (position.empty()) {
    throw std::invalid_argument("data " + trainer.data().describe() +
                                " cannot save its training position (expected the synthetic "
                                "source or a token file)");
  }
  const auto tensors = optimizer_tensors(model, opt);

  SafetensorsWriter w;
  Meta& m = w.metadata();
  put_model_config(m, model.config());
  m["dtype"] = dt;
  m["precision"] = std::string(precision_mode_name(model.precision().mode));
  m["optimizer"] = opt.name();
  const LossScaler::State ls = trainer.loss_scaler().state();
  StateFileStats stats;
  stats.step = opt.steps_taken();
  stats.steps_run = stats.step + ls.skipped;
  m["step"] = std::to_string(stats.step);
  m["steps_run"] = std::to_string(stats.steps_run);
  // The schedule's settings, for the record (the lr is recomputed from step and this run's).
  const LrScheduleConfig& sc = trainer.training().schedule;
  m["lr"] = to_decimal(opt.config().lr);
  m["lr_schedule"] = sc.kind;
  m["lr_schedule.warmup_steps"] = std::to_string(sc.warmup_steps);
  m["lr_schedule.total_steps"] = std::to_string(sc.total_steps);
  m["lr_schedule.min_lr_ratio"] = to_decimal(sc.min_lr_ratio);
  m["loss_scaling"] = trainer.loss_scaler().dynamic() ? "dynamic" : "none";
  m["loss_scaling.scale"] = to_decimal(ls.scale);
  m["loss_scaling.good_steps"] = std::to_string(ls.good_steps);
  m["loss_scaling.skipped_steps"] = std::to_string(ls.skipped);
  m["loss_scaling.growths"] = std::to_string(ls.growths);
  m["data"] = trainer.data().describe();
  for (const auto& [k, v] : position) m["data." + k] = v;

  for (const auto& spec : model.layout().tensors) {
    const Tensor src = model.params().slice(spec.offset, spec.shape);
    w.add(spec.name, dt, spec.shape, [&be, src](void* dst) { be.copy_to_host(dst, src); });
  }
  for (const auto& [name, src] : tensors) {
    w.add(name, dt, src.shape, [&be, src = src](void* dst) { be.copy_to_host(dst, src); });
  }
  const std::vector<DelayedScaling>& fp8 = model.fp8_scaling();
  m["fp8.scalings"] = std::to_string(fp8.size());
  if (!fp8.empty()) {
    std::vector<float> scales, pending;
    for (std::size_t i = 0; i < fp8.size(); ++i) {
      const std::vector<float> h = fp8[i].history();
      w.add(fp8_history_name(i), "F32", {static_cast<std::int64_t>(h.size())},
            [h](void* dst) { std::copy(h.begin(), h.end(), static_cast<float*>(dst)); });
      scales.push_back(fp8[i].scale());
      pending.push_back(fp8[i].pending_amax());
    }
    const auto n = static_cast<std::int64_t>(fp8.size());
    w.add("fp8.scale", "F32", {n}, [scales](void* dst) {
      std::copy(scales.begin(), scales.end(), static_cast<float*>(dst));
    });
    w.add("fp8.pending_amax", "F32", {n}, [pending](void* dst) {
      std::copy(pending.begin(), pending.end(), static_cast<float*>(dst));
    });
  }
  const Pruner* pruner = trainer.pruner();
  m["pruning"] = pruner ? "1" : "0";
  if (pruner) {
    m["pruning.sparsity"] = to_decimal(pruner->current_sparsity());
    for (std::size_t i = 0; pruner->active() && i < pruner->tensors().size(); ++i) {
      const std::vector<std::uint8_t> keep = pruner->host_mask(i);
      w.add("pruning.mask." + pruner->tensors()[i]->name, "U8", pruner->tensors()[i]->shape,
            [keep](void* dst) {
              std::copy(keep.begin(), keep.end(), static_cast<std::uint8_t*>(dst));
            });
    }
  }
  be.synchronize();
  stats.bytes = w.write(path, kWhat);
  stats.seconds = seconds_since(t0);
  return stats;
}

long training_state_steps_run(const std::string& path) {
  const SafetensorsReader r(path, kWhat);
  check_format(r);
  const long n = meta_num<long>(r, "steps_run");
  if (n < 0) r.fail("__metadata__ 'steps_run' = " + std::to_string(n) + " (expected >= 0)");
  return n;
}

StateFileStats load_training_state(const std::string& path, Trainer& trainer) {
  require_single_process(trainer);
  const auto t0 = Clock::now();
  SafetensorsReader r(path, kWhat);
  check_format(r);
  GptModel& model = trainer.model();
  Optimizer& opt = trainer.optimizer();
  Backend& be = model.backend();
  const std::string dt = tensor_dtype(model.dtype());

  // 1. The run must be the one that saved: shape, dtype, precision, optimizer, loss scaling,
  //    data, fp8 and pruning.
  check_model_config(r, model.config());
  require_same(r, "dtype", dt, "master-weight dtype");
  require_same(r, "precision", std::string(precision_mode_name(model.precision().mode)),
               "precision");
  require_same(r, "optimizer", opt.name(), "optimizer");
  LossScaler& scaler = trainer.loss_scaler();
  require_same(r, "loss_scaling", scaler.dynamic() ? "dynamic" : "none", "loss scaling");
  require_same(r, "data", trainer.data().describe(), "data");
  std::vector<DelayedScaling>& fp8 = model.fp8_scaling();
  require_same(r, "fp8.scalings", std::to_string(fp8.size()), "fp8 delayed scalings");
  Pruner* pruner = trainer.pruner();
  require_same(r, "pruning", pruner ? "1" : "0", "pruning");

  // 2. Every tensor present with its dtype and shape, and no other.
  const auto opt_tensors = optimizer_tensors(model, opt);
  std::set<std::string> expected;
  for (const auto& spec : model.layout().tensors) {
    r.check(spec.name, dt, spec.shape, "the model's weights");
    expected.insert(spec.name);
  }
  for (const auto& [name, t] : opt_tensors) {
    r.check(name, dt, t.shape, "the " + opt.name() + " optimizer's state");
    expected.insert(name);
  }
  const auto n_fp8 = static_cast<std::int64_t>(fp8.size());
  if (!fp8.empty()) {
    for (std::size_t i = 0; i < fp8.size(); ++i) {
      const std::string name = fp8_history_name(i);
      const std::vector<std::int64_t> shape = r.shape(name);
      if (shape.size() != 1 || static_cast<std::size_t>(shape[0]) > fp8[i].history_capacity()) {
        r.fail("tensor '" + name + "' has shape " + shape_string(shape) + " (expected at most " +
               std::to_string(fp8[i].history_capacity()) + " entries: fp8_amax_history)");
      }
      r.check(name, "F32", shape);
      expected.insert(name);
    }
    r.check("fp8.scale", "F32", {n_fp8});
    r.check("fp8.pending_amax", "F32", {n_fp8});
    expected.insert({"fp8.scale", "fp8.pending_amax"});
  }
  double sparsity = 0;
  if (pruner) {
    sparsity = meta_num<double>(r, "pruning.sparsity");
    if (!(sparsity >= 0 && sparsity < 1)) {
      r.fail("__metadata__ 'pruning.sparsity' = " + meta_str(r, "pruning.sparsity") +
             " (expected in [0, 1))");
    }
    for (std::size_t i = 0; sparsity > 0 && i < pruner->tensors().size(); ++i) {
      const ParameterSpec& spec = *pruner->tensors()[i];
      r.check("pruning.mask." + spec.name, "U8", spec.shape, "the pruning masks");
      expected.insert("pruning.mask." + spec.name);
    }
  }
  for (const std::string& name : r.tensor_names()) {
    if (!expected.count(name)) {
      r.fail("holds tensor '" + name +
             "' that this run does not have (expected the same optimizer, momentum, precision "
             "and pruning as the run that saved it)");
    }
  }

  // 3. The scalars.
  StateFileStats stats;
  stats.step = meta_num<long>(r, "step");
  stats.steps_run = meta_num<long>(r, "steps_run");
  if (stats.step < 0 || stats.steps_run < stats.step) {
    r.fail("__metadata__ step = " + std::to_string(stats.step) + ", steps_run = " +
           std::to_string(stats.steps_run) + " (expected 0 <= step <= steps_run)");
  }
  LossScaler::State ls;
  ls.scale = meta_num<double>(r, "loss_scaling.scale");
  ls.good_steps = meta_num<int>(r, "loss_scaling.good_steps");
  ls.skipped = meta_num<long>(r, "loss_scaling.skipped_steps");
  ls.growths = meta_num<long>(r, "loss_scaling.growths");
  if (!(ls.scale > 0) || !std::isfinite(ls.scale) || ls.good_steps < 0 || ls.skipped < 0 ||
      ls.growths < 0) {
    r.fail("__metadata__ loss_scaling.scale = " + meta_str(r, "loss_scaling.scale") +
           " (expected a finite value > 0, and non-negative counts)");
  }
  Meta position;
  for (const auto& [k, v] : r.metadata()) {
    if (k.rfind("data.", 0) == 0) position[k.substr(5)] = v;
  }
  std::vector<std::vector<float>> histories(fp8.size());
  std::vector<float> scales(fp8.size()), pending(fp8.size());
  if (!fp8.empty()) {
    r.read("fp8.scale", "F32", {n_fp8}, scales.data());
    r.read("fp8.pending_amax", "F32", {n_fp8}, pending.data());
    for (std::size_t i = 0; i < fp8.size(); ++i) {
      if (!(scales[i] > 0) || !std::isfinite(scales[i])) {
        r.fail("tensor 'fp8.scale' holds " + to_decimal(scales[i]) + " at " + std::to_string(i) +
               " (expected finite values > 0)");
      }
      const std::string name = fp8_history_name(i);
      const std::vector<std::int64_t> shape = r.shape(name);
      histories[i].resize(static_cast<std::size_t>(shape[0]));
      r.read(name, "F32", shape, histories[i].data());
    }
  }
  std::vector<std::vector<std::uint8_t>> masks(pruner ? pruner->tensors().size() : 0);
  for (std::size_t i = 0; sparsity > 0 && i < masks.size(); ++i) {
    const ParameterSpec& spec = *pruner->tensors()[i];
    masks[i].resize(static_cast<std::size_t>(spec.numel()));
    r.read("pruning.mask." + spec.name, "U8", spec.shape, masks[i].data());
    for (std::uint8_t v : masks[i]) {
      if (v > 1) {
        r.fail("tensor 'pruning.mask." + spec.name + "' holds " + std::to_string(v) +
               " (expected 0 or 1)");
      }
    }
  }

  // 4. Restore. The data position first: it checks its strings before changing anything.
  try {
    trainer.data().restore_train_position(position);
  } catch (const std::invalid_argument& e) {
    r.fail(e.what());
  }
  std::vector<unsigned char> buf;
  const auto restore = [&](const std::string& name, const Tensor& dst) {
    buf.resize(dst.bytes());
    r.read(name, dt, dst.shape, buf.data());
    be.copy_from_host(dst, buf.data());
  };
  for (const auto& spec : model.layout().tensors)
    restore(spec.name, model.params().slice(spec.offset, spec.shape));
  for (const auto& [name, t] : opt_tensors) restore(name, t);
  opt.restore_steps_taken(stats.step);
  scaler.restore(ls);
  for (std::size_t i = 0; i < fp8.size(); ++i)
    fp8[i].restore(std::move(histories[i]), scales[i], pending[i]);
  if (pruner) pruner->restore(sparsity, std::move(masks));
  be.synchronize();
  stats.bytes = r.file_bytes();
  stats.seconds = seconds_since(t0);
  return stats;
}

}  // namespace tb
