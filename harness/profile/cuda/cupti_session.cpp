#include "cupti_session.h"

#include <cupti.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <mutex>
#include <stdexcept>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

// The record layouts read below are CUPTI 13's (CUpti_ActivityKernel10, CUpti_ActivityMemcpy6,
// CUpti_ActivityMemset4, CUpti_ActivityOverhead3); harness/CMakeLists.txt compiles this file
// only for CUPTI_API_VERSION >= 130000.
static_assert(CUPTI_API_VERSION >= 130000, "cupti_session.cpp reads CUPTI 13 record layouts");

namespace tb {

namespace {

// CUPTI's activity buffers must be 8-byte aligned (ACTIVITY_RECORD_ALIGNMENT, cupti_activity.h).
constexpr std::size_t kAlign = 8;

// The kinds enabled, in order (disabled in reverse on failure and at the end).
constexpr std::array<CUpti_ActivityKind, 7> kKinds = {CUPTI_ACTIVITY_KIND_EXTERNAL_CORRELATION,
                                                      CUPTI_ACTIVITY_KIND_RUNTIME,
                                                      CUPTI_ACTIVITY_KIND_DRIVER,
                                                      CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL,
                                                      CUPTI_ACTIVITY_KIND_MEMCPY,
                                                      CUPTI_ACTIVITY_KIND_MEMSET,
                                                      CUPTI_ACTIVITY_KIND_OVERHEAD};

const char* kind_name(CUpti_ActivityKind k) {
  switch (k) {
    case CUPTI_ACTIVITY_KIND_EXTERNAL_CORRELATION:
      return "CUPTI_ACTIVITY_KIND_EXTERNAL_CORRELATION";
    case CUPTI_ACTIVITY_KIND_RUNTIME:
      return "CUPTI_ACTIVITY_KIND_RUNTIME";
    case CUPTI_ACTIVITY_KIND_DRIVER:
      return "CUPTI_ACTIVITY_KIND_DRIVER";
    case CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL:
      return "CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL";
    case CUPTI_ACTIVITY_KIND_MEMCPY:
      return "CUPTI_ACTIVITY_KIND_MEMCPY";
    case CUPTI_ACTIVITY_KIND_MEMSET:
      return "CUPTI_ACTIVITY_KIND_MEMSET";
    case CUPTI_ACTIVITY_KIND_OVERHEAD:
      return "CUPTI_ACTIVITY_KIND_OVERHEAD";
    default:
      return "an activity kind";
  }
}

// "cuptiActivityEnable(CUPTI_ACTIVITY_KIND_MEMCPY) failed: CUPTI_ERROR_NOT_INITIALIZED".
std::string cupti_error(std::string_view call, CUptiResult r) {
  const char* text = nullptr;
  if (cuptiGetResultString(r, &text) != CUPTI_SUCCESS || text == nullptr) text = "unknown result";
  return std::string(call) + " failed: " + text + " (" + std::to_string(static_cast<int>(r)) + ")";
}

std::string_view memcpy_name(std::uint8_t copy_kind) {
  switch (copy_kind) {
    case CUPTI_ACTIVITY_MEMCPY_KIND_HTOD:
      return "memcpy HtoD";
    case CUPTI_ACTIVITY_MEMCPY_KIND_DTOH:
      return "memcpy DtoH";
    case CUPTI_ACTIVITY_MEMCPY_KIND_DTOD:
      return "memcpy DtoD";
    case CUPTI_ACTIVITY_MEMCPY_KIND_HTOH:
      return "memcpy HtoH";
    case CUPTI_ACTIVITY_MEMCPY_KIND_PTOP:
      return "memcpy PtoP";
    default:
      return "memcpy";
  }
}

// Everything the callbacks touch. Leaked on purpose: CUPTI may deliver a buffer during exit,
// after static destructors would have run.
struct State {
  std::mutex mu;
  bool active = false;  // a session is running: records are kept
  GpuActivityBatch batch;
  std::unordered_map<std::string, std::uint32_t> name_ids;
  std::atomic<std::size_t> buffer_bytes{std::size_t{8} << 20};
  std::string error;  // first failure inside a callback, thrown by take()
};
State& state() {
  static State* s = new State;
  return *s;
}
std::once_flag g_register_once;
CUptiResult g_register_result = CUPTI_SUCCESS;

std::uint32_t intern(State& s, std::string_view name) {
  const auto [it, added] =
      s.name_ids.try_emplace(std::string(name), static_cast<std::uint32_t>(s.batch.names.size()));
  if (added) s.batch.names.emplace_back(name);
  return it->second;
}

// One record into the batch (under the lock). Overhead records own a malloc'd overheadData
// that the client frees (CUpti_ActivityOverhead3::overheadData).
void take_record(State& s, const CUpti_Activity* rec, bool keep) {
  switch (rec->kind) {
    case CUPTI_ACTIVITY_KIND_KERNEL:
    case CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL: {
      const auto* k = reinterpret_cast<const CUpti_ActivityKernel10*>(rec);
      if (!keep) return;
      s.batch.activities.push_back(
          GpuActivity{GpuActivityKind::kernel, intern(s, k->name ? k->name : "(unnamed kernel)"),
                      k->start, k->end, k->deviceId, k->streamId, k->correlationId});
      return;
    }
    case CUPTI_ACTIVITY_KIND_MEMCPY: {
      const auto* m = reinterpret_cast<const CUpti_ActivityMemcpy6*>(rec);
      if (!keep) return;
      s.batch.activities.push_back(GpuActivity{GpuActivityKind::memcpy,
                                               intern(s, memcpy_name(m->copyKind)), m->start,
                                               m->end, m->deviceId, m->streamId, m->correlationId});
      return;
    }
    case CUPTI_ACTIVITY_KIND_MEMSET: {
      const auto* m = reinterpret_cast<const CUpti_ActivityMemset4*>(rec);
      if (!keep) return;
      s.batch.activities.push_back(GpuActivity{GpuActivityKind::memset, intern(s, "memset"),
                                               m->start, m->end, m->deviceId, m->streamId,
                                               m->correlationId});
      return;
    }
    case CUPTI_ACTIVITY_KIND_OVERHEAD: {
      const auto* o = reinterpret_cast<const CUpti_ActivityOverhead3*>(rec);
      if (keep && o->end > o->start && o->start != 0) s.batch.overhead_ns += o->end - o->start;
      std::free(o->overheadData);
      return;
    }
    case CUPTI_ACTIVITY_KIND_EXTERNAL_CORRELATION: {
      const auto* e = reinterpret_cast<const CUpti_ActivityExternalCorrelation*>(rec);
      if (keep && e->externalKind == CUPTI_EXTERNAL_CORRELATION_KIND_CUSTOM0) {
        s.batch.external[e->correlationId] = e->externalId;
      }
      return;
    }
    default:
      return;  // RUNTIME / DRIVER API records: enabled only so external ids are recorded
  }
}

void CUPTIAPI buffer_requested(std::uint8_t** buffer, std::size_t* size, std::size_t* max_records) {
  const std::size_t bytes = (state().buffer_bytes.load() + kAlign - 1) / kAlign * kAlign;
  // aligned_alloc: the size must be a multiple of the alignment (it is). nullptr declines the
  // request, and CUPTI drops records (counted below).
  void* p = std::aligned_alloc(kAlign, bytes);
  *buffer = static_cast<std::uint8_t*>(p);
  *size = p ? bytes : 0;
  *max_records = 0;  // as many as fit
}

void CUPTIAPI buffer_completed(CUcontext context, std::uint32_t stream_id, std::uint8_t* buffer,
                               std::size_t /*size*/, std::size_t valid_size) {
  State& s = state();
  {
    const std::lock_guard<std::mutex> lock(s.mu);
    CUpti_Activity* rec = nullptr;
    for (;;) {
      const CUptiResult r = cuptiActivityGetNextRecord(buffer, valid_size, &rec);
      if (r == CUPTI_ERROR_MAX_LIMIT_REACHED) break;  // end of the buffer
      if (r != CUPTI_SUCCESS) {
        // CUPTI_ERROR_INVALID_KIND: an incomplete or invalid record; the rest is unreadable.
        if (s.active) {
          if (!s.batch.warning.empty()) s.batch.warning += "; ";
          s.batch.warning += cupti_error("cuptiActivityGetNextRecord", r) +
                             " (the rest of an activity buffer was skipped)";
        }
        break;
      }
      take_record(s, rec, s.active);
    }
    std::size_t dropped = 0;
    const CUptiResult r = cuptiActivityGetNumDroppedRecords(context, stream_id, &dropped);
    if (r != CUPTI_SUCCESS) {
      if (s.error.empty()) s.error = cupti_error("cuptiActivityGetNumDroppedRecords", r);
    } else if (s.active) {
      s.batch.dropped += dropped;
    }
  }
  std::free(buffer);
}

void disable(std::size_t count) noexcept {
  // Best effort, in reverse: used on a failed start and at the end (nothing to report to).
  for (std::size_t i = count; i-- > 0;) (void)cuptiActivityDisable(kKinds[i]);
}

}  // namespace

std::unique_ptr<CuptiSession> CuptiSession::start(std::size_t buffer_bytes, std::string* why) {
  State& s = state();
  {
    const std::lock_guard<std::mutex> lock(s.mu);
    if (s.active) {
      *why = "another GPU collector already holds CUPTI's activity API in this process";
      return nullptr;
    }
  }
  s.buffer_bytes.store(buffer_bytes < 4096 ? 4096 : buffer_bytes);
  // Callbacks once per process (registering again is unnecessary: the same functions).
  std::call_once(g_register_once, [] {
    g_register_result = cuptiActivityRegisterCallbacks(buffer_requested, buffer_completed);
  });
  if (g_register_result != CUPTI_SUCCESS) {
    *why = cupti_error("cuptiActivityRegisterCallbacks", g_register_result);
    return nullptr;
  }
  {
    const std::lock_guard<std::mutex> lock(s.mu);
    s.batch = GpuActivityBatch{};
    s.name_ids.clear();
    s.error.clear();
    s.active = true;
  }
  for (std::size_t i = 0; i < kKinds.size(); ++i) {
    const CUptiResult r = cuptiActivityEnable(kKinds[i]);
    if (r != CUPTI_SUCCESS) {
      *why = cupti_error(std::string("cuptiActivityEnable(") + kind_name(kKinds[i]) + ")", r);
      disable(i);
      const std::lock_guard<std::mutex> lock(s.mu);
      s.active = false;
      return nullptr;
    }
  }
  return std::unique_ptr<CuptiSession>(new CuptiSession());
}

CuptiSession::~CuptiSession() {
  (void)cuptiActivityFlushAll(CUPTI_ACTIVITY_FLAG_FLUSH_FORCED);  // destructor: best effort
  disable(kKinds.size());
  State& s = state();
  const std::lock_guard<std::mutex> lock(s.mu);
  s.active = false;
  s.batch = GpuActivityBatch{};
  s.name_ids.clear();
}

std::string CuptiSession::push(std::uint64_t external_id) noexcept {
  const CUptiResult r =
      cuptiActivityPushExternalCorrelationId(CUPTI_EXTERNAL_CORRELATION_KIND_CUSTOM0, external_id);
  return r == CUPTI_SUCCESS ? std::string()
                            : cupti_error("cuptiActivityPushExternalCorrelationId(CUSTOM0)", r);
}

std::string CuptiSession::pop() noexcept {
  std::uint64_t last = 0;
  const CUptiResult r =
      cuptiActivityPopExternalCorrelationId(CUPTI_EXTERNAL_CORRELATION_KIND_CUSTOM0, &last);
  return r == CUPTI_SUCCESS ? std::string()
                            : cupti_error("cuptiActivityPopExternalCorrelationId(CUSTOM0)", r);
}

GpuActivityBatch CuptiSession::take() {
  // Forced: every buffer is handed back, including partly filled ones; the device was
  // synchronised by the caller, so their records are complete (cuptiActivityFlushAll docs).
  const CUptiResult r = cuptiActivityFlushAll(CUPTI_ACTIVITY_FLAG_FLUSH_FORCED);
  if (r != CUPTI_SUCCESS) {
    throw std::runtime_error(
        cupti_error("cuptiActivityFlushAll(CUPTI_ACTIVITY_FLAG_FLUSH_FORCED)", r));
  }
  State& s = state();
  const std::lock_guard<std::mutex> lock(s.mu);
  if (!s.error.empty()) throw std::runtime_error(std::exchange(s.error, std::string()));
  GpuActivityBatch out = std::exchange(s.batch, GpuActivityBatch{});
  s.name_ids.clear();
  return out;
}

ClockOffset CuptiSession::clock_offset() {
  std::vector<ClockSample> samples;
  for (int i = 0; i < 5; ++i) {
    ClockSample c{};
    c.host_before_ns = steady_ns(std::chrono::steady_clock::now());
    std::uint64_t ts = 0;
    const CUptiResult r = cuptiGetTimestamp(&ts);
    c.host_after_ns = steady_ns(std::chrono::steady_clock::now());
    if (r != CUPTI_SUCCESS) throw std::runtime_error(cupti_error("cuptiGetTimestamp", r));
    c.cupti_ns = static_cast<std::int64_t>(ts);
    samples.push_back(c);
  }
  return ClockOffset::from_samples(samples);
}

}  // namespace tb
