"""loss_curves: held-out loss against training step for each ok variant with an accuracy
run (the mean over seeds, the band spanning the seeds' lowest and highest), the baseline in
black, and the entropy floor of synthetic data as a dashed line (the lowest loss any model
can reach on it).

Series ids (plotstyle.tag): "loss.INDEX" per variant, "loss.floor.K" per distinct floor.
"""
from __future__ import annotations

import math

import numpy as np
from matplotlib.figure import Figure

from . import plotstyle
from .analysis import Analysis
from .load import Variant

STEM = "loss_curves"


def curve(v: Variant) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(steps, mean, low, high) over seeds, from accuracy.curve (final point included)."""
    steps, mean, low, high = [], [], [], []
    for point in v.get("accuracy.curve") or []:
        losses = [x for x in point.get("eval_loss", []) if isinstance(x, (int, float)) and math.isfinite(x)]
        if not losses:
            continue
        steps.append(float(point["step"]))
        mean.append(float(np.mean(losses)))
        low.append(float(np.min(losses)))
        high.append(float(np.max(losses)))
    return np.array(steps), np.array(mean), np.array(low), np.array(high)


def drawn(a: Analysis) -> list[Variant]:
    return [v for v in a.ok if len(curve(v)[0]) > 0]


def floors(a: Analysis) -> list[float]:
    out: list[float] = []
    for v in drawn(a):
        f = a.metrics[v.id].entropy_floor
        if f is not None and all(abs(f - g) > 1e-9 for g in out):
            out.append(f)
    return sorted(out)


def draw(a: Analysis) -> Figure:
    rows = drawn(a)
    if not rows:
        why = a.not_plotted_note() or "No variant has an accuracy run (accuracy.train_steps 0)."
        return plotstyle.message_figure("Loss curves: nothing to plot", why)
    no_curve = [a.label(v) for v in a.ok if v not in rows]
    notes = [a.not_plotted_note()]
    if no_curve:
        notes.append("No accuracy run: " + ", ".join(no_curve) + ".")
    seeds = sorted({a.metrics[v.id].seeds for v in rows})
    notes.append(f"Lines: mean held-out loss over {'/'.join(map(str, seeds))} seed(s); bands: the "
                 "seeds' lowest to highest.")
    fig = plotstyle.new_figure(8.0, 4.6, notes)
    ax = fig.subplots()
    k = 0
    for v in rows:
        steps, mean, low, high = curve(v)
        c = plotstyle.BASELINE_COLOR if v.is_baseline else plotstyle.color(k)
        k += 0 if v.is_baseline else 1
        (line,) = ax.plot(steps, mean, marker="o", ms=3.5, lw=2.0 if v.is_baseline else 1.3,
                          color=c, label=a.label(v), zorder=3 if v.is_baseline else 2)
        band = ax.fill_between(steps, low, high, color=c, alpha=0.12, lw=0) if len(seeds) and max(seeds) > 1 else None
        plotstyle.tag(f"loss.{v.index}", [line, band])
    for i, f in enumerate(floors(a)):
        fl = ax.axhline(f, color="0.35", ls="--", lw=1, zorder=1,
                        label="entropy floor" if i == 0 else None)
        t = ax.annotate(f"entropy floor {f:.3f}", (1.0, f), xycoords=("axes fraction", "data"),
                        xytext=(-4, 3), textcoords="offset points", ha="right", fontsize=7.5,
                        color="0.35")
        plotstyle.tag(f"loss.floor.{i}", [fl, t])
    ax.set_xlabel("training step (optimizer steps)")
    ax.set_ylabel("held-out loss (nats/token)")
    ax.set_title("Held-out loss during training")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7.5)
    return fig
