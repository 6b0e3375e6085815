"""Writes a report directory from a results file: the plots (SVG + PNG), index.html and
index.md."""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from matplotlib.figure import Figure

from . import html, markdown, plot_bars, plot_loss, plot_parallel, plot_speedup, plotstyle
from . import time_to_target
from .analysis import Analysis, analyse
from .headlines import headlines
from .load import ReportError, read_results
from .tables import (environment_table, parallel_table, precision_table, scenario_table,
                     variants_table)


@dataclass
class PlotSpec:
    stem: str
    title: str
    caption: str
    draw: Callable[[Analysis], Figure]


PLOTS = [
    PlotSpec(plot_speedup.STEM, "Speedup against accuracy",
             "Each variant's speedup over the baseline (tokens/s at the median step time) against its held-out "
             "loss change in percent of the baseline's, with 95% intervals; one panel per "
             "strategy family; the star is the baseline, the dashed line the Pareto frontier.",
             plot_speedup.draw),
    PlotSpec("step_breakdown", "Step time by phase",
             "Mean time per optimizer step in forward, backward, recompute, optimizer, "
             "communication and data wait.", plot_bars.draw_steps),
    PlotSpec("memory_breakdown", "Peak memory by category",
             "Peak bytes of parameters, gradients, optimizer state, activations and workspace.",
             plot_bars.draw_memory),
    PlotSpec(plot_loss.STEM, "Loss curves",
             "Held-out loss against training step, mean over seeds; dashed: the synthetic "
             "data's entropy floor.", plot_loss.draw),
    PlotSpec("throughput", "Throughput",
             "Training tokens per second and model FLOPs utilisation.", plot_bars.draw_throughput),
]


# Drawn when the results hold parallel runs (docs/parallel.md), after the plots above.
PARALLEL_PLOTS = [
    PlotSpec(plot_parallel.SCALING_STEM, "Scaling",
             "Training tokens/s of the whole job against the number of ranks, one line per split "
             "family (dp only, tp only, pp only by schedule, combinations) from the single-rank "
             "baseline at 1; dotted: linear scaling.", plot_parallel.draw_scaling),
    PlotSpec(plot_parallel.RANK_MEMORY_STEM, "Peak memory per rank",
             "Each rank's peak bytes by category, one group of bars per parallel variant.",
             plot_parallel.draw_rank_memory),
]
# The step breakdown's caption when parallel runs split their communication and bubble.
PARALLEL_STEP_CAPTION = (" In parallel runs communication is split into data (exposed; the "
                         "overlapped part hatched), tensor and pipeline, and the pipeline bubble "
                         "is its own segment.")


# Drawn right after speedup_vs_accuracy when the lines carry accuracy.time_to_target.
TIME_TO_QUALITY_PLOT = PlotSpec(time_to_target.STEM, time_to_target.TITLE, time_to_target.CAPTION,
                                time_to_target.draw)


def plot_specs(a: Analysis) -> list[PlotSpec]:
    """The plots of this report: the five, time to quality when the results have a time to
    target, and the parallel ones when there are parallel runs."""
    specs = list(PLOTS)
    if time_to_target.present(a):
        at = next(i for i, p in enumerate(specs) if p.stem == plot_speedup.STEM) + 1
        specs.insert(at, TIME_TO_QUALITY_PLOT)
    if not a.has_parallel:
        return specs
    specs = [PlotSpec(p.stem, p.title, p.caption + PARALLEL_STEP_CAPTION, p.draw)
             if p.stem == "step_breakdown" else p for p in specs]
    return specs + PARALLEL_PLOTS


def results_path(target: Path) -> Path:
    """DIR → DIR/results.jsonl; a file is taken as the results file itself."""
    return target if target.is_file() else target / "results.jsonl"


def default_out(target: Path) -> Path:
    return (target.parent if target.is_file() else target) / "report"


def _write_text(path: Path, content: str) -> None:
    """Writes via a temporary file and a rename, so a reader never sees half a page."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(content)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def build_report(target: Path, out: Path | None = None) -> Path:
    """Reads TARGET (a run's directory, or its results.jsonl), writes the report into OUT
    (default TARGET/report/) and returns the path of index.html."""
    if not target.exists():
        raise ReportError(f"{target}: no such file or directory (expected a run's output "
                          "directory holding results.jsonl)")
    results = read_results(results_path(target))
    out = out if out is not None else default_out(target)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ReportError(f"{out}: cannot create the report directory: {e.strerror or e}") from None
    a = analyse(results)
    plots: list[html.Plot] = []
    with plotstyle.style():
        for spec in plot_specs(a):
            fig = spec.draw(a)
            try:
                plotstyle.save(fig, out, spec.stem)
            except OSError as e:
                raise ReportError(f"{out / spec.stem}: cannot write the plot: {e.strerror or e}") from None
            plots.append(html.Plot(spec.stem, spec.title, spec.caption, out / f"{spec.stem}.png"))
    heads = headlines(a)
    tables = (scenario_table(a), environment_table(a), variants_table(a))
    generated = (f"Generated by trainbench's reports package (python3 -m reports) from "
                 f"{results.path}; see docs/reports.md.")
    precision, parallel = precision_table(a), parallel_table(a)
    ttt = time_to_target.table(a)
    page = html.render(a, heads, *tables, plots, generated, precision, parallel, ttt)
    md = markdown.render(a, heads, *tables, plots, generated, precision, parallel, ttt)
    try:
        _write_text(out / "index.html", page)
        _write_text(out / "index.md", md)
    except OSError as e:
        raise ReportError(f"{out}: cannot write the report: {e.strerror or e}") from None
    return out / "index.html"
