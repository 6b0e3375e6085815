// A build without oneDNN (TB_ONEDNN=OFF, or libdnnl-dev not found): no GEMM is native, so the
// CPU backend emulates every 16-bit GEMM (staging.h), and running one through oneDNN is an
// error naming how to build with it.
#include <stdexcept>

#include "dnnl_gemm.h"

namespace tb::cpu {

bool dnnl_built() { return false; }
std::string dnnl_version() { return ""; }
std::string dnnl_isa() { return ""; }

DnnlImpl dnnl_gemm_impl(const DnnlGemm&) { return {false, "none (built without oneDNN)", 0}; }

void dnnl_gemm(const DnnlGemm&, const void*, const void*, const float*, void*, void*) {
  throw std::runtime_error(
      "this build has no oneDNN (install libdnnl-dev: scripts/install-deps.sh, and configure with "
      "-DTB_ONEDNN=AUTO or ON)");
}

}  // namespace tb::cpu
