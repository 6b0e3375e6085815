"""The planner's predicted step time of each variant (`trainbench plan --scenario S
--calibration C --json P`) against what `trainbench run S` measured (DIR/results.jsonl: the
median step time), as a Markdown table with the error of each variant.

    /usr/bin/python3 reports/validation/predicted_vs_measured.py P DIR/results.jsonl
"""
import json
import sys


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: predicted_vs_measured.py PREDICTION.json RESULTS.jsonl")
    predicted = {v["variant"]: v for v in json.load(open(sys.argv[1]))["variants"]}
    rows, errors = [], []
    for line in open(sys.argv[2]):
        r = json.loads(line)
        vid = r["variant"]["id"]
        if r.get("status") != "ok" or vid not in predicted:
            continue
        measured = r["timing"]["step_s"]["median"]
        pred = predicted[vid]["predicted_step_s"]
        err = pred / measured - 1
        errors.append(abs(err))
        phases = r["timing"].get("phases_s", {})
        def med(k):
            return phases.get(k, {}).get("median", float("nan"))
        b = predicted[vid]["time_breakdown_s"]
        rows.append(f"| {vid} | {1e3 * measured:.2f} | {1e3 * pred:.2f} | {100 * err:+.1f}% | "
                    f"{1e3 * med('forward'):.2f} / {1e3 * b['forward']:.2f} | "
                    f"{1e3 * (med('backward') + med('recompute') if 'recompute' in phases else med('backward')):.2f} / "
                    f"{1e3 * (b['backward'] + b['recompute']):.2f} | "
                    f"{1e3 * med('optimizer'):.2f} / {1e3 * b['optimizer']:.2f} |")
    print("| variant | measured step ms (median) | predicted ms | error | forward ms measured / predicted | "
          "backward (+recompute) ms | optimizer ms |")
    print("|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    if errors:
        print(f"\nMean absolute error {100 * sum(errors) / len(errors):.1f}%, worst "
              f"{100 * max(errors):.1f}% over {len(errors)} variants")


if __name__ == "__main__":
    main()
