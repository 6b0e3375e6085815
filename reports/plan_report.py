"""The report of a capacity plan (docs/reports.md, *Plan report*): `python3 -m reports
PLAN.json` (or a directory holding plan.json) writes PLAN's directory/plan-report/ — index.html
(self-contained, like the run report's), index.md and the plots of plot_plan.py as SVG + PNG.

The page says first what the numbers rest on (datasheet peaks with default efficiencies, or
a calibration file measured on a device), then the best configuration, the plan's inputs,
the ranked configurations (the top 15; all of them in a collapsed table when there are
more), the plots, the scaling list, the hardware and the calibration.
"""
from __future__ import annotations

from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any, Callable

from matplotlib.figure import Figure

from . import html, markdown, plot_plan, plotstyle, text
from .build import _write_text
from .load import ReportError
from .plan import (Plan, count_words, days, gib, money, plan_path, read_plan, split_text,
                   RECOMPUTE_WORDS)
from .tables import Table

OUT_DIR = "plan-report"
TOP_ROWS = 15


@dataclass
class PlotSpec:
    stem: str
    title: str
    caption: str
    draw: Callable[[Plan], Figure]


PLOTS = [
    PlotSpec(plot_plan.MEMORY_STEM, "Memory per GPU",
             "Predicted memory per GPU of the top ten configurations by category (parameters, "
             "gradients, optimizer state, activations, workspace, communication buffers), "
             "against the device's capacity (solid) and the memory usable after the headroom "
             "(dashed).", plot_plan.draw_memory),
    PlotSpec(plot_plan.STEP_STEM, "Iteration time by component",
             "Predicted time of one iteration of the top ten configurations: forward, backward, "
             "recompute, tensor-, pipeline- and data-parallel communication, the pipeline "
             "bubble and the optimizer.", plot_plan.draw_step_time),
    PlotSpec(plot_plan.SCALING_STEM, "Scaling",
             "Time to train (days, log scale; dashed: with failures and checkpoints) and cost "
             "of the best configuration at each GPU count (log₂ axis), the requested count "
             "dotted.", plot_plan.draw_scaling),
]

CSS = html.CSS + """
div.basis{margin:.8em 0 1.2em;padding:.7em 1em;border-radius:4px;font-size:15px}
div.basis b.kind{display:block;font-size:1.05em;margin-bottom:.2em}
div.basis.estimate{background:#fff4e0;border-left:5px solid #e69f00;color:#5c3a00}
div.basis.measured{background:#e6f4ea;border-left:5px solid #1b8a3a;color:#0f4d22}
tr.requested{background:#eef5ff;font-weight:600}
details{margin:.4em 0 1.2em}details summary{cursor:pointer;color:#0b57d0;margin:.3em 0}
"""


# ---- numbers in words -----------------------------------------------------------------------

def _num(x: Any) -> float | None:
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else None


def _rate(x: Any, unit: str) -> str:
    """Bytes or FLOP per second: "989 TFLOP/s", "3.35 TB/s", "450 GB/s" (decimal, as
    datasheets give them)."""
    v = _num(x)
    if v is None:
        return "—"
    for size, prefix in ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= size:
            return f"{v / size:.3g} {prefix}{unit}/s"
    return f"{v:.3g} {unit}/s"


def _latency(x: Any) -> str:
    v = _num(x)
    if v is None:
        return ""
    return f"{v * 1e6:.3g} µs" if v < 1e-3 else f"{v * 1e3:.3g} ms"


def _seconds(x: Any) -> str:
    v = _num(x)
    if v is None:
        return "—"
    return f"{v:,.0f}" if v >= 999.5 else f"{v:#.3g}"


def _pct(x: Any) -> str:
    v = _num(x)
    return "—" if v is None else f"{100 * v:.3g}%"


def _hours(x: Any) -> str:
    v = _num(x)
    return "—" if v is None else f"{v:,.0f}"


def _efficiencies(cal: dict[str, Any]) -> str:
    eff = cal.get("efficiencies")
    if not isinstance(eff, dict) or not eff:
        return ""
    return ", ".join(f"{k} {100 * float(v):.3g}%" for k, v in eff.items())


def basis(plan: Plan) -> tuple[str, str]:
    """(headline, detail) of what the plan's speeds rest on."""
    cal = plan.calibration
    eff = _efficiencies(cal)
    if plan.measured:
        head = "Calibrated from measurements"
        detail = (f"Efficiencies measured on {cal.get('device') or 'an unnamed device'}, read from "
                  f"the calibration file {cal.get('path') or '(path not recorded)'}"
                  + (f": {eff}" if eff else "") + ". Times scale the device's peaks by them.")
    else:
        head = "Estimate from datasheet peaks — not measured"
        detail = (f"Times come from {plan.gpu_name}'s datasheet peaks scaled by default "
                  "efficiencies" + (f" ({eff})" if eff else "") + ", not from a measurement on "
                  "this hardware; real runs may be slower or faster. A calibration file "
                  "measured on the device makes it a measured plan (docs/planner.md).")
    return head, detail


# ---- tables ---------------------------------------------------------------------------------

def _model_text(m: dict[str, Any]) -> str:
    parts = [str(m.get("name", ""))]
    dims = []
    if m.get("layers"):
        dims.append(f"{m['layers']} layers")
    if m.get("d_model"):
        dims.append(f"d_model {m['d_model']:,}")
    if m.get("heads"):
        dims.append(f"{m['heads']} heads")
    if m.get("vocab"):
        dims.append(f"vocabulary {m['vocab']:,}")
    if m.get("seq"):
        dims.append(f"sequence {m['seq']:,}")
    if m.get("parameters"):
        dims.append(f"{count_words(m['parameters'])} parameters")
    if m.get("experts"):
        dims.append(f"{m['experts']} experts, top-{m.get('top_k', 1)}")
    return parts[0] + (": " + ", ".join(dims) if dims else "")


def _pinned_text(pinned: Any) -> str:
    if not isinstance(pinned, dict) or not pinned:
        return "none (every dimension searched)"
    return ", ".join(f"{k} = {text.value(v)}" for k, v in pinned.items())


def inputs_table(plan: Plan) -> Table:
    i = plan.inputs
    t = Table(["", ""])
    t.add(["model", _model_text(plan.model)])
    cap = plan.capacity()
    t.add(["GPU", f"{i['gpu']} ({plan.gpu_name}, {gib(cap):.3g} GiB)"])
    per_node = i.get("gpus_per_node")
    nodes = (f" ({plan.gpus / per_node:,.3g} nodes of {per_node})"
             if isinstance(per_node, int) and per_node > 0 else "")
    t.add(["GPUs", f"{plan.gpus:,}{nodes}"])
    if isinstance(per_node, int):
        t.add(["GPUs per node", str(per_node)])
    t.add(["tokens to train", f"{count_words(i['tokens'])} ({float(i['tokens']):.4g})"])
    seq = _num(plan.model.get("seq"))
    gb = float(i["global_batch"])
    t.add(["global batch", f"{gb:,.0f} sequences" + (f" = {gb * seq:,.0f} tokens per iteration"
                                                     if seq else "")])
    price = _num(i.get("price_per_gpu_hour"))
    t.add(["price", f"${price:,.2f} per GPU-hour" if price is not None
           else "— (not given: no cost)"])
    mtbf = _num(i.get("mtbf_hours"))
    t.add(["MTBF", f"{mtbf:,.0f} hours per GPU (the job of {plan.gpus:,} GPUs: "
                   f"{mtbf / plan.gpus:,.3g} hours)" if mtbf is not None
           else "— (not given: no goodput adjustment)"])
    headroom = _num(i.get("memory_headroom"))
    if headroom is not None:
        t.add(["memory headroom", f"{100 * headroom:.3g}% of {gib(cap):.3g} GiB usable = "
                                  f"{gib(plan.usable()):.3g} GiB"])
    t.add(["pinned", _pinned_text(i.get("pinned"))])
    ev, fe = plan.data.get("evaluated"), plan.data.get("feasible")
    searched = ([f"{ev:,} configurations evaluated"] if ev is not None else []) + (
        [f"{fe:,} fit"] if fe is not None else [])
    if searched:
        t.add(["searched", ", ".join(searched)])
    t.add(["plan file", str(plan.path)])
    return t


def calibration_table(plan: Plan) -> Table:
    cal = plan.calibration
    t = Table(["", ""])
    t.add(["source", "calibration file (measured)" if plan.measured
           else "datasheet peaks with default efficiencies (not measured)"])
    if cal.get("path"):
        t.add(["calibration file", str(cal["path"])])
    if cal.get("device"):
        t.add(["device", str(cal["device"])])
    eff = _efficiencies(cal)
    if eff:
        t.add(["efficiencies", eff])
    if cal.get("note"):
        t.add(["note", str(cal["note"])])
    return t


def hardware_table(plan: Plan) -> Table:
    h = plan.hardware
    t = Table(["", ""])
    t.add(["name", plan.gpu_name])
    t.add(["memory", f"{gib(float(h['memory_bytes'])):.3g} GiB ({float(h['memory_bytes']):.4g} bytes)"])
    peaks = h.get("peak_flops")
    if isinstance(peaks, dict) and peaks:
        t.add(["peak FLOP/s", ", ".join(f"{k} {_rate(v, 'FLOP')}" for k, v in peaks.items())])
    if h.get("memory_bytes_per_s") is not None:
        t.add(["memory bandwidth", _rate(h["memory_bytes_per_s"], "B")])
    for key, name in (("intra_node", "within a node"), ("inter_node", "between nodes")):
        link = h.get(key)
        if isinstance(link, dict):
            lat = _latency(link.get("latency_s"))
            t.add([name, _rate(link.get("bytes_per_s"), "B") + (f", latency {lat}" if lat else "")])
    if h.get("source"):
        t.add(["source", str(h["source"])])
    return t


CONFIG_HEADERS = ["rank", "dp", "tp", "pp", "virtual stages", "micro-batch", "micro-batches",
                  "recompute", "sequence parallel", "ZeRO", "precision", "schedule",
                  "iteration (s)", "tokens/s", "MFU", "memory per GPU, GiB (% of usable)",
                  "time to train (days)", "GPU-hours", "cost",
                  "with failures (days, overhead)"]


def _yes_no(x: Any) -> str:
    return "yes" if x is True else "no" if x is False else "—"


def _get(c: dict[str, Any], key: str) -> str:
    x = c.get(key)
    return "—" if x is None else str(x)


def _memory_cell(plan: Plan, c: dict[str, Any]) -> str:
    total = float(c["memory_bytes"]["total"])
    return f"{gib(total):.1f} ({100 * total / plan.usable(c):.0f}%)"


def _goodput_cell(c: dict[str, Any]) -> str:
    g = c.get("goodput")
    if not isinstance(g, dict) or _num(g.get("time_to_train_s")) is None:
        return "—"
    over = _num(g.get("expected_overhead_fraction"))
    return days(g["time_to_train_s"]) + (f" (+{100 * over:.2g}%)" if over is not None else "")


def config_row(plan: Plan, c: dict[str, Any], first: str) -> list[str]:
    return [first, str(c["dp"]), str(c["tp"]), str(c["pp"]), _get(c, "virtual_stages"),
            _get(c, "micro_batch"), _get(c, "micro_batches"), _get(c, "recompute"),
            _yes_no(c.get("sequence_parallel")), _get(c, "zero"), _get(c, "precision"),
            _get(c, "schedule"), _seconds(c["iteration_s"]), text.rate(float(c["tokens_per_s"])),
            text.mfu(_num(c.get("mfu"))), _memory_cell(plan, c), days(c["time_to_train_s"]),
            _hours(c.get("gpu_hours")), money(c.get("cost")), _goodput_cell(c)]


def configurations_table(plan: Plan, rows: list[dict[str, Any]]) -> Table:
    t = Table(list(CONFIG_HEADERS))
    t.numeric = {0, 1, 2, 3, 4, 5, 6, 12, 13, 14, 15, 16, 17, 18, 19}
    for c in rows:
        t.add(config_row(plan, c, str(c["rank"])))
    return t


def scaling_table(plan: Plan) -> Table | None:
    if not plan.scaling:
        return None
    t = Table(["GPUs", "best configuration", "iteration (s)", "tokens/s", "MFU",
               "memory per GPU, GiB (% of usable)", "time to train (days)", "GPU-hours", "cost",
               "with failures (days, overhead)"])
    t.numeric = {0, 2, 3, 4, 5, 6, 7, 8, 9}
    t.wide = {1}
    for s in plan.scaling:
        c = s.get("best")
        gpus = f"{int(s['gpus']):,}" + (" (requested)" if int(s["gpus"]) == plan.gpus else "")
        cls = "requested" if int(s["gpus"]) == plan.gpus else ""
        if c is None:
            t.add([gpus, "no configuration fits", *["—"] * 8], cls)
            continue
        t.add([gpus, config_text(c), _seconds(c["iteration_s"]), text.rate(float(c["tokens_per_s"])),
               text.mfu(_num(c.get("mfu"))), _memory_cell(plan, c), days(c["time_to_train_s"]),
               _hours(c.get("gpu_hours")), money(c.get("cost")), _goodput_cell(c)], cls)
    return t


def config_text(c: dict[str, Any]) -> str:
    """"dp16 × tp8 × pp8 (v2), micro-batch 1 × 96, selective recompute, sequence parallel,
    ZeRO-1, bf16, interleaved schedule"."""
    parts = [split_text(c)]
    if c.get("micro_batch") is not None:
        parts.append(f"micro-batch {c['micro_batch']}"
                     + (f" × {c['micro_batches']}" if c.get("micro_batches") is not None else ""))
    rc = c.get("recompute")
    if rc is not None:
        parts.append({"none": "no recompute", "selective": "selective recompute",
                      "full": "full recompute"}.get(str(rc), RECOMPUTE_WORDS.get(str(rc), f"recompute {rc}")))
    if isinstance(c.get("sequence_parallel"), bool):
        parts.append("sequence parallel" if c["sequence_parallel"] else "no sequence parallel")
    if c.get("zero") is not None:
        parts.append(f"ZeRO-{c['zero']}" if c["zero"] else "no ZeRO")
    if c.get("precision") is not None:
        parts.append(str(c["precision"]))
    if c.get("schedule") is not None:
        parts.append(f"{c['schedule']} schedule")
    return ", ".join(parts)


def headline(plan: Plan) -> list[str]:
    """Sentences on the best configuration (or why there is none)."""
    configs = plan.configurations
    ev, fe = plan.data.get("evaluated"), plan.data.get("feasible")
    searched = (f" ({fe:,} of {ev:,} evaluated fit)" if isinstance(ev, int) and isinstance(fe, int)
                else "")
    if not configs:
        return [f"No configuration fits {plan.gpus:,} × {plan.gpu_name}{searched}: see the "
                "scaling list for GPU counts where one does."]
    c = configs[0]
    out = [f"Best of {len(configs)} listed{searched}: {config_text(c)}."]
    speed = (f"{_seconds(c['iteration_s'])} s per iteration, {text.rate(float(c['tokens_per_s']))} "
             f"tokens/s, MFU {text.mfu(_num(c.get('mfu')))}: {days(c['time_to_train_s'])} days to "
             f"train {count_words(plan.inputs['tokens'])} tokens")
    g = c.get("goodput")
    if isinstance(g, dict) and _num(g.get("time_to_train_s")) is not None:
        over = _num(g.get("expected_overhead_fraction"))
        speed += (f" ({days(g['time_to_train_s'])} with failures and checkpoints"
                  + (f", +{100 * over:.2g}%" if over is not None else "") + ")")
    costs = []
    if _num(c.get("gpu_hours")) is not None:
        costs.append(f"{_hours(c['gpu_hours'])} GPU-hours")
    if _num(c.get("cost")) is not None:
        costs.append(money(c["cost"]))
    out.append(speed + (", " + ", ".join(costs) if costs else "") + ".")
    out.append(f"Memory per GPU {gib(float(c['memory_bytes']['total'])):.1f} GiB of "
               f"{gib(plan.usable(c)):.3g} GiB usable ({gib(plan.capacity(c)):.3g} GiB capacity).")
    return out


# ---- the page -------------------------------------------------------------------------------

def _title(plan: Plan) -> str:
    return f"trainbench capacity plan: {plan.model.get('name', '')} on {plan.gpus:,} × {plan.gpu_name}"


def _config_intro(plan: Plan, shown: int) -> str:
    which = (f"All {shown} configurations" if shown == len(plan.configurations)
             else f"The {shown} best of {len(plan.configurations)} configurations")
    return (f"{which} by rank (time to train "
            f"with failures and checkpoints where the plan has it, else the iteration time). "
            f"Memory per GPU against the {gib(plan.usable()):.3g} GiB usable of "
            f"{gib(plan.capacity()):.3g} GiB. Times in days of 86,400 s; cost in dollars.")


def render_html(plan: Plan, plots: list[html.Plot], generated: str) -> str:
    head, detail = basis(plan)
    configs = plan.configurations
    top = configs[:TOP_ROWS]
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<link rel="icon" href="data:,">',
        f"<title>{escape(_title(plan))}</title>",
        f"<style>{CSS}</style></head><body>",
        f"<h1>{escape(_title(plan))}</h1>",
        f'<div class="basis {"measured" if plan.measured else "estimate"}" id="basis">'
        f'<b class="kind">{escape(head)}</b>{escape(detail)}</div>',
        "<h2>Best configuration</h2>",
        '<ul class="headlines">' + "".join(f"<li>{escape(s)}</li>" for s in headline(plan)) + "</ul>",
        '<h2 id="inputs">Inputs</h2>', html.render_table(inputs_table(plan), kv=True),
        '<h2 id="calibration">Calibration</h2>', html.render_table(calibration_table(plan), kv=True),
        '<h2 id="configurations">Top configurations</h2>',
    ]
    if top:
        parts += [f"<p>{escape(_config_intro(plan, len(top)))}</p>",
                  html.render_table(configurations_table(plan, top))]
        if len(configs) > len(top):
            parts += [f"<details><summary>All {len(configs)} configurations</summary>",
                      html.render_table(configurations_table(plan, configs)), "</details>"]
    else:
        parts.append("<p>No configuration fits.</p>")
    parts.append("<h2>Plots</h2>")
    parts += [html._figure(p) for p in plots]
    scaling = scaling_table(plan)
    if scaling is not None:
        parts += ['<h2 id="scaling">Scaling</h2>',
                  "<p>The best configuration at each GPU count of the plan's scaling list.</p>",
                  html.render_table(scaling)]
    parts += ['<h2 id="hardware">Hardware</h2>', html.render_table(hardware_table(plan), kv=True),
              f"<footer>{escape(generated)}</footer>", "</body></html>"]
    return "\n".join(x for x in parts if x) + "\n"


def render_markdown(plan: Plan, plots: list[html.Plot], generated: str) -> str:
    head, detail = basis(plan)
    configs = plan.configurations
    top = configs[:TOP_ROWS]
    out = [f"# {_title(plan)}", "", f"> **{head}.** {detail}", "", "## Best configuration", ""]
    out += [f"- {s}" for s in headline(plan)]
    out += ["", "## Inputs", "", markdown.render_table(inputs_table(plan), kv=True), "",
            "## Calibration", "", markdown.render_table(calibration_table(plan), kv=True), "",
            "## Top configurations", ""]
    if top:
        out += [_config_intro(plan, len(top)), "", markdown.render_table(configurations_table(plan, top)), ""]
        if len(configs) > len(top):
            out += [f"## All {len(configs)} configurations", "",
                    markdown.render_table(configurations_table(plan, configs)), ""]
    else:
        out += ["No configuration fits.", ""]
    out += ["## Plots", ""]
    for p in plots:
        out += [f"![{p.title}]({p.stem}.png)", "", f"*{p.title}.* {p.caption}", ""]
    scaling = scaling_table(plan)
    if scaling is not None:
        out += ["## Scaling", "", markdown.render_table(scaling), ""]
    out += ["## Hardware", "", markdown.render_table(hardware_table(plan), kv=True), "",
            f"_{generated}_", ""]
    return "\n".join(out)


def default_out(target: Path) -> Path:
    """The plan's directory / plan-report."""
    return plan_path(target).parent / OUT_DIR


def build_plan_report(target: Path, out: Path | None = None) -> Path:
    """Reads the plan TARGET (its JSON file, or a directory holding plan.json), writes the
    report into OUT (default: the plan's directory/plan-report/) and returns index.html."""
    plan = read_plan(plan_path(target))
    out = out if out is not None else default_out(target)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ReportError(f"{out}: cannot create the report directory: {e.strerror or e}") from None
    plots: list[html.Plot] = []
    with plotstyle.style():
        for spec in PLOTS:
            fig = spec.draw(plan)
            try:
                plotstyle.save(fig, out, spec.stem)
            except OSError as e:
                raise ReportError(f"{out / spec.stem}: cannot write the plot: {e.strerror or e}") from None
            plots.append(html.Plot(spec.stem, spec.title, spec.caption, out / f"{spec.stem}.png"))
    generated = (f"Generated by trainbench's reports package (python3 -m reports) from the plan "
                 f"{plan.path}; see docs/reports.md and docs/planner.md.")
    try:
        _write_text(out / "index.html", render_html(plan, plots, generated))
        _write_text(out / "index.md", render_markdown(plan, plots, generated))
    except OSError as e:
        raise ReportError(f"{out}: cannot write the report: {e.strerror or e}") from None
    return out / "index.html"
