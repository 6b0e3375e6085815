#include "rank_memory_check.h"

#include <cstdio>
#include <string>
#include <vector>

#include "../parallel/local_ranks.h"
#include "../plan/memory_check.h"

namespace tb {

void require_rank_memory(const RunConfig& c, const ModelConfig& m, DeviceKind device,
                         const RankSetup& rs, int cuda_device) {
  const int stage = rs.grid ? rs.grid->coord.pp_rank : 0;
  const int local = rs.grid && device == DeviceKind::cpu ? local_ranks().size : 1;
  const MemoryCheck mine = check_memory(m, c, device, stage, local, cuda_device);
  if (!rs.grid) {
    require_fits(mine);
    return;
  }
  // (fits, predicted, available) of every rank, in rank order.
  const int n = rs.world();
  double own[3] = {mine.fits ? 1.0 : 0.0, mine.predicted_bytes, double(mine.available_bytes)};
  std::vector<double> all(static_cast<std::size_t>(3 * n));
  rs.grid->host->all_gather(Tensor(all.data(), DType::f64, {3 * n}), Tensor(own, DType::f64, {3}));
  for (int r = 0; r < n; ++r) {
    const double* v = &all[static_cast<std::size_t>(3 * r)];
    if (v[0] != 0) continue;
    if (r == rs.rank()) require_fits(mine);  // this rank's own line
    char line[256];
    std::snprintf(line, sizeof line,
                  "rank %d's predicted peak memory %.0f bytes exceeds its available %.0f bytes", r,
                  v[1], v[2]);
    throw PredictedOutOfMemory(static_cast<std::size_t>(v[1]), static_cast<std::size_t>(v[2]),
                               line);
  }
}

}  // namespace tb
