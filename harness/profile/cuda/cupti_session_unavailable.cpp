// CuptiSession for a toolkit whose CUPTI predates the record layouts cupti_session.cpp reads
// (CUPTI_API_VERSION < 130000): start() always fails, so the collector uses CUDA events and
// says why. harness/CMakeLists.txt picks this file or cupti_session.cpp.
#include "cupti_session.h"

#include <stdexcept>

namespace tb {

std::unique_ptr<CuptiSession> CuptiSession::start(std::size_t, std::string* why) {
  *why = "this build's CUPTI is older than 13.0, whose activity record layouts the collector reads";
  return nullptr;
}
CuptiSession::~CuptiSession() = default;
std::string CuptiSession::push(std::uint64_t) noexcept { return {}; }
std::string CuptiSession::pop() noexcept { return {}; }
GpuActivityBatch CuptiSession::take() { throw std::logic_error("no CUPTI session"); }
ClockOffset CuptiSession::clock_offset() { return {}; }

}  // namespace tb
