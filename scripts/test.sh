#!/usr/bin/env bash
# Builds everything (tests, tools, apps, examples, benchmarks) and runs the whole test suite.
#   bash scripts/test.sh              optimised build in build/release
#   bash scripts/test.sh --sanitize   AddressSanitizer + UBSan build in build/sanitize
# Extra arguments after the flag go to ctest (e.g. -R model).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
mode=release
if [ "${1:-}" = "--sanitize" ]; then mode=sanitize; shift; fi
jobs=$(nproc 2>/dev/null || echo 2)
if [ "$mode" = sanitize ]; then
  # -O1 keeps sanitizer runs fast; -g1 (functions and line tables, no variables) is all a
  # sanitizer report needs and compiles much faster than -g; assertions stay on (no NDEBUG).
  # Sanitized: the suites of the modules with hand-written memory, index and file handling
  # (core, model, io, sae: sparse kernels, .npy/.safetensors parsing, streaming). Tested in the
  # optimised build only: nn, theory and identify (Eigen linear algebra), the tools, the research
  # programs (apps/) and the MPI tests (Open MPI's own allocations defeat the leak check;
  # docs/scale.md). This keeps CI's two builds within its time budget on 2 cores (the optimised
  # build alone takes ~22 minutes there).
  cmake -S . -B build/sanitize -DCMAKE_BUILD_TYPE=Debug "-DCMAKE_CXX_FLAGS_DEBUG=-O1 -g1" \
    -DERGO_SANITIZE=ON -DERGO_WERROR=ON -DERGO_BUILD_BENCHMARKS=OFF -DERGO_BUILD_APPS=OFF \
    -DERGO_BUILD_TOOLS=OFF -DERGO_BUILD_EXAMPLES=OFF -DERGO_MPI=OFF \
    "-DERGO_TEST_MODULES=core;model;io;sae"
else
  cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release -DERGO_WERROR=ON
fi
if [ "$mode" = sanitize ]; then
  # Only what the tests run (test executables and the tools and apps they call); the packaging
  # test (install + find_package, no sanitizer question) runs in the optimised build only.
  cmake --build "build/$mode" -j "$jobs" --target ergo_tests
  set -- -LE packaging "$@"
else
  cmake --build "build/$mode" -j "$jobs"
fi
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
ctest --test-dir "build/$mode" --output-on-failure -j "$jobs" "$@"
