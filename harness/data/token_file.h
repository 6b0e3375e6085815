// Token files: raw bytes (each byte one token, vocabulary 256) or little-endian uint16
// tokens (e.g. GPT-2 BPE ids). TokenFileSource splits a file into training tokens (the
// first 90%) and held-out tokens (the last 10%), as documented in docs/data.md.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "../common/rng.h"
#include "token_source.h"

namespace tb {

enum class TokenFormat { bytes, u16 };
// "bytes" or "u16"; throws std::invalid_argument otherwise.
TokenFormat parse_token_format(const std::string& s);

// Reads every token. Throws std::runtime_error naming the path when the file is missing,
// unreadable, empty, or (u16) of odd length.
std::vector<std::int32_t> read_token_file(const std::string& path, TokenFormat format);

// Throws std::invalid_argument when a token is ≥ vocab, naming it and its position.
void check_tokens_below(const std::vector<std::int32_t>& tokens, int vocab,
                        const std::string& path);

class TokenFileSource final : public TokenSource {
 public:
  // vocab: 256 for bytes; for u16 the model's vocabulary (every token must be below it).
  TokenFileSource(const std::string& path, TokenFormat format, int vocab, std::uint64_t seed,
                  int seq_len);
  int vocab() const override { return vocab_; }
  void next_train_batch(int B, int T, std::int32_t* out) override;
  std::int64_t eval_windows(int T) const override;
  void eval_window(std::int64_t i, int T, std::int32_t* out) const override;
  std::string describe() const override;
  std::map<std::string, std::string> train_position() const override;
  void restore_train_position(const std::map<std::string, std::string>& position) override;

 private:
  std::string path_;
  int vocab_;
  std::vector<std::int32_t> tokens_;
  std::int64_t split_ = 0;  // first held-out token
  Rng rng_;
};

}  // namespace tb
