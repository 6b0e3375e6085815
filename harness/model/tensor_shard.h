// Megatron-LM's split of a parameter over tensor-parallel ranks (Shoeybi et al. 2019, §3),
// as a host-side copy: the part of the FULL tensor that rank r of t holds.
//   attn.qkv.weight (3C, C), attn.qkv.bias (3C): column-parallel; rank r holds the rows of its
//     heads in each of q, k and v — rows [r·C/t, (r+1)·C/t) of each C-row block, in q, k, v
//     order, so its local qkv output is [q_r | k_r | v_r] for its NH/t heads.
//   mlp.fc.weight (4C, C), mlp.fc.bias (4C): column-parallel: rows [r·4C/t, (r+1)·4C/t).
//   attn.proj.weight (C, C), mlp.proj.weight (C, 4C): row-parallel: the same columns.
//   everything else (LayerNorms, the row-parallel layers' biases, embeddings): replicated.
// Used to give every rank of a sharded model exactly the single-process model's initial
// weights, and by the tests to compare a sharded model with the whole one.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace tb {

// `full` holds the whole tensor `name` of shape `full_shape` (row-major). Returns the rank's
// part in the local layout (parameters.h). Throws std::invalid_argument when t does not
// divide the split dimension.
template <class T>
std::vector<T> tensor_parallel_part(const std::string& name,
                                    const std::vector<std::int64_t>& full_shape,
                                    const std::vector<T>& full, int rank, int t);

// Expert parallelism: the part of a stacked expert tensor (E, …) that rank r of P holds,
// experts [r·E/P, (r+1)·E/P) (contiguous: the expert axis is the first).
template <class T>
std::vector<T> expert_parallel_part(const std::vector<std::int64_t>& full_shape,
                                    const std::vector<T>& full, int rank, int size);

}  // namespace tb
