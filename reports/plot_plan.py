"""The plots of a capacity plan's report (docs/reports.md, *Plan report*):

- plan_memory: memory per GPU by category, one stacked bar per configuration (the top ten),
  against the device's capacity and the usable memory after the headroom;
- plan_step_time: the iteration time by component (time_breakdown_s), one stacked
  horizontal bar per configuration (the top ten);
- plan_scaling: time to train (days; with failures and checkpoints dashed) and cost (or
  GPU-hours when the plan has no price) of the best configuration at each GPU count (the
  plan's `scaling` list), log2 GPU axis, the requested count marked.

Series ids (plotstyle.tag): "plan.mem.CATEGORY", "plan.mem.capacity", "plan.mem.usable";
"plan.step.COMPONENT"; "plan.scale.days", "plan.scale.days_goodput", "plan.scale.cost" (or
"plan.scale.gpu_hours"), "plan.scale.requested", "plan.scale.none".
"""
from __future__ import annotations

import math

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

from . import plotstyle
from .plan import DAY_S, Plan, count_words, gib, pack, shared_fields, shared_text, words

MEMORY_STEM = "plan_memory"
STEP_STEM = "plan_step_time"
SCALING_STEM = "plan_scaling"
TOP_PLOTTED = 10

MEMORY = ["parameters", "gradients", "optimizer_state", "activations", "workspace",
          "communication", "emulation"]
COMPONENTS = ["forward", "backward", "recompute", "tensor_parallel_comm", "pipeline_comm",
              "pipeline_bubble", "data_parallel_comm", "expert_parallel_comm", "optimizer"]
COMPONENT_LABELS = {"tensor_parallel_comm": "tensor comm", "pipeline_comm": "pipeline comm",
                    "pipeline_bubble": "pipeline bubble", "data_parallel_comm": "data comm",
                    "expert_parallel_comm": "expert all-to-all"}
# The run report's colours for the same things (plotstyle: phases, comm by dimension, bubble).
COMPONENT_COLORS = {"forward": plotstyle.PHASE_COLORS["forward"],
                    "backward": plotstyle.PHASE_COLORS["backward"],
                    "recompute": plotstyle.PHASE_COLORS["recompute"],
                    "optimizer": plotstyle.PHASE_COLORS["optimizer"],
                    "tensor_parallel_comm": plotstyle.COMM_COLORS["tensor"],
                    "pipeline_comm": plotstyle.COMM_COLORS["pipeline"],
                    "data_parallel_comm": plotstyle.COMM_COLORS["data"],
                    "expert_parallel_comm": "#CC79A7",
                    "pipeline_bubble": plotstyle.BUBBLE_COLOR}
CAPACITY_COLOR = "#A11111"
EXTRA_COLORS = ["#BBBBBB", "#999999", "#777777", "#DDDDDD"]


def top(plan: Plan) -> list[dict]:
    return plan.configurations[:TOP_PLOTTED]


def _nothing(title: str, plan: Plan) -> Figure:
    return plotstyle.message_figure(f"{title}: nothing to plot",
                                    f"The plan lists no feasible configuration "
                                    f"({plan.data.get('evaluated', 'some')} evaluated): none fits "
                                    f"{plan.gpus} × {plan.gpu_name}.")


def _names(rows: list[dict], key: str, known: list[str]) -> list[str]:
    """The known names with a non-zero value in some row, then any other a newer planner adds."""
    present = [n for n in known if any(float((c.get(key) or {}).get(n) or 0) > 0 for c in rows)]
    extra: list[str] = []
    for c in rows:
        for n, x in (c.get(key) or {}).items():
            if n not in known and n != "total" and n not in extra and float(x or 0) > 0:
                extra.append(n)
    return present + sorted(extra)


def _color(name: str, table: dict[str, str], extra: list[str]) -> str:
    if name in table:
        return table[name]
    return EXTRA_COLORS[extra.index(name) % len(EXTRA_COLORS)] if name in extra else "#BBBBBB"


def _shared_note(rows: list[dict]) -> str:
    common = shared_text(rows, shared_fields(rows))
    return f"Every configuration shown: {common}." if common else ""


def bar_label(c: dict, rows: list[dict], width: int) -> str:
    """"#1 dp16 tp8 pp8 v2 …" without what all the rows share, wrapped to `width`."""
    return pack([f"#{c['rank']}", *words(c, shared_fields(rows))], width)


def draw_memory(plan: Plan) -> Figure:
    rows = top(plan)
    if not rows:
        return _nothing("Memory per GPU", plan)
    cats = _names(rows, "memory_bytes", MEMORY)
    extra = [c for c in cats if c not in MEMORY]
    caps = sorted({plan.capacity(c) for c in rows})
    usables = sorted({plan.usable(c) for c in rows})
    headroom = plan.inputs.get("memory_headroom")
    notes = ["Predicted memory per GPU by category (memory_bytes) of the top "
             f"{len(rows)} configurations by rank; the number above a bar is the total "
             "(memory_bytes.total)."]
    notes.append(_shared_note(rows))
    fig = plotstyle.new_figure(10.0, 4.6, notes)
    ax = fig.subplots()
    ax.set_axisbelow(True)
    x = np.arange(len(rows))
    bottom = np.zeros(len(rows))
    for cat in cats:
        h = np.array([gib(float((c.get("memory_bytes") or {}).get(cat) or 0.0)) for c in rows])
        bars = ax.bar(x, h, bottom=bottom, width=0.62, label=cat.replace("_", " "),
                      color=_color(cat, plotstyle.MEMORY_COLORS, extra), edgecolor="white", lw=0.4)
        plotstyle.tag(f"plan.mem.{cat}", bars.patches)
        bottom += h
    totals = [gib(float(c["memory_bytes"]["total"])) for c in rows]
    for i, t in enumerate(totals):
        ax.annotate(f"{t:.1f}", (i, max(t, bottom[i])), xytext=(0, 2), textcoords="offset points",
                    ha="center", va="bottom", fontsize=7, color="0.25")
    for k, cap in enumerate(caps):
        line = ax.axhline(gib(cap), color=CAPACITY_COLOR, lw=1.4, zorder=3,
                          label=f"capacity {gib(cap):.3g} GiB" if k == 0 or len(caps) > 1 else None)
        plotstyle.tag("plan.mem.capacity", [line])
    for k, use in enumerate(usables):
        shown = (f"usable {gib(use):.3g} GiB"
                 + (f" ({100 * headroom:.3g}% of capacity)" if isinstance(headroom, (int, float))
                    and len(usables) == 1 else ""))
        line = ax.axhline(gib(use), color=CAPACITY_COLOR, lw=1.1, ls="--", zorder=3,
                          label=shown if k == 0 or len(usables) > 1 else None)
        plotstyle.tag("plan.mem.usable", [line])
    ax.set_xticks(x, [bar_label(c, rows, 12) for c in rows], fontsize=6.8)
    ax.grid(axis="x", visible=False)
    ax.set_xlim(-0.6, len(rows) - 0.4)
    ax.set_ylim(0, max(max(gib(c) for c in caps), max(totals), float(np.max(bottom))) * 1.1)
    ax.set_ylabel("memory per GPU (GiB)")
    ax.set_xlabel("configuration (rank and split)")
    # The title above the legend, both above the axes: constrained layout keeps them apart.
    fig.suptitle(f"Memory per GPU by category: {plan.gpu_name}", fontsize=10, weight="bold")
    handles, names = ax.get_legend_handles_labels()
    ax.legend(handles, names, ncols=min(len(handles), 5), loc="lower left",
              bbox_to_anchor=(0, 1.02), fontsize=7.5, handlelength=1.6, columnspacing=1.2)
    return fig


def draw_step_time(plan: Plan) -> Figure:
    rows = top(plan)
    if not rows:
        return _nothing("Iteration time by component", plan)
    comps = _names(rows, "time_breakdown_s", COMPONENTS)
    extra = [c for c in comps if c not in COMPONENTS]
    notes = ["Predicted time of one iteration (one optimizer step over the global batch) by "
             "component (time_breakdown_s); the number at the end of a bar is the iteration time "
             "(iteration_s)."]
    apart = [c for c in rows if c.get("time_breakdown_s")
             and abs(sum(float(x) for x in c["time_breakdown_s"].values()) - float(c["iteration_s"]))
             > 0.01 * float(c["iteration_s"])]
    if apart:
        notes.append("The components do not add up to the iteration time for "
                     + ", ".join(f"#{c['rank']}" for c in apart)
                     + " (overlapped work, or time the breakdown does not name).")
    missing = [c for c in rows if not c.get("time_breakdown_s")]
    if missing:
        notes.append("No breakdown for " + ", ".join(f"#{c['rank']}" for c in missing) + ".")
    notes.append(_shared_note(rows))
    labels = [bar_label(c, rows, 34) for c in rows]
    lines = sum(l.count("\n") + 1 for l in labels)
    fig = plotstyle.new_figure(10.0, 1.6 + max(0.36 * len(rows), 0.16 * lines), notes)
    ax = fig.subplots()
    ax.set_axisbelow(True)
    y = np.arange(len(rows))
    left = np.zeros(len(rows))
    for comp in comps:
        w = np.array([float((c.get("time_breakdown_s") or {}).get(comp) or 0.0) for c in rows])
        bars = ax.barh(y, w, left=left, height=0.62, label=COMPONENT_LABELS.get(comp, comp.replace("_", " ")),
                       color=_color(comp, COMPONENT_COLORS, extra), edgecolor="white", lw=0.4,
                       hatch="////" if comp == "pipeline_bubble" else None)
        plotstyle.tag(f"plan.step.{comp}", bars.patches)
        left += w
    for i, c in enumerate(rows):
        ax.text(max(left[i], float(c["iteration_s"])), i, f" {float(c['iteration_s']):.3g} s",
                va="center", fontsize=7.5, color="0.25")
    ax.set_yticks(y, labels, fontsize=7.5)
    ax.invert_yaxis()
    ax.grid(axis="y", visible=False)
    ax.margins(x=0.1)
    ax.set_xlabel("time per iteration (s)")
    fig.suptitle(f"Iteration time by component: {plan.gpus:,} × {plan.gpu_name}", fontsize=10,
                 weight="bold")
    ax.legend(ncols=min(len(comps), 8), loc="lower left", bbox_to_anchor=(0, 1.02), fontsize=7.5,
              handlelength=1.2, columnspacing=1.0)
    return fig


def _log_ticks(lo: float, hi: float) -> list[float]:
    """Round values on a log axis: 1-2-5 per decade (1-1.5-2-3-5-7 within one decade)."""
    decades = math.log10(hi / lo) if lo > 0 else 3
    mantissas = (1, 1.5, 2, 3, 5, 7) if decades <= 1.2 else (1, 2, 5) if decades <= 3.5 else (1,)
    e0, e1 = math.floor(math.log10(lo)) - 1, math.ceil(math.log10(hi)) + 1
    return [m * 10.0 ** e for e in range(e0, e1 + 1) for m in mantissas if lo <= m * 10.0 ** e <= hi]


def _money_tick(v: float, _pos: object = None) -> str:
    """"$0", "$450k", "$1.5M": tick labels as short as the values allow."""
    for size, unit in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= size:
            return f"${v / size:,.4g}{unit}"
    return f"${v:,.4g}"


def _gpu_axis(ax, counts: list[int], requested: int) -> None:
    ax.set_xscale("log", base=2)
    # About eight labels at most, the requested count always: outward from it, a count is
    # labelled when it is far enough (in octaves) from the last one labelled.
    gap = math.log2(max(counts) / min(counts)) / 8 if len(counts) > 8 else 0.0
    shown = [requested]
    for side in (sorted(g for g in counts if g < requested)[::-1],
                 sorted(g for g in counts if g > requested)):
        last = requested
        for g in side:
            if abs(math.log2(g / last)) >= gap * 0.999:
                shown.append(g)
                last = g
    shown.sort()
    ax.xaxis.set_major_locator(FixedLocator(shown))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.set_xlim(min(counts) / 1.4, max(counts) * 1.4)
    ax.set_xlabel("GPUs (log₂ scale)")


def _mark_requested(ax, requested: int) -> Line2D:
    return ax.axvline(requested, color="0.35", ls=":", lw=1.1, zorder=1,
                      label=f"requested: {requested:,} GPUs")


def _mark_none(ax, none: list[int]) -> list:
    if not none:
        return []
    (pts,) = ax.plot(none, [0.04] * len(none), marker="x", ms=7, mew=1.6, ls="none",
                     color="0.35", transform=ax.get_xaxis_transform(), zorder=4,
                     label="no configuration fits")
    return [pts]


def draw_scaling(plan: Plan) -> Figure:
    entries = plan.scaling
    fits = [s for s in entries if s.get("best") is not None]
    if not fits:
        why = ("The plan has no scaling list." if not entries else
               "No configuration fits at any GPU count of the plan's scaling list ("
               + ", ".join(f"{s['gpus']:,}" for s in entries) + ").")
        return plotstyle.message_figure("Scaling: nothing to plot", why)
    none = [int(s["gpus"]) for s in entries if s.get("best") is None]
    counts = sorted({int(s["gpus"]) for s in entries} | {plan.gpus})
    gx = np.array([float(s["gpus"]) for s in fits])
    dd = np.array([float(s["best"]["time_to_train_s"]) / DAY_S for s in fits])
    good = [(float(s["gpus"]), float(s["best"]["goodput"]["time_to_train_s"]) / DAY_S)
            for s in fits if isinstance(s["best"].get("goodput"), dict)
            and s["best"]["goodput"].get("time_to_train_s") is not None]
    costs = [(float(s["gpus"]), float(s["best"]["cost"])) for s in fits
             if isinstance(s["best"].get("cost"), (int, float))]
    hours = [(float(s["gpus"]), float(s["best"]["gpu_hours"])) for s in fits
             if isinstance(s["best"].get("gpu_hours"), (int, float))]
    notes = ["The best configuration at each GPU count (the plan's scaling list), to train "
             f"{count_words(plan.inputs['tokens'])} tokens at a global batch of "
             f"{plan.inputs['global_batch']:,} sequences."]
    if good:
        notes.append("Dashed: with failures and checkpoints (goodput.time_to_train_s: checkpoint "
                     "writes, lost work and restarts at the job's MTBF).")
    if none:
        notes.append("No configuration fits at " + ", ".join(f"{g:,}" for g in none)
                     + " GPUs (×).")
    if plan.gpus not in [int(s["gpus"]) for s in entries]:
        notes.append(f"The requested {plan.gpus:,} GPUs are not in the scaling list.")
    fig = plotstyle.new_figure(10.0, 3.9, notes)
    left, right = fig.subplots(1, 2)
    req_at = [s for s in fits if int(s["gpus"]) == plan.gpus]

    # Left: days, log y.
    (line,) = left.plot(gx, dd, marker="o", ms=4.5, lw=1.6, color=plotstyle.color(0),
                        label="time to train")
    plotstyle.tag("plan.scale.days", [line])
    ys = list(dd)
    if good:
        (gl,) = left.plot([g for g, _ in good], [d for _, d in good], marker="o", ms=3.5, lw=1.2,
                          ls="--", color=plotstyle.color(3), label="with failures and checkpoints")
        plotstyle.tag("plan.scale.days_goodput", [gl])
        ys += [d for _, d in good]
    req = [_mark_requested(left, plan.gpus)]
    if req_at:
        (ring,) = left.plot([plan.gpus], [float(req_at[0]["best"]["time_to_train_s"]) / DAY_S],
                            marker="o", ms=11, mfc="none", mec="0.15", mew=1.3, ls="none", zorder=5)
        req.append(ring)
    none_art = _mark_none(left, none)
    left.set_yscale("log")
    lo, hi = min(ys) / 1.35, max(ys) * 1.35
    left.set_ylim(lo, hi)
    left.yaxis.set_major_locator(FixedLocator(_log_ticks(lo, hi)))
    left.yaxis.set_minor_locator(NullLocator())
    left.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    left.set_ylabel("time to train (days, log scale)")
    left.set_title("Time to train")
    _gpu_axis(left, counts, plan.gpus)
    left.legend(loc="best", fontsize=7.5)

    # Right: cost, else GPU-hours.
    series, values, unit = (("cost", costs, "cost ($)") if costs else
                            ("gpu_hours", hours, "GPU-hours"))
    if values:
        (cl,) = right.plot([g for g, _ in values], [v for _, v in values], marker="o", ms=4.5,
                           lw=1.6, color=plotstyle.color(2),
                           label="cost" if costs else "GPU-hours (no price given)")
        plotstyle.tag(f"plan.scale.{series}", [cl])
        req.append(_mark_requested(right, plan.gpus))
        at = [v for g, v in values if int(g) == plan.gpus]
        if at:
            (ring2,) = right.plot([plan.gpus], at[:1], marker="o", ms=11, mfc="none", mec="0.15",
                                  mew=1.3, ls="none", zorder=5)
            req.append(ring2)
        none_art += _mark_none(right, none)
        vmax = max(v for _, v in values)
        right.set_ylim(0, vmax * 1.15)
        if costs:
            right.yaxis.set_major_formatter(FuncFormatter(_money_tick))
        else:
            right.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
        right.set_ylabel(unit)
        right.set_title("Cost" if costs else "GPU-hours (no price given)")
        _gpu_axis(right, counts, plan.gpus)
        right.legend(loc="best", fontsize=7.5)
    else:
        right.text(0.5, 0.5, "The scaling list records neither a cost nor GPU-hours.",
                   ha="center", va="center", transform=right.transAxes, fontsize=8.5, color="0.3")
        right.set_axis_off()
    plotstyle.tag("plan.scale.requested", req)
    plotstyle.tag("plan.scale.none", none_art)
    fig.suptitle(f"{plan.model.get('name', '')} on {plan.gpu_name}: scaling", fontsize=11,
                 weight="bold")
    return fig
