// CUPTI's Activity API for the GPU collector: kernel (CONCURRENT_KERNEL), MEMCPY, MEMSET,
// OVERHEAD and EXTERNAL_CORRELATION records, plus RUNTIME and DRIVER (CUPTI emits an external
// correlation record only alongside an API record: "When a CUPTI activity API record is created
// while within an external API region and CUPTI_ACTIVITY_KIND_EXTERNAL_CORRELATION is enabled,
// the activity API record will be preceded by a CUpti_ActivityExternalCorrelation record",
// cupti_activity.h, cuptiActivityPushExternalCorrelationId). The API records themselves are
// read and discarded.
//
// Buffers: CUPTI asks for empty buffers and hands full ones back through the two callbacks of
// cuptiActivityRegisterCallbacks (CUPTI docs, "Activity API": buffers 8-byte aligned, 1–10 MB
// suggested; a completed buffer belongs to the client again). Completed buffers are parsed with
// cuptiActivityGetNextRecord into a GpuActivityBatch, possibly on CUPTI's own thread (hence the
// lock), and the dropped-record count is read with cuptiActivityGetNumDroppedRecords.
//
// The Activity API is process-wide: one session at a time (a second start() fails).
// No CUDA types in this header.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "profile/gpu_intervals.h"

namespace tb {

class CuptiSession {
 public:
  // Registers the buffer callbacks and enables the activity kinds. On failure returns nullptr
  // with *why = one line naming the CUPTI call and its result (kinds already enabled are
  // disabled again), e.g. another CUPTI client holds CUPTI (Nsight Systems:
  // CUPTI_ERROR_MULTIPLE_SUBSCRIBERS_NOT_SUPPORTED) or CUPTI_ERROR_NOT_INITIALIZED.
  static std::unique_ptr<CuptiSession> start(std::size_t buffer_bytes, std::string* why);
  ~CuptiSession();  // forced flush, kinds disabled, later records discarded
  CuptiSession(const CuptiSession&) = delete;
  CuptiSession& operator=(const CuptiSession&) = delete;

  // cuptiActivityPush/PopExternalCorrelationId (CUPTI_EXTERNAL_CORRELATION_KIND_CUSTOM0) on the
  // calling thread: "" or a one-line error.
  std::string push(std::uint64_t external_id) noexcept;
  std::string pop() noexcept;

  // cuptiActivityFlushAll(CUPTI_ACTIVITY_FLAG_FLUSH_FORCED), then everything parsed since the
  // last take(). The caller synchronises the device first, so every record is complete. Throws
  // std::runtime_error (one line) when CUPTI fails.
  GpuActivityBatch take();

  // cuptiGetTimestamp against the host clock (a few samples): the offset for the trace.
  ClockOffset clock_offset();

 private:
  CuptiSession() = default;
};

}  // namespace tb
