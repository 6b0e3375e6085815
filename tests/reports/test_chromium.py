"""The page (a run's report, and a capacity plan's) renders in headless Chromium with no
console errors: Chromium loads index.html from the file system (no network), writes a
screenshot, and logs every console message of the page to stderr; the test fails on any. A
page with a planted error checks that the logging works. Without Chromium (Debian's chromium
package; scripts/test.sh installs it) the test reports "chromium is not installed" and ctest
counts it as skipped."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

CONSOLE = re.compile(r":CONSOLE[:(]|Uncaught|console\.error", re.I)


def chromium() -> str:
    for name in (os.environ.get("TB_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if name and shutil.which(name):
            return shutil.which(name)
    pytest.skip("chromium is not installed (Debian: apt-get install chromium; scripts/test.sh does)")


def render(page: Path, shot: Path, profile: Path) -> subprocess.CompletedProcess:
    cmd = [chromium(), "--headless", "--disable-gpu", "--no-sandbox", "--no-first-run",
           "--disable-extensions", "--disable-background-networking", "--disable-sync",
           f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
           "--hide-scrollbars", "--window-size=1400,5000", f"--screenshot={shot}",
           page.resolve().as_uri()]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "HOME": str(profile)})


def console_lines(proc: subprocess.CompletedProcess) -> list[str]:
    return [l for l in proc.stderr.splitlines() if CONSOLE.search(l)]


def test_the_console_check_catches_a_planted_error(tmp_path):
    page = tmp_path / "bad.html"
    page.write_text('<!DOCTYPE html><html><head><meta charset="utf-8"><title>t</title></head>'
                    '<body><p>x</p><script>throw new Error("planted");</script></body></html>')
    proc = render(page, tmp_path / "bad.png", tmp_path / "profile")
    assert any("planted" in l for l in console_lines(proc)), proc.stderr[-3000:]


def test_report_page_renders_without_console_errors(reports_of, tmp_path):
    page = reports_of("mixed") / "index.html"
    shot = tmp_path / "page.png"
    proc = render(page, shot, tmp_path / "profile")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert console_lines(proc) == [], "\n".join(console_lines(proc))
    assert shot.is_file() and shot.stat().st_size > 50_000
    # Non-trivial: the plots' colours are there, not a blank or error page.
    import matplotlib.image
    img = matplotlib.image.imread(shot)
    rgb = (img[..., :3] * 255).astype(np.uint8).reshape(-1, 3)
    colours = np.unique(rgb, axis=0)
    assert len(colours) > 200, len(colours)
    assert (rgb.min(axis=1) < 200).mean() > 0.03  # enough ink on the page
    keep = os.environ.get("TB_REPORT_SCREENSHOT")
    if keep:
        shutil.copy(shot, keep)


def test_plan_report_page_renders_without_console_errors(tmp_path):
    from conftest import FIXTURES, run_reports
    plan = tmp_path / "plan.json"
    shutil.copy(FIXTURES / "plan.json", plan)
    proc = run_reports(plan)
    assert proc.returncode == 0, proc.stderr
    shot = tmp_path / "plan.png"
    proc = render(tmp_path / "plan-report" / "index.html", shot, tmp_path / "profile")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert console_lines(proc) == [], "\n".join(console_lines(proc))
    assert shot.is_file() and shot.stat().st_size > 50_000
