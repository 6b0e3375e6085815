"""A results file that cannot be read is one stderr line naming the file and the line, and a
non-zero exit; nothing is written. The same line comes through `trainbench report`, with
trainbench's prefix."""
from __future__ import annotations

import json

import pytest

from conftest import FIXTURES, run_reports, run_trainbench

CRASH_MARKERS = ("Traceback", "terminate called", "Segmentation fault", "Aborted")


def good_lines() -> list[str]:
    return (FIXTURES / "single.jsonl").read_text().splitlines(keepends=True)


def with_line(i: int, change) -> str:
    out = good_lines()
    j = json.loads(out[i])
    change(j)
    out[i] = json.dumps(j) + "\n"
    return "".join(out)


def one_line_error(proc, prefix: str = "reports") -> str:
    for marker in CRASH_MARKERS:
        assert marker not in proc.stderr, proc.stderr
    assert proc.returncode == 1, (proc.returncode, proc.stderr)
    errs = proc.stderr.splitlines()
    assert len(errs) == 1, proc.stderr
    assert errs[0].startswith(f"{prefix}: error: "), errs[0]
    return errs[0][len(f"{prefix}: error: "):]


# name → (file content, line named, fragments of the message)
BAD = {
    "empty": ("", 1, ["empty results file"]),
    "truncated last line": ("".join(good_lines()) + '{"schema_version": 1, "variant": {"id": "mic', 4,
                            ["truncated mid-line", "--resume"]),
    "cut in the middle of a line": ("".join(good_lines())[: len(good_lines()[0]) + 200], 2,
                                    ["truncated mid-line"]),
    "not JSON mid-file": (good_lines()[0] + "{not json\n" + good_lines()[2], 2, ["not valid JSON"]),
    "unknown schema version": (with_line(2, lambda j: j.update(schema_version=2)), 3,
                               ["unsupported schema_version 2", "version 1"]),
    "schema version as text": (with_line(0, lambda j: j.update(schema_version="1")), 1,
                               ['unsupported schema_version "1"']),
    "no schema version": (with_line(1, lambda j: j.pop("schema_version")), 2, ["missing schema_version"]),
    "not an object": (good_lines()[0] + "[1, 2]\n", 2, ["expected a JSON object", "array"]),
    "blank line": (good_lines()[0] + "\n" + good_lines()[1], 2, ["blank line"]),
    "no variant id": (with_line(1, lambda j: j["variant"].pop("id")), 2, ["missing variant.id"]),
    "no status": (with_line(1, lambda j: j.pop("status")), 2, ["missing status"]),
    "ok without timing": (with_line(1, lambda j: j.pop("timing")), 2, ["status ok but timing is missing"]),
    "wrong type": (with_line(1, lambda j: j["throughput"].update(tokens_per_s="fast")), 2,
                   ["throughput.tokens_per_s", "expected a number"]),
    "variant twice": ("".join(good_lines()) + good_lines()[1], 4, ["again", "first on line 2"]),
    "two scenarios": (with_line(2, lambda j: j["scenario"].update(name="other")), 3,
                      ['"other"', "one scenario per results file"]),
}


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_results_file_is_one_line_naming_file_and_line(tmp_path, name):
    content, line, fragments = BAD[name]
    run = tmp_path / "run"
    run.mkdir()
    results = run / "results.jsonl"
    results.write_text(content)
    message = one_line_error(run_reports(run))
    assert message.startswith(f"{results}:{line}: "), message
    for f in fragments:
        assert f in message, (f, message)
    assert not (run / "report" / "index.html").exists()


def test_missing_directory_and_missing_results_file(tmp_path):
    message = one_line_error(run_reports(tmp_path / "nope"))
    assert message.startswith(f"{tmp_path / 'nope'}: no such file or directory"), message
    assert "results.jsonl" in message
    message = one_line_error(run_reports(tmp_path))
    assert message == f"{tmp_path / 'results.jsonl'}: cannot open results file: No such file or directory"


def test_bad_arguments_are_one_line_with_status_2(tmp_path):
    proc = run_reports()
    assert proc.returncode == 2 and len(proc.stderr.splitlines()) == 1, proc.stderr
    assert proc.stderr.startswith("reports: error: ")
    proc = run_reports(tmp_path, "--bogus")
    assert proc.returncode == 2 and len(proc.stderr.splitlines()) == 1, proc.stderr


@pytest.mark.parametrize("name", ["empty", "truncated last line", "unknown schema version"])
def test_trainbench_report_gives_the_same_line(tmp_path, name):
    content, line, _ = BAD[name]
    run = tmp_path / "run"
    run.mkdir()
    (run / "results.jsonl").write_text(content)
    direct = one_line_error(run_reports(run))
    via_cli = one_line_error(run_trainbench("report", run), prefix="trainbench")
    assert via_cli == direct
    assert f":{line}: " in via_cli


def test_trainbench_report_of_a_missing_directory(tmp_path):
    message = one_line_error(run_trainbench("report", tmp_path / "nope"), prefix="trainbench")
    assert message.startswith(f"{tmp_path / 'nope'}: no such file or directory")
