#!/usr/bin/env bash
# Builds and runs ergo's main job. Arguments are passed to the program.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
jobs=$(nproc 2>/dev/null || echo 2)
cmake -S . -B build/main -DCMAKE_BUILD_TYPE=Release -DERGO_BUILD_TESTS=OFF \
  -DERGO_BUILD_BENCHMARKS=OFF >/dev/null
cmake --build build/main -j "$jobs" --target concept_world
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
exec build/main/examples/concept_world "$@"
