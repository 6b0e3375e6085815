"""Evaluates each published run of published_runs.json with `trainbench plan` (every
dimension pinned, datasheet peaks, no calibration) and prints a Markdown table of the
published and predicted iteration times with the error of each and the mean absolute error.

    /usr/bin/python3 reports/validation/planner_validation.py build/bin/trainbench
"""
import json
import pathlib
import subprocess
import sys
import tempfile

HERE = pathlib.Path(__file__).resolve().parent


def predict(trainbench, run):
    with tempfile.TemporaryDirectory() as tmp:
        out = pathlib.Path(tmp) / "plan.json"
        args = [trainbench, "plan", "--gpu", run["gpu"], "--gpus", str(run["gpus"]),
                "--layers", str(run["layers"]), "--d-model", str(run["d_model"]),
                "--heads", str(run["heads"]), "--vocab", str(run["vocab"]),
                "--seq", str(run["seq"]), "--global-batch", str(run["global_batch"]),
                "--tp", str(run["tp"]), "--pp", str(run["pp"]),
                "--dp", str(run["gpus"] // (run["tp"] * run["pp"])),
                "--virtual-stages", str(run["virtual_stages"]),
                "--micro-batch", str(run["micro_batch"]), "--recompute", run["recompute"],
                "--sequence-parallel", run["sequence_parallel"], "--zero", str(run["zero"]),
                "--precision", "bf16", "--no-failures", "--json", str(out)]
        if "inter_node_gbps" in run:
            args += ["--inter-node-gbps", str(run["inter_node_gbps"])]
        subprocess.run(args, check=True, capture_output=True, text=True)
        return json.loads(out.read_text())["configurations"][0]


def main():
    trainbench = sys.argv[1] if len(sys.argv) > 1 else "build/bin/trainbench"
    runs = json.loads((HERE / "published_runs.json").read_text())["runs"]
    print("| run | GPUs | TP/PP/DP, v | recompute | published s | predicted s | error | "
          "predicted MFU | largest predicted part |")
    print("|---|---|---|---|---|---|---|---|---|")
    errors = []
    for run in runs:
        c = predict(trainbench, run)
        pred, meas = c["iteration_s"], run["measured_iteration_s"]
        err = pred / meas - 1
        errors.append(abs(err))
        parts = {k: v for k, v in c["time_breakdown_s"].items() if k not in ("forward", "backward")}
        top = max(parts, key=parts.get)
        dp = run["gpus"] // (run["tp"] * run["pp"])
        print(f"| {run['id']} | {run['gpus']} | {run['tp']}/{run['pp']}/{dp}, {run['virtual_stages']} | "
              f"{run['recompute']}{' + SP' if run['sequence_parallel'] == 'on' else ''} | "
              f"{meas:.2f} | {pred:.2f} | {100 * err:+.1f}% | {100 * c['mfu']:.1f}% | "
              f"{top} {parts[top]:.2f} s |")
    print(f"\nMean absolute error over {len(errors)} runs: {100 * sum(errors) / len(errors):.1f}%")


if __name__ == "__main__":
    main()
