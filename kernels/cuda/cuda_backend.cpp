// The CUDA backend (tb/cuda_backend.h): the Backend operation set on one device and one
// stream. This file checks shapes and types and hands each operation to its kernels
// (kernels.h), the linear-layer GEMMs (linear.h) or attention (attention.h).
#include "tb/cuda_backend.h"

#include <cuda_runtime.h>

#include <cmath>
#include <cstring>
#include <initializer_list>
#include <memory>
#include <string>

#include "amax_slots.h"
#include "attention.h"
#include "cuda_check.h"
#include "gemm_lt.h"
#include "kernels.h"
#include "linear.h"
#include "memory_pool.h"
#include "scratch.h"
#include "views.h"

namespace tb {

namespace {

using cuda::expect;
using cuda::I64;
using cuda::in;
using cuda::out;

std::string device_label(int device, const cudaDeviceProp& p) {
  return "cuda:" + std::to_string(device) + " (" + p.name + ", compute capability " +
         std::to_string(p.major) + "." + std::to_string(p.minor) + ")";
}

void expect_f32(const Tensor& t, const char* op, const char* name) {
  expect(t.dtype == DType::f32, op,
         std::string(name) + " is " + std::string(dtype_name(t.dtype)) +
             " (the CUDA backend's optimizer keeps fp32 parameters, gradients and state)");
}

const std::int32_t* tokens_of(const Tensor& t, const char* op, const char* name) {
  expect(t.dtype == DType::i32, op,
         std::string(name) + " is " + std::string(dtype_name(t.dtype)) + " (expected i32)");
  return static_cast<const std::int32_t*>(t.ptr);
}

class CudaBackend final : public Backend {
 public:
  CudaBackend(int device, std::size_t limit)
      : device_(device),
        tracker_(limit),
        pool_(device),
        stream_(make_stream(device)),
        scratch_([this](std::size_t b) {
          return allocate(b, MemoryCategory::workspace, "GPU scratch");
        }, cuda::kScratchAlignment),
        amax_(
            [this](std::size_t b) { return allocate(b, MemoryCategory::workspace, "amax slots"); },
            stream_) {
    cudaDeviceProp prop{};
    TB_CUDA_CHECK(cudaGetDeviceProperties(&prop, device_));
    device_name_ = prop.name;
    label_ = device_label(device_, prop);
    cc_major_ = prop.major;
    cc_minor_ = prop.minor;
    void* h = nullptr;
    TB_CUDA_CHECK(cudaMallocHost(&h, 4 * sizeof(double)));
    host_result_ = static_cast<double*>(h);
    TB_CUDA_CHECK(cudaMallocHost(&staging_, kStagingBytes));
    TB_CUDA_CHECK(cudaEventCreateWithFlags(&staging_done_, cudaEventDisableTiming));
  }

  ~CudaBackend() override {
    cudaSetDevice(device_);
    cudaStreamSynchronize(stream_);  // nothing may still use what is freed below
    lt_.reset();
    lt_workspace_ = {};
    fp8_scales_ = {};
    device_result_ = {};
    if (host_result_) cudaFreeHost(host_result_);
    if (staging_) cudaFreeHost(staging_);
    if (staging_done_) cudaEventDestroy(staging_done_);
    cudaStreamDestroy(stream_);
    cudaGetLastError();
  }

  CudaBackend(const CudaBackend&) = delete;
  CudaBackend& operator=(const CudaBackend&) = delete;

  DeviceKind kind() const override { return DeviceKind::cuda; }
  std::string name() const override { return label_; }
  MemoryTracker& memory() override { return tracker_; }
  cudaStream_t stream() const { return stream_; }

  Buffer allocate(std::size_t bytes, MemoryCategory c, std::string_view label) override {
    bind();
    tracker_.on_alloc(c, bytes, label);  // throws OutOfMemory over the limit
    if (bytes == 0) return Buffer(nullptr, 0, c, {});
    void* p = nullptr;
    try {
      p = pool_.allocate(bytes, label);
    } catch (...) {
      tracker_.on_free(c, bytes);
      throw;
    }
    return Buffer(p, bytes, c, [this](void* q, std::size_t b, MemoryCategory cat) {
      pool_.release(q, b);
      tracker_.on_free(cat, b);
    });
  }

  // The caller may reuse src as soon as this returns. From pageable memory, cudaMemcpyAsync
  // "might be synchronous" (CUDA Runtime API, "API synchronization behavior"), which is no
  // promise; so a small copy goes through a pinned staging buffer (reused once the event of
  // its previous copy has passed), and a large one waits for the stream.
  void copy_from_host(const Tensor& dst, const void* src) override {
    bind();
    const std::size_t bytes = dst.bytes();
    if (bytes == 0) return;
    if (bytes <= kStagingBytes) {
      TB_CUDA_CHECK(cudaEventSynchronize(staging_done_));
      std::memcpy(staging_, src, bytes);
      TB_CUDA_CHECK(cudaMemcpyAsync(dst.ptr, staging_, bytes, cudaMemcpyHostToDevice, stream_));
      TB_CUDA_CHECK(cudaEventRecord(staging_done_, stream_));
      return;
    }
    TB_CUDA_CHECK(cudaMemcpyAsync(dst.ptr, src, bytes, cudaMemcpyHostToDevice, stream_));
    TB_CUDA_CHECK(cudaStreamSynchronize(stream_));
  }
  void copy_to_host(void* dst, const Tensor& src) override {
    bind();
    if (src.bytes() == 0) return;
    TB_CUDA_CHECK(cudaMemcpyAsync(dst, src.ptr, src.bytes(), cudaMemcpyDeviceToHost, stream_));
    TB_CUDA_CHECK(cudaStreamSynchronize(stream_));
  }
  void fill_zero(const Tensor& t) override {
    bind();
    if (t.bytes() == 0) return;
    TB_CUDA_CHECK(cudaMemsetAsync(t.ptr, 0, t.bytes(), stream_));
  }
  void copy(const Tensor& dst, const Tensor& src) override {
    bind();
    expect(dst.dtype == src.dtype && dst.numel() == src.numel(), "copy",
           "dst " + std::string(dtype_name(dst.dtype)) + shape_string(dst.shape) + " and src " +
               std::string(dtype_name(src.dtype)) + shape_string(src.shape) + " differ");
    if (src.bytes() == 0 || dst.ptr == src.ptr) return;
    TB_CUDA_CHECK(
        cudaMemcpyAsync(dst.ptr, src.ptr, src.bytes(), cudaMemcpyDeviceToDevice, stream_));
  }
  void convert(const Tensor& dst, const Tensor& src) override {
    bind();
    const char* op = "convert";
    expect(dst.numel() == src.numel(), op,
           "dst " + shape_string(dst.shape) + " and src " + shape_string(src.shape) +
               " differ in size");
    const cuda::Out d = out(dst, op, "dst");
    const cuda::In s = in(src, op, "src");
    if (dst.dtype == src.dtype) {
      copy(dst, src);
      return;
    }
    cuda::convert(d, s, src.numel(), stream_);
  }
  void synchronize() override {
    bind();
    amax_.flush();
    TB_CUDA_CHECK(cudaStreamSynchronize(stream_));
  }

  void embedding_forward(const Tensor& o, const Tensor& tokens, const Tensor& wte,
                         const Tensor& wpe) override {
    bind();
    const char* op = "embedding_forward";
    expect(o.shape.size() == 3, op, "out " + shape_string(o.shape) + " is not (B, T, C)");
    const I64 B = o.dim(0), T = o.dim(1), C = o.dim(2);
    expect(tokens.numel() == B * T, op,
           "tokens " + shape_string(tokens.shape) + " (expected (B, T))");
    expect(wte.shape.size() == 2 && wte.dim(1) == C, op,
           "wte " + shape_string(wte.shape) + " (expected (V, " + std::to_string(C) + "))");
    expect(wpe.shape.size() == 2 && wpe.dim(1) == C && T <= wpe.dim(0), op,
           "wpe " + shape_string(wpe.shape) + " (expected (maxT >= " + std::to_string(T) + ", " +
               std::to_string(C) + "))");
    cuda::embedding_forward(out(o, op, "out"), tokens_of(tokens, op, "tokens"), in(wte, op, "wte"),
                            in(wpe, op, "wpe"), B, T, C, wte.dim(0), stream_);
  }
  void embedding_backward(const Tensor& dwte, const Tensor& dwpe, const Tensor& dout,
                          const Tensor& tokens) override {
    bind();
    const char* op = "embedding_backward";
    expect(dout.shape.size() == 3, op, "dout " + shape_string(dout.shape) + " is not (B, T, C)");
    const I64 B = dout.dim(0), T = dout.dim(1), C = dout.dim(2);
    expect(tokens.numel() == B * T, op,
           "tokens " + shape_string(tokens.shape) + " (expected (B, T))");
    expect(dwte.shape.size() == 2 && dwte.dim(1) == C, op,
           "dwte " + shape_string(dwte.shape) + " (expected (V, " + std::to_string(C) + "))");
    expect(dwpe.shape.size() == 2 && dwpe.dim(1) == C && T <= dwpe.dim(0), op,
           "dwpe " + shape_string(dwpe.shape) + " (expected (maxT >= " + std::to_string(T) + ", " +
               std::to_string(C) + "))");
    cuda::DeviceScratch::Scope scope(scratch_);
    const I64 V = dwte.dim(0);
    const std::size_t bytes = cuda::embedding_backward_scratch_bytes(B, T, C, V);
    void* s = scratch_.take(bytes);
    cuda::embedding_backward(out(dwte, op, "dwte"), out(dwpe, op, "dwpe"), in(dout, op, "dout"),
                             tokens_of(tokens, op, "tokens"), B, T, C, V, s, bytes, stream_);
  }

  void layernorm_forward(const Tensor& o, const Tensor& mean, const Tensor& rstd, const Tensor& inp,
                         const Tensor& weight, const Tensor& bias) override {
    bind();
    const char* op = "layernorm_forward";
    const I64 C = weight.numel();
    expect(C > 0 && bias.numel() == C && inp.numel() % C == 0 && o.numel() == inp.numel(), op,
           "out " + shape_string(o.shape) + ", inp " + shape_string(inp.shape) + ", weight " +
               shape_string(weight.shape) + ", bias " + shape_string(bias.shape) + " do not agree");
    const I64 N = inp.numel() / C;
    expect(mean.numel() == N && rstd.numel() == N, op,
           "mean " + shape_string(mean.shape) + " and rstd " + shape_string(rstd.shape) +
               " (expected " + std::to_string(N) + " rows)");
    cuda::layernorm_forward(out(o, op, "out"), out(mean, op, "mean"), out(rstd, op, "rstd"),
                            in(inp, op, "inp"), in(weight, op, "weight"), in(bias, op, "bias"), N,
                            C, stream_);
  }
  void layernorm_backward(const Tensor& dinp, const Tensor& dweight, const Tensor& dbias,
                          const Tensor& dout, const Tensor& inp, const Tensor& weight,
                          const Tensor& mean, const Tensor& rstd) override {
    bind();
    const char* op = "layernorm_backward";
    const I64 C = weight.numel();
    expect(C > 0 && inp.numel() % C == 0 && dinp.numel() == inp.numel() &&
               dout.numel() == inp.numel() && dweight.numel() == C && dbias.numel() == C,
           op,
           "dinp " + shape_string(dinp.shape) + ", dout " + shape_string(dout.shape) + ", inp " +
               shape_string(inp.shape) + ", weight " + shape_string(weight.shape) +
               " do not agree");
    const I64 N = inp.numel() / C;
    expect(mean.numel() == N && rstd.numel() == N, op,
           "mean " + shape_string(mean.shape) + " and rstd " + shape_string(rstd.shape) +
               " (expected " + std::to_string(N) + " rows)");
    cuda::DeviceScratch::Scope scope(scratch_);
    void* s = scratch_.take(cuda::column_sum_scratch_bytes(N, C));
    cuda::layernorm_backward(out(dinp, op, "dinp"), out(dweight, op, "dweight"),
                             out(dbias, op, "dbias"), in(dout, op, "dout"), in(inp, op, "inp"),
                             in(weight, op, "weight"), in(mean, op, "mean"), in(rstd, op, "rstd"),
                             N, C, s, stream_);
  }

  void matmul_forward(const Tensor& o, const Tensor& inp, const Tensor& weight, const Tensor& bias,
                      bool accumulate_out, const GemmPrecision& precision) override {
    bind();
    cuda::DeviceScratch::Scope scope(scratch_);
    cuda::GemmEnv env = gemm_env();
    cuda::linear_forward(env, o, inp, weight, bias, accumulate_out, precision);
  }
  void matmul_backward(const Tensor& dinp, const Tensor& dweight, const Tensor& dbias,
                       const Tensor& dout, const Tensor& inp, const Tensor& weight,
                       const GemmPrecision& precision) override {
    bind();
    cuda::DeviceScratch::Scope scope(scratch_);
    cuda::GemmEnv env = gemm_env();
    cuda::linear_backward(env, dinp, dweight, dbias, dout, inp, weight, precision);
  }

  void attention_forward(const Tensor& o, const Tensor& probs, const Tensor& qkv,
                         int n_head) override {
    bind();
    cuda::DeviceScratch::Scope scope(scratch_);
    cuda::AttentionEnv env{lt(), scratch_, stream_};
    cuda::attention_forward(env, o, probs, qkv, n_head);
  }
  void attention_backward(const Tensor& dqkv, const Tensor& scratch, const Tensor& dout,
                          const Tensor& qkv, const Tensor& probs, int n_head) override {
    bind();
    cuda::DeviceScratch::Scope scope(scratch_);
    cuda::AttentionEnv env{lt(), scratch_, stream_};
    cuda::attention_backward(env, dqkv, scratch, dout, qkv, probs, n_head);
  }

  void gelu_forward(const Tensor& o, const Tensor& inp) override {
    bind();
    const char* op = "gelu_forward";
    expect_same_size(op, o, inp);
    cuda::gelu_forward(out(o, op, "out"), in(inp, op, "inp"), inp.numel(), stream_);
  }
  void gelu_backward(const Tensor& dinp, const Tensor& inp, const Tensor& dout) override {
    bind();
    const char* op = "gelu_backward";
    expect_same_size(op, dinp, inp);
    expect_same_size(op, dout, inp);
    cuda::gelu_backward(out(dinp, op, "dinp"), in(inp, op, "inp"), in(dout, op, "dout"),
                        inp.numel(), stream_);
  }
  void add(const Tensor& o, const Tensor& a, const Tensor& b) override {
    bind();
    const char* op = "add";
    expect_same_size(op, o, a);
    expect_same_size(op, o, b);
    cuda::add(out(o, op, "out"), in(a, op, "a"), in(b, op, "b"), a.numel(), stream_);
  }
  void mul(const Tensor& o, const Tensor& a, const Tensor& b) override {
    bind();
    const char* op = "mul";
    expect_same_size(op, o, a);
    expect_same_size(op, o, b);
    cuda::mul(out(o, op, "out"), in(a, op, "a"), in(b, op, "b"), a.numel(), stream_);
  }
  void scale(const Tensor& t, double s) override {
    bind();
    cuda::scale(out(t, "scale", "t"), static_cast<float>(s), t.numel(), stream_);
  }

  void gather_rows(const Tensor& o, const Tensor& inp, const Tensor& index,
                   const Tensor& weight) override {
    bind();
    const char* op = "gather_rows";
    const std::int64_t M = index.numel(), C = inp.shape.back();
    expect(o.numel() == M * C && (weight.empty() || weight.numel() == M), op,
           "out " + shape_string(o.shape) + ", weight " + shape_string(weight.shape) +
               " (expected M·C and M elements, M = " + std::to_string(M) + ")");
    cuda::gather_rows(out(o, op, "out"), in(inp, op, "inp"), tokens_of(index, op, "index"),
                      cuda::in_or_null(weight, op, "weight"), M, C, stream_);
  }
  void combine_rows(const Tensor& o, const Tensor& inp, const Tensor& slots,
                    const Tensor& weight) override {
    bind();
    const char* op = "combine_rows";
    const std::int64_t C = inp.shape.back(), M = inp.numel() / C, N = o.numel() / C;
    expect(N > 0 && slots.numel() % N == 0 && (weight.empty() || weight.numel() == M), op,
           "slots " + shape_string(slots.shape) + ", weight " + shape_string(weight.shape) +
               " (expected N·K slots and M weights, N = " + std::to_string(N) +
               ", M = " + std::to_string(M) + ")");
    cuda::combine_rows(out(o, op, "out"), in(inp, op, "inp"), tokens_of(slots, op, "slots"),
                       cuda::in_or_null(weight, op, "weight"), N,
                       static_cast<int>(slots.numel() / N), C, stream_);
  }
  void gathered_row_dot(const Tensor& o, const Tensor& a, const Tensor& index,
                        const Tensor& b) override {
    bind();
    const char* op = "gathered_row_dot";
    const std::int64_t M = index.numel(), C = a.shape.back();
    expect(o.numel() == M && b.numel() == M * C, op,
           "out " + shape_string(o.shape) + ", b " + shape_string(b.shape) +
               " (expected M and M·C elements, M = " + std::to_string(M) + ")");
    cuda::gathered_row_dot(out(o, op, "out"), in(a, op, "a"), tokens_of(index, op, "index"),
                           in(b, op, "b"), M, C, stream_);
  }

  double softmax_cross_entropy_forward(const Tensor& logits, const Tensor& losses,
                                       const Tensor& targets) override {
    bind();
    const char* op = "softmax_cross_entropy_forward";
    expect(!logits.shape.empty() && logits.shape.back() > 0, op,
           "logits " + shape_string(logits.shape) + " (expected (…, V))");
    const I64 V = logits.shape.back(), N = logits.numel() / V;
    expect(losses.numel() == N && targets.numel() == N, op,
           "losses " + shape_string(losses.shape) + " and targets " + shape_string(targets.shape) +
               " (expected " + std::to_string(N) + " rows)");
    const cuda::Out l = out(losses, op, "losses");
    cuda::softmax_cross_entropy_forward(out(logits, op, "logits"), l,
                                        tokens_of(targets, op, "targets"), N, V, stream_);
    cuda::DeviceScratch::Scope scope(scratch_);
    void* s = scratch_.take(cuda::sum_scratch_bytes(N));
    cuda::sum(result_slot(), cuda::as_in(l), N, s, stream_);
    return read_results(1)[0] / static_cast<double>(N);
  }
  void softmax_cross_entropy_backward(const Tensor& probs, const Tensor& targets,
                                      double dloss_scale) override {
    bind();
    const char* op = "softmax_cross_entropy_backward";
    expect(!probs.shape.empty() && probs.shape.back() > 0, op,
           "probs " + shape_string(probs.shape) + " (expected (…, V))");
    const I64 V = probs.shape.back(), N = probs.numel() / V;
    expect(targets.numel() == N, op,
           "targets " + shape_string(targets.shape) + " (expected " + std::to_string(N) + ")");
    cuda::softmax_cross_entropy_backward(out(probs, op, "probs"), tokens_of(targets, op, "targets"),
                                         N, V, static_cast<float>(dloss_scale), stream_);
  }

  double sum_squares(const Tensor& x) override {
    bind();
    cuda::DeviceScratch::Scope scope(scratch_);
    void* s = scratch_.take(cuda::sum_scratch_bytes(x.numel()));
    cuda::sum_squares(result_slot(), in(x, "sum_squares", "x"), x.numel(), s, stream_);
    return read_results(1)[0];
  }

  void adamw_update(const Tensor& params, const Tensor& grads, const Tensor& m, const Tensor& v,
                    const AdamWParams& hp) override {
    bind();
    const char* op = "adamw_update";
    expect_optimizer_state(op, params, {&grads, &m, &v});
    cuda::AdamWScalars s{};
    s.lr = static_cast<float>(hp.lr);
    s.beta1 = static_cast<float>(hp.beta1);
    s.beta2 = static_cast<float>(hp.beta2);
    s.eps = static_cast<float>(hp.eps);
    s.weight_decay = static_cast<float>(hp.weight_decay);
    s.grad_scale = static_cast<float>(hp.grad_scale);
    s.bias_correction1 = static_cast<float>(1.0 / (1.0 - std::pow(hp.beta1, double(hp.step))));
    s.bias_correction2 = static_cast<float>(1.0 / (1.0 - std::pow(hp.beta2, double(hp.step))));
    cuda::adamw_update(f32(params), f32(grads), f32(m), f32(v), params.numel(), s, stream_);
  }
  void sgd_update(const Tensor& params, const Tensor& grads, const Tensor& momentum_buf,
                  const SgdParams& hp) override {
    bind();
    const char* op = "sgd_update";
    expect_optimizer_state(op, params, {&grads});
    expect(momentum_buf.empty() ? hp.momentum == 0 : momentum_buf.numel() == params.numel(), op,
           "the momentum buffer must be like params (empty only when momentum = 0)");
    float* buf = nullptr;
    if (hp.momentum != 0) {
      expect_f32(momentum_buf, op, "momentum_buf");
      buf = f32(momentum_buf);
    }
    cuda::SgdScalars s{static_cast<float>(hp.lr), static_cast<float>(hp.momentum),
                       static_cast<float>(hp.weight_decay), static_cast<float>(hp.grad_scale)};
    cuda::sgd_update(f32(params), f32(grads), buf, params.numel(), s, stream_);
  }
  LambNorms lamb_direction(const Tensor& update, const Tensor& params, const Tensor& grads,
                           const Tensor& m, const Tensor& v, const LambParams& hp) override {
    bind();
    const char* op = "lamb_direction";
    expect_optimizer_state(op, params, {&update, &grads, &m, &v});
    cuda::LambScalars s{};
    s.beta1 = static_cast<float>(hp.beta1);
    s.beta2 = static_cast<float>(hp.beta2);
    // 1 − β is formed in double, as the CPU backend does (1 − float(0.999) is 1.3e-5 off).
    s.one_minus_beta1 = static_cast<float>(1.0 - hp.beta1);
    s.one_minus_beta2 = static_cast<float>(1.0 - hp.beta2);
    s.eps = static_cast<float>(hp.eps);
    s.weight_decay = static_cast<float>(hp.weight_decay);
    s.grad_scale = static_cast<float>(hp.grad_scale);
    s.bias_correction1 = static_cast<float>(1.0 / (1.0 - std::pow(hp.beta1, double(hp.step))));
    s.bias_correction2 = static_cast<float>(1.0 / (1.0 - std::pow(hp.beta2, double(hp.step))));
    cuda::DeviceScratch::Scope scope(scratch_);
    const I64 n = params.numel();
    void* sc = scratch_.take(cuda::lamb_scratch_bytes(n));
    cuda::lamb_direction(f32(update), f32(params), f32(grads), f32(m), f32(v), n, s, result_slot(),
                         sc, stream_);
    const double* r = read_results(2);
    return LambNorms{r[0], r[1]};
  }
  void axpy(const Tensor& y, double alpha, const Tensor& x) override {
    bind();
    const char* op = "axpy";
    expect_same_size(op, y, x);
    cuda::axpy(out(y, op, "y"), static_cast<float>(alpha), in(x, op, "x"), y.numel(), stream_);
  }

 private:
  void bind() const { TB_CUDA_CHECK(cudaSetDevice(device_)); }
  static cudaStream_t make_stream(int device) {
    TB_CUDA_CHECK(cudaSetDevice(device));
    cudaStream_t s = nullptr;
    TB_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    return s;
  }

  static void expect_same_size(const char* op, const Tensor& a, const Tensor& b) {
    expect(
        a.numel() == b.numel(), op,
        "tensors " + shape_string(a.shape) + " and " + shape_string(b.shape) + " differ in size");
  }
  static void expect_optimizer_state(const char* op, const Tensor& params,
                                     std::initializer_list<const Tensor*> others) {
    expect_f32(params, op, "params");
    for (const Tensor* t : others) {
      expect_f32(*t, op, "an optimizer tensor");
      expect(
          t->numel() == params.numel(), op,
          "tensor " + shape_string(t->shape) + " is not like params " + shape_string(params.shape));
    }
  }
  static float* f32(const Tensor& t) { return static_cast<float*>(t.ptr); }

  // The cuBLASLt context and its workspace, made at the first GEMM (so that a backend with a
  // small memory limit can exist, and fail only when it multiplies).
  cuda::LtContext& lt() {
    if (!lt_) {
      lt_workspace_ = allocate(cuda::LtContext::kWorkspaceBytes, MemoryCategory::workspace,
                               "cuBLASLt workspace");
      lt_ = std::make_unique<cuda::LtContext>(stream_, lt_workspace_.data(),
                                              cuda::LtContext::kWorkspaceBytes);
    }
    return *lt_;
  }
  cuda::GemmEnv gemm_env() {
    cuda::LtContext& l = lt();
    if (!fp8_scales_)
      fp8_scales_ = allocate(2 * sizeof(float), MemoryCategory::workspace, "FP8 scales");
    return cuda::GemmEnv{l,        scratch_, amax_,        static_cast<float*>(fp8_scales_.data()),
                         stream_,  device_,  device_name_, cc_major_,
                         cc_minor_};
  }
  // Device doubles that reductions write and read_results() brings back.
  double* result_slot() {
    if (!device_result_) {
      device_result_ = allocate(4 * sizeof(double), MemoryCategory::workspace, "reduction results");
    }
    return static_cast<double*>(device_result_.data());
  }
  const double* read_results(int n) {
    TB_CUDA_CHECK(cudaMemcpyAsync(host_result_, device_result_.data(), n * sizeof(double),
                                  cudaMemcpyDeviceToHost, stream_));
    TB_CUDA_CHECK(cudaStreamSynchronize(stream_));
    return host_result_;
  }

  int device_;
  std::string device_name_, label_;
  int cc_major_ = 0, cc_minor_ = 0;
  // Destroyed last: every Buffer below returns its memory to the pool and the tracker.
  MemoryTracker tracker_;
  cuda::DevicePool pool_;
  cudaStream_t stream_ = nullptr;
  cuda::DeviceScratch scratch_;
  cuda::AmaxSlots amax_;
  Buffer lt_workspace_;
  std::unique_ptr<cuda::LtContext> lt_;
  Buffer fp8_scales_;
  Buffer device_result_;
  double* host_result_ = nullptr;  // pinned
  static constexpr std::size_t kStagingBytes = std::size_t{4} << 20;
  void* staging_ = nullptr;  // pinned, for copy_from_host
  cudaEvent_t staging_done_ = nullptr;
};

}  // namespace

bool cuda_backend_built() { return true; }

std::unique_ptr<Backend> make_cuda_backend(int device, std::size_t memory_limit_bytes) {
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) {
    cudaGetLastError();
    throw std::runtime_error(std::string("no usable CUDA device: ") + cudaGetErrorString(status));
  }
  if (device < 0 || device >= count) {
    throw std::runtime_error("CUDA device " + std::to_string(device) + " does not exist (" +
                             std::to_string(count) + " visible)");
  }
  return std::make_unique<CudaBackend>(device, memory_limit_bytes);
}

void* cuda_stream_of(Backend& backend) {
  auto* b = dynamic_cast<CudaBackend*>(&backend);
  return b ? static_cast<void*>(b->stream()) : nullptr;
}

}  // namespace tb
