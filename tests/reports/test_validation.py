"""reports/validation/predicted_vs_measured.py: the planner's predictions against runs, over
small hand-written prediction and results files whose errors are known."""
import json
import pathlib
import subprocess
import sys

SCRIPT = pathlib.Path(__file__).resolve().parents[2] / "reports/validation/predicted_vs_measured.py"


def write_prediction(path, step_s):
    variants = [{"variant": vid, "predicted_step_s": s,
                 "time_breakdown_s": {"forward": s / 3, "backward": 2 * s / 3}}
                for vid, s in step_s.items()]
    path.write_text(json.dumps({"variants": variants}))
    return path


def write_run(path, step_s):
    lines = [json.dumps({"status": "ok", "variant": {"id": vid},
                         "timing": {"step_s": {"median": s},
                                    "phases_s": {"forward": {"median": s / 3}}}})
             for vid, s in step_s.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def compare(*args):
    return subprocess.run([sys.executable, SCRIPT, *map(str, args)], capture_output=True,
                          text=True)


def row(out, vid):
    return next(line for line in out.splitlines() if line.startswith(f"| {vid} |"))


def test_medians_of_predictions_and_runs(tmp_path):
    # a: predictions 1.1, 1.2, 1.3 (median 1.2) against runs 1.0, 1.0, 2.0 (median 1.0): +20%.
    preds = [write_prediction(tmp_path / f"p{i}.json", {"a": s, "b": 0.5})
             for i, s in enumerate([1.1, 1.2, 1.3])]
    runs = [write_run(tmp_path / f"r{i}.jsonl", {"a": s, "b": 0.5})
            for i, s in enumerate([1.0, 1.0, 2.0])]
    proc = compare("--predicted", *preds, "--measured", *runs)
    assert proc.returncode == 0, proc.stderr
    assert "| 1000.0 | 1000.0–2000.0 | 1200.0 | 1100.0–1300.0 | +20.0% |" in row(proc.stdout, "a")
    assert "| +0.0% |" in row(proc.stdout, "b")
    assert "Mean absolute error 10.0%, worst 20.0% over 2 variants" in proc.stdout
    assert "each pair's error" not in proc.stdout


def test_pairs_compare_each_prediction_with_its_own_run(tmp_path):
    # Pair by pair: 1.1/1.0 → +10%, 1.2/1.0 → +20%, 1.3/2.0 → −35%; only the first within 15%.
    preds = [write_prediction(tmp_path / f"p{i}.json", {"a": s})
             for i, s in enumerate([1.1, 1.2, 1.3])]
    runs = [write_run(tmp_path / f"r{i}.jsonl", {"a": s}) for i, s in enumerate([1.0, 1.0, 2.0])]
    proc = compare("--predicted", *preds, "--measured", *runs, "--pairs")
    assert proc.returncode == 0, proc.stderr
    pairs_table = proc.stdout.split("each pair's error")[1]
    assert row(pairs_table, "a") == "| a | +10.0%, +20.0%, -35.0% | 1 of 3 |"
    assert "Pairs: mean absolute error 21.7%, 1 of 3 within 15%" in proc.stdout


def test_pairs_need_as_many_predictions_as_runs(tmp_path):
    p = write_prediction(tmp_path / "p.json", {"a": 1.0})
    r = write_run(tmp_path / "r.jsonl", {"a": 1.0})
    proc = compare("--predicted", p, p, "--measured", r, "--pairs")
    assert proc.returncode != 0
    assert "--pairs needs as many predictions as runs, got 2 predictions and 1 runs" in proc.stderr
