// Sets the CPU backend's 16-bit GEMM path (tb/cpu_backend.h, CpuGemmPath) for a scope and
// restores the previous one after, so a test of one path runs whatever the default is.
#pragma once
#include "tb/cpu_backend.h"

namespace tb::test {

class GemmPathScope {
 public:
  explicit GemmPathScope(CpuGemmPath path) : previous_(cpu_gemm_path()) { set_cpu_gemm_path(path); }
  ~GemmPathScope() { set_cpu_gemm_path(previous_); }
  GemmPathScope(const GemmPathScope&) = delete;
  GemmPathScope& operator=(const GemmPathScope&) = delete;

 private:
  CpuGemmPath previous_;
};

}  // namespace tb::test
