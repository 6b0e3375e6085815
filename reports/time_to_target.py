"""Time to quality (docs/results-schema.md, *Time to target*): for results whose lines carry
accuracy.time_to_target — the scenario set accuracy.target_loss — a table of each variant's
optimizer steps, tokens and training seconds to first reach the target held-out loss (seeds
reached, means with 95% intervals over the seeds that reached it, the time-to-target speedup
against the baseline) and the plot time_to_quality: held-out loss against training seconds
(left) and time-to-target speedup against the per-step speedup in tokens/s (right).

Series ids (plotstyle.tag): "ttq.loss.INDEX" per variant and "ttq.target.K" per distinct
target (left); "ttq.speed.point.INDEX", "ttq.speed.baseline", "ttq.speed.diagonal" (right).
"""
from __future__ import annotations

import math
import textwrap
from dataclasses import dataclass
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

from . import plotstyle, text
from .analysis import Analysis
from .load import Variant
from .tables import Table

STEM = "time_to_quality"
TITLE = "Time to quality"
CAPTION = ("Left: held-out loss against training seconds (the wall clock of the optimizer "
           "steps, evaluations excluded), mean over seeds, with the target loss dashed. Right: "
           "each variant's time-to-target speedup (the baseline's mean training seconds to reach "
           "the target ÷ this variant's) against its speedup in tokens/s, with 95% intervals; "
           "above the dotted diagonal a variant reaches the target with fewer tokens than the "
           "baseline.")
NOTE = ("Steps, tokens and seconds are those of the first evaluation at which the held-out loss "
        "is at or below the target (an upper bound, quantised to the evaluation interval; a "
        "later rise does not undo it); \"interpolated\" solves the straight line from the "
        "previous evaluation (or step 0) for the target. Means and 95% t intervals are over "
        "the seeds that reached the target. Time-to-target speedup: the baseline's mean "
        "training seconds ÷ this variant's, 95% interval by the delta method on its logarithm "
        "(paired over seeds when both ran the same seeds); it needs every seed on both sides "
        "to reach the target.")


def _num(x: Any) -> float | None:
    if isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x):
        return float(x)
    return None


def _pair(x: Any) -> tuple[float, float] | None:
    if isinstance(x, list) and len(x) == 2:
        lo, hi = _num(x[0]), _num(x[1])
        if lo is not None and hi is not None:
            return (lo, hi)
    return None


@dataclass
class Stat:
    mean: float
    ci95: tuple[float, float] | None


def _stat(x: Any) -> Stat | None:
    if isinstance(x, dict) and _num(x.get("mean")) is not None:
        return Stat(float(x["mean"]), _pair(x.get("ci95")))
    return None


@dataclass
class TimeToTarget:
    """One line's accuracy.target and accuracy.time_to_target, and its vs_baseline ratios."""

    spec: Any
    targets: list[float]
    seeds_run: int
    seeds_reached: int
    step: Stat | None
    tokens: Stat | None
    train_s: Stat | None
    train_s_interp: Stat | None
    speedup: float | None = None
    speedup_ci95: tuple[float, float] | None = None
    steps_ratio: float | None = None
    steps_ratio_ci95: tuple[float, float] | None = None
    reason: str = ""

    def target_text(self) -> str:
        """"1.5 × entropy floor (1.91 nats)" or "2.5 nats"."""
        mean = sum(self.targets) / len(self.targets) if self.targets else None
        if isinstance(self.spec, dict) and _num(self.spec.get("floor_ratio")) is not None:
            out = f"{self.spec['floor_ratio']:g} × entropy floor"
            if mean is not None:
                vary = len(self.targets) > 1 and max(self.targets) - min(self.targets) > 1e-9
                out += f" ({'mean ' if vary else ''}{mean:.4g} nats)"
            return out
        if _num(self.spec) is not None:
            return f"{self.spec:g} nats"
        return text.value(self.spec)


def of(v: Variant) -> TimeToTarget | None:
    """The variant's time to target, or None when its line has none."""
    t = v.get("accuracy.time_to_target")
    if not isinstance(t, dict):
        return None
    target = v.get("accuracy.target") or {}
    losses = target.get("loss") if isinstance(target, dict) else None
    per_seed = t.get("per_seed") if isinstance(t.get("per_seed"), list) else []
    out = TimeToTarget(
        spec=target.get("spec") if isinstance(target, dict) else None,
        targets=[float(x) for x in losses if _num(x) is not None] if isinstance(losses, list) else [],
        seeds_run=int(t["seeds_run"]) if _num(t.get("seeds_run")) is not None else len(per_seed),
        seeds_reached=int(t["seeds_reached"]) if _num(t.get("seeds_reached")) is not None
        else sum(1 for r in per_seed if isinstance(r, dict) and r.get("reached") is True),
        step=_stat(t.get("step")), tokens=_stat(t.get("tokens")), train_s=_stat(t.get("train_s")),
        train_s_interp=_stat(t.get("train_s_interp")))
    out.speedup = _num(v.get("vs_baseline.time_to_target_speedup"))
    out.speedup_ci95 = _pair(v.get("vs_baseline.time_to_target_speedup_ci95"))
    out.steps_ratio = _num(v.get("vs_baseline.steps_to_target_ratio"))
    out.steps_ratio_ci95 = _pair(v.get("vs_baseline.steps_to_target_ratio_ci95"))
    reason = v.get("vs_baseline.time_to_target_reason")
    out.reason = reason if isinstance(reason, str) else ""
    return out


def present(a: Analysis) -> bool:
    """Some line carries accuracy.time_to_target: the time-to-quality views are shown."""
    return any(of(v) is not None for v in a.results.variants)


def _stat_text(s: Stat | None, fmt: str, unit: str = "") -> str:
    if s is None:
        return "—"
    out = format(s.mean, fmt) + unit
    if s.ci95 is not None and s.ci95[0] != s.ci95[1]:
        out += f" [{format(s.ci95[0], fmt)}, {format(s.ci95[1], fmt)}]"
    return out


def _seconds_text(s: Stat | None) -> str:
    """Seconds with three significant digits of the mean, the interval to the same decimals."""
    if s is None:
        return "—"
    mag = math.floor(math.log10(abs(s.mean))) if s.mean else 0
    return _stat_text(s, f".{min(4, max(0, 2 - mag))}f", " s")


def _tokens_text(s: Stat | None) -> str:
    if s is None:
        return "—"
    return f"{s.mean:,.0f}" + (f" [{s.ci95[0]:,.0f}, {s.ci95[1]:,.0f}]"
                               if s.ci95 is not None and s.ci95[0] != s.ci95[1] else "")


def table(a: Analysis) -> Table | None:
    """One row per variant with a time to target (every status, in the report's order)."""
    if not present(a):
        return None
    t = Table(["#", "variant", "target", "seeds reached", "steps to target [95% CI]",
               "tokens to target [95% CI]", "seconds to target [95% CI]",
               "seconds, interpolated [95% CI]", "time-to-target speedup [95% CI]",
               "steps-to-target ratio [95% CI]", "speedup (tokens/s) [95% CI]", "note"])
    t.numeric = {0, 3, 4, 5, 6, 7, 8, 9, 10}
    t.wide = {11}
    for v in a.order:
        tt = of(v)
        if tt is None:
            continue
        m = a.metrics[v.id]
        label = f"{a.label(v)}\n{v.id}" if a.label(v) != v.id else v.id
        base = v.is_baseline and v.ok
        all_reached = tt.seeds_run > 0 and tt.seeds_reached == tt.seeds_run
        note = tt.reason
        if not note and not tt.seeds_reached:
            note = "no seed reached the target"
        if a.emulated(v):
            emulated = "emulated precision: its seconds are not native hardware's"
            note = f"{note}; {emulated}" if note else emulated
        t.add([str(v.index), label, tt.target_text(), f"{tt.seeds_reached} of {tt.seeds_run}",
               _stat_text(tt.step, ".1f"), _tokens_text(tt.tokens),
               _seconds_text(tt.train_s), _seconds_text(tt.train_s_interp),
               "1 (baseline)" if base and all_reached
               else text.speedup_with_ci(tt.speedup, tt.speedup_ci95),
               "1 (baseline)" if base and all_reached
               else text.speedup_with_ci(tt.steps_ratio, tt.steps_ratio_ci95),
               "1 (baseline)" if base else text.speedup_with_ci(m.speedup, m.speedup_ci95),
               note])
    return t


# ---- the plot -------------------------------------------------------------------------------

def loss_by_seconds(v: Variant) -> tuple[np.ndarray, np.ndarray]:
    """(mean training seconds, mean held-out loss) over seeds at each evaluation that records
    training seconds (accuracy.curve[].train_s)."""
    xs, ys = [], []
    for point in v.get("accuracy.curve") or []:
        if not isinstance(point, dict):
            continue
        secs = [x for x in (point.get("train_s") or []) if _num(x) is not None]
        losses = [x for x in (point.get("eval_loss") or []) if _num(x) is not None]
        if secs and losses:
            xs.append(float(np.mean(secs)))
            ys.append(float(np.mean(losses)))
    return np.array(xs), np.array(ys)


def _speed_points(a: Analysis) -> list[Variant]:
    return [v for v in a.ok if not v.is_baseline and (tt := of(v)) is not None
            and tt.speedup is not None and a.metrics[v.id].speedup is not None]


def notes(a: Analysis) -> list[str]:
    out = [a.not_plotted_note()]
    missing = []
    for v in a.ok:
        tt = of(v)
        if v.is_baseline or tt is None or v in _speed_points(a):
            continue
        missing.append(f"{a.label(v)} ({tt.reason or 'no time-to-target speedup'})")
    if missing:
        out.append("Not on the right panel: " + "; ".join(missing) + ".")
    out.append(a.emulated_note(_speed_points(a)))
    return [n for n in out if n]


def draw(a: Analysis) -> Figure:
    rows = [v for v in a.ok if of(v) is not None]
    if not rows:
        why = a.not_plotted_note() or "No ok variant has a time to target."
        return plotstyle.message_figure("Time to quality: nothing to plot", why)
    fig = plotstyle.new_figure(11.0, 4.4, notes(a))
    left, right = fig.subplots(1, 2)
    _loss_panel(left, a, rows)
    _speed_panel(right, a)
    fig.suptitle(f"{a.results.scenario.get('name', '')}: time to quality", fontsize=11,
                 weight="bold")
    return fig


def _colors(a: Analysis) -> dict[str, str]:
    """The loss-curve colours: the baseline black, the others in order."""
    out, k = {}, 0
    for v in a.ok:
        if v.is_baseline:
            out[v.id] = plotstyle.BASELINE_COLOR
        else:
            out[v.id] = plotstyle.color(k)
            k += 1
    return out


def _loss_panel(ax, a: Analysis, rows: list[Variant]) -> None:
    colors = _colors(a)
    for v in rows:
        x, y = loss_by_seconds(v)
        if len(x) == 0:
            continue
        (line,) = ax.plot(x, y, marker="o", ms=3.5, lw=2.0 if v.is_baseline else 1.3,
                          color=colors[v.id], label=_wrapped(a.shown_label(v)),
                          zorder=3 if v.is_baseline else 2)
        plotstyle.tag(f"ttq.loss.{v.index}", [line])
    targets: list[float] = []
    for v in rows:
        tt = of(v)
        if tt is not None and tt.targets:
            m = sum(tt.targets) / len(tt.targets)
            if all(abs(m - g) > 1e-9 for g in targets):
                targets.append(m)
    for i, g in enumerate(sorted(targets)):
        tl = ax.axhline(g, color="0.35", ls="--", lw=1, zorder=1,
                        label="target" if i == 0 else None)
        tx = ax.annotate(f"target {g:.3f}", (1.0, g), xycoords=("axes fraction", "data"),
                         xytext=(-4, 3), textcoords="offset points", ha="right", fontsize=7.5,
                         color="0.35")
        plotstyle.tag(f"ttq.target.{i}", [tl, tx])
    ax.set_xlabel("training seconds (optimizer steps only)")
    ax.set_ylabel("held-out loss (nats/token)")
    ax.set_title("Held-out loss against training time")
    ax.legend(loc="upper right", fontsize=6.5)


def _wrapped(label: str) -> str:
    """Long variant labels (many swept keys) on several short lines, so they do not squeeze
    the axes."""
    return textwrap.fill(label, 30)


def _speed_panel(ax, a: Analysis) -> None:
    pts = _speed_points(a)
    colors = _colors(a)
    if not pts:
        ax.text(0.5, 0.5, "No variant has a time-to-target speedup\n(every seed on both sides "
                "must reach the target).", ha="center", va="center", transform=ax.transAxes,
                fontsize=8.5, color="0.3")
        ax.set_axis_off()
        return
    xs, ys = [1.0], [1.0]
    for v in pts:
        m, tt = a.metrics[v.id], of(v)
        assert tt is not None and m.speedup is not None and tt.speedup is not None
        x, y = m.speedup, tt.speedup
        xs.append(x)
        ys.append(y)
        xerr = [[x - m.speedup_ci95[0]], [m.speedup_ci95[1] - x]] if m.speedup_ci95 else None
        yerr = [[y - tt.speedup_ci95[0]], [tt.speedup_ci95[1] - y]] if tt.speedup_ci95 else None
        c = colors[v.id]
        cont = ax.errorbar([x], [y], xerr=xerr, yerr=yerr, fmt="o", ms=6, color=c, ecolor=c,
                           mfc="white" if a.emulated(v) else c, mew=1.5, elinewidth=1.1,
                           capsize=3, zorder=3)
        parts = [cont.lines[0], *cont.lines[1], *cont.lines[2]]
        ann = ax.annotate(_wrapped(a.shown_label(v)), (x, y), xytext=(6, 6),
                          textcoords="offset points", fontsize=6.5, color=c, zorder=4)
        ann.set_in_layout(False)  # labels may run past the axes; they must not shrink them
        plotstyle.tag(f"ttq.speed.point.{v.index}", parts + [ann])
    # Ratios on log axes: an interval symmetric in the logarithm (the delta method's) looks
    # symmetric, and 2x faster is as far from 1 as 2x slower.
    for v in pts:
        tt = of(v)
        if tt is not None and tt.speedup_ci95 is not None:
            ys += [y for y in tt.speedup_ci95 if y > 0]
        ci = a.metrics[v.id].speedup_ci95
        if ci is not None:
            xs += [x for x in ci if x > 0]
    lo = min(min(xs), min(ys)) / 1.25
    hi = max(max(xs), max(ys)) * 1.25
    (diag,) = ax.plot([lo, hi], [lo, hi], ":", color="0.5", lw=1, zorder=1,
                      label="time-to-target speedup = speedup")
    plotstyle.tag("ttq.speed.diagonal", [diag])
    (bl,) = ax.plot([1.0], [1.0], marker="*", ms=13, color=plotstyle.BASELINE_COLOR, ls="none",
                    zorder=5, label="baseline")
    plotstyle.tag("ttq.speed.baseline", [bl])
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    # Round ratios as ticks (a log axis within one decade would show only 1).
    decades = math.log10(hi / lo)
    mantissas = (1, 1.5, 2, 3, 5, 7) if decades <= 1.2 else (1, 2, 5) if decades <= 3 else (1,)
    ticks = [m * 10.0 ** e for e in range(-6, 7) for m in mantissas]
    ticks = [x for x in ticks if lo <= x <= hi]
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_locator(FixedLocator(ticks))
        axis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}"))
        axis.set_minor_locator(NullLocator())
    ax.set_xlabel("speedup over the baseline (× tokens/s, log scale)")
    ax.set_ylabel("time-to-target speedup (× less training time, log scale)")
    ax.set_title("Time-to-target speedup against per-step speedup")
    ax.legend(loc="best")
