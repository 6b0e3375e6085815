// The parameter layout: every tensor's name, shape and offset in one flat buffer (so the
// optimizer, the gradient norm and a future gradient all-reduce each see one contiguous
// range). Names are those of the safetensors files (docs/weights.md).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "config.h"
#include "shard.h"

namespace tb {

struct ParameterSpec {
  std::string name;
  std::vector<std::int64_t> shape;
  std::int64_t offset = 0;    // elements into the flat buffer
  bool weight_decay = false;  // matmul weights and embeddings decay; biases and norms do not
  // Split over the tensor-parallel ranks (Megatron's column/row-parallel weights and the
  // column-parallel biases); every other tensor is replicated on each tensor-parallel rank.
  bool tensor_parallel_split = false;
  // Split over the expert-parallel ranks along its first (expert) axis: each rank holds its
  // own experts, whose gradients are not reduced over the data-parallel group.
  bool expert_parallel_split = false;
  std::int64_t numel() const {
    std::int64_t n = 1;
    for (auto d : shape) n *= d;
    return n;
  }
};

struct ParameterLayout {
  std::vector<ParameterSpec> tensors;
  std::int64_t total = 0;
  const ParameterSpec& find(const std::string& name) const;
  const ParameterSpec* find_if_present(const std::string& name) const;
};

// Throws std::invalid_argument when the shard does not fit the config.
ParameterLayout make_parameter_layout(const ModelConfig& c, const ShardSpec& s);

}  // namespace tb
