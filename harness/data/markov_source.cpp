#include "markov_source.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "rng_position.h"

namespace tb {

namespace {
constexpr std::uint64_t kEvalStream = 0x6576616c5f736574ULL;  // "eval_set"
constexpr std::uint64_t kTrainStream = 0x747261696e5f7374ULL;

int pick(const double* cdf, int n, double u) {
  for (int j = 0; j < n - 1; ++j) {
    if (u < cdf[j]) return j;
  }
  return n - 1;
}
}  // namespace

MarkovSource::MarkovSource(int vocab, int branching, std::uint64_t seed, std::int64_t eval_windows)
    : vocab_(vocab),
      branching_(branching),
      seed_(seed),
      eval_windows_(eval_windows),
      train_rng_(seed ^ kTrainStream) {
  if (vocab < 2)
    throw std::invalid_argument("vocab = " + std::to_string(vocab) + " (expected >= 2)");
  if (branching < 1 || branching > vocab) {
    throw std::invalid_argument("branching = " + std::to_string(branching) +
                                " (expected 1 to vocab = " + std::to_string(vocab) + ")");
  }
  if (eval_windows < 1) {
    throw std::invalid_argument("eval_windows = " + std::to_string(eval_windows) +
                                " (expected >= 1)");
  }
  Rng rng(seed);
  const auto V = static_cast<std::size_t>(vocab), K = static_cast<std::size_t>(branching);
  next_.assign(V * K, 0);
  cdf_.assign(V * K, 0.0);
  std::vector<double> p(V * K);
  for (std::size_t s = 0; s < V; ++s) {
    std::vector<std::int32_t> succ{static_cast<std::int32_t>((s + 1) % V)};
    if (s == 0 && K > 1) succ.push_back(0);
    while (succ.size() < K) {
      const auto c = static_cast<std::int32_t>(rng.below(V));
      if (std::find(succ.begin(), succ.end(), c) == succ.end()) succ.push_back(c);
    }
    double total = 0;
    for (std::size_t j = 0; j < K; ++j) {
      p[s * K + j] = 0.05 + rng.uniform();  // bounded away from 0: every edge is learnable
      total += p[s * K + j];
    }
    double acc = 0;
    for (std::size_t j = 0; j < K; ++j) {
      p[s * K + j] /= total;
      acc += p[s * K + j];
      next_[s * K + j] = succ[j];
      cdf_[s * K + j] = acc;
    }
  }
  // Stationary distribution by power iteration (the chain is irreducible and aperiodic).
  pi_.assign(V, 1.0 / double(V));
  std::vector<double> nxt(V);
  for (int it = 0; it < 100000; ++it) {
    std::fill(nxt.begin(), nxt.end(), 0.0);
    for (std::size_t s = 0; s < V; ++s) {
      for (std::size_t j = 0; j < K; ++j) {
        nxt[static_cast<std::size_t>(next_[s * K + j])] += pi_[s] * p[s * K + j];
      }
    }
    double diff = 0;
    for (std::size_t s = 0; s < V; ++s) diff += std::abs(nxt[s] - pi_[s]);
    pi_.swap(nxt);
    if (diff < 1e-15) break;
  }
  pi_cdf_.resize(V);
  double acc = 0;
  for (std::size_t s = 0; s < V; ++s) pi_cdf_[s] = (acc += pi_[s]);
  entropy_rate_ = 0;
  for (std::size_t s = 0; s < V; ++s) {
    double h = 0;
    for (std::size_t j = 0; j < K; ++j) h -= p[s * K + j] * std::log(p[s * K + j]);
    entropy_rate_ += pi_[s] * h;
  }
}

double MarkovSource::transition(int from, int to) const {
  const auto K = static_cast<std::size_t>(branching_);
  const auto base = static_cast<std::size_t>(from) * K;
  for (std::size_t j = 0; j < K; ++j) {
    if (next_[base + j] == to) return cdf_[base + j] - (j ? cdf_[base + j - 1] : 0.0);
  }
  return 0.0;
}

int MarkovSource::sample_successor(Rng& rng, int s) const {
  const auto base = static_cast<std::size_t>(s) * static_cast<std::size_t>(branching_);
  return next_[base + static_cast<std::size_t>(pick(&cdf_[base], branching_, rng.uniform()))];
}

void MarkovSource::sample_window(Rng& rng, int T, std::int32_t* out) const {
  int s = pick(pi_cdf_.data(), vocab_, rng.uniform());
  out[0] = s;
  for (int t = 1; t <= T; ++t) out[t] = s = sample_successor(rng, s);
}

void MarkovSource::next_train_batch(int B, int T, std::int32_t* out) {
  for (int b = 0; b < B; ++b) sample_window(train_rng_, T, out + std::int64_t{b} * (T + 1));
}

void MarkovSource::eval_window(std::int64_t i, int T, std::int32_t* out) const {
  Rng rng((seed_ ^ kEvalStream) + static_cast<std::uint64_t>(i) * 0x9e3779b97f4a7c15ULL);
  sample_window(rng, T, out);
}

std::map<std::string, std::string> MarkovSource::train_position() const {
  return rng_position(train_rng_);
}

void MarkovSource::restore_train_position(const std::map<std::string, std::string>& position) {
  restore_rng_position(train_rng_, position);
}

std::string MarkovSource::describe() const {
  return "markov(vocab=" + std::to_string(vocab_) + ", branching=" + std::to_string(branching_) +
         ", seed=" + std::to_string(seed_) + ")";
}

}  // namespace tb
