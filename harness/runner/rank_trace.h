// A parallel variant's trace: every rank's events gathered on one time base, so rank 0 can
// write them as one Chrome trace (a track per rank: profile/profiler.h).
#pragma once
#include <vector>

#include "../profile/profiler.h"
#include "rank_setup.h"

namespace tb {

// Every rank's trace events in rank order, on every rank, on rank 0's time base; a single
// process gets its own. Rank r's clock offset from rank 0 is estimated as Cristian (1989)
// does: rank 0 asks for rank r's time, and the offset is r's answer minus the midpoint of
// the request's round trip, from the quickest of several round trips (its error is at most
// half that round trip). A barrier's release is no time base on oversubscribed cores: a rank
// can be descheduled for a time slice before it reads its clock. Clocks of different nodes
// need not share an epoch, so only these offsets are used, never the origins.
std::vector<std::vector<TraceEvent>> gather_trace_events(const RankSetup& r, const Profiler& p);

}  // namespace tb
