#!/usr/bin/env python3
"""Prints the README's tables from the committed results of this folder:
scenarios/parallel.json (parallel/) and scenarios/combined.json (combined/).
Usage: /usr/bin/python3 reports/runs/2026-12-01-cpu/summarize.py"""
import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
MiB = 1024 * 1024


def lines(name):
    p = HERE / name / "results.jsonl"
    return [json.loads(l) for l in p.read_text().splitlines() if l.strip()]


def split_name(l):
    c = l["config"]
    parts = []
    for k in ("dp", "tp", "pp"):
        if c.get(k, 1) > 1:
            parts.append(f"{k}{c[k]}")
    if c.get("pp", 1) > 1:
        parts.append(c["pp_schedule"])
    if c.get("zero"):
        parts.append("zero1")
    if c.get("sequence_parallel"):
        parts.append("sp")
    return " × ".join(parts) if parts else "1 rank"


def ci(lo, hi, fmt="{:.2f}"):
    return "[" + fmt.format(lo) + ", " + fmt.format(hi) + "]"


def parallel_table():
    print("| split | ranks | step s (median) | tokens/s | speedup vs 1 rank (95% CI) | eval loss Δ (paired 95% CI) "
          "| params+grads+opt MiB (largest rank) | activations MiB (largest rank) | DP / TP / PP MiB per step (per rank) "
          "| comm s per step (mean rank) | DP overlapped s | bubble measured / analytic |")
    print("|---|---:|---:|---:|---|---|---:|---:|---|---:|---:|---|")
    for l in lines("parallel"):
        if l["status"] != "ok":
            print(f"| {split_name(l)} | | {l['status']}: {l.get('reason', '')} |")
            continue
        p = l["parallel"]
        m = l["memory"]["peak_bytes"]
        vs = l.get("vs_baseline")
        sp = f"{vs['speedup']:.2f} {ci(*vs['speedup_ci95'])}" if vs else "baseline"
        dl = (f"{vs['loss_delta']:+.1e} {ci(*vs['loss_delta_ci95'], fmt='{:+.1e}')}" if vs and "loss_delta" in vs
              else "—")
        comm = p["communication"]
        mib = " / ".join(f"{comm[d]['bytes_per_step'] / MiB:.2f}" for d in ("data", "tensor", "pipeline"))
        secs = sum(comm[d]["seconds_per_step"] for d in ("data", "tensor", "pipeline", "embedding"))
        state = (m["parameters"] + m["gradients"] + m["optimizer_state"]) / MiB
        b = p["bubble"]
        bub = f"{b['measured_fraction']:.3f} / {b['analytic_fraction']:.3f}" if p["pp"] > 1 else "—"
        print(f"| {split_name(l)} | {p['world_size']} | {l['timing']['step_s']['median']:.3f} "
              f"| {l['throughput']['tokens_per_s']:.0f} | {sp} | {dl} | {state:.2f} | {m['activations'] / MiB:.2f} "
              f"| {mib} | {secs:.4f} | {comm['data']['overlapped_s']:.4f} | {bub} |")


def per_rank_table():
    print()
    print("| split | rank (dp, tp, pp) | layers | step s | forward s | backward s | optimizer s | communication s "
          "| waiting for neighbours s | params MiB | optimizer MiB | activations MiB |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for l in lines("parallel"):
        if l["status"] != "ok" or l["parallel"]["world_size"] == 1:
            continue
        for r in l["parallel"]["ranks"]:
            ph = r["phases_s"]
            mem = r["memory_peak_bytes"]
            print(f"| {split_name(l)} | {r['rank']} ({r['dp_rank']}, {r['tp_rank']}, {r['pp_rank']}) "
                  f"| {r['layers'][0]}–{r['layers'][1]} | {r['step_s']:.3f} | {ph['forward']:.3f} | {ph['backward']:.3f} "
                  f"| {ph['optimizer']:.4f} | {ph['communication']:.4f} | {r['pipeline_recv_s']:.4f} "
                  f"| {mem['parameters'] / MiB:.2f} | {mem['optimizer_state'] / MiB:.2f} | {mem['activations'] / MiB:.2f} |")


def combined_table():
    print()
    print("| precision | pp | checkpoint | step s | tokens/s | speedup vs fp32 1 rank (95% CI) | eval loss Δ (paired 95% CI) "
          "| activations MiB (largest rank) | emulation MiB | execution |")
    print("|---|---:|---|---:|---:|---|---|---:|---:|---|")
    for l in lines("combined"):
        c = l["config"]
        if l["status"] != "ok":
            print(f"| {c['precision']} | {c['pp']} | {c['checkpoint_interval']} | {l['status']}: {l.get('reason', '')} |")
            continue
        vs = l.get("vs_baseline")
        sp = f"{vs['speedup']:.2f} {ci(*vs['speedup_ci95'])}" if vs else "baseline"
        dl = (f"{vs['loss_delta']:+.1e} {ci(*vs['loss_delta_ci95'], fmt='{:+.1e}')}" if vs and "loss_delta" in vs
              else "—")
        m = l["memory"]["peak_bytes"]
        ck = "every block" if c["checkpoint_interval"] == 1 else "off"
        print(f"| {c['precision']} | {c['pp']} | {ck} | {l['timing']['step_s']['median']:.3f} "
              f"| {l['throughput']['tokens_per_s']:.0f} | {sp} | {dl} | {m['activations'] / MiB:.2f} "
              f"| {m['emulation'] / MiB:.2f} | {l['precision']['execution']} |")


if __name__ == "__main__":
    parallel_table()
    per_rank_table()
    if (HERE / "combined" / "results.jsonl").exists():
        combined_table()
