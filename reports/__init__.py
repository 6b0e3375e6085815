"""trainbench's report generator: plots and tables of a run's results.jsonl.

`python3 -m reports DIR` (or `trainbench report DIR`) reads DIR/results.jsonl and writes
DIR/report/: index.html (self-contained), index.md, and each plot as SVG and PNG. What each
plot and table shows: docs/reports.md. Python 3 standard library + matplotlib + numpy.

Modules, one job each: load (read and check the results file), families (strategy families
and point labels from the sweep axes), metrics (per-variant numbers), parallel (the parallel
object of a line), analysis (everything computed once), headlines, plotstyle + plot_speedup +
plot_bars + plot_loss + plot_parallel (the plots), tables, html, markdown, build (writes the
directory), cli (the command line). A capacity plan (`python3 -m reports PLAN.json`): plan
(read and check it), plot_plan (its plots), plan_report (its page, written to plan-report/).
"""

__all__ = ["build_report", "read_results", "ReportError"]


def __getattr__(name: str):  # lazy, so `import reports` does not import matplotlib
    if name == "build_report":
        from .build import build_report
        return build_report
    if name in ("read_results", "ReportError"):
        from . import load
        return getattr(load, name)
    raise AttributeError(name)
