#include "pruning.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <sstream>
#include <stdexcept>

namespace tb {

namespace {

// The magnitude a selection sorts by; NaN counts as the largest (never preferred for pruning).
double magnitude(double x) {
  return std::isnan(x) ? std::numeric_limits<double>::infinity() : std::abs(x);
}

}  // namespace

bool prunable(const ParameterSpec& spec) {
  const std::string& n = spec.name;
  const std::string suffix = ".weight";
  return spec.weight_decay && n.rfind("blocks.", 0) == 0 && n.size() > suffix.size() &&
         n.compare(n.size() - suffix.size(), suffix.size(), suffix) == 0 &&
         n.find("router") == std::string::npos && spec.shape.size() >= 2;
}

namespace {
// The order weights are pruned in, a strict total order: previously pruned first, then |w|
// ascending, then index.
auto prune_order(const double* w, const std::uint8_t* prev) {
  return [w, prev](std::int64_t a, std::int64_t b) {
    const bool pa = prev && !prev[a], pb = prev && !prev[b];
    if (pa != pb) return pa;
    const double ma = magnitude(w[a]), mb = magnitude(w[b]);
    if (ma != mb) return ma < mb;
    return a < b;
  };
}
}  // namespace

std::vector<std::uint8_t> unstructured_mask(const double* w, std::int64_t n, std::int64_t k,
                                            const std::uint8_t* prev) {
  std::vector<std::uint8_t> keep(static_cast<std::size_t>(n), 1);
  k = std::clamp<std::int64_t>(k, 0, n);
  if (k == 0) return keep;
  std::vector<std::int64_t> idx(static_cast<std::size_t>(n));
  std::iota(idx.begin(), idx.end(), std::int64_t{0});
  const auto before = prune_order(w, prev);
  std::nth_element(idx.begin(), idx.begin() + (k - 1), idx.end(), before);
  for (std::int64_t i = 0; i < k; ++i)
    keep[static_cast<std::size_t>(idx[static_cast<std::size_t>(i)])] = 0;
  return keep;
}

std::vector<std::uint8_t> nm_mask(const double* w, std::int64_t n, int keep_n, int group_m,
                                  std::int64_t groups_to_prune, const std::uint8_t* prev) {
  if (keep_n < 1 || keep_n >= group_m || n % group_m != 0) {
    throw std::invalid_argument("nm_mask: " + std::to_string(n) + " values in groups of " +
                                std::to_string(group_m) + " keeping " + std::to_string(keep_n) +
                                " (expected 1 <= N < M and M dividing the count)");
  }
  std::vector<std::uint8_t> keep(static_cast<std::size_t>(n), 1);
  const std::int64_t groups = n / group_m;
  groups_to_prune = std::clamp<std::int64_t>(groups_to_prune, 0, groups);
  if (groups_to_prune == 0) return keep;
  const int drop = group_m - keep_n;
  // Per group: the `drop` elements it would lose (same order as unstructured), their Σ|w|,
  // and whether it was pruned before.
  std::vector<std::int64_t> victims(static_cast<std::size_t>(groups * drop));
  std::vector<double> cost(static_cast<std::size_t>(groups));
  std::vector<std::uint8_t> was_pruned(static_cast<std::size_t>(groups), 0);
  std::vector<std::int64_t> local(static_cast<std::size_t>(group_m));
  for (std::int64_t g = 0; g < groups; ++g) {
    const std::int64_t base = g * group_m;
    std::iota(local.begin(), local.end(), base);
    const auto before = prune_order(w, prev);
    std::partial_sort(local.begin(), local.begin() + drop, local.end(), before);
    double c = 0;
    int pruned_before = 0;
    for (int j = 0; j < drop; ++j) {
      const std::int64_t e = local[static_cast<std::size_t>(j)];
      victims[static_cast<std::size_t>(g * drop + j)] = e;
      c += magnitude(w[e]);
      if (prev && !prev[e]) ++pruned_before;
    }
    cost[static_cast<std::size_t>(g)] = c;
    was_pruned[static_cast<std::size_t>(g)] = pruned_before == drop ? 1 : 0;
  }
  std::vector<std::int64_t> order(static_cast<std::size_t>(groups));
  std::iota(order.begin(), order.end(), std::int64_t{0});
  auto group_before = [&](std::int64_t a, std::int64_t b) {
    const auto ua = static_cast<std::size_t>(a), ub = static_cast<std::size_t>(b);
    if (was_pruned[ua] != was_pruned[ub]) return was_pruned[ua] > was_pruned[ub];
    if (cost[ua] != cost[ub]) return cost[ua] < cost[ub];
    return a < b;
  };
  std::nth_element(order.begin(), order.begin() + (groups_to_prune - 1), order.end(), group_before);
  for (std::int64_t i = 0; i < groups_to_prune; ++i) {
    const std::int64_t g = order[static_cast<std::size_t>(i)];
    for (int j = 0; j < drop; ++j) {
      keep[static_cast<std::size_t>(victims[static_cast<std::size_t>(g * drop + j)])] = 0;
    }
  }
  return keep;
}

std::int64_t nm_violations(const double* w, std::int64_t n, int keep_n, int group_m) {
  std::int64_t bad = 0;
  for (std::int64_t base = 0; base + group_m <= n; base += group_m) {
    int zeros = 0;
    for (int j = 0; j < group_m; ++j) zeros += w[base + j] == 0.0 ? 1 : 0;
    if (zeros < group_m - keep_n) ++bad;
  }
  return bad;
}

Pruner::Pruner(GptModel& model, PruningConfig config) : model_(model), config_(config) {
  validate(config_);
  const DType dt = model.dtype();
  if (dt != DType::f32 && dt != DType::f64) {
    throw std::invalid_argument("pruning a model of dtype " + std::string(dtype_name(dt)) +
                                " (expected f32 or f64 parameters)");
  }
  std::int64_t total = 0;
  for (const auto& spec : model.layout().tensors) {
    if (!prunable(spec)) continue;
    if (config_.pattern == PrunePattern::n_of_m && spec.shape.back() % config_.m != 0) {
      throw std::invalid_argument("prune pattern " + config_.pattern_name() + ": " + spec.name +
                                  " has input dimension " + std::to_string(spec.shape.back()) +
                                  " (expected a multiple of M = " + std::to_string(config_.m) +
                                  ": groups run along the last dimension)");
    }
    specs_.push_back(&spec);
    total += spec.numel();
  }
  Backend& be = model.backend();
  storage_ =
      be.allocate(static_cast<std::size_t>(std::max<std::int64_t>(total, 1)) * dtype_size(dt),
                  MemoryCategory::optimizer_state, "pruning masks");
  std::int64_t off = 0;
  for (const ParameterSpec* spec : specs_) {
    masks_.push_back(Tensor(storage_.data(), dt, {total}).slice(off, spec->shape));
    off += spec->numel();
  }
  keep_.resize(specs_.size());
}

std::vector<double> Pruner::host_values(const Tensor& t) const {
  Backend& be = model_.backend();
  const auto n = static_cast<std::size_t>(t.numel());
  std::vector<double> out(n);
  if (t.dtype == DType::f64) {
    be.copy_to_host(out.data(), t);
  } else {
    std::vector<float> f(n);
    be.copy_to_host(f.data(), t);
    std::copy(f.begin(), f.end(), out.begin());
  }
  return out;
}

void Pruner::recompute(double sparsity) {
  const double target = config_.target();
  for (std::size_t i = 0; i < specs_.size(); ++i) {
    const ParameterSpec& spec = *specs_[i];
    const std::vector<double> w = host_values(model_.params().slice(spec.offset, spec.shape));
    const std::uint8_t* prev = keep_[i].empty() ? nullptr : keep_[i].data();
    const std::int64_t n = spec.numel();
    if (config_.pattern == PrunePattern::n_of_m) {
      const std::int64_t groups = n / config_.m;
      // The fraction s/(1 − N/M) of the groups; all of them at the target.
      const std::int64_t g = sparsity >= target ? groups : prune_count(sparsity / target, groups);
      keep_[i] = nm_mask(w.data(), n, config_.n, config_.m, g, prev);
    } else {
      keep_[i] = unstructured_mask(w.data(), n, prune_count(sparsity, n), prev);
    }
    upload_mask(i);
  }
  current_ = sparsity;
  active_ = true;
}

void Pruner::upload_mask(std::size_t i) {
  Backend& be = model_.backend();
  if (masks_[i].dtype == DType::f64) {
    const std::vector<double> m(keep_[i].begin(), keep_[i].end());
    be.copy_from_host(masks_[i], m.data());
  } else {
    const std::vector<float> m(keep_[i].begin(), keep_[i].end());
    be.copy_from_host(masks_[i], m.data());
  }
}

bool Pruner::begin_step(long step) {
  const double s = scheduled_sparsity(config_, step);
  if (!(s > current_)) return false;
  recompute(s);
  mask_weights();
  return true;
}

void Pruner::mask_gradients() { apply_masks(model_.grads()); }

void Pruner::mask_weights() { apply_masks(model_.params()); }

void Pruner::apply_masks(const Tensor& flat) {
  if (!active_) return;
  Backend& be = model_.backend();
  for (std::size_t i = 0; i < specs_.size(); ++i) {
    const Tensor t = flat.slice(specs_[i]->offset, specs_[i]->shape);
    be.mul(t, t, masks_[i]);
  }
}

void Pruner::restore(double current_sparsity, std::vector<std::vector<std::uint8_t>> keep) {
  if (keep.size() != specs_.size()) {
    throw std::invalid_argument("pruning masks for " + std::to_string(keep.size()) +
                                " tensors (expected " + std::to_string(specs_.size()) + ")");
  }
  const bool active = current_sparsity > 0;
  for (std::size_t i = 0; i < specs_.size(); ++i) {
    const auto n = static_cast<std::size_t>(specs_[i]->numel());
    if (keep[i].size() != (active ? n : 0)) {
      throw std::invalid_argument("pruning mask of " + specs_[i]->name + " holds " +
                                  std::to_string(keep[i].size()) + " values (expected " +
                                  std::to_string(active ? n : 0) + ")");
    }
  }
  keep_ = std::move(keep);
  for (std::size_t i = 0; active && i < specs_.size(); ++i) upload_mask(i);
  current_ = current_sparsity;
  active_ = active;
}

std::vector<TensorSparsity> Pruner::measure() const {
  std::vector<TensorSparsity> out;
  for (const ParameterSpec* spec : specs_) {
    const std::vector<double> w = host_values(model_.params().slice(spec->offset, spec->shape));
    TensorSparsity t;
    t.name = spec->name;
    t.elements = spec->numel();
    for (double x : w) t.zeros += x == 0.0 ? 1 : 0;
    if (config_.pattern == PrunePattern::n_of_m) {
      t.nm_violations = nm_violations(w.data(), t.elements, config_.n, config_.m);
    }
    out.push_back(std::move(t));
  }
  return out;
}

}  // namespace tb
