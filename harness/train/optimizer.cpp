#include "optimizer.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace tb {

const std::vector<std::string>& optimizer_names() {
  static const std::vector<std::string> names = {"adamw", "lamb", "sgd"};
  return names;
}

Optimizer::Optimizer(GptModel& model, OptimizerConfig config, OptimizerPartition partition)
    : model_(model),
      config_(std::move(config)),
      partition_(std::move(partition)),
      begin_(partition_.begin),
      end_(partition_.end < 0 ? model.layout().total
                              : std::min(partition_.end, model.layout().total)) {
  if (begin_ < 0 || begin_ > end_) {
    throw std::invalid_argument("optimizer partition [" + std::to_string(partition_.begin) + ", " +
                                std::to_string(partition_.end) + ") (expected within [0, " +
                                std::to_string(model.layout().total) + "])");
  }
}

std::vector<Optimizer::Part> Optimizer::parts() const {
  std::vector<Part> out;
  for (const auto& spec : model_.layout().tensors) {
    const std::int64_t lo = std::max(begin_, spec.offset);
    const std::int64_t hi = std::min(end_, spec.offset + spec.numel());
    if (lo >= hi) continue;
    const bool whole = lo == spec.offset && hi == spec.offset + spec.numel();
    const std::vector<std::int64_t> shape = whole ? spec.shape : std::vector<std::int64_t>{hi - lo};
    out.push_back({&spec, model_.params().slice(lo, shape), model_.grads().slice(lo, shape),
                   lo - begin_, whole});
  }
  return out;
}

Tensor Optimizer::state_like_params(Buffer& storage, std::string_view label) {
  Backend& be = model_.backend();
  const std::int64_t n = std::max<std::int64_t>(end_ - begin_, 1);
  storage = be.allocate(static_cast<std::size_t>(n) * dtype_size(model_.dtype()),
                        MemoryCategory::optimizer_state, label);
  Tensor t(storage.data(), model_.dtype(), {n});
  be.fill_zero(t);
  return t;
}

OptimizerStepStats Optimizer::step(double lr, double loss_scale, bool skip_if_nonfinite) {
  if (!(loss_scale > 0) || !std::isfinite(loss_scale)) {
    throw std::invalid_argument("loss scale = " + std::to_string(loss_scale) +
                                " (expected a finite value > 0)");
  }
  Backend& be = model_.backend();
  OptimizerStepStats s;
  const double sum_sq =
      partition_.grad_sum_squares ? partition_.grad_sum_squares() : be.sum_squares(model_.grads());
  s.grad_norm = std::sqrt(sum_sq) / loss_scale;
  if (skip_if_nonfinite && !std::isfinite(s.grad_norm)) {
    s.skipped = true;
    return s;
  }
  // Global-norm clipping (Pascanu et al. 2013): g ← g · min(1, clip/‖g‖).
  if (config_.grad_clip > 0 && s.grad_norm > config_.grad_clip) {
    s.clip_scale = config_.grad_clip / s.grad_norm;
  }
  ++t_;
  update(lr, s.clip_scale / loss_scale);
  return s;
}

// ---- AdamW ----

AdamW::AdamW(GptModel& model, OptimizerConfig config, OptimizerPartition partition)
    : Optimizer(model, std::move(config), std::move(partition)) {
  m_ = state_like_params(m_buf_, "adamw m");
  v_ = state_like_params(v_buf_, "adamw v");
}

void AdamW::update(double lr, double grad_scale) {
  Backend& be = model_.backend();
  AdamWParams hp;
  hp.lr = lr;
  hp.beta1 = config_.beta1;
  hp.beta2 = config_.beta2;
  hp.eps = config_.eps;
  hp.step = t_;
  hp.grad_scale = grad_scale;
  for (const Part& part : parts()) {
    hp.weight_decay = part.spec->weight_decay ? config_.weight_decay : 0.0;
    be.adamw_update(part.params, part.grads, part.state(m_), part.state(v_), hp);
  }
}

// ---- LAMB ----

double lamb_trust_ratio(double param_norm, double update_norm) {
  // You et al. 2019 (Alg. 2) with φ(z) = z; the reference implementations (NVIDIA apex,
  // TensorFlow Addons) fall back to 1 when either norm is zero.
  if (!(param_norm > 0) || !(update_norm > 0)) return 1.0;
  return param_norm / update_norm;
}

Lamb::Lamb(GptModel& model, OptimizerConfig config, OptimizerPartition partition)
    : Optimizer(model, std::move(config), std::move(partition)) {
  if (!partition_.whole_tensors) {
    throw std::invalid_argument(
        "optimizer lamb with parameter tensors split over ranks (tp > 1 or zero = 1; expected "
        "adamw or sgd: LAMB's per-tensor trust ratio needs whole tensors)");
  }
  m_ = state_like_params(m_buf_, "lamb m");
  v_ = state_like_params(v_buf_, "lamb v");
  std::int64_t largest = 0;
  for (const auto& spec : model_.layout().tensors) largest = std::max(largest, spec.numel());
  const std::size_t bytes = static_cast<std::size_t>(largest) * dtype_size(model_.dtype());
  r_buf_ = model_.backend().allocate(bytes, MemoryCategory::workspace, "lamb update direction");
  r_ = Tensor(r_buf_.data(), model_.dtype(), {largest});
  trust_.assign(model_.layout().tensors.size(), 1.0);
}

void Lamb::update(double lr, double grad_scale) {
  Backend& be = model_.backend();
  LambParams hp;
  hp.beta1 = config_.beta1;
  hp.beta2 = config_.beta2;
  hp.eps = config_.eps;
  hp.step = t_;
  hp.grad_scale = grad_scale;
  const std::vector<Part> ps = parts();
  for (std::size_t i = 0; i < ps.size(); ++i) {
    const Part& part = ps[i];
    hp.weight_decay = part.spec->weight_decay ? config_.weight_decay : 0.0;
    const Tensor r = r_.slice(0, part.params.shape);
    const LambNorms n =
        be.lamb_direction(r, part.params, part.grads, part.state(m_), part.state(v_), hp);
    trust_[i] = lamb_trust_ratio(std::sqrt(n.param_sq), std::sqrt(n.update_sq));
    be.axpy(part.params, -lr * trust_[i], r);
  }
}

// ---- SGD ----

Sgd::Sgd(GptModel& model, OptimizerConfig config, OptimizerPartition partition)
    : Optimizer(model, std::move(config), std::move(partition)) {
  if (config_.momentum != 0) buf_ = state_like_params(buf_storage_, "sgd momentum");
}

void Sgd::update(double lr, double grad_scale) {
  Backend& be = model_.backend();
  SgdParams hp;
  hp.lr = lr;
  hp.momentum = config_.momentum;
  hp.grad_scale = grad_scale;
  for (const Part& part : parts()) {
    hp.weight_decay = part.spec->weight_decay ? config_.weight_decay : 0.0;
    be.sgd_update(part.params, part.grads, buf_.empty() ? Tensor{} : part.state(buf_), hp);
  }
}

// ---- factory ----

std::unique_ptr<Optimizer> make_optimizer(GptModel& model, const OptimizerConfig& config,
                                          const OptimizerPartition& partition) {
  if (config.name == "adamw") return std::make_unique<AdamW>(model, config, partition);
  if (config.name == "lamb") return std::make_unique<Lamb>(model, config, partition);
  if (config.name == "sgd") return std::make_unique<Sgd>(model, config, partition);
  std::string known;
  for (const auto& n : optimizer_names()) known += (known.empty() ? "" : ", ") + n;
  throw std::invalid_argument("unknown optimizer '" + config.name + "' (expected one of: " + known +
                              ")");
}

}  // namespace tb
