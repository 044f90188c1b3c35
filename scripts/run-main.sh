#!/usr/bin/env bash
# Builds and runs ergo's main job, the reproduction of the paper's simulation study
# (apps/reproduce_paper/). Arguments go to the program, e.g. --quick, --out DIR, --seeds K.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
jobs=$(nproc 2>/dev/null || echo 2)
cmake -S . -B build/main -DCMAKE_BUILD_TYPE=Release -DERGO_BUILD_TESTS=OFF \
  -DERGO_BUILD_BENCHMARKS=OFF >/dev/null
cmake --build build/main -j "$jobs" --target reproduce_paper
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
exec build/main/bin/reproduce_paper "$@"
