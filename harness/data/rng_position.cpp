#include "rng_position.h"

#include <stdexcept>

#include "../common/decimal.h"

namespace tb {

namespace {

template <class T>
T parse(const std::map<std::string, std::string>& p, const std::string& key, const char* what) {
  const auto it = p.find(key);
  if (it == p.end()) throw std::invalid_argument("data position lacks '" + key + "'");
  const std::optional<T> v = parse_decimal<T>(it->second);
  if (!v) {
    throw std::invalid_argument("data position '" + key + "' = '" + it->second + "' (expected " +
                                what + ")");
  }
  return *v;
}

constexpr const char* kWords[4] = {"rng.s0", "rng.s1", "rng.s2", "rng.s3"};

}  // namespace

std::map<std::string, std::string> rng_position(const Rng& rng) {
  const Rng::State st = rng.state();
  std::map<std::string, std::string> p;
  for (int i = 0; i < 4; ++i) p.emplace(kWords[i], to_decimal(st.s[i]));
  p.emplace("rng.spare", to_decimal(st.spare));
  p.emplace("rng.has_spare", st.has_spare ? "1" : "0");
  return p;
}

void restore_rng_position(Rng& rng, const std::map<std::string, std::string>& position) {
  Rng::State st;
  for (int i = 0; i < 4; ++i) {
    st.s[i] = parse<std::uint64_t>(position, kWords[i], "an unsigned 64-bit integer");
  }
  st.spare = parse<double>(position, "rng.spare", "a decimal number");
  const int has = parse<int>(position, "rng.has_spare", "0 or 1");
  if (has != 0 && has != 1) {
    throw std::invalid_argument("data position 'rng.has_spare' = '" + std::to_string(has) +
                                "' (expected 0 or 1)");
  }
  st.has_spare = has == 1;
  if (st.s[0] == 0 && st.s[1] == 0 && st.s[2] == 0 && st.s[3] == 0) {
    throw std::invalid_argument(
        "data position rng.s0 … rng.s3 are all 0 (expected a xoshiro256** state, never all "
        "zero)");
  }
  rng.set_state(st);
}

}  // namespace tb
