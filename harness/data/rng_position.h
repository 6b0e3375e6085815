// A random number generator's state as named decimal strings — the training position of a
// data source whose batches come from one Rng (TokenSource::train_position). Keys:
// rng.s0 … rng.s3 (xoshiro256**'s words), rng.spare (Box–Muller's spare, shortest
// round-trip decimal) and rng.has_spare (0 or 1).
#pragma once
#include <map>
#include <string>

#include "../common/rng.h"

namespace tb {

std::map<std::string, std::string> rng_position(const Rng& rng);
// Sets rng from rng_position's strings; std::invalid_argument naming a missing or malformed
// key (the generator is unchanged then).
void restore_rng_position(Rng& rng, const std::map<std::string, std::string>& position);

}  // namespace tb
