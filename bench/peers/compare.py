#!/usr/bin/python3
"""Training throughput of trainbench's CPU step against the same model in PyTorch
(bench/peers/gpt_torch.py), on this machine, at equal thread counts.

For each configuration and thread count the two run ALTERNATELY — trainbench, PyTorch,
trainbench, PyTorch, … for --rounds rounds — so that drift in the machine's state (other
load, frequency, thermal) hits both alike; each run reports its median step time over
--steps timed steps after --warmup untimed ones, and the table shows the median over rounds.
OMP_NUM_THREADS is set to the thread count for both processes, and each also gets the count
as a flag (trainbench --threads, torch.set_num_threads).

trainbench trains on its synthetic Markov data and PyTorch on uniform random tokens: the
work per step does not depend on the token values.

--precision fp32,bf16 runs each precision too: trainbench's `--precision bf16` (bf16 GEMMs
through oneDNN where the CPU has bf16 units, docs/precision.md) against PyTorch's CPU
autocast to bf16 (its matmuls through oneDNN too), and the table adds each side's
bf16/fp32 speedup.

  /usr/bin/python3 bench/peers/compare.py                       # default configs, threads 1 and 2
  /usr/bin/python3 bench/peers/compare.py --precision fp32,bf16  # and the bf16 step of each
  /usr/bin/python3 bench/peers/compare.py --rounds 1 --steps 2 --warmup 1 --threads 2 \
      --config d=256,h=8,L=2,T=128,B=4,V=256 --out /tmp/cmp
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
GPT_TORCH = Path(__file__).resolve().with_name("gpt_torch.py")


@dataclass(frozen=True)
class Config:
    d_model: int
    heads: int
    layers: int
    seq: int
    batch: int
    vocab: int

    @property
    def label(self) -> str:
        return f"d{self.d_model}_h{self.heads}_L{self.layers}_T{self.seq}_B{self.batch}_V{self.vocab}"

    @property
    def description(self) -> str:
        return (f"d={self.d_model} h={self.heads} L={self.layers} T={self.seq} "
                f"B={self.batch} V={self.vocab}")


DEFAULT_CONFIGS = [Config(256, 8, 4, 256, 8, 256), Config(768, 12, 2, 512, 4, 256)]
_KEYS = {"d": "d_model", "h": "heads", "L": "layers", "T": "seq", "B": "batch", "V": "vocab"}


def parse_config(text: str) -> Config:
    """'d=256,h=8,L=4,T=256,B=8,V=256' (V defaults to 256)."""
    fields = {"vocab": 256}
    for part in text.split(","):
        k, sep, v = part.partition("=")
        if not sep or k.strip() not in _KEYS:
            raise argparse.ArgumentTypeError(f"config field '{part}' (expected k=v with k in {'/'.join(_KEYS)})")
        fields[_KEYS[k.strip()]] = int(v)
    missing = [k for k, name in _KEYS.items() if name not in fields]
    if missing:
        raise argparse.ArgumentTypeError(f"config '{text}' lacks {', '.join(missing)}")
    return Config(**fields)


def run_json(cmd: list[str], json_path: Path, threads: int) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"command failed (exit {proc.returncode}): {' '.join(cmd)}\n{proc.stdout}")
    with open(json_path) as f:
        result = json.load(f)
    result.setdefault("compare", {})["process_wall_s"] = wall
    with open(json_path, "w") as f:  # keep the wall time with the raw result
        json.dump(result, f, indent=2)
        f.write("\n")
    return result


def trainbench_cmd(exe: Path, c: Config, threads: int, a, json_path: Path, precision: str) -> list[str]:
    return [str(exe), "step", "--d-model", str(c.d_model), "--heads", str(c.heads), "--layers", str(c.layers),
            "--seq", str(c.seq), "--vocab", str(c.vocab), "--batch", str(c.batch), "--steps", str(a.steps),
            "--warmup", str(a.warmup), "--threads", str(threads), "--eval-batches", "0", "--json", str(json_path),
            "--precision", precision]


def torch_cmd(python: str, c: Config, threads: int, a, json_path: Path, precision: str) -> list[str]:
    return [python, str(GPT_TORCH), "--d-model", str(c.d_model), "--heads", str(c.heads), "--layers",
            str(c.layers), "--seq", str(c.seq), "--vocab", str(c.vocab), "--batch", str(c.batch), "--steps",
            str(a.steps), "--warmup", str(a.warmup), "--threads", str(threads), "--json", str(json_path),
            "--dtype", precision]


def fmt_rate(x: float) -> str:
    return f"{x:,.0f}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--trainbench", type=Path, default=REPO / "build" / "bin" / "trainbench",
                   help="trainbench executable (default: build/bin/trainbench)")
    p.add_argument("--python", default="/usr/bin/python3", help="interpreter with torch for gpt_torch.py")
    p.add_argument("--config", type=parse_config, action="append", dest="configs",
                   help="d=…,h=…,L=…,T=…,B=…[,V=…]; repeatable (default: the two standard configs)")
    p.add_argument("--threads", default="1,2", help="comma-separated thread counts (default 1,2)")
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds per config and thread count")
    p.add_argument("--steps", type=int, default=10, help="timed steps per run")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps per run")
    p.add_argument("--precision", default="fp32",
                   help="comma-separated precisions, fp32 and/or bf16 (default fp32)")
    p.add_argument("--out", type=Path, help="save every run's raw JSON, table.md and summary.json here")
    a = p.parse_args(argv)
    precisions = [x.strip() for x in a.precision.split(",") if x.strip()]
    if not precisions or any(x not in ("fp32", "bf16") for x in precisions):
        p.error(f"--precision {a.precision} (expected fp32 and/or bf16, comma-separated)")
    configs = a.configs or DEFAULT_CONFIGS
    threads_list = [int(t) for t in a.threads.split(",") if t.strip()]
    if a.rounds <= 0 or a.steps <= 0 or a.warmup < 0 or not threads_list or min(threads_list) <= 0:
        p.error("--rounds and --steps must be > 0, --warmup >= 0, --threads positive integers")
    if not a.trainbench.is_file():
        p.error(f"no trainbench executable at {a.trainbench} (build it, or pass --trainbench)")

    tmp = None
    if a.out:
        out = a.out
    else:
        tmp = tempfile.TemporaryDirectory(prefix="tb-compare-")
        out = Path(tmp.name)
    raw = out / "raw"
    raw.mkdir(parents=True, exist_ok=True)

    rows, summary = [], []
    for c in configs:
        for k in threads_list:
            fp32_tps = {}
            for prec in precisions:
                tb_runs, pt_runs = [], []
                for r in range(a.rounds):
                    tag = f"{c.label}_t{k}_{prec}_r{r}"
                    jt = raw / f"{tag}_trainbench.json"
                    tb_runs.append(run_json(trainbench_cmd(a.trainbench, c, k, a, jt, prec), jt, k))
                    jp = raw / f"{tag}_pytorch.json"
                    pt_runs.append(run_json(torch_cmd(a.python, c, k, a, jp, prec), jp, k))
                    print(f"[{c.label} threads={k} {prec} round {r + 1}/{a.rounds}] "
                          f"trainbench {tb_runs[-1]['throughput']['tokens_per_s']:.0f} tok/s, "
                          f"pytorch {pt_runs[-1]['throughput']['tokens_per_s']:.0f} tok/s",
                          file=sys.stderr, flush=True)
                tb_tps = statistics.median(x["throughput"]["tokens_per_s"] for x in tb_runs)
                pt_tps = statistics.median(x["throughput"]["tokens_per_s"] for x in pt_runs)
                if prec == "fp32":
                    fp32_tps = {"trainbench": tb_tps, "pytorch": pt_tps}
                entry = {
                    "config": c.__dict__ | {"label": c.label}, "threads": k, "precision": prec,
                    "rounds": a.rounds,
                    "trainbench": {"tokens_per_s": tb_tps,
                                   "step_s_median": statistics.median(x["timing"]["step_s"]["median"] for x in tb_runs),
                                   "tokens_per_s_per_round": [x["throughput"]["tokens_per_s"] for x in tb_runs],
                                   "precision_record": tb_runs[-1].get("precision")},
                    "pytorch": {"tokens_per_s": pt_tps,
                                "step_s_median": statistics.median(x["timing"]["step_s"]["median"] for x in pt_runs),
                                "tokens_per_s_per_round": [x["throughput"]["tokens_per_s"] for x in pt_runs]},
                    "ratio": tb_tps / pt_tps,
                }
                speedup = "–"
                if prec != "fp32" and fp32_tps:
                    entry["speedup_over_fp32"] = {"trainbench": tb_tps / fp32_tps["trainbench"],
                                                  "pytorch": pt_tps / fp32_tps["pytorch"]}
                    speedup = (f"{tb_tps / fp32_tps['trainbench']:.2f} / "
                               f"{pt_tps / fp32_tps['pytorch']:.2f}")
                summary.append(entry)
                rows.append(f"| {c.description} | {k} | {prec} | {fmt_rate(tb_tps)} | {fmt_rate(pt_tps)} | "
                            f"{tb_tps / pt_tps:.2f} | {speedup} |")

    torch_version = pt_runs[-1].get("environment", {}).get("torch_version", "?")
    table = "\n".join([
        f"Training throughput on the CPU ({', '.join(precisions)}), {platform.node()} ({os.cpu_count()} CPUs); "
        f"PyTorch {torch_version}; "
        f"median over {a.rounds} alternating round(s) of {a.steps} timed steps after {a.warmup} warm-up.",
        "",
        "| config | threads | precision | trainbench tokens/s | PyTorch tokens/s | ratio (trainbench/PyTorch) | "
        "speedup over fp32 (trainbench / PyTorch) |",
        "|---|---:|---|---:|---:|---:|---:|",
        *rows,
    ])
    print(table)
    if a.out:
        (out / "table.md").write_text(table + "\n")
        (out / "summary.json").write_text(json.dumps(
            {"rounds": a.rounds, "steps": a.steps, "warmup": a.warmup, "results": summary}, indent=2) + "\n")
        print(f"\nraw JSON in {raw}, table in {out / 'table.md'}", file=sys.stderr)
    if tmp:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
