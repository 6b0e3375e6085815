"""Tables for the README from this directory's raw results (precision/, checkpointing/).

Run: /usr/bin/python3 reports/runs/2026-11-22-cpu/summarize.py
The analytic activation count is harness/model/gpt.h's (cf. Korthikanti et al. 2022, Eq. 2):
per layer P = 16·B·T·C + NH·B·T² stored values + 4·B·T LayerNorm statistics; the ends
B·T·C (embeddings) + B·T·C (final LayerNorm) stored, 2·B·T + B·T·V + B·T fp32 (statistics,
logits, losses); checkpoint interval k keeps ⌈L/k⌉·B·T·C segment inputs and min(k, L)·P;
selective drops NH·B·T² from every layer but one; plus 2·B·T int32 token ids; each tensor is
padded to 64 bytes (ignored here: < 0.1%).
"""
import json
import math
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def lines(name):
    return [json.loads(l) for l in (HERE / name / "results.jsonl").read_text().splitlines()]


def analytic_activation_bytes(line):
    m, c = line["model"]["proxy"], line["config"]
    B, T, C, NH, L, V = c["micro_batch"], m["seq_len"], m["d_model"], m["n_head"], m["n_layer"], m["vocab"]
    act = {"f32": 4, "bf16": 2, "f16": 2}[line["precision"]["activation_dtype"]]
    scores, per_stored, per_stats = NH * B * T * T, 16 * B * T * C + NH * B * T * T, 4 * B * T
    stored, stats = B * T * C, 2 * B * T + B * T * V + B * T
    k, sel = c["checkpoint_interval"], c["checkpoint_selective"]
    if sel:
        stored += B * T * C + L * (per_stored - scores) + scores
        stats += L * per_stats
    elif k > 0:
        stored += math.ceil(L / k) * B * T * C + min(k, L) * per_stored
        stats += min(k, L) * per_stats
    else:
        stored += B * T * C + L * per_stored
        stats += L * per_stats
    return stored * act + stats * 4 + 2 * B * T * 4


# Student t 97.5% quantiles by degrees of freedom (n - 1 seeds).
T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571}


def paired_delta(base, line):
    """Mean per-seed eval-loss difference and its 95% t-interval (the same seeds on both sides:
    same initial weights and data order)."""
    a, b = base["accuracy"]["eval_loss"], line["accuracy"]["eval_loss"]
    assert base["accuracy"]["seeds"] == line["accuracy"]["seeds"]
    d = [y - x for x, y in zip(a, b)]
    n = len(d)
    mean = sum(d) / n
    sd = math.sqrt(sum((x - mean) ** 2 for x in d) / (n - 1))
    half = T975[n - 1] * sd / math.sqrt(n)
    return mean, mean - half, mean + half


def mib(b):
    return f"{b / 2**20:.2f}"


def precision_table():
    print("| precision | loss scaling | eval loss (3 seeds, 95% CI) | Δ vs fp32 (paired, 95% CI) | Δ rel | "
          "grad values subnormal / flushed to 0 | activations MiB | emulation MiB | skipped steps |")
    print("|---|---|---|---|---:|---|---:|---:|---:|")
    ls_ = lines("precision")
    base = next(l for l in ls_ if l["variant"]["baseline"])
    for l in ls_:
        p, a = l["precision"], l["accuracy"]
        lo, hi = a["eval_loss_ci95"]
        if l is base:
            delta, rel = "baseline", ""
        else:
            m, dlo, dhi = paired_delta(base, l)
            delta = f"{m:+.2e} [{dlo:+.2e}, {dhi:+.2e}]"
            rel = f"{100 * m / base['accuracy']['eval_loss_mean']:+.2f}%"
        gr = p.get("gradient_rounding")
        rounding = (f"{100 * gr['subnormal_fraction']:.3g}% / {100 * gr['underflow_fraction']:.3g}%"
                    if gr else "—")
        ls = p["loss_scaling"]
        mode = "dynamic" if ls["dynamic"] else "none"
        print(f"| {p['mode']} | {mode} | {a['eval_loss_mean']:.4f} [{lo:.4f}, {hi:.4f}] | {delta} | {rel} | "
              f"{rounding} | {mib(l['memory']['peak_bytes']['activations'])} | "
              f"{mib(l['memory']['peak_bytes']['emulation'])} | {sum(ls.get('accuracy_skipped_steps', []))} |")


def checkpoint_table():
    print("| policy | activations MiB measured | analytic | measured/analytic | step s (median) | "
          "recompute s/step (median) | recompute share | speed vs none (95% CI) | eval loss Δ |")
    print("|---|---:|---:|---:|---:|---:|---:|---|---:|")
    for l in lines("checkpointing"):
        c, t = l["config"], l["timing"]
        pol = "selective" if c["checkpoint_selective"] else (f"every {c['checkpoint_interval']}"
                                                            if c["checkpoint_interval"] else "none")
        meas = l["memory"]["peak_bytes"]["activations"]
        ana = analytic_activation_bytes(l)
        step = t["step_s"]["median"]
        rec = t["phases_s"]["recompute"]["median"]
        vs = l.get("vs_baseline", {})
        sp = (f"{vs['speedup']:.3f} [{vs['speedup_ci95'][0]:.3f}, {vs['speedup_ci95'][1]:.3f}]"
              if "speedup" in vs else "baseline")
        dl = f"{vs['loss_delta']:+.2e}" if "loss_delta" in vs else "—"
        print(f"| {pol} | {mib(meas)} | {mib(ana)} | {meas / ana:.4f} | {step:.4f} | {rec:.4f} | "
              f"{100 * rec / step:.1f}% | {sp} | {dl} |")


if __name__ == "__main__":
    which = sys.argv[1:] or ["precision", "checkpointing"]
    if "precision" in which:
        precision_table()
        print()
    if "checkpointing" in which:
        checkpoint_table()
