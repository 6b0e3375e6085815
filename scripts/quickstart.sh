#!/usr/bin/env bash
# From a fresh Debian 12 machine to results: installs dependencies, builds Release, runs the
# default suite on the best device present, and writes its results and report under out/default/.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build build --target trainbench

out=out/default
# An earlier run's results are kept, moved aside, never overwritten.
if [ -s "$out/results.jsonl" ]; then
  prev="$out.$(date -u +%Y%m%dT%H%M%SZ)"
  mv "$out" "$prev"
  echo "quickstart: earlier results moved to $prev"
fi
mkdir -p "$out"
build/bin/trainbench info > "$out/info.json"
# The default suite (scenarios/default.json): a tiny GPT-3 125M proxy on synthetic data whose
# entropy floor is known — fp32 at micro-batch 8 against micro-batch 4 and 16, bf16, fp16,
# and checkpointing every block and selective; each timed, then trained over 3 seeds.
build/bin/trainbench run scenarios/default.json --out "$out"
echo "quickstart: results in $out/results.jsonl"
# The report (docs/reports.md): speedup against accuracy, step and memory breakdowns, loss
# curves and throughput as SVG + PNG, and one self-contained page with the tables.
build/bin/trainbench report "$out"
echo "quickstart: report in $out/report/index.html (open it in a browser; $out/report/index.md for pasting)"
