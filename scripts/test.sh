#!/usr/bin/env bash
# Installs dependencies, builds, and runs every test through ctest (GoogleTest and pytest):
#   1. Release build with warnings as errors (the CUDA backend compiles when the toolkit is
#      present; GPU tests report as skipped on a machine without a GPU);
#   2. an AddressSanitizer + UndefinedBehaviorSanitizer build of the tests, run the same way;
#   3. the scenario parser's libFuzzer target (clang) for 30 s;
#   4. a build without oneDNN (-DTB_ONEDNN=OFF: bf16/fp16 CPU GEMMs emulated) of trainbench and
#      the precision tests, run.
# TB_SKIP_SANITIZE=1, TB_SKIP_FUZZ=1 and TB_SKIP_NO_ONEDNN=1 skip stages 2, 3 and 4.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh

# The report page's test renders it in headless Chromium (Debian's chromium package); without
# it that one test reports as skipped, so install it here.
if ! command -v chromium >/dev/null 2>&1; then
  echo "test.sh: installing chromium (for tests/reports/test_chromium.py)"
  sudo_cmd=()
  if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi
  "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi

echo "== release build =="
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DTB_WERROR=ON
cmake --build build
ctest --test-dir build --output-on-failure

if [ "${TB_SKIP_SANITIZE:-0}" != "1" ]; then
  echo "== AddressSanitizer + UndefinedBehaviorSanitizer build =="
  # -march=native off: sanitizer stage checks memory and UB, not speed.
  cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTB_WERROR=ON \
    -DTB_SANITIZE=ON -DTB_NATIVE=OFF -DTB_CUDA=OFF -DTB_BUILD_BENCH=OFF
  cmake --build build-asan
  ASAN_OPTIONS="abort_on_error=1:detect_leaks=1" \
  LSAN_OPTIONS="suppressions=$PWD/tests/lsan.supp:print_suppressions=0" \
  UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" \
    ctest --test-dir build-asan --output-on-failure
fi
if [ "${TB_SKIP_FUZZ:-0}" != "1" ]; then
  echo "== libFuzzer: scenario parser, 30 s =="
  cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTB_WERROR=ON \
    -DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14 -DTB_FUZZ=ON \
    -DTB_NATIVE=OFF -DTB_CUDA=OFF -DTB_BUILD_BENCH=OFF
  cmake --build build-fuzz --target scenario_fuzz
  rm -rf build-fuzz/corpus && cp -r tests/fuzz/corpus build-fuzz/corpus
  build-fuzz/bin/scenario_fuzz -dict=tests/fuzz/scenario.dict -max_total_time=30 -timeout=10 \
    -print_final_stats=1 build-fuzz/corpus
fi
if [ "${TB_SKIP_NO_ONEDNN:-0}" != "1" ]; then
  echo "== build without oneDNN: 16-bit CPU GEMMs emulated =="
  cmake -S . -B build-nodnnl -G Ninja -DCMAKE_BUILD_TYPE=Release -DTB_WERROR=ON -DTB_CUDA=OFF \
    -DTB_ONEDNN=OFF -DTB_BUILD_BENCH=OFF
  precision_tests=(precision_dnnl_gemm precision_native_matmul precision_gradients precision_mixed_ops)
  cmake --build build-nodnnl --target trainbench "${precision_tests[@]}"
  for t in "${precision_tests[@]}"; do build-nodnnl/bin/"$t" --gtest_brief=1; done
  # The step still trains in bf16 and says why its GEMMs are emulated.
  build-nodnnl/bin/trainbench step --precision bf16 --layers 1 --d-model 96 --seq 32 --vocab 256 \
    --steps 2 --warmup 1 --threads 1 | tee build-nodnnl/step-bf16.txt
  grep -q 'built without oneDNN' build-nodnnl/step-bf16.txt
fi
echo "test.sh: all stages passed"
