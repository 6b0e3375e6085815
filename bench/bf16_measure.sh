#!/usr/bin/env bash
# Native bf16 GEMMs on this CPU (issue 15): every measurement behind README's "Measured: native
# bf16 on this CPU", written to OUT. BUILD: a Release build with oneDNN and the benchmarks
# (cmake -DTB_BUILD_BENCH=ON). About 45 minutes on 2 cores.
#   bench/bf16_measure.sh BUILD OUT
set -euo pipefail
build=$(cd "$1" && pwd)
mkdir -p "$2"
out=$(cd "$2" && pwd)
cd "$(dirname "$0")/.."
"$build/bin/trainbench" info > "$out/info.json"
lscpu > "$out/lscpu.txt"
git rev-parse HEAD > "$out/commit.txt"
# 1. GEMM throughput, fp32 (OpenBLAS) against bf16 (oneDNN), at 1 and 2 threads.
for t in 1 2; do
  OMP_NUM_THREADS=$t "$build/bin/bench_gemm_precision" --benchmark_repetitions=3 \
    --benchmark_out="$out/gemm_precision_t$t.json" --benchmark_out_format=json > "$out/gemm_precision_t$t.txt"
done
/usr/bin/python3 bench/gemm_precision_table.py "$out"/gemm_precision_t1.json "$out"/gemm_precision_t2.json \
  > "$out/gemm_precision.md"
# 2. The precision scenario's proxy, one seed, 150 steps: fp32, bf16 native, bf16 emulated.
cfg=(--preset gpt3-125m --layers 2 --width-scale 0.3334 --seq 128 --vocab 256 --batch 8 --lr 0.002
     --steps 150 --warmup 2 --eval-batches 8 --threads 2)
for p in native emulated; do
  "$build/bin/trainbench" step "${cfg[@]}" --precision bf16 --cpu-gemm $p --json "$out/step-bf16-$p.json" \
    > "$out/step-bf16-$p.txt"
done
"$build/bin/trainbench" step "${cfg[@]}" --precision fp32 --json "$out/step-fp32.json" > "$out/step-fp32.txt"
# 3. The training step against PyTorch's CPU bf16 autocast, fp32 and bf16, 1 and 2 threads.
/usr/bin/python3 bench/peers/compare.py --trainbench "$build/bin/trainbench" --precision fp32,bf16 \
  --threads 1,2 --rounds 2 --steps 6 --warmup 1 --out "$out/peers" > "$out/peers.log" 2>&1
# 4. The precision scenario and the default suite (bf16 native), and their reports.
for s in precision default; do
  "$build/bin/trainbench" run "scenarios/$s.json" --out "$out/$s" --resume > "$out/$s.log" 2>&1
  "$build/bin/trainbench" report "$out/$s" > /dev/null
done
echo "bf16_measure.sh: done"
