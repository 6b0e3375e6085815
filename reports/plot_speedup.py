"""speedup_vs_accuracy: each variant's speedup over the baseline (x) against its eval-loss
change (y, percent of the baseline's mean loss), both with 95% intervals as error bars; the
baseline at (1, 0); the Pareto frontier (faster and lower loss is better) through the
baseline and the points (dashed, its points ringed); one panel per strategy family.

Series ids (plotstyle.tag): "speed.P.baseline", "speed.P.frontier", "speed.P.point.INDEX"
for panel number P (0-based) and the variant's index.
"""
from __future__ import annotations

import math

from matplotlib.figure import Figure

from . import plotstyle
from .analysis import Analysis
from .load import Variant

STEM = "speedup_vs_accuracy"


def pareto_frontier(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The points no other point beats on both axes (higher x, lower y), by increasing x."""
    best: list[tuple[float, float]] = []
    min_y = math.inf
    for x, y in sorted(set(points), key=lambda p: (-p[0], p[1])):
        if y < min_y:
            best.append((x, y))
            min_y = y
    return sorted(best)


def panels(a: Analysis) -> list[tuple[str, list[Variant]]]:
    """(family, the variants drawn in its panel) for each family with something to draw."""
    out = []
    for fam in a.classes.families:
        pts = [v for v in a.members(fam) if v.ok and a.metrics[v.id].comparable]
        if pts:
            out.append((fam, pts))
    return out


def notes(a: Analysis) -> list[str]:
    out = [a.not_plotted_note()]
    no_loss = [a.label(v) for v in a.ok if not v.is_baseline and a.metrics[v.id].speedup is not None
               and a.metrics[v.id].loss_delta_pct is None]
    if no_loss:
        out.append("Not plotted (no loss change: accuracy run off): " + ", ".join(no_loss) + ".")
    out.append(a.emulated_note([v for _, vs in panels(a) for v in vs]).replace(
        "native hardware would give.", "native hardware would give (hollow points)."))
    out.append("Speedup: the ratio of tokens/s at the median step time (the baseline's step "
               "time ÷ this one, times the ratio of tokens per step). Error bars: 95% intervals "
               "(speedup: bootstrap over step times; loss: t over per-seed differences when both ran the same "
               "seeds, else Welch t). Dashed line and "
               "rings: Pareto frontier. Right and down is better.")
    return [n for n in out if n]


def _why_empty(a: Analysis) -> str:
    base = a.baseline
    if base is None:
        return f"The baseline ({a.results.baseline_id or 'unknown'}) is not in this results file."
    if not base.ok:
        return f"The baseline {a.label(base)} is {base.status}: {base.reason}"
    if not a.classes.families:
        return "The scenario has only its baseline: there is nothing to compare."
    if all(a.metrics[v.id].loss_delta_pct is None for v in a.ok if not v.is_baseline):
        return ("No variant has a loss change against the baseline (the accuracy run was off, "
                "or no variant other than the baseline is ok).")
    return "No variant other than the baseline is ok."


def draw(a: Analysis) -> Figure:
    groups = panels(a)
    if not groups:
        return plotstyle.message_figure("Speedup against accuracy: nothing to plot", _why_empty(a))
    n = len(groups)
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    fig = plotstyle.new_figure(5.2 * cols, 4.2 * rows, notes(a))
    axes = fig.subplots(rows, cols, squeeze=False)
    labels = []
    for k, (fam, members) in enumerate(groups):
        ax = axes[k // cols][k % cols]
        labels += _panel(ax, a, k, fam, members)
    for k in range(n, rows * cols):
        axes[k // cols][k % cols].set_visible(False)
    title = f"{a.results.scenario.get('name', '')}: speedup against accuracy"
    fig.suptitle(title, fontsize=11, weight="bold")
    # One layout for all panels: labels of different panels sit apart unless one spills over.
    plotstyle.spread_labels(fig, labels)
    return fig


def _panel(ax, a: Analysis, k: int, fam: str, members: list[Variant]) -> list:
    """Draws one family's panel; returns its point labels."""
    labels = []
    ax.axvline(1.0, color="0.75", lw=0.8, zorder=0)
    ax.axhline(0.0, color="0.75", lw=0.8, zorder=0)
    xy: list[tuple[float, float]] = [(1.0, 0.0)]
    for i, v in enumerate(members):
        m = a.metrics[v.id]
        x, y = float(m.speedup or 0), float(m.loss_delta_pct or 0)
        xy.append((x, y))
        xerr = [[x - m.speedup_ci95[0]], [m.speedup_ci95[1] - x]] if m.speedup_ci95 else None
        ci = m.loss_delta_pct_ci95
        yerr = [[y - ci[0]], [ci[1] - y]] if ci else None
        c = plotstyle.color(i)
        # Hollow: emulated precision (its speed is not the hardware's).
        cont = ax.errorbar([x], [y], xerr=xerr, yerr=yerr, fmt="o", ms=6, color=c, ecolor=c,
                           mfc="white" if a.emulated(v) else c, mew=1.5,
                           elinewidth=1.1, capsize=3, zorder=3, label=None)
        parts = [cont.lines[0], *cont.lines[1], *cont.lines[2]]
        ann = ax.annotate(a.shown_label(v), (x, y), xytext=(6, 6), textcoords="offset points",
                          fontsize=8, color=c, zorder=6)
        labels.append(ann)
        plotstyle.tag(f"speed.{k}.point.{v.index}", parts + [ann])
    front = pareto_frontier(xy)
    # Dashed through the frontier's points, each ringed (a frontier of one point is a ring).
    (fl,) = ax.plot([p[0] for p in front], [p[1] for p in front], "--", color="0.45", lw=1,
                    marker="o", ms=13, mfc="none", mec="0.45", mew=0.9, zorder=2,
                    label="Pareto frontier")
    plotstyle.tag(f"speed.{k}.frontier", [fl])
    (bl,) = ax.plot([1.0], [0.0], marker="*", ms=13, color=plotstyle.BASELINE_COLOR, ls="none",
                    zorder=5, label="baseline")
    plotstyle.tag(f"speed.{k}.baseline", [bl])
    ax.set_title(f"{fam} ({len(members)} variant{'s' if len(members) != 1 else ''})")
    ax.set_xlabel("speedup over the baseline (× tokens/s)")
    ax.set_ylabel("eval-loss change vs baseline (%)")
    ax.legend(loc="best")
    ax.margins(x=0.15, y=0.2)
    return labels
