#!/usr/bin/env bash
# Installs the Debian packages ergo's build, tests, examples and benchmarks need, if missing.
# Safe to run repeatedly; needs root (or sudo) only when something is missing.
set -euo pipefail
packages=(g++ make cmake libeigen3-dev libgtest-dev libgmock-dev libbenchmark-dev
          libcli11-dev nlohmann-json3-dev liblbfgspp-dev libspectra-dev gnuplot-nox
          clang-format libopenmpi-dev openmpi-bin libopenblas-dev libopenblas0-openmp
          libdnnl-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "install-deps: installing ${missing[*]}" >&2
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
