#!/usr/bin/env bash
# Installs trainbench's dependencies from Debian 12 packages. Idempotent: when every
# package is already installed it only checks and returns (no apt-get update).
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git
  libopenblas-openmp-dev   # CPU GEMMs; the OpenMP build shares one thread pool with our kernels
  libdnnl-dev              # CPU bf16/fp16 GEMMs on AVX512-BF16/AMX (oneDNN, OpenMP runtime)
  ocl-icd-opencl-dev       # Debian's oneDNN CMake package requires OpenCL (its GPU runtime)
  nlohmann-json3-dev libcli11-dev libfmt-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  python3 python3-numpy python3-matplotlib python3-pytest python3-jsonschema
  clang-14 libclang-rt-14-dev   # libFuzzer for tests/fuzz
  openmpi-bin libopenmpi-dev   # ranks of parallel runs (mpirun), the CPU communicator
  python3-torch            # bench/peers: the same model in PyTorch, for the speed comparison
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
