#!/usr/bin/python3
"""The bf16/fp32 GEMM throughput table from bench_gemm_precision's Google Benchmark JSON
(one file per thread count, each written with --benchmark_format=json or --benchmark_out):
per shape, the median fp32 and bf16 GFLOP/s over the repetitions, their ratio, and what ran.

  OMP_NUM_THREADS=1 build/bin/bench_gemm_precision --benchmark_repetitions=3 \\
      --benchmark_out=t1.json --benchmark_out_format=json
  /usr/bin/python3 bench/gemm_precision_table.py t1.json t2.json
"""
from __future__ import annotations

import json
import statistics
import sys
from collections import defaultdict


def table(path: str) -> tuple[int, str, list[str]]:
    doc = json.load(open(path))
    ctx = doc["context"]
    threads = int(ctx.get("omp_threads", 0))
    rates: dict[tuple[str, str], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    labels: dict[tuple[str, str], dict[str, str]] = defaultdict(dict)
    skipped: dict[tuple[str, str], str] = {}
    for b in doc["benchmarks"]:
        if b.get("run_type") == "aggregate":
            continue
        _, precision, layer, config = b["run_name"].split("/")[:4]
        key = (config, layer)
        if b.get("error_occurred"):
            skipped[key] = b.get("error_message", "skipped")
            continue
        rates[key][precision].append(b["FLOP/s"])
        labels[key][precision] = b.get("label", "")
    rows = []
    for key in sorted(set(rates) | set(skipped), key=lambda k: (k[0], k[1])):
        r = rates.get(key, {})
        fp32 = statistics.median(r["fp32"]) / 1e9 if r.get("fp32") else float("nan")
        if "bf16" not in r:
            rows.append(f"| {key[0]} | {key[1]} | {fp32:.1f} | – | – | {skipped.get(key, '')} |")
            continue
        bf16 = statistics.median(r["bf16"]) / 1e9
        rows.append(f"| {key[0]} | {key[1]} | {fp32:.1f} | {bf16:.1f} | {bf16 / fp32:.2f} | "
                    f"{labels[key]['bf16']} |")
    return threads, ctx.get("onednn_isa", "?"), rows


def main(paths: list[str]) -> int:
    if not paths:
        print(__doc__, file=sys.stderr)
        return 2
    for path in paths:
        threads, isa, rows = table(path)
        print(f"\n{threads} thread(s), oneDNN ISA {isa} ({path}); median of repetitions:\n")
        print("| shape | layer | fp32 GFLOP/s (OpenBLAS) | bf16 GFLOP/s (oneDNN) | bf16/fp32 | bf16 ran |")
        print("|---|---|---:|---:|---:|---|")
        print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
