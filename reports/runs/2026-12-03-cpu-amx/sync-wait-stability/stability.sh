#!/usr/bin/env bash
# Sync-wait stability: the committed calibrate (main) against the WIP (interleaved free/barrier
# segments), alternating, for the tp2 and tp4 variants of parallel.json. Kept as it ran (its
# paths are that session's: /tmp/tb-new was built from interleaved.patch); the candidate was
# rejected and is not on main.
set -euo pipefail
cd /work/main
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
out=/tmp/sw/out; mkdir -p $out
cp build-dnnl/bin/trainbench /tmp/sw/tb-main
for i in 1 2 3 4; do
  for which in main new; do
    tb=/tmp/sw/tb-$which; [ $which = new ] && tb=/tmp/tb-new
    for v in "4 dp=1,tp=4,pp=1" "2 dp=1,tp=2,pp=1,pp_schedule=1f1b,zero=0,sequence_parallel=false"; do
      read -r n f <<< "$v"
      mpirun -np $n --oversubscribe --bind-to none $tb calibrate --scenario scenarios/parallel.json \
        --filter "^$f" --out $out/cal-$which-np$n-$i.json < /dev/null > $out/cal-$which-np$n-$i.log 2>&1
      grep "sync wait" $out/cal-$which-np$n-$i.log | sed "s/^/$which np$n r$i: /"
    done
  done
done
