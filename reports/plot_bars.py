"""Per-variant bar charts: step_breakdown (phase times), memory_breakdown (peak bytes by
category) and throughput (tokens/s and MFU). Rows are the ok variants, baseline on top.

Series ids (plotstyle.tag): "step.PHASE", "mem.CATEGORY", "mem.limit", "tput.tokens",
"tput.mfu"; with parallel runs (docs/parallel.md) also "step.communication.DIM" (data,
tensor, pipeline), "step.communication.data.overlapped" and "step.bubble".
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import EngFormatter

from . import plotstyle
from .analysis import Analysis
from .load import Variant
from .parallel import DIMS, Parallel

PHASES = ["forward", "backward", "recompute", "optimizer", "communication", "data_wait"]
MEMORY = ["parameters", "gradients", "optimizer_state", "activations", "workspace"]
# Drawn only when some variant has a non-zero peak (no data-parallel runtime yet).
MEMORY_OPTIONAL = ["communication"]


def _rows(a: Analysis) -> list[Variant]:
    return a.ok


def _height(n: int) -> float:
    return 1.5 + 0.34 * max(n, 2)


def _number(x: Any) -> float:
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else 0.0


def _nothing(title: str, a: Analysis) -> Figure:
    why = a.not_plotted_note() or "The results file has no variant with status ok."
    return plotstyle.message_figure(f"{title}: nothing to plot", why)


def phase_names(rows: list[Variant]) -> list[str]:
    """The six phases in the schema's order, then any other phase a newer writer adds."""
    extra: list[str] = []
    for v in rows:
        for p in (v.get("timing.phases_s") or {}):
            if p not in PHASES and p not in extra:
                extra.append(p)
    return PHASES + sorted(extra)


def phase_ms(v: Variant, phase: str) -> float:
    s = (v.get("timing.phases_s") or {}).get(phase)
    if not isinstance(s, dict):
        return 0.0
    return 1e3 * _number(s.get("mean", s.get("median", 0.0)))


@dataclass
class _CommSplit:
    """One row's communication phase, split (ms): per dimension, what the phase holds beyond
    them ("other", e.g. the tied embedding's gradient sum), the pipeline bubble and the data
    all-reduce's time overlapped with compute (hidden: not part of the step)."""

    dims: dict[str, float]
    other: float
    bubble: float
    overlapped: float


def _comm_split(p: Parallel | None, comm_ms: float, step_ms: float, split: bool) -> _CommSplit:
    """The communication phase of a row split by dimension (docs/parallel.md): data (its
    exposed part), tensor and pipeline (seconds_per_step), the rest left as other; and the
    pipeline bubble (measured fraction × median step). The runtime times a stage's waits for
    its neighbours as pipeline communication, so the bubble is taken out of the pipeline's
    part (then out of the rest of the phase): the bar still adds up to the step."""
    dims = {d: 0.0 for d in DIMS}
    overlapped = 0.0
    if split and p is not None:
        for d in DIMS:
            c = p.communication.get(d)
            if c is None:
                continue
            if d == "data" and c.exposed_s is not None:
                dims[d] = 1e3 * c.exposed_s
                overlapped = 1e3 * (c.overlapped_s or 0.0)
            else:
                dims[d] = 1e3 * c.seconds_per_step
    other = max(0.0, comm_ms - sum(dims.values()))
    bubble = p.bubble_measured * step_ms if p is not None and p.bubble_measured else 0.0
    left = bubble
    taken = min(left, dims["pipeline"])
    dims["pipeline"] -= taken
    left -= taken
    other -= min(left, other)
    return _CommSplit(dims, other, bubble, overlapped)


def draw_steps(a: Analysis) -> Figure:
    rows = _rows(a)
    if not rows:
        return _nothing("Step time by phase", a)
    phases = phase_names(rows)
    grids = [a.grid(v) for v in rows]
    # Parallel runs: communication by dimension, and the pipeline bubble, where recorded.
    split_comm = any(g is not None and any(d in g.communication for d in DIMS) for g in grids)
    bubble = any(g is not None and g.bubble_measured is not None for g in grids)
    notes = [a.not_plotted_note(),
             "Mean time per optimizer step spent in each phase over the timed steps (means add "
             "up to the mean step; the number is that total)."]
    if split_comm:
        notes.append("Parallel runs: communication split by dimension (parallel.communication."
                     "DIM.seconds_per_step, means over ranks; data: its exposed part, with the part "
                     "overlapped with compute hatched over the end of backward, not added to the "
                     "step); what the communication phase holds beyond them is 'other comm'.")
    if bubble:
        notes.append("Pipeline bubble: the measured fraction of the step the stages waited for "
                     "their neighbours (parallel.bubble.measured_fraction) × the median step; the "
                     "runtime times these waits as pipeline communication, so the bubble is taken "
                     "out of it.")
    notes.append(a.emulated_note(rows))
    fig = plotstyle.new_figure(8.0, _height(len(rows)), notes)
    ax = fig.subplots()
    y = np.arange(len(rows))
    left = np.zeros(len(rows))
    compute_end = np.zeros(len(rows))  # where backward (and its recompute) ends
    splits = [_comm_split(g, phase_ms(v, "communication"), 1e3 * (a.metrics[v.id].step_median_s or 0.0),
                          split_comm) for v, g in zip(rows, grids)]
    segments: list[tuple[str, str, np.ndarray, str]] = []  # series, label, ms, colour
    for p in phases:
        if p != "communication" or not (split_comm or bubble):
            segments.append((p, p.replace("_", " "), np.array([phase_ms(v, p) for v in rows]),
                             plotstyle.PHASE_COLORS.get(p, "#BBBBBB")))
            continue
        if split_comm:
            for d in DIMS:
                segments.append((f"communication.{d}",
                                 f"{d} comm" + (" (exposed)" if d == "data" else ""),
                                 np.array([s.dims[d] for s in splits]), plotstyle.COMM_COLORS[d]))
        if bubble:
            segments.append(("bubble", "pipeline bubble", np.array([s.bubble for s in splits]),
                             plotstyle.BUBBLE_COLOR))
        segments.append(("communication", "other comm" if split_comm else "communication",
                         np.array([s.other for s in splits]), plotstyle.PHASE_COLORS["communication"]))
    for series, label, w, colour in segments:
        bars = ax.barh(y, w, left=left, height=0.62, label=label, color=colour,
                       edgecolor="white", lw=0.4, hatch="////" if series == "bubble" else None)
        plotstyle.tag(f"step.{series}", bars.patches)
        left += w
        if series in ("forward", "backward", "recompute"):
            compute_end = left.copy()
    if split_comm:
        over = np.array([s.overlapped for s in splits])
        start = np.maximum(compute_end - over, 0.0)
        bars = ax.barh(y, compute_end - start, left=start, height=0.62, fill=False, hatch="xxx",
                       edgecolor=plotstyle.COMM_COLORS["data"], lw=0.0,
                       label="data comm (overlapped)")
        plotstyle.tag("step.communication.data.overlapped", bars.patches)
    for i, total in enumerate(left):
        ax.text(total, i, f" {total:.3g} ms", va="center", fontsize=7.5, color="0.25")
    _variant_axis(ax, a, rows)
    ax.set_xlabel("time per step (ms)")
    ax.set_title("Step time by phase")
    ax.margins(x=0.12)
    n_legend = len(segments) + (1 if split_comm else 0)
    ax.legend(ncols=min(n_legend, 6), loc="lower left", bbox_to_anchor=(0, 1.06), fontsize=7.5,
              handlelength=1.2, columnspacing=1.0)
    return fig


def memory_names(rows: list[Variant]) -> list[str]:
    extra: list[str] = []
    for v in rows:
        peaks = v.get("memory.peak_bytes") or {}
        for c, b in peaks.items():
            if c not in MEMORY and c not in extra and _number(b) > 0:
                extra.append(c)
    optional = [c for c in MEMORY_OPTIONAL if c in extra]
    return MEMORY + optional + sorted(c for c in extra if c not in MEMORY_OPTIONAL)


def _byte_unit(largest: float) -> tuple[str, float]:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if largest >= size:
            return unit, float(size)
    return "B", 1.0


def draw_memory(a: Analysis) -> Figure:
    rows = _rows(a)
    if not rows:
        return _nothing("Peak memory by category", a)
    cats = memory_names(rows)
    values = {c: np.array([_number((v.get("memory.peak_bytes") or {}).get(c)) for v in rows])
              for c in cats}
    stacked = sum(values.values())
    unit, size = _byte_unit(float(np.max(stacked)) if len(rows) else 0.0)
    limits = {_number(v.get("memory.limit_bytes")) for v in rows}
    note = ("Peak bytes of each category; the peaks need not coincide, so a bar can exceed the "
            "measured total peak (the number).")
    lim_note = ""
    fig_notes = [a.not_plotted_note(), note, a.emulated_note(rows)]
    if limits - {0.0}:
        lim_note = "Memory limit: " + ", ".join(sorted(f"{x / size:.3g} {unit}" for x in limits if x)) + "."
        fig_notes.append(lim_note)
    fig = plotstyle.new_figure(8.0, _height(len(rows)), fig_notes)
    ax = fig.subplots()
    y = np.arange(len(rows))
    left = np.zeros(len(rows))
    for c in cats:
        w = values[c] / size
        bars = ax.barh(y, w, left=left, height=0.62, label=c.replace("_", " "),
                       color=plotstyle.MEMORY_COLORS.get(c, "#BBBBBB"), edgecolor="white", lw=0.4)
        plotstyle.tag(f"mem.{c}", bars.patches)
        left += w
    for i, v in enumerate(rows):
        total = _number(v.get("memory.peak_total_bytes")) / size
        ax.text(left[i], i, f" {total:.3g} {unit} peak", va="center", fontsize=7.5, color="0.25")
    if len(limits) == 1 and (limit := next(iter(limits))) > 0 and limit <= 2 * float(np.max(left)) * size:
        line = ax.axvline(limit / size, color="#D55E00", ls="--", lw=1, label="memory limit")
        plotstyle.tag("mem.limit", [line])
    _variant_axis(ax, a, rows)
    ax.set_xlabel(f"peak memory ({unit})")
    ax.set_title("Peak memory by category")
    ax.margins(x=0.2)
    ax.legend(ncols=len(cats) + 1, loc="lower left", bbox_to_anchor=(0, 1.06), fontsize=7.5,
              handlelength=1.2, columnspacing=1.0)
    return fig


def draw_throughput(a: Analysis) -> Figure:
    rows = _rows(a)
    if not rows:
        return _nothing("Throughput", a)
    fig = plotstyle.new_figure(9.0, _height(len(rows)), [
        a.not_plotted_note(),
        "Tokens per second at the median step time; whiskers: at the p90 and p10 step times. "
        "MFU: model FLOP/s (6N + 12·L·d·T per token) ÷ the device's peak (n/a: peak unknown).",
        a.emulated_note(rows)])
    ax_t, ax_m = fig.subplots(1, 2, sharey=True)
    y = np.arange(len(rows))
    colors = [plotstyle.BASELINE_COLOR if v.is_baseline else plotstyle.color(
        a.classes.families.index(a.family(v)) if a.family(v) in a.classes.families else 0) for v in rows]
    tps = np.array([a.metrics[v.id].tokens_per_s or 0.0 for v in rows])
    lo, hi = [], []
    for v, t in zip(rows, tps):
        m = a.metrics[v.id]
        if m.tokens_per_step and m.step_p90_s and m.step_p10_s:
            lo.append(max(0.0, t - m.tokens_per_step / m.step_p90_s))
            hi.append(max(0.0, m.tokens_per_step / m.step_p10_s - t))
        else:
            lo.append(0.0)
            hi.append(0.0)
    bars = ax_t.barh(y, tps, height=0.62, color=colors, xerr=[lo, hi],
                     error_kw={"elinewidth": 0.9, "capsize": 2.5, "ecolor": "0.3"})
    plotstyle.tag("tput.tokens", list(bars.patches) + list(bars.errorbar.lines[2]))
    for i, t in enumerate(tps):
        ax_t.text(t + hi[i], i, f" {t:,.0f}", va="center", fontsize=7.5, color="0.25")
    ax_t.set_xlabel("tokens / s")
    ax_t.xaxis.set_major_formatter(EngFormatter(sep=""))
    handles = [Patch(color=plotstyle.BASELINE_COLOR, label="baseline")] + [
        Patch(color=plotstyle.color(i), label=f) for i, f in enumerate(a.classes.families)
        if any(a.family(v) == f for v in rows)]
    ax_t.legend(handles=handles, loc="lower left", bbox_to_anchor=(0, 1.06),
                ncols=min(len(handles), 6), fontsize=7.5, handlelength=1.2, columnspacing=1.0)
    ax_t.set_title("Training throughput")
    ax_t.margins(x=0.22)
    mfus = [a.metrics[v.id].mfu for v in rows]
    vals = np.array([100 * m if m is not None else 0.0 for m in mfus])
    mbars = ax_m.barh(y, vals, height=0.62, color=colors)
    plotstyle.tag("tput.mfu", mbars.patches)
    for i, m in enumerate(mfus):
        ax_m.text(vals[i], i, f" {100 * m:.3g}%" if m is not None else " n/a", va="center",
                  fontsize=7.5, color="0.25")
    ax_m.set_xlabel("model FLOPs utilisation (%)")
    ax_m.set_title("MFU")
    ax_m.margins(x=0.22)
    _variant_axis(ax_t, a, rows)
    return fig


def _variant_axis(ax, a: Analysis, rows: list[Variant]) -> None:
    ax.set_yticks(np.arange(len(rows)), [a.shown_label(v) for v in rows])
    ax.invert_yaxis()
    ax.grid(axis="y", visible=False)
    for tick, v in zip(ax.get_yticklabels(), rows):
        if v.is_baseline:
            tick.set_fontweight("bold")
