#include "op_timer.h"

#include <algorithm>
#include <chrono>
#include <functional>
#include <memory>
#include <stdexcept>
#include <vector>

#include "common/rng.h"
#include "model/precision.h"

namespace tb {

namespace {

// Tensors of the operation, allocated as workspace and filled with small random values (or
// valid token ids), released with the timer.
struct Arena {
  Backend& be;
  std::vector<Buffer> buffers;
  Rng rng{11};

  Tensor make(DType t, std::vector<std::int64_t> shape, double scale = 0.02) {
    Tensor x(nullptr, t, std::move(shape));
    buffers.push_back(be.allocate(x.bytes(), MemoryCategory::workspace, "calibration"));
    x.ptr = buffers.back().data();
    if (t == DType::i32) {
      std::vector<std::int32_t> ids(static_cast<std::size_t>(x.numel()));
      for (auto& v : ids) v = 0;
      be.copy_from_host(x, ids.data());
      return x;
    }
    std::vector<float> host(static_cast<std::size_t>(x.numel()));
    for (auto& v : host) v = static_cast<float>(scale * rng.normal());
    Tensor f32(nullptr, DType::f32, x.shape);
    Buffer staging = be.allocate(f32.bytes(), MemoryCategory::workspace, "calibration staging");
    f32.ptr = staging.data();
    be.copy_from_host(f32, host.data());
    if (t == DType::f32) {
      be.copy(x, f32);
    } else {
      be.convert(x, f32);
    }
    return x;
  }
};

}  // namespace

struct TimedOp::Impl {
  Backend& be;
  Arena arena;
  std::function<void()> call;
};

TimedOp::TimedOp(Backend& be, const OpCost& o, const std::string& precision)
    : impl_(std::make_unique<Impl>(Impl{be, Arena{be, {}}, {}})) {
  const PrecisionMode mode = parse_precision_mode(precision);
  const DType act = activation_dtype(mode);
  const DType f32 = DType::f32;
  // fp8 mode's LM head runs in bf16 (model/gpt.cpp gemm_precision).
  const bool head = o.role == "lm_head";
  const PrecisionMode gemm_mode = head && mode == PrecisionMode::fp8 ? PrecisionMode::bf16 : mode;
  GemmPrecision gp;
  gp.inp.format = gp.weight.format = forward_gemm_format(gemm_mode);
  gp.dout.format = gradient_gemm_format(gemm_mode);
  const auto& d = o.dims;
  Arena& a = impl_->arena;
  std::function<void()>& call = impl_->call;
  if (o.op == "matmul_forward" || o.op == "matmul_backward") {
    const std::int64_t n = d[0], in = d[1], out = d[2];
    Tensor x = a.make(act, {n, in}), w = a.make(act, {out, in}), bias = a.make(f32, {out});
    Tensor y = a.make(head ? f32 : act, {n, out});
    if (o.op == "matmul_forward") {
      call = [=, &be] { be.matmul_forward(y, x, w, head ? Tensor{} : bias, false, gp); };
    } else {
      Tensor dx = a.make(act, {n, in}), dw = a.make(f32, {out, in}), db = a.make(f32, {out});
      call = [=, &be] { be.matmul_backward(dx, dw, head ? Tensor{} : db, y, x, w, gp); };
    }
  } else if (o.op == "attention_forward" || o.op == "attention_backward") {
    const std::int64_t B = d[0], NH = d[1], T = d[2], C = d[1] * d[3];
    Tensor qkv = a.make(act, {B, T, 3 * C}, 1.0), probs = a.make(act, {B, NH, T, T});
    Tensor out = a.make(act, {B, T, C});
    be.attention_forward(out, probs, qkv, int(NH));  // valid probabilities for backward
    if (o.op == "attention_forward") {
      call = [=, &be] { be.attention_forward(out, probs, qkv, int(NH)); };
    } else {
      Tensor dqkv = a.make(act, {B, T, 3 * C}), scratch = a.make(act, {B, NH, T, T});
      call = [=, &be] { be.attention_backward(dqkv, scratch, out, qkv, probs, int(NH)); };
    }
  } else if (o.op == "layernorm_forward" || o.op == "layernorm_backward") {
    const std::int64_t n = d[0], C = d[1];
    Tensor x = a.make(act, {n, C}, 1.0), y = a.make(act, {n, C});
    Tensor mean = a.make(f32, {n}), rstd = a.make(f32, {n});
    Tensor w = a.make(f32, {C}, 1.0), b = a.make(f32, {C});
    be.layernorm_forward(y, mean, rstd, x, w, b);
    if (o.op == "layernorm_forward") {
      call = [=, &be] { be.layernorm_forward(y, mean, rstd, x, w, b); };
    } else {
      Tensor dx = a.make(act, {n, C}), dw = a.make(f32, {C}), db = a.make(f32, {C});
      call = [=, &be] { be.layernorm_backward(dx, dw, db, y, x, w, mean, rstd); };
    }
  } else if (o.op == "gelu_forward" || o.op == "gelu_backward") {
    Tensor x = a.make(act, {d[0]}, 1.0), y = a.make(act, {d[0]});
    if (o.op == "gelu_forward") {
      call = [=, &be] { be.gelu_forward(y, x); };
    } else {
      Tensor dy = a.make(act, {d[0]});
      call = [=, &be] { be.gelu_backward(y, x, dy); };
    }
  } else if (o.op == "add" || o.op == "copy") {
    Tensor x = a.make(act, {d[0]}), y = a.make(act, {d[0]}), z = a.make(act, {d[0]});
    if (o.op == "add") {
      call = [=, &be] { be.add(z, x, y); };
    } else {
      call = [=, &be] { be.copy(z, x); };
    }
  } else if (o.op == "convert") {
    Tensor x = a.make(f32, {d[0]}), y = a.make(activation_dtype(mode), {d[0]});
    call = [=, &be] { be.convert(y, x); };
  } else if (o.op == "embedding_forward" || o.op == "embedding_backward") {
    const std::int64_t n = d[0], C = d[1];
    Tensor tokens = a.make(DType::i32, {1, n}), out = a.make(act, {1, n, C});
    Tensor wte = a.make(f32, {1, C}), wpe = a.make(f32, {n, C});
    if (o.op == "embedding_forward") {
      call = [=, &be] { be.embedding_forward(out, tokens, wte, wpe); };
    } else {
      call = [=, &be] { be.embedding_backward(wte, wpe, out, tokens); };
    }
  } else if (o.op == "softmax_ce_forward" || o.op == "softmax_ce_backward") {
    const std::int64_t n = d[0], V = d[1];
    Tensor logits = a.make(f32, {n, V}), losses = a.make(f32, {n});
    Tensor targets = a.make(DType::i32, {n});
    if (o.op == "softmax_ce_forward") {
      call = [=, &be] { be.softmax_cross_entropy_forward(logits, losses, targets); };
    } else {
      call = [=, &be] { be.softmax_cross_entropy_backward(logits, targets, 1e-3); };
    }
  } else if (o.op == "fill_zero" || o.op == "sum_squares" || o.op == "adamw_update") {
    Tensor p = a.make(f32, {d[0]});
    if (o.op == "fill_zero") {
      call = [=, &be] { be.fill_zero(p); };
    } else if (o.op == "sum_squares") {
      call = [=, &be] { (void)be.sum_squares(p); };
    } else {
      Tensor g = a.make(f32, {d[0]}), m = a.make(f32, {d[0]}), v = a.make(f32, {d[0]}, 0.0);
      AdamWParams hp;
      hp.lr = 1e-4;
      call = [=, &be] { be.adamw_update(p, g, m, v, hp); };
    }
  } else {
    throw std::invalid_argument("calibration: operation '" + o.op +
                                "' (expected one of op_costs')");
  }
  call();  // the first call: warm-up (and a failure here names the operation's shape)
  be.synchronize();
}

TimedOp::~TimedOp() = default;

void TimedOp::run() {
  impl_->call();
  impl_->be.synchronize();
}

OpTiming TimedOp::time(double min_seconds, int min_repeats) {
  using clock = std::chrono::steady_clock;
  std::vector<double> times;
  const auto start = clock::now();
  while (int(times.size()) < min_repeats ||
         std::chrono::duration<double>(clock::now() - start).count() < min_seconds) {
    const auto t0 = clock::now();
    run();
    times.push_back(std::chrono::duration<double>(clock::now() - t0).count());
    if (times.size() >= 1000) break;
  }
  double total = 0;
  for (const double t : times) total += t;
  std::sort(times.begin(), times.end());
  return {times[times.size() / 2], total / double(times.size()), int(times.size())};
}

OpTiming time_operation(Backend& be, const OpCost& o, const std::string& precision,
                        double min_seconds, int min_repeats) {
  return TimedOp(be, o, precision).time(min_seconds, min_repeats);
}

}  // namespace tb
