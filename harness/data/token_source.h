// Where training and held-out tokens come from. A window is T+1 consecutive tokens: the
// model reads the first T and predicts the last T.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>

namespace tb {

class TokenSource {
 public:
  virtual ~TokenSource() = default;
  virtual int vocab() const = 0;
  // The best achievable mean next-token loss (nats), when it is known exactly.
  virtual std::optional<double> entropy_floor_nats() const { return std::nullopt; }
  // B training windows of T+1 tokens into out (B·(T+1)); deterministic from the seed.
  virtual void next_train_batch(int B, int T, std::int32_t* out) = 0;
  // Held-out windows: how many of T+1 tokens there are, and window i of them.
  virtual std::int64_t eval_windows(int T) const = 0;
  virtual void eval_window(std::int64_t i, int T, std::int32_t* out) const = 0;
  virtual std::string describe() const = 0;
  // The training stream's position, for training-state checkpoints (train/training_state.h):
  // named decimal strings from which restore_train_position continues the same batches.
  // Empty: this source cannot be checkpointed.
  virtual std::map<std::string, std::string> train_position() const { return {}; }
  // Throws std::invalid_argument naming a missing or malformed entry.
  virtual void restore_train_position(const std::map<std::string, std::string>&) {
    throw std::invalid_argument("data " + describe() + " cannot restore a training position");
  }
};

}  // namespace tb
