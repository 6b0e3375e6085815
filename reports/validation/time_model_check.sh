#!/usr/bin/env bash
# The planner's time model against trainbench's own measurements on this machine
# (docs/planner.md, "Checked against measurement"): ROUNDS times, calibrate for the scenario
# and run it (timing only), then compare the median prediction with the median measurement.
# A scenario with parallel variants is calibrated once per job size (RANKS, e.g. "1 2 4"):
# under mpirun -np N for N > 1, every rank timing the operations at once. Arguments after
# RANKS go to `trainbench run` (e.g. --set measure.time_budget_s=30 for longer windows);
# CALIBRATE_ARGS in the environment go to `trainbench calibrate` (e.g. "--min-seconds 0.2");
# PAIR_VARIANTS=1 calibrates and runs one variant at a time instead (see below).
# On a shared machine whose speed drifts by 10–50% over seconds to minutes, longer windows on
# both sides average over that drift (docs/planner.md, "Checked against measurement").
#   reports/validation/time_model_check.sh BUILD/bin/trainbench SCENARIO OUT_DIR [ROUNDS] [RANKS] [RUN_ARGS…]
set -euo pipefail
tb=$1 scenario=$2 out=$3 rounds=${4:-3} ranks=${5:-1}
run_args=("${@:6}")
read -r -a cal_args <<< "${CALIBRATE_ARGS:-}"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"
printf '%q ' CALIBRATE_ARGS="${CALIBRATE_ARGS:-}" PAIR_VARIANTS="${PAIR_VARIANTS:-0}" "$0" "$@" \
  > "$out/command.txt"
echo >> "$out/command.txt"
preds=() runs=()
# calibrate N FILE LOG [ARGS…]: one calibration on N ranks.
calibrate() {
  local n=$1 file=$2 log=$3 launch=()
  shift 3
  [ "$n" -gt 1 ] && launch=(mpirun -np "$n" --oversubscribe --bind-to none)
  "${launch[@]}" "$tb" calibrate --scenario "$scenario" --out "$file" "$@" "${cal_args[@]}" \
    < /dev/null > "$log"
}
# predict_and_run TAG [ARGS…]: predict from the calibrations in cals, then run (timing only).
predict_and_run() {
  local tag=$1
  shift
  "$tb" plan --scenario "$scenario" "$@" --calibration "${cals[@]}" \
    --json "$out/prediction-$tag.json" > "$out/prediction-$tag.txt"
  rm -rf "$out/run-$tag"
  "$tb" run "$scenario" "$@" --out "$out/run-$tag" --set accuracy.train_steps=0 "${run_args[@]}" \
    < /dev/null > "$out/run-$tag.log" 2>&1
  preds+=("$out/prediction-$tag.json") runs+=("$out/run-$tag/results.jsonl")
}
# PAIR_VARIANTS=1: each variant calibrated on its own ranks (`--filter`) and run right after, so
# the two see the same state of a machine whose speed drifts over minutes; RANKS is unused. The
# table then also gives each pair's own error.
variants=()
[ "${PAIR_VARIANTS:-0}" = 1 ] &&
  mapfile -t variants < <("$tb" validate "$scenario" |
    awk '$1 ~ /^[0-9]+$/ { n = $NF; sub(/^ranks=/, "", n); print $1, n, $2 }')
for i in $(seq 1 "$rounds"); do
  if [ ${#variants[@]} -gt 0 ]; then
    for v in "${variants[@]}"; do
      read -r k n id <<< "$v"
      filter="^$(sed 's/[][\.*^$+?(){}|]/\\&/g' <<< "$id")\$"
      cals=("$out/calibration-$i-v$k.json")
      calibrate "$n" "${cals[0]}" "$out/calibrate-$i-v$k.log" --filter "$filter"
      predict_and_run "$i-v$k" --filter "$filter"
    done
  else
    cals=()
    for n in $ranks; do
      calibrate "$n" "$out/calibration-$i-np$n.json" "$out/calibrate-$i-np$n.log"
      cals+=("$out/calibration-$i-np$n.json")
    done
    predict_and_run "$i"
  fi
done
# Paired, each prediction is also compared with the run right after it (--pairs).
pairs=()
[ ${#variants[@]} -gt 0 ] && pairs=(--pairs)
/usr/bin/python3 "$here/predicted_vs_measured.py" --predicted "${preds[@]}" --measured "${runs[@]}" \
  "${pairs[@]}" | tee "$out/predicted_vs_measured.md"
