"""`python3 -m reports DIR [--out REPORT_DIR]`: the report of a run, or of a capacity plan
(PLAN.json, or a directory holding plan.json: plan_report.py) (docs/reports.md).

Exit status: 0 written, 1 bad input (one stderr line "PROG: error: FILE:LINE: what"),
2 bad arguments. `trainbench report` runs this with --prog trainbench.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path

EXIT_BAD_INPUT = 1
EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line like every other error."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (usage: {self.prog} DIR [--out REPORT_DIR])\n")


def _parser(prog: str) -> argparse.ArgumentParser:
    p = _Parser(prog=prog, description="Plots and tables of a trainbench run: reads "
                "DIR/results.jsonl, writes DIR/report/ (index.html, index.md, SVG and PNG plots); "
                "of a capacity plan: reads PLAN.json, writes PLAN's directory/plan-report/.")
    p.add_argument("dir", metavar="DIR", help="a run's output directory (or its results.jsonl), "
                   "or a capacity plan (PLAN.json, or a directory holding plan.json)")
    p.add_argument("--out", metavar="REPORT_DIR", help="where to write the report (default "
                   "DIR/report; for a plan, its directory/plan-report)")
    p.add_argument("--prog", default=None, help=argparse.SUPPRESS)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    prog = "reports"
    if "--prog" in argv:  # before parsing, so argument errors already carry the caller's name
        i = argv.index("--prog")
        if i + 1 < len(argv):
            prog = argv[i + 1]
    args = _parser(prog).parse_args(argv)

    def fail(message: str) -> int:
        print(f"{prog}: error: {message}", file=sys.stderr)
        return EXIT_BAD_INPUT

    try:
        for module in ("numpy", "matplotlib"):
            importlib.import_module(module)
    except ImportError as e:
        return fail(f"{sys.executable} cannot import {e.name} (expected Python 3 with matplotlib "
                    "and numpy: Debian's python3-matplotlib; scripts/install-deps.sh installs it)")
    from .build import build_report
    from .load import ReportError
    from .plan import is_plan
    from .plan_report import build_plan_report

    try:
        target = Path(args.dir)
        build = build_plan_report if is_plan(target) else build_report
        index = build(target, Path(args.out) if args.out else None)
    except ReportError as e:
        return fail(" ".join(str(e).split("\n")))
    except Exception as e:  # a bug: still one line, unless asked for the traceback
        if os.environ.get("TB_REPORTS_DEBUG"):
            raise
        return fail(f"internal error while writing the report: {type(e).__name__}: {e} "
                    "(TB_REPORTS_DEBUG=1 shows the traceback)".replace("\n", " "))
    print(f"report: {index}")
    return 0
