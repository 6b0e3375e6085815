// What a parallel training step needs besides the model: the process grid (its
// communicators), the pipeline schedule, ZeRO and the data-parallel bucket size
// (docs/parallel.md). The model itself is built from this rank's shard (tensor-parallel
// rank, the stage's layer range).
#pragma once
#include "../model/shard.h"
#include "../parallel/grid.h"
#include "pipeline_schedule.h"

namespace tb {

struct ParallelContext {
  ProcessGrid* grid = nullptr;  // not owned
  PipelineSchedule schedule = PipelineSchedule::one_f_one_b;
  int zero = 0;                              // 0 or 1
  double bucket_bytes = 25.0 * 1024 * 1024;  // data-parallel all-reduce buckets
  bool sequence_parallel = false;            // Korthikanti et al. 2022 (tp > 1)
};

// This rank's shard of a model with `layers` layers on the grid.
ShardSpec shard_for(const GridShape& g, const GridCoord& c, int layers);

}  // namespace tb
