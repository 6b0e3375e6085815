set -e
tb=/work/main/build-dnnl/bin/trainbench; out=OUT; rm -rf $out; mkdir -p $out
for i in 1 2 3 4 5 6; do
  $tb calibrate --scenario one-variant.json --min-seconds 0.2 --out $out/cal-$i.json > $out/cal-$i.log
  $tb plan --scenario one-variant.json --calibration $out/cal-$i.json --json $out/prediction-$i.json >/dev/null
  $tb run one-variant.json --out $out/run-$i --set accuracy.train_steps=0 measure.max_steps=1000 measure.target_rel_noise=0.00001 measure.time_budget_s=15 > $out/run-$i.log 2>&1
  python3 -c "
import json; p=json.load(open('$out/prediction-$i.json'))['variants'][0]['predicted_step_s']; m=json.loads(open('$out/run-$i/results.jsonl').readline())['timing']['step_s']; print($i, round(p*1e3,1), round(m['median']*1e3,1), m['n'], f'{100*(p/m[\"median\"]-1):+.1f}%')"
done
