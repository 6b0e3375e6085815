// Per-rank progress ("heartbeat") files, so the sweep process can tell a slow variant from a
// hung one and name the rank that crashed or stalled (docs/parallel.md, "Launching").
//
// A worker calls heartbeat_init once; from then on any training code may call heartbeat()
// (cheap: a no-op when not initialised, otherwise a clock read unless ~0.2 s have passed or
// `where` changed). DIR/rank-<r>.json is rewritten atomically (tmp + rename) with
// {"rank","pid","where","step","beats","time","done"}; heartbeat_init writes the first record
// (where "start", beats 0), heartbeat_done the last (where "done", done true).
//
// Fault injection for tests lives here. TB_FAULT=crash:R makes rank R raise SIGSEGV at its
// first heartbeat, hang:R makes it sleep forever there, exit:R:CODE makes it std::_Exit(CODE);
// a suffix @REGEX limits the fault to variants whose id matches (ECMAScript, searched).
// The fault fires instead of that first beat, so the rank's file keeps its start record.
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace tb {

// Starts heartbeats of `rank` into `dir` (created if needed) and arms TB_FAULT for a variant
// with id `variant_id`. Throws std::invalid_argument for a malformed TB_FAULT and
// std::runtime_error when the first record cannot be written.
void heartbeat_init(const std::string& dir, int rank, std::string_view variant_id = {});
// Records progress: `where` names the loop (e.g. "timing"), `step` its step.
void heartbeat(std::string_view where, long step);
// The final record: this rank has finished its variant.
void heartbeat_done();

// One rank's last record, as read back by the sweep process.
struct HeartbeatRecord {
  int rank = 0;
  long pid = 0;
  std::string where;
  long step = 0;
  long beats = 0;
  double time = 0;  // seconds since the Unix epoch, when written
  bool done = false;
  std::string text;  // the file's content, to notice any change
};

// Every DIR/rank-<r>.json that parses, ordered by rank (files mid-replace are skipped).
std::vector<HeartbeatRecord> read_heartbeats(const std::string& dir);

}  // namespace tb
