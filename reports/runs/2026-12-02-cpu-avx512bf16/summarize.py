"""README tables from this directory's raw results (precision/, default/): each variant's
precision path, step time, throughput, speedup and held-out loss against the baseline.

Run: /usr/bin/python3 reports/runs/2026-12-02-cpu-avx512bf16/summarize.py
"""
import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
MIB = 1024.0 * 1024.0


def lines(name):
    return [json.loads(l) for l in (HERE / name / "results.jsonl").read_text().splitlines()]


def interval(lo_hi, fmt):
    return "[" + ", ".join(format(v, fmt) for v in lo_hi) + "]"


def gemms(line):
    p = line["precision"]
    if p["execution"] == "native" and p["mode"] != "fp32":
        return "oneDNN " + p.get("gemm_isa", "")
    return "OpenBLAS fp32" + (" (emulated)" if p["execution"] == "emulated" else "")


def table(name):
    print(f"\n{name}.json\n")
    print("| variant | GEMMs | step ms (median) | tokens/s | speedup (95% CI) | eval loss (95% CI) "
          "| Δ vs baseline (paired 95% CI) | activations MiB | emulation MiB |")
    print("|---|---|---:|---:|---|---|---|---:|---:|")
    for l in sorted(lines(name), key=lambda l: l["variant"]["index"]):
        if l["status"] != "ok":
            print(f"| {l['variant']['id']} | {l['status']} | | | | | | | |")
            continue
        vs, acc, mem = l.get("vs_baseline"), l["accuracy"], l["memory"]["peak_bytes"]
        speed = f"{vs['speedup']:.2f} {interval(vs['speedup_ci95'], '.2f')}" if vs else "baseline"
        delta = f"{vs['loss_delta']:+.2e} {interval(vs['loss_delta_ci95'], '+.1e')}" if vs else "—"
        print(f"| {l['variant']['id']} | {gemms(l)} | {l['timing']['step_s']['median'] * 1e3:.1f} "
              f"| {l['throughput']['tokens_per_s']:,.0f} | {speed} "
              f"| {acc['eval_loss_mean']:.4f} {interval(acc['eval_loss_ci95'], '.4f')} | {delta} "
              f"| {mem['activations'] / MIB:.2f} | {mem['emulation'] / MIB:.2f} |")


for scenario in ("precision", "default"):
    if (HERE / scenario / "results.jsonl").exists():
        table(scenario)
