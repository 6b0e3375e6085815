set -e
tb=build-dnnl/bin/trainbench; out=OUT; rm -rf $out; mkdir -p $out
S=scenarios/default.json; F='precision=bf16'
for i in 1 2 3; do
  $tb calibrate --scenario $S --filter $F --min-seconds 0.2 --out $out/cal-$i.json > $out/cal-$i.log
  $tb plan --scenario $S --filter $F --calibration $out/cal-$i.json --json $out/prediction-$i.json >/dev/null
  $tb run $S --filter $F --out $out/run-$i --set accuracy.train_steps=0 measure.max_steps=1000 measure.target_rel_noise=0.00001 measure.time_budget_s=15 > $out/run-$i.log 2>&1
  python3 -c "
import json; p=json.load(open('$out/prediction-$i.json'))['variants'][0]; m=json.loads(open('$out/run-$i/results.jsonl').readline())['timing']; s=m['step_s']
print($i, 'pred', round(p['predicted_step_s']*1e3,1), {k:round(v*1e3,1) for k,v in p['time_breakdown_s'].items() if v}, 'run', round(s['median']*1e3,1), s['n'], {k:round(v['median']*1e3,1) for k,v in m['phases_s'].items() if v['median']})"
done
