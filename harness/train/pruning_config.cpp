#include "pruning_config.h"

#include <algorithm>
#include <cmath>
#include <sstream>
#include <stdexcept>

namespace tb {

namespace {

constexpr int kMaxGroup = 65536;

std::string num(double x) {
  std::ostringstream s;
  s.precision(12);
  s << x;
  return s.str();
}

bool parse_positive(const std::string& s, int& out) {
  if (s.empty() || s.size() > 9) return false;
  for (char ch : s) {
    if (ch < '0' || ch > '9') return false;
  }
  out = std::stoi(s);
  return true;
}

}  // namespace

double PruningConfig::target() const {
  return pattern == PrunePattern::n_of_m ? 1.0 - double(n) / double(m) : sparsity;
}

std::string PruningConfig::pattern_name() const {
  return pattern == PrunePattern::n_of_m ? std::to_string(n) + ":" + std::to_string(m)
                                         : "unstructured";
}

std::string PruningConfig::schedule_name() const {
  return schedule == PruneSchedule::gradual ? "gradual" : "oneshot";
}

void parse_prune_pattern(const std::string& text, PruningConfig& c) {
  if (text == "unstructured") {
    c.pattern = PrunePattern::unstructured;
    return;
  }
  const auto colon = text.find(':');
  int n = 0, m = 0;
  const bool ok = colon != std::string::npos && parse_positive(text.substr(0, colon), n) &&
                  parse_positive(text.substr(colon + 1), m);
  if (!ok || n < 1 || n >= m || m > kMaxGroup) {
    throw std::invalid_argument("prune pattern \"" + text +
                                "\" (expected \"unstructured\" or \"N:M\" with 1 <= N < M <= " +
                                std::to_string(kMaxGroup) + ", e.g. \"2:4\")");
  }
  c.pattern = PrunePattern::n_of_m;
  c.n = n;
  c.m = m;
}

void validate(const PruningConfig& c) {
  auto fail = [](const std::string& what) { throw std::invalid_argument(what); };
  if (!(c.sparsity >= 0) || !(c.sparsity < 1)) {
    fail("prune sparsity = " + num(c.sparsity) + " (expected a number from 0 to below 1)");
  }
  if (c.pattern == PrunePattern::n_of_m) {
    if (c.n < 1 || c.n >= c.m || c.m > kMaxGroup) {
      fail("prune pattern " + std::to_string(c.n) + ":" + std::to_string(c.m) +
           " (expected N:M with 1 <= N < M <= " + std::to_string(kMaxGroup) + ")");
    }
    if (c.sparsity != 0 && std::abs(c.sparsity - c.target()) > 1e-9) {
      fail("prune sparsity = " + num(c.sparsity) + " with pattern " + c.pattern_name() +
           " (expected 0 or " + num(c.target()) + " = 1 - N/M: N:M fixes the sparsity)");
    }
  }
  if (c.begin_step < 0) {
    fail("prune begin_step = " + std::to_string(c.begin_step) + " (expected >= 0)");
  }
  if (c.schedule == PruneSchedule::gradual) {
    if (c.end_step <= c.begin_step) {
      fail("prune end_step = " + std::to_string(c.end_step) + " with schedule gradual (expected " +
           "a step > begin_step = " + std::to_string(c.begin_step) + ")");
    }
    if (c.frequency < 1) {
      fail("prune frequency = " + std::to_string(c.frequency) + " (expected >= 1)");
    }
  }
}

double scheduled_sparsity(const PruningConfig& c, long step) {
  const double sf = c.target();
  if (step < c.begin_step || !(sf > 0)) return 0.0;
  if (c.schedule == PruneSchedule::oneshot || step >= c.end_step) return sf;
  // Zhu & Gupta 2017, Eq. 1 with s_i = 0, at the last update step t = t0 + k·Δt ≤ step.
  const long t = c.begin_step + (step - c.begin_step) / c.frequency * c.frequency;
  const double p = double(t - c.begin_step) / double(c.end_step - c.begin_step);
  const double r = 1.0 - p;
  return sf + (0.0 - sf) * r * r * r;
}

std::int64_t prune_count(double s, std::int64_t count) {
  if (!(s > 0) || count <= 0) return 0;
  const auto k = static_cast<std::int64_t>(std::floor(s * double(count) * (1.0 + 1e-12)));
  return std::clamp<std::int64_t>(k, 0, count);
}

}  // namespace tb
