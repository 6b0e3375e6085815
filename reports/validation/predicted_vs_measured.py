"""The planner's predicted step time of each variant (`trainbench plan --scenario S
--calibration C --json P`) against what `trainbench run S` measured (the median step time of
DIR/results.jsonl), as a Markdown table with the error of each variant. Given several
predictions (one per calibration) and several runs, it compares the median of the
predictions with the median of the runs' medians, and shows the runs' and the predictions'
spread — on a shared machine that spread is often as large as the model's error. The phase
columns of a parallel variant are its slowest rank's (the most forward + backward time), the
rank the prediction's slowest stage stands for; its communication column is that rank's time
in communication calls, waits for other ranks and the pipeline bubble included.

With --pairs, the i-th prediction and the i-th run are one pair (a calibration and the run
right after it, as time_model_check.sh's PAIR_VARIANTS=1 writes them), and a second table
gives each pair's own error: how far one calibration alone lands from the run it precedes.

    /usr/bin/python3 reports/validation/predicted_vs_measured.py \
        --predicted P1.json [P2.json …] --measured RUN1/results.jsonl [RUN2/results.jsonl …] \
        [--pairs]
"""
import argparse
import json
import statistics


def load_predictions(paths):
    out = {}
    for p in paths:
        for v in json.load(open(p))["variants"]:
            out.setdefault(v["variant"], []).append(v)
    return out


COMPUTE = ("forward", "backward", "recompute")
COMM = ("tensor_parallel_comm", "pipeline_comm", "pipeline_bubble", "data_parallel_comm",
        "expert_parallel_comm")


def slowest_rank_phases(record):
    """The phases of the rank with the most computation (the step's pace), or the record's."""
    ranks = [r["phases_s"] for r in record.get("parallel", {}).get("ranks", []) if "phases_s" in r]
    if not ranks:
        return record["timing"]["phases_s"]
    # A rank's phases are its medians (results-schema: parallel.ranks[].phases_s).
    slowest = max(ranks, key=lambda p: sum(p.get(n, 0.0) for n in COMPUTE))
    return {n: {"median": s} for n, s in slowest.items()}


def load_measured(paths):
    out = {}
    for p in paths:
        for line in open(p):
            r = json.loads(line)
            if r.get("status") == "ok":
                out.setdefault(r["variant"]["id"], []).append(
                    {"step_s": r["timing"]["step_s"], "phases_s": slowest_rank_phases(r)})
    return out


def merged(per_file):
    """Per-file {variant: [entries]} maps merged into one, entries in file order."""
    out = {}
    for by_variant in per_file:
        for vid, entries in by_variant.items():
            out.setdefault(vid, []).extend(entries)
    return out


def print_pairs(per_prediction, per_run, tolerance=0.15):
    """Each prediction against the run at the same position: one row per variant."""
    errors = {}
    for predicted, measured in zip(per_prediction, per_run):
        for vid, [v] in predicted.items():
            if vid in measured:
                m = measured[vid][0]["step_s"]["median"]
                errors.setdefault(vid, []).append(v["predicted_step_s"] / m - 1)
    print(f"\n| variant | each pair's error (calibration, then its run) | "
          f"within {100 * tolerance:.0f}% |")
    print("|---|---|---|")
    for vid, errs in errors.items():
        inside = sum(abs(e) <= tolerance for e in errs)
        print(f"| {vid} | {', '.join(f'{100 * e:+.1f}%' for e in errs)} | {inside} of {len(errs)} |")
    flat = [abs(e) for errs in errors.values() for e in errs]
    if flat:
        print(f"\nPairs: mean absolute error {100 * statistics.mean(flat):.1f}%, "
              f"{sum(e <= tolerance for e in flat)} of {len(flat)} within {100 * tolerance:.0f}%")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--predicted", nargs="+", required=True)
    ap.add_argument("--measured", nargs="+", required=True)
    ap.add_argument("--pairs", action="store_true",
                    help="also compare the i-th prediction with the i-th run, pair by pair")
    a = ap.parse_args()
    if a.pairs and len(a.predicted) != len(a.measured):
        ap.error(f"--pairs needs as many predictions as runs, got {len(a.predicted)} "
                 f"predictions and {len(a.measured)} runs")
    # Each file read once, kept per file for --pairs and merged for the medians' table.
    per_prediction = [load_predictions([p]) for p in a.predicted]
    per_run = [load_measured([r]) for r in a.measured]
    predicted, measured = merged(per_prediction), merged(per_run)
    print("| variant | measured step ms (median of runs) | runs' range ms | predicted ms | "
          "predictions' range ms | error | "
          "forward ms measured / predicted | backward + recompute ms | optimizer ms | "
          "communication + bubble ms |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    errors = []
    for vid, preds in predicted.items():
        if vid not in measured:
            continue
        steps = [t["step_s"]["median"] for t in measured[vid]]
        m = statistics.median(steps)
        guesses = [v["predicted_step_s"] for v in preds]
        p = statistics.median(guesses)
        err = p / m - 1
        errors.append(abs(err))

        def phase(*names):
            return statistics.median(sum(t["phases_s"].get(n, {}).get("median", 0.0) for n in names)
                                     for t in measured[vid])

        def part(*names):
            return statistics.median(sum(v["time_breakdown_s"].get(n, 0.0) for n in names) for v in preds)

        print(f"| {vid} | {1e3 * m:.1f} | {1e3 * min(steps):.1f}–{1e3 * max(steps):.1f} | "
              f"{1e3 * p:.1f} | {1e3 * min(guesses):.1f}–{1e3 * max(guesses):.1f} | {100 * err:+.1f}% | "
              f"{1e3 * phase('forward'):.1f} / {1e3 * part('forward'):.1f} | "
              f"{1e3 * phase('backward', 'recompute'):.1f} / {1e3 * part('backward', 'recompute'):.1f} | "
              f"{1e3 * phase('optimizer'):.1f} / {1e3 * part('optimizer'):.1f} | "
              f"{1e3 * phase('communication'):.1f} / {1e3 * part(*COMM):.1f} |")
    if errors:
        print(f"\nMean absolute error {100 * statistics.mean(errors):.1f}%, worst "
              f"{100 * max(errors):.1f}% over {len(errors)} variants "
              f"({len(a.predicted)} calibrations, {len(a.measured)} runs)")
    if a.pairs:
        print_pairs(per_prediction, per_run)


if __name__ == "__main__":
    main()
