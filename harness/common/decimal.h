// Numbers as decimal strings that read back exactly: the shortest representation that
// round-trips (std::to_chars), parsed whole by std::from_chars — for the string maps of
// checkpoint metadata.
#pragma once
#include <charconv>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

namespace tb {

template <class T>
std::string to_decimal(T x) {
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, x);
  return std::string(buf, r.ptr);
}

// The whole of s as a T; nullopt when s is empty, malformed, out of range or has trailing text.
template <class T>
std::optional<T> parse_decimal(std::string_view s) {
  T v{};
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

}  // namespace tb
