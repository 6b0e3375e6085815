// Which part of the model one rank holds. Tensor parallelism splits attention heads and the
// MLP width as Megatron-LM does (Shoeybi et al. 2019, §3): QKV and fc are column-parallel,
// the two output projections row-parallel. Pipeline parallelism gives a stage the layer range
// [layer_begin, layer_end); the first stage holds the embeddings, the last the final
// LayerNorm and the (tied) LM head.
#pragma once

namespace tb {

struct ShardSpec {
  int tensor_parallel_rank = 0;
  int tensor_parallel_size = 1;
  int layer_begin = 0;
  int layer_end = -1;  // −1: through the last layer
  // Expert parallelism (GShard, Lepikhin et al. 2021): the experts of every MoE block split
  // over the data-parallel group; rank r holds experts [r·E/P, (r+1)·E/P).
  int expert_parallel_rank = 0;
  int expert_parallel_size = 1;

  bool whole() const {
    return tensor_parallel_size == 1 && layer_begin == 0 && layer_end < 0 &&
           expert_parallel_size == 1;
  }
};

}  // namespace tb
