#include "token_file.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <stdexcept>

#include "rng_position.h"

namespace tb {

TokenFormat parse_token_format(const std::string& s) {
  if (s == "bytes") return TokenFormat::bytes;
  if (s == "u16") return TokenFormat::u16;
  throw std::invalid_argument("data format '" + s + "' (expected bytes or u16)");
}

std::vector<std::int32_t> read_token_file(const std::string& path, TokenFormat format) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw std::runtime_error("cannot open data file '" + path + "': " + std::strerror(errno));
  }
  std::vector<unsigned char> raw;
  try {
    // libstdc++ throws from the stream buffer when read(2) fails (e.g. EISDIR for a directory).
    raw.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  } catch (const std::ios_base::failure&) {
    throw std::runtime_error("cannot read data file '" + path + "': " + std::strerror(errno));
  }
  if (in.bad()) throw std::runtime_error("cannot read data file '" + path + "'");
  if (raw.empty()) throw std::runtime_error("data file '" + path + "' is empty (expected tokens)");
  std::vector<std::int32_t> tokens;
  if (format == TokenFormat::bytes) {
    tokens.assign(raw.begin(), raw.end());
  } else {
    if (raw.size() % 2 != 0) {
      throw std::runtime_error("data file '" + path + "' has " + std::to_string(raw.size()) +
                               " bytes (expected an even count of uint16 tokens)");
    }
    tokens.resize(raw.size() / 2);
    for (std::size_t i = 0; i < tokens.size(); ++i) tokens[i] = raw[2 * i] | (raw[2 * i + 1] << 8);
  }
  return tokens;
}

void check_tokens_below(const std::vector<std::int32_t>& tokens, int vocab,
                        const std::string& path) {
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    if (tokens[i] >= vocab) {
      throw std::invalid_argument("data file '" + path + "' token " + std::to_string(tokens[i]) +
                                  " at position " + std::to_string(i) +
                                  " (expected < vocab = " + std::to_string(vocab) + ")");
    }
  }
}

TokenFileSource::TokenFileSource(const std::string& path, TokenFormat format, int vocab,
                                 std::uint64_t seed, int seq_len)
    : path_(path), vocab_(vocab), tokens_(read_token_file(path, format)), rng_(seed) {
  check_tokens_below(tokens_, vocab, path);
  const auto n = static_cast<std::int64_t>(tokens_.size());
  split_ = n - n / 10;
  const std::int64_t need = seq_len + 1;
  if (split_ < need || n - split_ < need) {
    throw std::invalid_argument("data file '" + path + "' holds " + std::to_string(n) +
                                " tokens (expected at least " + std::to_string(10 * need) +
                                " so that both the 90% training and 10% held-out parts hold a "
                                "window of seq+1 = " +
                                std::to_string(need) + ")");
  }
}

void TokenFileSource::next_train_batch(int B, int T, std::int32_t* out) {
  const std::int64_t starts = split_ - T;  // windows lie wholly in the training part
  for (int b = 0; b < B; ++b) {
    const auto s = static_cast<std::int64_t>(rng_.below(static_cast<std::uint64_t>(starts)));
    std::memcpy(out + std::int64_t{b} * (T + 1), tokens_.data() + s,
                sizeof(std::int32_t) * (T + 1));
  }
}

std::int64_t TokenFileSource::eval_windows(int T) const {
  return (static_cast<std::int64_t>(tokens_.size()) - split_) / (T + 1);
}

void TokenFileSource::eval_window(std::int64_t i, int T, std::int32_t* out) const {
  std::memcpy(out, tokens_.data() + split_ + i * (T + 1), sizeof(std::int32_t) * (T + 1));
}

std::map<std::string, std::string> TokenFileSource::train_position() const {
  return rng_position(rng_);
}

void TokenFileSource::restore_train_position(const std::map<std::string, std::string>& position) {
  restore_rng_position(rng_, position);
}

std::string TokenFileSource::describe() const {
  return "file(" + path_ + ", " + std::to_string(tokens_.size()) + " tokens)";
}

}  // namespace tb
