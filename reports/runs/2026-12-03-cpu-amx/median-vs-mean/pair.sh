#!/usr/bin/env bash
# paired: same calibration, median vs mean statistic
set -euo pipefail
tb=build-dnnl/bin/trainbench scenario=$1 out=$2 rounds=${3:-3}
mkdir -p $out
pm=() pa=() runs=()
for i in $(seq 1 $rounds); do
  $tb calibrate --scenario $scenario --out $out/cal-$i.json > $out/cal-$i.log
  $tb plan --scenario $scenario --calibration $out/cal-$i.json --json $out/pred-med-$i.json > /dev/null
  $tb plan --scenario $scenario --calibration $out/cal-$i.json.mean.json --json $out/pred-mean-$i.json > /dev/null
  rm -rf $out/run-$i
  $tb run $scenario --out $out/run-$i --set accuracy.train_steps=0 > $out/run-$i.log 2>&1
  pm+=($out/pred-med-$i.json) pa+=($out/pred-mean-$i.json) runs+=($out/run-$i/results.jsonl)
done
cd /work/main
echo MEDIAN; /usr/bin/python3 reports/validation/predicted_vs_measured.py --predicted "${pm[@]}" --measured "${runs[@]}" | cut -d'|' -f2-6
echo MEAN; /usr/bin/python3 reports/validation/predicted_vs_measured.py --predicted "${pa[@]}" --measured "${runs[@]}" | cut -d'|' -f2-6
