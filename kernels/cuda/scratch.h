// Per-call device scratch (cast operands, fp32 score chunks, reduction partials, sort
// buffers): the backends' shared ScratchArena (kernels/scratch_arena.h) with 256-byte
// alignment, tracked as MemoryCategory::workspace.
#pragma once
#include "../scratch_arena.h"

namespace tb::cuda {

using DeviceScratch = ScratchArena;
inline constexpr std::size_t kScratchAlignment = 256;

}  // namespace tb::cuda
