#include "gpu_collector.h"

#ifdef TB_HAVE_GPU_COLLECTOR
#include "profile/cuda/cuda_collector.h"
#endif

namespace tb {

std::unique_ptr<GpuPhaseCollector> make_gpu_collector(const GpuCollectorOptions& options) {
#ifdef TB_HAVE_GPU_COLLECTOR
  if (options.stream == nullptr) return nullptr;
  return make_cuda_collector(options);
#else
  (void)options;
  return nullptr;
#endif
}

}  // namespace tb
