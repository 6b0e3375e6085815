// Synthetic tokens with a known entropy rate: a seeded sparse first-order Markov chain over
// the vocabulary. Every state has `branching` successors with random probabilities; one of
// them is (s+1) mod V, so the chain is irreducible, and state 0 also loops to itself, so it
// is aperiodic. Each window starts from the stationary distribution π, so every position's
// best prediction has expected loss equal to the entropy rate
//   H = Σ_s π(s) · Σ_j −P(s,j)·ln P(s,j)   (Cover & Thomas 2006, Thm. 4.2.4),
// the floor no model can beat.
#pragma once
#include <cstdint>
#include <vector>

#include "../common/rng.h"
#include "token_source.h"

namespace tb {

class MarkovSource final : public TokenSource {
 public:
  MarkovSource(int vocab, int branching, std::uint64_t seed, std::int64_t eval_windows = 64);

  int vocab() const override { return vocab_; }
  std::optional<double> entropy_floor_nats() const override { return entropy_rate_; }
  void next_train_batch(int B, int T, std::int32_t* out) override;
  std::int64_t eval_windows(int) const override { return eval_windows_; }
  void eval_window(std::int64_t i, int T, std::int32_t* out) const override;
  std::string describe() const override;
  std::map<std::string, std::string> train_position() const override;
  void restore_train_position(const std::map<std::string, std::string>& position) override;

  const std::vector<double>& stationary() const { return pi_; }
  // Transition probability P(from → to).
  double transition(int from, int to) const;

 private:
  void sample_window(Rng& rng, int T, std::int32_t* out) const;
  int sample_successor(Rng& rng, int s) const;

  int vocab_, branching_;
  std::uint64_t seed_;
  std::int64_t eval_windows_;
  std::vector<std::int32_t> next_;  // vocab × branching successors
  std::vector<double> cdf_;         // vocab × branching cumulative probabilities
  std::vector<double> pi_;
  std::vector<double> pi_cdf_;
  double entropy_rate_ = 0;
  Rng train_rng_;
};

}  // namespace tb
