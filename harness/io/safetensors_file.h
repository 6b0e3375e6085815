// Any named tensors and a __metadata__ string map in the safetensors format (the layout
// safetensors.h describes; docs/weights.md): the writer streams each tensor from a fill
// callback (one tensor in host memory at a time) into a temporary file beside the target,
// fsyncs, closes and renames it over the target, so a crash leaves the old file or the new
// one, never half of one; the reader checks the header against the file and each tensor's
// dtype, shape and offsets before reading it. Errors are one line naming the file (as
// `what`, e.g. "state file") and the tensor or key.
#pragma once
#include <cstdint>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace tb {

// Bytes per element of a safetensors dtype name (F64, F32, F16, BF16, I64, I32, U8, …);
// 0 for a name it does not know.
std::size_t safetensors_dtype_size(const std::string& dtype);

class SafetensorsWriter {
 public:
  // fill(dst) writes the tensor's numel · dtype-size bytes, little-endian, row-major.
  void add(std::string name, std::string dtype, std::vector<std::int64_t> shape,
           std::function<void(void* dst)> fill);
  std::map<std::string, std::string>& metadata() { return metadata_; }
  // Writes the file (see above) and returns its size in bytes. std::runtime_error naming the
  // path on any failure (the temporary file is removed).
  std::uint64_t write(const std::string& path, const std::string& what) const;

 private:
  struct Entry {
    std::string name, dtype;
    std::vector<std::int64_t> shape;
    std::function<void(void*)> fill;
    std::uint64_t bytes;
  };
  std::vector<Entry> entries_;
  std::map<std::string, std::string> metadata_;
};

class SafetensorsReader {
 public:
  // Opens and parses the header; std::runtime_error naming the file when it is missing,
  // unreadable or not safetensors. `what` names the kind of file in messages.
  SafetensorsReader(std::string path, std::string what);

  const std::string& path() const { return path_; }
  std::uint64_t file_bytes() const { return file_bytes_; }
  // The __metadata__ map (empty when absent); a non-string value is an error.
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  bool has(const std::string& name) const;
  // The tensor's dtype and shape as stored; an error when absent or malformed.
  std::string dtype(const std::string& name) const;
  std::vector<std::int64_t> shape(const std::string& name) const;
  // Checks that the tensor is present with this dtype and shape and its bytes lie inside the
  // data section; `purpose` is said after "expected" when it is absent.
  void check(const std::string& name, const std::string& dtype,
             const std::vector<std::int64_t>& shape, const std::string& purpose = "") const;
  // check(), then reads its bytes into dst.
  void read(const std::string& name, const std::string& dtype,
            const std::vector<std::int64_t>& shape, void* dst);
  // Names of the tensors (not __metadata__), sorted.
  std::vector<std::string> tensor_names() const;

  // std::runtime_error("<what> '<path>': <message>").
  [[noreturn]] void fail(const std::string& message) const;

 private:
  const nlohmann::json& entry(const std::string& name) const;
  std::pair<std::uint64_t, std::uint64_t> offsets(const std::string& name) const;

  std::string path_, what_;
  std::ifstream in_;
  nlohmann::json header_;
  std::map<std::string, std::string> metadata_;
  std::uint64_t file_bytes_ = 0, data_begin_ = 0, data_bytes_ = 0;
};

}  // namespace tb
