"""`trainbench report DIR`: finds Python with matplotlib and the reports package, writes
DIR/report/ and prints the page's path; its overrides fail with one line."""
from __future__ import annotations

import shutil

from conftest import PLOTS, ROOT, run_dir, run_trainbench


def test_trainbench_report_writes_the_report_and_prints_its_path(tmp_path):
    run = run_dir(tmp_path, "mixed")
    proc = run_trainbench("report", run)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"report: {run / 'report' / 'index.html'}"
    for stem in PLOTS:
        assert (run / "report" / f"{stem}.svg").is_file() and (run / "report" / f"{stem}.png").is_file()
    assert (run / "report" / "index.md").is_file()
    assert not list(ROOT.joinpath("reports").glob("__pycache__")), "no bytecode in the source tree"


def test_out_and_a_results_file_instead_of_a_directory(tmp_path):
    run = run_dir(tmp_path, "single")
    proc = run_trainbench("report", run / "results.jsonl", "--out", tmp_path / "elsewhere")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "elsewhere" / "index.html").is_file()
    assert not (run / "report").exists()


def test_a_reports_folder_in_the_working_directory_does_not_shadow_the_package(tmp_path):
    run = run_dir(tmp_path, "single")
    decoy = tmp_path / "reports"
    decoy.mkdir()
    (decoy / "__init__.py").write_text("raise SystemExit('decoy imported')\n")
    (decoy / "cli.py").write_text("raise SystemExit('decoy imported')\n")
    proc = run_trainbench("report", run, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "decoy" not in proc.stderr


def test_tb_python_and_tb_reports_path_overrides(tmp_path):
    run = run_dir(tmp_path, "single")
    proc = run_trainbench("report", run, env={"TB_PYTHON": str(tmp_path / "no-python")})
    assert proc.returncode == 1 and len(proc.stderr.splitlines()) == 1, proc.stderr
    assert proc.stderr.startswith(f"trainbench: error: TB_PYTHON '{tmp_path / 'no-python'}': not an executable")
    proc = run_trainbench("report", run, env={"TB_REPORTS_PATH": str(tmp_path)})
    assert proc.returncode == 1 and len(proc.stderr.splitlines()) == 1, proc.stderr
    assert "TB_REPORTS_PATH" in proc.stderr and "reports/__main__.py" in proc.stderr
    # A copy of the package elsewhere, named explicitly, is the one used.
    shutil.copytree(ROOT / "reports", tmp_path / "pkg" / "reports",
                    ignore=shutil.ignore_patterns("__pycache__", "runs"))
    proc = run_trainbench("report", run, env={"TB_REPORTS_PATH": str(tmp_path / "pkg"),
                                              "TB_PYTHON": "/usr/bin/python3"})
    assert proc.returncode == 0, proc.stderr


def test_a_python_without_matplotlib_is_named(tmp_path):
    fake = tmp_path / "python3"
    fake.write_text("#!/bin/sh\necho 'Traceback: no module named matplotlib' >&2\nexit 1\n")
    fake.chmod(0o755)
    run = run_dir(tmp_path, "single")
    # Given explicitly it is used as is, and its failure passes through.
    proc = run_trainbench("report", run, env={"TB_PYTHON": str(fake)})
    assert proc.returncode != 0
    # Searched for, it is skipped in favour of /usr/bin/python3 (Debian's, with matplotlib).
    proc = run_trainbench("report", run, env={"PATH": f"{tmp_path}:/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
