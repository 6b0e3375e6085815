#include "safetensors_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>

#include "tb/tensor.h"

namespace tb {

namespace {

using nlohmann::json;
constexpr std::uint64_t kMaxHeaderBytes = 100u << 20;  // the reference implementation's cap

std::uint64_t numel(const std::vector<std::int64_t>& shape) {
  std::uint64_t n = 1;
  for (auto d : shape) n *= static_cast<std::uint64_t>(d);
  return n;
}

// Writes all of [p, p+n) to fd; false (errno set) on failure.
bool write_all(int fd, const void* p, std::size_t n) {
  const auto* c = static_cast<const unsigned char*>(p);
  while (n > 0) {
    const ssize_t w = ::write(fd, c, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    c += w;
    n -= static_cast<std::size_t>(w);
  }
  return true;
}

}  // namespace

std::size_t safetensors_dtype_size(const std::string& dtype) {
  if (dtype == "F64" || dtype == "I64" || dtype == "U64") return 8;
  if (dtype == "F32" || dtype == "I32" || dtype == "U32") return 4;
  if (dtype == "F16" || dtype == "BF16" || dtype == "I16" || dtype == "U16") return 2;
  if (dtype == "U8" || dtype == "I8" || dtype == "BOOL") return 1;
  return 0;
}

// ---- writer ----

void SafetensorsWriter::add(std::string name, std::string dtype, std::vector<std::int64_t> shape,
                            std::function<void(void* dst)> fill) {
  const std::size_t esize = safetensors_dtype_size(dtype);
  if (esize == 0) throw std::invalid_argument("safetensors dtype '" + dtype + "' is not known");
  const std::uint64_t bytes = numel(shape) * esize;
  entries_.push_back({std::move(name), std::move(dtype), std::move(shape), std::move(fill), bytes});
}

std::uint64_t SafetensorsWriter::write(const std::string& path, const std::string& what) const {
  json header;
  header["__metadata__"] = metadata_;
  std::uint64_t offset = 0;
  std::uint64_t largest = 0;
  for (const Entry& e : entries_) {
    header[e.name] = {
        {"dtype", e.dtype}, {"shape", e.shape}, {"data_offsets", {offset, offset + e.bytes}}};
    offset += e.bytes;
    largest = std::max(largest, e.bytes);
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // align the data to 8 bytes, as the format allows
  unsigned char len_bytes[8];
  const std::uint64_t n = text.size();
  for (int i = 0; i < 8; ++i) len_bytes[i] = static_cast<unsigned char>(n >> (8 * i));

  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    throw std::runtime_error("cannot write " + what + " '" + path + "': " + std::strerror(errno));
  }
  const auto failed = [&](const char* step) {
    const std::string reason = std::strerror(errno);
    ::close(fd);
    ::unlink(tmp.c_str());
    throw std::runtime_error("cannot write " + what + " '" + path + "' (" + step + "): " + reason);
  };
  if (!write_all(fd, len_bytes, 8) || !write_all(fd, text.data(), text.size())) failed("write");
  std::vector<unsigned char> buf(static_cast<std::size_t>(largest));
  for (const Entry& e : entries_) {
    if (e.bytes == 0) continue;
    try {
      e.fill(buf.data());
    } catch (...) {
      ::close(fd);
      ::unlink(tmp.c_str());
      throw;
    }
    if (!write_all(fd, buf.data(), static_cast<std::size_t>(e.bytes))) failed("write");
  }
  if (::fsync(fd) != 0) failed("fsync");
  if (::close(fd) != 0) {
    const std::string reason = std::strerror(errno);
    ::unlink(tmp.c_str());
    throw std::runtime_error("cannot write " + what + " '" + path + "' (close): " + reason);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string reason = std::strerror(errno);
    ::unlink(tmp.c_str());
    throw std::runtime_error("cannot write " + what + " '" + path + "' (rename): " + reason);
  }
  return 8 + n + offset;
}

// ---- reader ----

void SafetensorsReader::fail(const std::string& message) const {
  throw std::runtime_error(what_ + " '" + path_ + "': " + message);
}

SafetensorsReader::SafetensorsReader(std::string path, std::string what)
    : path_(std::move(path)), what_(std::move(what)), in_(path_, std::ios::binary) {
  if (!in_)
    throw std::runtime_error("cannot open " + what_ + " '" + path_ + "': " + std::strerror(errno));
  in_.seekg(0, std::ios::end);
  const auto end = in_.tellg();
  if (end < 0) fail("cannot be read (is it a directory?)");
  file_bytes_ = static_cast<std::uint64_t>(end);
  in_.seekg(0);
  if (file_bytes_ < 8) {
    fail("is " + std::to_string(file_bytes_) + " bytes (expected an 8-byte header length)");
  }
  unsigned char len_bytes[8];
  in_.read(reinterpret_cast<char*>(len_bytes), 8);
  if (!in_) fail(std::string("cannot be read (") + std::strerror(errno) + ")");
  std::uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | len_bytes[i];
  if (n > kMaxHeaderBytes || n > file_bytes_ - 8) {
    fail("header length " + std::to_string(n) + " (expected at most " +
         std::to_string(std::min<std::uint64_t>(file_bytes_ - 8, kMaxHeaderBytes)) +
         "; is it a safetensors file?)");
  }
  std::string text(n, '\0');
  in_.read(text.data(), static_cast<std::streamsize>(n));
  if (!in_) fail(std::string("header cannot be read (") + std::strerror(errno) + ")");
  try {
    header_ = json::parse(text);
  } catch (const json::exception&) {
    fail("header is not valid JSON (expected a safetensors file)");
  }
  if (!header_.is_object()) fail("header is not a JSON object (expected a safetensors file)");
  data_begin_ = 8 + n;
  data_bytes_ = file_bytes_ - data_begin_;
  if (header_.contains("__metadata__")) {
    const json& m = header_["__metadata__"];
    if (!m.is_object()) fail("__metadata__ is not an object of strings");
    for (const auto& [k, v] : m.items()) {
      if (!v.is_string()) fail("__metadata__ '" + k + "' is not a string");
      metadata_[k] = v.get<std::string>();
    }
  }
}

bool SafetensorsReader::has(const std::string& name) const {
  return name != "__metadata__" && header_.contains(name);
}

std::vector<std::string> SafetensorsReader::tensor_names() const {
  std::vector<std::string> out;
  for (const auto& [k, v] : header_.items()) {
    if (k != "__metadata__") out.push_back(k);
  }
  std::sort(out.begin(), out.end());
  return out;
}

const json& SafetensorsReader::entry(const std::string& name) const {
  if (!has(name)) fail("lacks tensor '" + name + "'");
  const json& e = header_[name];
  if (!e.is_object() || !e.contains("dtype") || !e.contains("shape") ||
      !e.contains("data_offsets")) {
    fail("tensor '" + name + "' lacks dtype, shape or data_offsets");
  }
  return e;
}

std::string SafetensorsReader::dtype(const std::string& name) const {
  const json& e = entry(name);
  if (!e["dtype"].is_string()) fail("tensor '" + name + "' dtype is not a string");
  return e["dtype"].get<std::string>();
}

std::vector<std::int64_t> SafetensorsReader::shape(const std::string& name) const {
  const json& e = entry(name);
  std::vector<std::int64_t> s;
  try {
    s = e["shape"].get<std::vector<std::int64_t>>();
  } catch (const json::exception&) {
    fail("tensor '" + name + "' shape is not a list of integers");
  }
  if (std::any_of(s.begin(), s.end(), [](std::int64_t d) { return d < 0; })) {
    fail("tensor '" + name + "' shape " + shape_string(s) + " has a negative dimension");
  }
  return s;
}

std::pair<std::uint64_t, std::uint64_t> SafetensorsReader::offsets(const std::string& name) const {
  const json& e = entry(name);
  try {
    const auto off = e["data_offsets"].get<std::vector<std::uint64_t>>();
    if (off.size() == 2) return {off[0], off[1]};
  } catch (const std::exception&) {
  }
  fail("tensor '" + name + "' data_offsets is not [begin, end]");
}

void SafetensorsReader::check(const std::string& name, const std::string& dt,
                              const std::vector<std::int64_t>& want,
                              const std::string& purpose) const {
  if (!has(name)) {
    fail("lacks tensor '" + name + "'" + (purpose.empty() ? "" : " (expected " + purpose + ")"));
  }
  const std::string got_dt = dtype(name);
  if (got_dt != dt) fail("tensor '" + name + "' has dtype '" + got_dt + "' (expected " + dt + ")");
  const std::vector<std::int64_t> got = shape(name);
  if (got != want) {
    fail("tensor '" + name + "' has shape " + shape_string(got) + " (expected " +
         shape_string(want) + ")");
  }
  const auto [b, e] = offsets(name);
  const std::uint64_t bytes = numel(want) * safetensors_dtype_size(dt);
  if (e < b || e - b != bytes || e > data_bytes_) {
    fail("tensor '" + name + "' data_offsets [" + std::to_string(b) + ", " + std::to_string(e) +
         ") (expected " + std::to_string(bytes) + " bytes within the " +
         std::to_string(data_bytes_) + "-byte data section)");
  }
}

void SafetensorsReader::read(const std::string& name, const std::string& dt,
                             const std::vector<std::int64_t>& want, void* dst) {
  check(name, dt, want);
  const auto [b, e] = offsets(name);
  if (e == b) return;
  in_.clear();
  in_.seekg(static_cast<std::streamoff>(data_begin_ + b));
  in_.read(static_cast<char*>(dst), static_cast<std::streamsize>(e - b));
  if (!in_) fail("tensor '" + name + "' could not be read");
}

}  // namespace tb
