#!/usr/bin/env bash
# Checks that every C++ source of the project is formatted by .clang-format (clang-format from
# Debian). `bash scripts/check-format.sh --fix` formats them in place instead.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
mapfile -t files < <(find include tests tools apps examples benchmarks \
  -type f \( -name '*.hpp' -o -name '*.cpp' \) -not -path '*/build/*' | sort)
if [ "${1:-}" = "--fix" ]; then
  clang-format -i "${files[@]}"
else
  clang-format --dry-run -Werror "${files[@]}"
  echo "check-format: ${#files[@]} files formatted"
fi
