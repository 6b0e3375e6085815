"""The parallel runs' plots (docs/parallel.md), drawn when the results hold parallel lines:

- rank_memory: each rank's peak bytes by category (parallel.ranks[].memory_peak_bytes),
  stacked bars, one group of bars per parallel variant;
- scaling: tokens/s of the whole job (throughput.tokens_per_s) against the world size
  (parallel.world_size), one line per split family (dp only, tp only, pp only by schedule,
  combinations), each starting from the single-rank baseline at 1; dotted: linear scaling
  from the baseline.

Series ids (plotstyle.tag): "rankmem.CATEGORY", "rankmem.baseline", "scale.family.K" (K:
the family's position in the legend), "scale.baseline", "scale.ideal".
"""
from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import EngFormatter, FixedLocator, NullLocator

from . import plotstyle
from .analysis import Analysis
from .load import Variant
from .parallel import Parallel
from .plot_bars import MEMORY, MEMORY_OPTIONAL, _byte_unit

RANK_MEMORY_STEM = "rank_memory"
SCALING_STEM = "scaling"


def _parallel_ok(a: Analysis) -> list[tuple[Variant, Parallel]]:
    out = []
    for v in a.ok:
        g = a.grid(v)
        if g is not None:
            out.append((v, g))
    return out


def _single_rank_baseline(a: Analysis) -> Variant | None:
    b = a.baseline
    if b is not None and b.ok and a.grid(b) is None and a.metrics[b.id].tokens_per_s:
        return b
    return None


def rank_memory_names(groups: list[tuple[Variant, Parallel]]) -> list[str]:
    """The report's categories in its order, then any other with a non-zero peak."""
    extra: list[str] = []
    for _, g in groups:
        for r in g.ranks:
            for c, b in r.memory.items():
                if c not in MEMORY and c not in extra and b > 0:
                    extra.append(c)
    optional = [c for c in MEMORY_OPTIONAL if c in extra]
    return MEMORY + optional + sorted(c for c in extra if c not in MEMORY_OPTIONAL)


def draw_rank_memory(a: Analysis) -> Figure:
    groups = [(v, g) for v, g in _parallel_ok(a) if any(r.memory for r in g.ranks)]
    if not groups:
        why = a.not_plotted_note() or "No parallel variant recorded its ranks' memory."
        return plotstyle.message_figure("Peak memory per rank: nothing to plot", why)
    cats = rank_memory_names(groups)
    # One bar per rank, a gap of one bar between groups; the group's label above its bars.
    rows: list[tuple[int, Variant, int]] = []  # (y, variant, rank index)
    heads: list[tuple[float, Variant, Parallel]] = []
    y = 0
    for v, g in groups:
        heads.append((y - 0.62, v, g))
        for k in range(len(g.ranks)):
            rows.append((y, v, k))
            y += 1
        y += 1
    grid = {v.id: g for v, g in groups}
    values = {c: np.array([grid[v.id].ranks[k].memory.get(c, 0.0) for _, v, k in rows]) for c in cats}
    largest = float(np.max(sum(values.values())))
    base = _single_rank_baseline(a)
    base_peak = a.metrics[base.id].peak_total_bytes if base is not None else None
    unit, size = _byte_unit(max(largest, base_peak or 0.0))
    notes = [a.not_plotted_note(),
             "Peak bytes of each category on each rank (parallel.ranks[].memory_peak_bytes); the "
             "peaks need not coincide, so a bar bounds the rank's peak from above. Ranks are "
             "labelled with their data, tensor and pipeline coordinates."]
    if base_peak:
        notes.append(f"Dashed: the single-rank baseline's measured peak total "
                     f"({base_peak / size:.3g} {unit}).")
    fig = plotstyle.new_figure(8.0, 1.5 + 0.3 * (y + 1), notes)
    ax = fig.subplots()
    ys = np.array([r[0] for r in rows], dtype=float)
    left = np.zeros(len(rows))
    for c in cats:
        w = values[c] / size
        bars = ax.barh(ys, w, left=left, height=0.62, label=c.replace("_", " "),
                       color=plotstyle.MEMORY_COLORS.get(c, "#BBBBBB"), edgecolor="white", lw=0.4)
        plotstyle.tag(f"rankmem.{c}", bars.patches)
        left += w
    for i, total in enumerate(left):
        ax.text(total, ys[i], f" {total:.3g} {unit}", va="center", fontsize=7, color="0.25")
    if base_peak:
        line = ax.axvline(base_peak / size, color=plotstyle.BASELINE_COLOR, ls="--", lw=1,
                          label="single-rank baseline peak")
        plotstyle.tag("rankmem.baseline", [line])
    ax.set_yticks(ys, [f"rank {grid[v.id].ranks[k].rank} ({grid[v.id].ranks[k].coords})"
                       for _, v, k in rows], fontsize=7.5)
    for y0, v, g in heads:
        ax.text(0, y0, f"{a.shown_label(v)}: {g.split}", fontsize=8, weight="bold", va="center",
                ha="left", color="0.15")
    ax.set_ylim(y - 0.5, -1.2)
    ax.grid(axis="y", visible=False)
    ax.set_xlabel(f"peak memory per rank ({unit})")
    ax.set_title("Peak memory per rank")
    ax.margins(x=0.18)
    ax.legend(ncols=min(len(cats) + (1 if base_peak else 0), 6), loc="lower left",
              bbox_to_anchor=(0, 1.04), fontsize=7.5, handlelength=1.2, columnspacing=1.0)
    return fig


def scaling_families(a: Analysis) -> list[tuple[str, list[tuple[Variant, Parallel]]]]:
    """(split family, its ok parallel variants by world size), families in display order."""
    by: dict[str, list[tuple[Variant, Parallel]]] = {}
    for v, g in _parallel_ok(a):
        if a.metrics[v.id].tokens_per_s:
            by.setdefault(g.family, []).append((v, g))
    for members in by.values():
        members.sort(key=lambda m: m[1].world_size)
    return list(by.items())


def draw_scaling(a: Analysis) -> Figure:
    fams = scaling_families(a)
    if not fams:
        why = a.not_plotted_note() or "No parallel variant has a throughput."
        return plotstyle.message_figure("Scaling: nothing to plot", why)
    base = _single_rank_baseline(a)
    base_tps = a.metrics[base.id].tokens_per_s if base is not None else None
    notes = [a.not_plotted_note(),
             "Training tokens/s of the whole job (throughput.tokens_per_s, at the median step) "
             "against the number of ranks, one line per split family"
             + (", each from the single-rank baseline (the star at 1 rank); dotted: linear "
                "scaling from it." if base_tps else
                "; no single-rank baseline is ok in this file, so the lines start at their "
                "smallest run."),
             a.emulated_note([v for _, ms in fams for v, _ in ms])]
    fig = plotstyle.new_figure(7.5, 4.6, notes)
    ax = fig.subplots()
    sizes = {1} if base_tps else set()
    for k, (fam, members) in enumerate(fams):
        xs = [g.world_size for _, g in members]
        ys = [a.metrics[v.id].tokens_per_s or 0.0 for v, _ in members]
        if base_tps:
            xs, ys = [1] + xs, [base_tps] + ys
        sizes.update(xs)
        c = plotstyle.color(k)
        (ln,) = ax.plot(xs, ys, "-o", color=c, lw=1.6, ms=5.5, label=fam, zorder=3)
        labels = [ax.annotate(a.shown_label(v), (g.world_size, a.metrics[v.id].tokens_per_s or 0.0),
                              xytext=(5, 4 - 11 * (k % 2)), textcoords="offset points", fontsize=7.5,
                              color=c) for v, g in members]
        plotstyle.tag(f"scale.family.{k}", [ln, *labels])
    top = max(sizes)
    if base_tps:
        (ideal,) = ax.plot([1, top], [base_tps, base_tps * top], ":", color="0.55", lw=1,
                           label="linear scaling", zorder=1)
        plotstyle.tag("scale.ideal", [ideal])
        (star,) = ax.plot([1], [base_tps], marker="*", ms=13, ls="none",
                          color=plotstyle.BASELINE_COLOR, label="single-rank baseline", zorder=5)
        plotstyle.tag("scale.baseline", [star])
    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_locator(FixedLocator(sorted(sizes)))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xticklabels([str(s) for s in sorted(sizes)])
    ax.set_xlim(min(sizes) / 1.25, top * 1.25)
    ax.set_xlabel("ranks (world size)")
    ax.set_ylabel("tokens / s (whole job)")
    ax.yaxis.set_major_formatter(EngFormatter(sep=""))
    ax.set_ylim(bottom=0)
    ax.set_title("Scaling: throughput against ranks")
    ax.legend(loc="upper left", fontsize=7.5)
    return fig
