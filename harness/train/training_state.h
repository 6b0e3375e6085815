// Training-state checkpoints (trainbench step --save-state / --load-state; docs/weights.md,
// "Training state"): everything a single-process Trainer carries from one step to the next,
// so that training on after a load is bit-identical to never having stopped —
//  - the fp32 master weights, under the weights file's tensor names (a state file is also a
//    weights file: --load-weights and `trainbench eval` read it);
//  - the optimizer's state tensors (AdamW's and LAMB's moments m and v, SGD's momentum
//    buffer) and its step count t, which drives bias correction and is the learning-rate
//    schedule's position (the lr is a pure function of t and the schedule settings);
//  - the data source's training position (the state of the RNG that draws its batches);
//  - the dynamic loss scaler's scale, good-step count, skipped steps and growths;
//  - fp8 delayed scaling's amax histories, scales and pending amaxes;
//  - pruning's masks and the sparsity they were computed for;
// in safetensors, with scalars as decimal strings that read back exactly and the model
// configuration in __metadata__. What only measures (profiler, rounding and routing
// statistics, LAMB's last trust ratios) is not kept. A parallel trainer is refused.
#pragma once
#include <cstdint>
#include <string>

#include "trainer.h"

namespace tb {

// The __metadata__ "format" of a state file (a weights file's is "trainbench").
inline constexpr const char* kTrainingStateFormat = "trainbench-state";

struct StateFileStats {
  std::uint64_t bytes = 0;  // the file's size
  // save: from the first copy off the device to the rename after fsync and close; load: from
  // opening the file to the last value on the device.
  double seconds = 0;
  long step = 0;       // optimizer steps taken (the lr schedule's position)
  long steps_run = 0;  // training steps run: step plus those a loss-scale overflow skipped
  double bytes_per_s() const { return seconds > 0 ? double(bytes) / seconds : 0; }
};

// Writes the trainer's state to path (atomically: a temporary file renamed over it).
// std::invalid_argument for a parallel trainer or a data source without a training
// position; std::runtime_error naming the path when it cannot be written.
StateFileStats save_training_state(const std::string& path, Trainer& trainer);

// Restores a state file into a trainer built as the saving one was: the same model shape
// and dtype, optimizer, precision, loss scaling, pruning and data (hyperparameters such as
// the lr may differ). Every check runs before anything changes; a mismatch or malformed
// file is a std::runtime_error naming the file and the value, with what was expected.
StateFileStats load_training_state(const std::string& path, Trainer& trainer);

// steps_run recorded in a state file (to place the lr schedule before building a trainer);
// the same errors as load_training_state for a missing file or one that is not a state file.
long training_state_steps_run(const std::string& path);

}  // namespace tb
