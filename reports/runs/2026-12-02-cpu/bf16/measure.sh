#!/usr/bin/env bash
# Native bf16 GEMMs on this CPU (issue 15): the commands behind README's "Measured: native
# bf16 on this CPU" and the files next to this script. BUILD: a Release build with oneDNN and
# the benchmarks (cmake -DTB_BUILD_BENCH=ON; here build-dnnl, commit 9b7dbc6).
#   reports/runs/2026-12-02-cpu/bf16/measure.sh BUILD
set -euo pipefail
build=$1
out=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$out/../../../.." && pwd)
cd "$repo"
"$build/bin/trainbench" info > "$out/info.json"
lscpu > "$out/lscpu.txt"
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
# 4. The precision scenario's fp32 and bf16 variants (bf16 native), and their report.
rm -rf "$out/precision"
"$build/bin/trainbench" run scenarios/precision.json --filter '^precision=(fp32|bf16),' --out "$out/precision" \
  > "$out/precision.log" 2>&1
"$build/bin/trainbench" report "$out/precision" > /dev/null
echo "measure.sh: done"
