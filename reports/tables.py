"""The report's tables as plain data (rendered by html.py and markdown.py): the scenario,
the environment, and every variant with its status, numbers and reason."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from . import text
from .analysis import Analysis
from .families import compact
from .load import Variant
from .parallel import DIMS, Parallel

# Top-level keys of a schema-1 line that the variants table or other tables already show.
KNOWN_KEYS = frozenset({
    "schema_version", "scenario", "variant", "config", "model", "status", "reason", "oom",
    "diverged", "timing", "throughput", "memory", "accuracy", "vs_baseline", "device",
    "environment", "started_utc", "duration_s", "parallel"})


@dataclass
class Table:
    headers: list[str]
    rows: list[list[str]] = field(default_factory=list)
    row_classes: list[str] = field(default_factory=list)  # e.g. "status-oom"; "" for none
    numeric: set[int] = field(default_factory=set)         # right-aligned columns
    wide: set[int] = field(default_factory=set)            # columns of prose (kept readable)

    def add(self, row: list[str], cls: str = "") -> None:
        self.rows.append(row)
        self.row_classes.append(cls)


def _first(a: Analysis) -> Variant:
    ok = a.ok
    return ok[0] if ok else a.results.variants[0]


def _distinct(values: list[Any]) -> list[Any]:
    out: list[Any] = []
    seen: set[str] = set()
    for x in values:
        k = json.dumps(x, sort_keys=True)
        if k not in seen:
            seen.add(k)
            out.append(x)
    return out


def scenario_table(a: Analysis) -> Table:
    r = a.results
    sc = r.scenario
    t = Table(["", ""])
    t.add(["scenario", str(sc.get("name", ""))])
    if sc.get("description"):
        t.add(["description", str(sc["description"])])
    if sc.get("path"):
        t.add(["scenario file", str(sc["path"])])
    t.add(["results file", str(r.path)])
    counts: dict[str, int] = {}
    for v in r.variants:
        counts[v.status] = counts.get(v.status, 0) + 1
    t.add(["variants", f"{len(r.variants)} (" + ", ".join(f"{n} {s}" for s, n in counts.items()) + ")"])
    for axis in r.axes:
        values = _distinct([v.keys.get(axis) for v in sorted(r.variants, key=lambda v: v.index)])
        t.add([f"sweep: {axis}", ", ".join(compact(x) for x in values)])
    t.add(["baseline", r.baseline_id or "— (not in this file)"])
    fams = a.classes.families
    if fams:
        t.add(["strategy families", ", ".join(fams)])
    # Configuration every variant shares (the scenario's base, resolved).
    configs = [v.get("config") or {} for v in r.variants]
    shared = []
    for key in sorted(configs[0]):
        vals = _distinct([c.get(key) for c in configs])
        if len(vals) == 1 and vals[0] is not None and key not in r.axes:
            shared.append(f"{key}={compact(vals[0])}")
    if shared:
        t.add(["shared configuration", ", ".join(shared)])
    first = _first(a)
    proxy, full = first.get("model.proxy"), first.get("model.full")
    if isinstance(proxy, dict) and isinstance(full, dict):
        t.add(["model", f"{proxy.get('name')}: {proxy.get('n_layer')} layers, d={proxy.get('d_model')}, "
                        f"{proxy.get('n_head')} heads × {proxy.get('d_head')}, T={proxy.get('seq_len')}, "
                        f"V={proxy.get('vocab')}, {proxy.get('parameters'):,} parameters "
                        f"(proxy of {full.get('name')}, {full.get('parameters'):,})"
               if isinstance(proxy.get("parameters"), int) and isinstance(full.get("parameters"), int)
               else text.value(proxy)])
    acc = first.get("accuracy")
    if isinstance(acc, dict):
        seeds = acc.get("seeds")
        t.add(["accuracy run", f"{acc.get('train_steps')} steps from scratch, "
                               f"{len(seeds) if isinstance(seeds, list) else seeds} seeds "
                               f"({text.value(seeds)}), {acc.get('eval_batches')} held-out batches"])
    return t


def _environment_rows(env: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    rows: list[tuple[str, Any]] = []
    for k, v in env.items():
        name = f"{prefix}{k}"
        if isinstance(v, dict) and k in ("cpu", "build", "cuda"):
            rows += _environment_rows(v, name + ".")
        else:
            rows.append((name, v))
    return rows


def environment_table(a: Analysis) -> Table:
    """Environment fields as the lines record them; a field that differs between lines is
    shown with each distinct value."""
    t = Table(["", ""])
    lines = a.results.variants
    per_line = [dict(_environment_rows(v.get("environment") or {})) for v in lines]
    names: list[str] = []
    for d in per_line:
        for k in d:
            if k not in names:
                names.append(k)
    for k in names:
        vals = _distinct([d.get(k) for d in per_line if k in d])
        if k == "gpus" and vals == [[]]:
            t.add([k, "none"])
        elif len(vals) == 1:
            t.add([k, text.value(vals[0], 400)])
        else:
            t.add([k, "differs between lines: " + "; ".join(text.value(x, 120) for x in vals)])
    devices = _distinct([v.get("device") for v in lines if isinstance(v.get("device"), dict)])
    for d in devices:
        t.add(["device", text.value({k: x for k, x in d.items() if x != ""})])
    peaks = _distinct([v.get("throughput.peak") for v in lines if isinstance(v.get("throughput.peak"), dict)])
    for p in peaks:
        t.add(["peak FLOP/s (for MFU)", text.value(p)])
    return t


def extra_keys(a: Analysis) -> list[str]:
    """Top-level keys a newer writer added (e.g. precision, loss_scaling), in first-seen order."""
    out: list[str] = []
    for v in a.results.variants:
        for k in v.data:
            if k not in KNOWN_KEYS and k not in out:
                out.append(k)
    return out


def _reason(v: Variant) -> str:
    if v.ok:
        return ""
    r = v.reason or "(no reason recorded)"
    if v.status == "oom" and isinstance(v.get("oom"), dict):
        o = v.get("oom")
        r += f" (required {text.human_bytes(o.get('required_bytes', 0))}, available {text.human_bytes(o.get('available_bytes', 0))})"
    return r


def precision_summary(p: Any) -> str:
    """The result's precision object (docs/results-schema.md) in a few words:
    "bf16, emulated; GEMM: …; dynamic loss scaling, 3 steps skipped"; other shapes as they are."""
    if not isinstance(p, dict) or "mode" not in p:
        return text.value(p)
    parts = [str(p["mode"]) + (", emulated" if p.get("execution") == "emulated" else "")]
    if p.get("activation_dtype") and p.get("activation_dtype") != "f32":
        parts.append(f"activations {p['activation_dtype']}")
    ops = p.get("gemm_operands")
    if isinstance(ops, dict) and any(x != "fp32" for x in ops.values()):
        parts.append("GEMM operands " + ", ".join(f"{k} {x}" for k, x in ops.items()))
    if p.get("gemm") and p.get("mode") != "fp32":
        parts.append(f"GEMM: {text.value(p['gemm'], 80)}")
    ls = p.get("loss_scaling")
    if isinstance(ls, dict) and ls.get("dynamic"):
        skipped = [x for x in [ls.get("timing_skipped_steps"), *(ls.get("accuracy_skipped_steps") or [])]
                   if isinstance(x, int)]
        parts.append(f"dynamic loss scaling, {sum(skipped)} steps skipped")
    rounding = p.get("gradient_rounding")
    if isinstance(rounding, dict) and isinstance(rounding.get("underflow_fraction"), (int, float)):
        parts.append(f"gradient underflow {100 * rounding['underflow_fraction']:.2g}%")
    return "; ".join(parts)


def precision_table(a: Analysis) -> Table | None:
    """Each variant's whole precision object, when the lines carry one."""
    rows = [v for v in a.order if isinstance(v.get("precision"), dict)]
    if not rows:
        return None
    t = Table(["variant", "precision (as recorded)"])
    for v in rows:
        t.add([a.label(v), text.value(v.get("precision"), 1200)])
    return t


def variants_table(a: Analysis) -> Table:
    extras = extra_keys(a)
    t = Table(["#", "variant", "family", "status", "step ms (median)", "tokens/s", "MFU",
               "peak memory", "eval loss [95% CI]", "speedup (tokens/s) [95% CI]", "loss change ± 95%",
               *extras, "reason / note"])
    t.numeric = {0, 4, 5, 6, 7, 8, 9, 10}
    t.wide = set(range(11, 12 + len(extras)))
    for v in a.order:
        m = a.metrics[v.id]
        fam = a.family(v)
        note = _reason(v)
        if v.ok and not v.is_baseline and m.speedup is None:
            note = "not compared with the baseline"
        elif v.ok and m.step_speedup is not None and abs(m.tokens_ratio - 1) > 1e-9:
            note = (f"{m.tokens_ratio:.3g}× the baseline's tokens per step; step-time speedup "
                    f"{text.speedup(m.step_speedup)}")
        row = [str(v.index), f"{a.label(v)}\n{v.id}" if a.label(v) != v.id else v.id, fam, v.status,
               text.ms(m.step_median_s) if v.ok else "—",
               text.rate(m.tokens_per_s) if v.ok else "—",
               text.mfu(m.mfu) if v.ok else "—",
               text.human_bytes(m.peak_total_bytes) if m.peak_total_bytes is not None else "—",
               text.loss_with_ci(m.eval_loss_mean, m.eval_loss_ci95 if m.seeds > 1 else None),
               "1 (baseline)" if v.is_baseline and v.ok else text.speedup_with_ci(m.speedup, m.speedup_ci95),
               "0 (baseline)" if v.is_baseline and v.ok and m.eval_loss_mean is not None
               else text.loss_change(m.loss_delta_pct, m.loss_delta_pct_halfwidth),
               *[("—" if k not in v.data else precision_summary(v.data[k]) if k == "precision"
                  else text.value(v.data[k])) for k in extras],
               note]
        t.add(row, f"status-{v.status}" if v.status in ("ok", "oom", "diverged", "unsupported", "error")
              else "status-other")
    return t


def _comm_cell(g: Parallel, dim: str) -> str:
    """A dimension's communication per step: "6.5 MiB, 3.1 ms (41 calls)", data with its
    exposed and overlapped parts."""
    c = g.communication.get(dim)
    if c is None:
        return "—"
    if c.bytes_per_step == 0 and c.seconds_per_step == 0:
        return "none"
    out = f"{text.human_bytes(c.bytes_per_step)}, {text.ms(c.seconds_per_step)} ms"
    if c.calls_per_step:
        out += f" ({c.calls_per_step:.0f} call{'' if c.calls_per_step == 1 else 's'})"
    if dim == "data" and c.exposed_s is not None and c.overlapped_s is not None:
        out += f"; exposed {text.ms(c.exposed_s)} ms, overlapped {text.ms(c.overlapped_s)} ms"
    return out


def _fraction(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.1f}%"


def parallel_table(a: Analysis) -> Table | None:
    """The parallel runs (docs/parallel.md), when the results hold any: each parallel line
    (every status) and the single-rank baseline, with the split, ranks, step time, tokens/s,
    communication per dimension, the pipeline bubble measured against (p − 1)/(m + p − 1) and
    the largest rank's memory."""
    if not a.has_parallel:
        return None
    t = Table(["#", "variant", "status", "split", "ranks", "step ms (median)", "tokens/s",
               "tokens/s per rank", "speedup (tokens/s)",
               *[f"{d} comm per step" for d in DIMS],
               "bubble measured / analytic (p−1)/(m+p−1)", "peak memory (largest rank)"])
    t.numeric = {0, 4, 5, 6, 7, 8}
    t.wide = {9, 10, 11}
    base = a.baseline
    rows = [v for v in a.order if a.grid(v) is not None or (v is base and a.grid(v) is None)]
    for v in rows:
        g = a.grid(v)
        m = a.metrics[v.id]
        label = f"{a.label(v)}\n{v.id}" if a.label(v) != v.id else v.id
        if g is None:  # the single-rank baseline
            t.add([str(v.index), label, v.status, "single process", "1",
                   text.ms(m.step_median_s) if v.ok else "—",
                   text.rate(m.tokens_per_s) if v.ok else "—",
                   text.rate(m.tokens_per_s) if v.ok else "—",
                   "1 (baseline)" if v.ok else "—", "—", "—", "—", "—",
                   text.human_bytes(m.peak_total_bytes) if m.peak_total_bytes is not None else "—"],
                  f"status-{v.status}")
            continue
        per_rank = v.get("throughput.tokens_per_s_per_rank")
        if not isinstance(per_rank, (int, float)) and m.tokens_per_s is not None:
            per_rank = m.tokens_per_s / g.world_size
        if g.pp > 1:
            bubble = f"{_fraction(g.bubble_measured)} / {_fraction(g.bubble_analytic)}"
        else:
            bubble = "— (no pipeline)"
        # The runtime records the largest rank's measured total; which rank it is, the
        # per-rank category peaks tell (the rank whose peaks sum highest).
        big = g.largest_rank
        total = m.peak_total_bytes if m.peak_total_bytes is not None else (
            big.memory_sum if big is not None else None)
        memory = "—" if total is None else text.human_bytes(total) + (
            f" (rank {big.rank})" if big is not None else "")
        t.add([str(v.index), label, v.status, g.split, str(g.world_size),
               text.ms(m.step_median_s) if v.ok else "—",
               text.rate(m.tokens_per_s) if v.ok else "—",
               text.rate(per_rank) if v.ok and isinstance(per_rank, (int, float)) else "—",
               text.speedup_with_ci(m.speedup, m.speedup_ci95) if v.ok else "—",
               *[_comm_cell(g, d) if v.ok else "—" for d in DIMS],
               bubble if v.ok else "—", memory if v.ok else "—"],
              f"status-{v.status}" if v.status in ("ok", "oom", "diverged", "unsupported", "error")
              else "status-other")
    return t
