#include "tensor_shard.h"

#include <stdexcept>

namespace tb {

namespace {

enum class Split { replicated, qkv_rows, rows, columns };

Split split_of(const std::string& name) {
  if (name.ends_with("attn.qkv.weight") || name.ends_with("attn.qkv.bias")) return Split::qkv_rows;
  if (name.ends_with("mlp.fc.weight") || name.ends_with("mlp.fc.bias")) return Split::rows;
  if (name.ends_with("attn.proj.weight") || name.ends_with("mlp.proj.weight"))
    return Split::columns;
  return Split::replicated;
}

std::int64_t part(std::int64_t n, int t, const std::string& name) {
  if (n % t != 0) {
    throw std::invalid_argument(name + ": dimension " + std::to_string(n) +
                                " not divisible by tensor_parallel = " + std::to_string(t));
  }
  return n / t;
}

}  // namespace

template <class T>
std::vector<T> tensor_parallel_part(const std::string& name,
                                    const std::vector<std::int64_t>& full_shape,
                                    const std::vector<T>& full, int rank, int t) {
  const Split s = t == 1 ? Split::replicated : split_of(name);
  if (s == Split::replicated) return full;
  const std::int64_t rows = full_shape.at(0);
  const std::int64_t cols = full_shape.size() > 1 ? full_shape[1] : 1;
  std::vector<T> out;
  auto copy_rows = [&](std::int64_t r0, std::int64_t n) {
    out.insert(out.end(), full.begin() + r0 * cols, full.begin() + (r0 + n) * cols);
  };
  switch (s) {
    case Split::qkv_rows: {
      const std::int64_t C = rows / 3, Ct = part(C, t, name);
      for (int j = 0; j < 3; ++j) copy_rows(j * C + rank * Ct, Ct);
      break;
    }
    case Split::rows: {
      const std::int64_t n = part(rows, t, name);
      copy_rows(rank * n, n);
      break;
    }
    case Split::columns: {
      const std::int64_t n = part(cols, t, name);
      for (std::int64_t r = 0; r < rows; ++r) {
        const auto* row = full.data() + r * cols + rank * n;
        out.insert(out.end(), row, row + n);
      }
      break;
    }
    case Split::replicated:
      break;
  }
  return out;
}

template <class T>
std::vector<T> expert_parallel_part(const std::vector<std::int64_t>& full_shape,
                                    const std::vector<T>& full, int rank, int size) {
  if (full_shape.empty() || size < 1 || full_shape[0] % size != 0 || rank < 0 || rank >= size) {
    throw std::invalid_argument("expert_parallel size " + std::to_string(size) + ", rank " +
                                std::to_string(rank) +
                                " (expected a size that divides the expert count, rank < size)");
  }
  const std::size_t per = full.size() / static_cast<std::size_t>(size);
  const auto begin =
      full.begin() + static_cast<std::ptrdiff_t>(per * static_cast<std::size_t>(rank));
  return std::vector<T>(begin, begin + static_cast<std::ptrdiff_t>(per));
}

template std::vector<float> expert_parallel_part(const std::vector<std::int64_t>&,
                                                 const std::vector<float>&, int, int);
template std::vector<double> expert_parallel_part(const std::vector<std::int64_t>&,
                                                  const std::vector<double>&, int, int);

template std::vector<float> tensor_parallel_part(const std::string&,
                                                 const std::vector<std::int64_t>&,
                                                 const std::vector<float>&, int, int);
template std::vector<double> tensor_parallel_part(const std::string&,
                                                  const std::vector<std::int64_t>&,
                                                  const std::vector<double>&, int, int);

}  // namespace tb
