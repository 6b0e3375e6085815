"""Prints the README table for scenarios/sparse.json from results.jsonl (run from the repo root:
/usr/bin/python3 reports/runs/2026-12-02-cpu/summarize_sparse.py)."""
import json
import pathlib
import sys

path = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else
                    "reports/runs/2026-12-02-cpu/sparse/results.jsonl")
lines = [json.loads(l) for l in path.read_text().splitlines() if l.strip()]


def name(d):
    k = d["variant"]["keys"]
    if k.get("experts", 0):
        return f"MoE E={k['experts']} top-{k['top_k']}"
    if k.get("prune_sparsity", 0):
        return f"pruned 50% {k['prune_pattern']} {k['prune_schedule']}"
    if k.get("d_model", 64) != 64:
        return f"dense d={k['d_model']}"
    return "dense d=64"


def ci(pair, fmt="{:.2f}"):
    if pair is None or pair[0] is None:
        return "—"
    return "[" + fmt.format(pair[0]) + ", " + fmt.format(pair[1]) + "]"


print("| variant | params (active) | step ms | speedup (tokens/s, 95% CI) | final eval loss (95% CI) "
      "| Δ loss vs dense (paired 95% CI) | seeds reached | s to target (95% CI) | steps to target "
      "| time-to-target speedup (95% CI) | routing / sparsity |")
print("|---|---|---:|---|---|---|---:|---|---:|---|---|")
for d in lines:
    if d["status"] != "ok":
        print(f"| {name(d)} | {d['status']}: {d.get('reason', '')} |")
        continue
    m = d["model"]["proxy"]
    a = d["accuracy"]
    t = a.get("time_to_target", {})
    vs = d.get("vs_baseline", {})
    params = f"{m['parameters']/1e3:.0f}k ({m['active_parameters']/1e3:.0f}k)"
    step = d["timing"]["step_s"]["median"] * 1e3
    sp = "baseline" if not vs else f"{vs['speedup']:.2f} {ci(vs['speedup_ci95'])}"
    loss = f"{a['eval_loss_mean']:.4f} {ci(a['eval_loss_ci95'], '{:.4f}')}"
    dl = "—" if not vs else f"{vs['loss_delta']:+.4f} {ci(vs['loss_delta_ci95'], '{:+.4f}')}"
    reached = f"{t.get('seeds_reached', 0)}/{t.get('seeds_run', 0)}"
    ts = t.get("train_s")
    secs = "not reached" if not ts else f"{ts['mean']:.2f} {ci(ts['ci95'])}"
    st = t.get("step")
    steps = "—" if not st else f"{st['mean']:.0f}"
    if not vs:
        ttt = "baseline"
    elif vs.get("time_to_target_speedup") is None:
        ttt = "— (" + vs.get("time_to_target_reason", "") + ")"
    else:
        ttt = f"{vs['time_to_target_speedup']:.2f} {ci(vs['time_to_target_speedup_ci95'])}"
    extra = ""
    if "moe" in d:
        r = d["moe"]["routing"]
        extra = (f"dropped {100*r['dropped_fraction']:.1f}%, busiest/mean "
                 f"{r['load_balance_max_over_mean']:.2f}")
    if "sparsity" in d:
        s = d["sparsity"]
        overall = s.get("achieved", s.get("overall", {}))
        val = overall.get("sparsity") if isinstance(overall, dict) else overall
        extra = f"achieved {val:.3f}, {s.get('execution')}" if val is not None else s.get("execution")
    print(f"| {name(d)} | {params} | {step:.1f} | {sp} | {loss} | {dl} | {reached} | {secs} | "
          f"{steps} | {ttt} | {extra} |")
