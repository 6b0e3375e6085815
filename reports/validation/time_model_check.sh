#!/usr/bin/env bash
# The planner's time model against trainbench's own measurements on this machine
# (docs/planner.md, "Checked against measurement"): ROUNDS times, calibrate for the scenario
# and run it (timing only), then compare the median prediction with the median measurement.
# A scenario with parallel variants is calibrated once per job size (RANKS, e.g. "1 2 4"):
# under mpirun -np N for N > 1, every rank timing the operations at once. Arguments after
# RANKS go to `trainbench run` (e.g. --set measure.time_budget_s=30 for longer windows);
# CALIBRATE_ARGS in the environment go to `trainbench calibrate` (e.g. "--min-seconds 0.2").
# On a shared machine whose speed drifts by 10–20% over seconds to minutes, longer windows on
# both sides average over that drift (docs/planner.md, "Checked against measurement").
#   reports/validation/time_model_check.sh BUILD/bin/trainbench SCENARIO OUT_DIR [ROUNDS] [RANKS] [RUN_ARGS…]
set -euo pipefail
tb=$1 scenario=$2 out=$3 rounds=${4:-3} ranks=${5:-1}
run_args=("${@:6}")
read -r -a cal_args <<< "${CALIBRATE_ARGS:-}"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"
printf '%q ' CALIBRATE_ARGS="${CALIBRATE_ARGS:-}" "$0" "$@" > "$out/command.txt"
echo >> "$out/command.txt"
preds=() runs=()
for i in $(seq 1 "$rounds"); do
  cals=()
  for n in $ranks; do
    launch=()
    [ "$n" -gt 1 ] && launch=(mpirun -np "$n" --oversubscribe --bind-to none)
    "${launch[@]}" "$tb" calibrate --scenario "$scenario" --out "$out/calibration-$i-np$n.json" \
      "${cal_args[@]}" > "$out/calibrate-$i-np$n.log"
    cals+=("$out/calibration-$i-np$n.json")
  done
  "$tb" plan --scenario "$scenario" --calibration "${cals[@]}" \
    --json "$out/prediction-$i.json" > "$out/prediction-$i.txt"
  rm -rf "$out/run-$i"
  "$tb" run "$scenario" --out "$out/run-$i" --set accuracy.train_steps=0 "${run_args[@]}" \
    > "$out/run-$i.log" 2>&1
  preds+=("$out/prediction-$i.json") runs+=("$out/run-$i/results.jsonl")
done
/usr/bin/python3 "$here/predicted_vs_measured.py" --predicted "${preds[@]}" --measured "${runs[@]}" \
  | tee "$out/predicted_vs_measured.md"
