#!/usr/bin/python3
"""trainbench's GPT in PyTorch (fp32 or bf16 on the CPU; fp32, tf32, bf16 or fp16 on a CUDA GPU): the
peer for speed comparisons and the independent reference for trainbench's evaluation numbers.

The same model as harness/model/gpt.cpp (docs/weights.md): token + learned position
embeddings; pre-LayerNorm blocks (ln1 -> qkv linear -> causal multi-head attention -> proj
linear + residual; ln2 -> fc (4C) -> GELU (tanh) -> proj + residual); final LayerNorm; LM head
tied to the token embedding; mean cross-entropy. LayerNorm eps 1e-5. GPT-2 initialisation:
N(0, 0.02), residual projections N(0, 0.02/sqrt(2L)), biases 0, LayerNorm weights 1.
AdamW: beta1 0.9, beta2 0.95, eps 1e-8, weight decay only on 2-D tensors, global gradient-norm
clipping. Parameter names equal trainbench's tensor names, so a trainbench safetensors file
loads by name.

PyTorch 1.13 (Debian's python3-torch) has no scaled_dot_product_attention; attention is the
explicit form softmax(mask(q.k^T / sqrt(d_head))).v.

On a GPU (--device cuda) the precision follows trainbench's modes (harness/model/precision.h):
fp32 (no TF32), tf32 (TF32 matmuls), bf16 and fp16 (torch.autocast over fp32 master weights, as
trainbench keeps them; fp16 with dynamic loss scaling by torch.cuda.amp.GradScaler). Step times
are taken after torch.cuda.synchronize(). On the CPU, fp32 or bf16: torch.autocast(device_type
="cpu", dtype=torch.bfloat16) over fp32 master weights, whose bf16 matmuls run through oneDNN
(mkldnn) on AVX512-BF16/AMX CPUs — PyTorch's own CPU mixed precision.

Run with /usr/bin/python3 (Debian's interpreter, which has torch):
  /usr/bin/python3 bench/peers/gpt_torch.py --layers 4 --d-model 256 --heads 8 --seq 256 \
      --vocab 256 --batch 8 --steps 10 --warmup 2 --threads 2 --json torch.json
  /usr/bin/python3 bench/peers/gpt_torch.py --load-weights w.safetensors --eval-data tokens.bin --seq 64
  python3 bench/peers/gpt_torch.py --device cuda --dtype bf16 --layers 24 --d-model 2048 \
      --heads 16 --seq 2048 --vocab 50304 --batch 4 --steps 20 --warmup 3
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import struct
import sys
import time
from dataclasses import asdict, dataclass

import contextlib

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

LN_EPS = 1e-5
DTYPES = ("fp32", "tf32", "bf16", "fp16")  # trainbench's precision modes that PyTorch has too
CPU_DTYPES = ("fp32", "bf16")  # PyTorch 1.13's CPU autocast has bf16 only


@dataclass
class GptConfig:
    n_layer: int
    d_model: int
    n_head: int
    seq_len: int
    vocab: int

    def validate(self) -> None:
        for k, v in asdict(self).items():
            if v <= 0:
                raise ValueError(f"{k} = {v} (expected > 0)")
        if self.d_model % self.n_head != 0:
            raise ValueError(f"d_model = {self.d_model} is not a multiple of n_head = {self.n_head}")

    def parameter_count(self) -> int:
        c = self.d_model
        return self.vocab * c + self.seq_len * c + self.n_layer * (12 * c * c + 13 * c) + 2 * c

    def model_flops_per_token(self) -> float:
        """6N + 12·L·d·T, N without the position table (as trainbench's model_flops_per_token)."""
        n = self.parameter_count() - self.seq_len * self.d_model
        return 6.0 * n + 12.0 * self.n_layer * self.d_model * self.seq_len


# ---- model ----


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: GptConfig):
        super().__init__()
        self.n_head = cfg.n_head
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model)
        mask = torch.tril(torch.ones(cfg.seq_len, cfg.seq_len, dtype=torch.bool))
        self.register_buffer("mask", mask.view(1, 1, cfg.seq_len, cfg.seq_len), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        hs = C // self.n_head
        q, k, v = self.qkv(x).split(C, dim=2)  # [q | k | v], head h at columns h·hs … (h+1)·hs
        q = q.view(B, T, self.n_head, hs).transpose(1, 2)  # (B, NH, T, hs)
        k = k.view(B, T, self.n_head, hs).transpose(1, 2)
        v = v.view(B, T, self.n_head, hs).transpose(1, 2)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hs))
        att = att.masked_fill(~self.mask[:, :, :T, :T], float("-inf"))
        att = F.softmax(att, dim=-1)
        y = (att @ v).transpose(1, 2).contiguous().view(B, T, C)
        return self.proj(y)


class Mlp(nn.Module):
    def __init__(self, cfg: GptConfig):
        super().__init__()
        self.fc = nn.Linear(cfg.d_model, 4 * cfg.d_model)
        self.proj = nn.Linear(4 * cfg.d_model, cfg.d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(F.gelu(self.fc(x), approximate="tanh"))


class Block(nn.Module):
    def __init__(self, cfg: GptConfig):
        super().__init__()
        self.ln1 = nn.LayerNorm(cfg.d_model, eps=LN_EPS)
        self.attn = CausalSelfAttention(cfg)
        self.ln2 = nn.LayerNorm(cfg.d_model, eps=LN_EPS)
        self.mlp = Mlp(cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class Gpt(nn.Module):
    """Parameter names: wte, wpe, blocks.{i}.…, lnf.… — trainbench's tensor names."""

    def __init__(self, cfg: GptConfig):
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        self.wte = nn.Parameter(torch.empty(cfg.vocab, cfg.d_model))
        self.wpe = nn.Parameter(torch.empty(cfg.seq_len, cfg.d_model))
        self.blocks = nn.ModuleList([Block(cfg) for _ in range(cfg.n_layer)])
        self.lnf = nn.LayerNorm(cfg.d_model, eps=LN_EPS)

    def init_weights(self, seed: int = 1) -> None:
        """GPT-2 initialisation (same distributions as trainbench; not the same draws)."""
        g = torch.Generator().manual_seed(seed)
        residual_std = 0.02 / math.sqrt(2 * self.cfg.n_layer)
        with torch.no_grad():
            for name, p in self.named_parameters():
                if name.endswith(("ln1.weight", "ln2.weight")) or name == "lnf.weight":
                    p.fill_(1.0)
                elif p.dim() == 2:
                    sd = residual_std if name.endswith(("attn.proj.weight", "mlp.proj.weight")) else 0.02
                    p.normal_(0.0, sd, generator=g)
                else:
                    p.zero_()

    def logits(self, idx: torch.Tensor) -> torch.Tensor:
        B, T = idx.shape
        if T > self.cfg.seq_len:
            raise ValueError(f"sequence of {T} tokens exceeds the context {self.cfg.seq_len}")
        x = self.wte[idx] + self.wpe[:T].unsqueeze(0)
        for block in self.blocks:
            x = block(x)
        x = self.lnf(x)
        return x @ self.wte.t()  # LM head tied to the token embedding

    def forward(self, idx: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Mean next-token cross-entropy over all B·T predictions."""
        logits = self.logits(idx)
        return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.reshape(-1))

    def token_losses(self, idx: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        logits = self.logits(idx)
        return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.reshape(-1), reduction="none")


def build_model(cfg: GptConfig, seed: int = 1) -> Gpt:
    model = Gpt(cfg)
    model.init_weights(seed)
    return model


def build_optimizer(model: Gpt, lr: float, weight_decay: float = 0.1) -> torch.optim.AdamW:
    """AdamW with trainbench's hyper-parameters; decay only on 2-D tensors."""
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.95), eps=1e-8)


class Precision:
    """How a step runs on `device` in trainbench's precision mode `dtype` (see DTYPES): the
    autocast context of the forward, and the loss scaler of fp16 (None otherwise)."""

    def __init__(self, device: torch.device, dtype: str = "fp32"):
        if dtype not in DTYPES:
            raise ValueError(f"dtype '{dtype}' (expected one of {', '.join(DTYPES)})")
        if device.type != "cuda" and dtype not in CPU_DTYPES:
            raise ValueError(f"dtype '{dtype}' on the CPU (expected one of {', '.join(CPU_DTYPES)}; "
                             "tf32 and fp16 need --device cuda)")
        self.device, self.dtype = device, dtype
        if device.type == "cuda":
            # fp32 means fp32: TF32 only when asked for (PyTorch's default for matmuls since 1.12).
            torch.backends.cuda.matmul.allow_tf32 = dtype == "tf32"
            torch.backends.cudnn.allow_tf32 = dtype == "tf32"
        self.scaler = torch.cuda.amp.GradScaler() if dtype == "fp16" else None

    def autocast(self):
        if self.dtype in ("bf16", "fp16"):
            return torch.autocast(device_type=self.device.type,
                                  dtype=torch.bfloat16 if self.dtype == "bf16" else torch.float16)
        return contextlib.nullcontext()

    def synchronize(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)


def train_step(model: Gpt, opt: torch.optim.Optimizer, inputs: torch.Tensor, targets: torch.Tensor,
               grad_clip: float = 1.0, precision: Precision | None = None) -> tuple[float, float]:
    """One step: forward, backward, global-norm clip, AdamW. Returns (loss, grad norm)."""
    scaler = precision.scaler if precision else None
    opt.zero_grad(set_to_none=True)
    with precision.autocast() if precision else contextlib.nullcontext():
        loss = model(inputs, targets)
    if scaler is not None:
        scaler.scale(loss).backward()
        scaler.unscale_(opt)  # clip the true gradients
    else:
        loss.backward()
    if grad_clip > 0:
        norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip))
    else:
        norm = float(torch.sqrt(sum((p.grad.double() ** 2).sum() for p in model.parameters())))
    if scaler is not None:
        scaler.step(opt)  # skipped when the gradients are not finite
        scaler.update()
    else:
        opt.step()
    return float(loss), norm


# ---- safetensors (trainbench's weights files), parsed by hand ----

_DTYPES = {"F32": np.dtype("<f4"), "F64": np.dtype("<f8")}


def read_safetensors(path: str) -> tuple[dict, dict[str, np.ndarray]]:
    """(metadata, tensors): 8-byte little-endian header length, JSON header, raw data."""
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise ValueError(f"{path}: {len(raw)} bytes (expected an 8-byte header length)")
    (n,) = struct.unpack("<Q", raw[:8])
    if n > len(raw) - 8:
        raise ValueError(f"{path}: header length {n} exceeds the file")
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    data = memoryview(raw)[8 + n:]
    meta = header.pop("__metadata__", {})
    tensors = {}
    for name, e in header.items():
        if e["dtype"] not in _DTYPES:
            raise ValueError(f"{path}: tensor '{name}' has dtype {e['dtype']} (expected F32 or F64)")
        dt = _DTYPES[e["dtype"]]
        b, end = e["data_offsets"]
        shape = tuple(e["shape"])
        if end - b != int(np.prod(shape, dtype=np.int64)) * dt.itemsize or end > len(data):
            raise ValueError(f"{path}: tensor '{name}' data_offsets [{b}, {end}) do not fit shape {shape}")
        tensors[name] = np.frombuffer(data[b:end], dtype=dt).reshape(shape)
    return meta, tensors


def write_safetensors(path: str, model: Gpt, name: str = "pytorch") -> None:
    """Writes the model in trainbench's layout (F32, __metadata__ with the config)."""
    c = model.cfg
    header: dict = {"__metadata__": {"format": "trainbench", "name": name, "n_layer": str(c.n_layer),
                                     "d_model": str(c.d_model), "n_head": str(c.n_head),
                                     "seq_len": str(c.seq_len), "vocab": str(c.vocab)}}
    blobs, off = [], 0
    for pname, p in model.named_parameters():
        a = p.detach().cpu().numpy().astype("<f4")
        header[pname] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + a.nbytes]}
        blobs.append(a.tobytes())
        off += a.nbytes
    text = json.dumps(header).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)


def config_from_metadata(meta: dict) -> GptConfig:
    try:
        return GptConfig(**{k: int(meta[k]) for k in ("n_layer", "d_model", "n_head", "seq_len", "vocab")})
    except KeyError as e:
        raise ValueError(f"__metadata__ lacks {e} (expected a trainbench weights file)") from None


def load_model(path: str) -> Gpt:
    """A model built from a trainbench safetensors file's metadata, with its weights."""
    meta, tensors = read_safetensors(path)
    model = Gpt(config_from_metadata(meta))
    load_weights(model, tensors)
    return model


def load_weights(model: Gpt, tensors: dict[str, np.ndarray]) -> None:
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name not in tensors:
                raise ValueError(f"weights lack tensor '{name}'")
            a = tensors[name]
            if tuple(a.shape) != tuple(p.shape):
                raise ValueError(f"tensor '{name}' has shape {tuple(a.shape)} (expected {tuple(p.shape)})")
            p.copy_(torch.from_numpy(np.array(a, dtype=np.float32)))  # a copy: frombuffer is read-only


# ---- evaluation: trainbench eval's windows (docs/weights.md, "Evaluation") ----


def read_tokens(path: str, fmt: str = "bytes") -> np.ndarray:
    raw = np.fromfile(path, dtype=np.uint8)
    if fmt == "bytes":
        return raw.astype(np.int64)
    if fmt == "u16":
        if raw.size % 2:
            raise ValueError(f"{path}: odd byte count for u16 tokens")
        return raw.view("<u2").astype(np.int64)
    raise ValueError(f"data format '{fmt}' (expected bytes or u16)")


@torch.no_grad()
def mean_window_loss(model: Gpt, tokens: np.ndarray, seq: int, windows: int = 0, batch: int = 8) -> float:
    """Window i = tokens[i·(T+1), (i+1)·(T+1)); inputs its first T, targets its last T; the mean
    of -ln p(target) over all N·T predictions, summed in float64."""
    available = len(tokens) // (seq + 1)
    n = windows if windows > 0 else available
    if n == 0 or n > available:
        raise ValueError(f"{available} windows of seq+1 = {seq + 1} tokens available (expected >= {max(n, 1)})")
    w = torch.from_numpy(tokens[: n * (seq + 1)].reshape(n, seq + 1))
    device = next(model.parameters()).device
    total = 0.0
    for i in range(0, n, batch):
        chunk = w[i:i + batch].to(device)
        total += float(model.token_losses(chunk[:, :-1], chunk[:, 1:]).double().sum())
    return total / (n * seq)


# ---- timed training loop ----


def summarize(xs: list[float]) -> dict:
    s = sorted(xs)
    q = lambda f: s[min(len(s) - 1, max(0, round(f * (len(s) - 1))))]  # noqa: E731
    mean = statistics.fmean(xs)
    sd = statistics.stdev(xs) if len(xs) > 1 else 0.0
    return {"n": len(xs), "median": statistics.median(xs), "p10": q(0.1), "p90": q(0.9), "mean": mean,
            "stddev": sd, "cv": sd / mean if mean else 0.0, "min": s[0], "max": s[-1]}


def device_description(device: torch.device) -> dict:
    if device.type != "cuda":
        return {"kind": "cpu"}
    p = torch.cuda.get_device_properties(device)
    return {"kind": "cuda", "name": p.name, "sm_count": p.multi_processor_count,
            "compute_capability": f"{p.major}.{p.minor}", "memory_bytes": p.total_memory,
            "cuda_runtime": torch.version.cuda}


def benchmark_training(cfg: GptConfig, batch: int, steps: int, warmup: int, lr: float, weight_decay: float,
                       grad_clip: float, seed: int, device: str = "cpu", dtype: str = "fp32") -> dict:
    """warmup + steps training steps on uniform random tokens; per-step wall time (on a GPU,
    from a synchronised start to a synchronised end of the step)."""
    dev = torch.device(device)
    precision = Precision(dev, dtype)
    torch.manual_seed(seed)
    model = build_model(cfg, seed).to(dev)  # fp32 master weights on every device
    model.train()
    opt = build_optimizer(model, lr, weight_decay)
    g = torch.Generator().manual_seed(seed)
    step_s, losses = [], []
    for i in range(warmup + steps):
        w = torch.randint(0, cfg.vocab, (batch, cfg.seq_len + 1), generator=g).to(dev)
        precision.synchronize()
        t0 = time.perf_counter()
        loss, _ = train_step(model, opt, w[:, :-1], w[:, 1:], grad_clip, precision)
        precision.synchronize()  # float(loss) already waits; the optimizer's kernels may not have
        dt = time.perf_counter() - t0
        losses.append(loss)
        if i >= warmup:
            step_s.append(dt)
    st = summarize(step_s)
    tokens_per_s = batch * cfg.seq_len / st["median"]
    return {
        "schema_version": 1,
        "kind": "step",
        "framework": "pytorch",
        "device": device_description(dev),
        "model": {"proxy": {**asdict(cfg), "d_head": cfg.d_model // cfg.n_head,
                            "parameters": cfg.parameter_count(),
                            "model_flops_per_token": cfg.model_flops_per_token()}},
        "training": {"micro_batch": batch, "warmup_steps": warmup, "timed_steps": steps, "seed": seed, "lr": lr,
                     "weight_decay": weight_decay, "grad_clip": grad_clip, "precision": dtype,
                     "data": "uniform random tokens"},
        "timing": {"step_s": st},
        "throughput": {"tokens_per_s": tokens_per_s,
                       "model_flops_per_s": tokens_per_s * cfg.model_flops_per_token()},
        "loss": {"train_per_step": losses},
        "environment": {"torch_version": torch.__version__, "python": platform.python_version(),
                        "threads": torch.get_num_threads(), "interop_threads": torch.get_num_interop_threads(),
                        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
                        "hostname": platform.node(), "command_line": " ".join(sys.argv)},
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--d-model", type=int, default=256)
    p.add_argument("--heads", type=int, default=8)
    p.add_argument("--seq", type=int, default=256, help="context length (eval: window length)")
    p.add_argument("--vocab", type=int, default=256)
    p.add_argument("--batch", type=int, default=8, help="sequences per step (eval: windows per forward)")
    p.add_argument("--steps", type=int, default=10, help="timed training steps")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    p.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: default)")
    p.add_argument("--lr", type=float, default=6e-4)
    p.add_argument("--weight-decay", type=float, default=0.1)
    p.add_argument("--grad-clip", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json", help="write the results as JSON to this file")
    p.add_argument("--load-weights", help="evaluate these trainbench weights (with --eval-data)")
    p.add_argument("--eval-data", help="token file for --load-weights")
    p.add_argument("--data-format", default="bytes", choices=["bytes", "u16"])
    p.add_argument("--windows", type=int, default=0, help="eval windows (0: every complete window)")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"],
                   help="where the model runs (cuda: the current CUDA device)")
    p.add_argument("--dtype", default="fp32", choices=list(DTYPES),
                   help="precision mode (tf32 and fp16 need --device cuda)")
    a = p.parse_args(argv)
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    if a.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda: PyTorch sees no CUDA device (torch.cuda.is_available() is False)")
    if a.device == "cpu" and a.dtype not in CPU_DTYPES:
        p.error(f"--dtype {a.dtype} needs --device cuda (the CPU peer runs {' or '.join(CPU_DTYPES)})")

    if a.load_weights or a.eval_data:
        if not (a.load_weights and a.eval_data):
            p.error("--load-weights and --eval-data go together")
        model = load_model(a.load_weights).to(torch.device(a.device))
        loss = mean_window_loss(model, read_tokens(a.eval_data, a.data_format), a.seq, a.windows, a.batch)
        print(f"eval  {a.seq}+1-token windows from '{a.eval_data}'  mean loss {loss:.6f} nats/token")
        if a.json:
            with open(a.json, "w") as f:
                json.dump({"kind": "eval", "framework": "pytorch", "loss": loss}, f, indent=2)
        return 0

    for flag, v in (("--batch", a.batch), ("--steps", a.steps)):
        if v <= 0:
            p.error(f"{flag} = {v} (expected > 0)")
    cfg = GptConfig(a.layers, a.d_model, a.heads, a.seq, a.vocab)
    try:
        cfg.validate()
    except ValueError as e:
        p.error(str(e))
    r = benchmark_training(cfg, a.batch, a.steps, max(0, a.warmup), a.lr, a.weight_decay, a.grad_clip, a.seed,
                           a.device, a.dtype)
    st = r["timing"]["step_s"]
    print(f"model      pytorch {torch.__version__}  L={cfg.n_layer} d={cfg.d_model} heads={cfg.n_head} "
          f"T={cfg.seq_len} V={cfg.vocab}  params={cfg.parameter_count() / 1e6:.3f}M")
    where = (f"{torch.get_num_threads()} threads" if a.device == "cpu"
             else f"{r['device']['name']}, {a.dtype}")
    print(f"step time  median {st['median'] * 1e3:.2f} ms  p10 {st['p10'] * 1e3:.2f}  p90 {st['p90'] * 1e3:.2f}  "
          f"cv {st['cv'] * 100:.1f}%  ({st['n']} timed steps, {where})")
    print(f"throughput {r['throughput']['tokens_per_s']:.0f} tokens/s  "
          f"{r['throughput']['model_flops_per_s'] / 1e9:.2f} GFLOP/s (model FLOPs, 6N+12LdT)")
    losses = r["loss"]["train_per_step"]
    print(f"loss       first {losses[0]:.4f}  last {losses[-1]:.4f}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(r, f, indent=2)
            f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
