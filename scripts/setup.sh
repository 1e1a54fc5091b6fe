#!/usr/bin/env bash
# setup.sh - install what lossc needs on Debian 12 (only what is missing),
# then configure and build it into build/.
#
#   scripts/setup.sh            build dependencies only
#   scripts/setup.sh --tests    also what the test suite compares against
#                               (python3-torch, python3-numpy)
#   scripts/setup.sh --bench    also what bench/run compares against and
#                               draws with (python3-torch, python3-matplotlib)
set -euo pipefail
cd "$(dirname "$0")/.."

pkgs=(build-essential cmake pkg-config ccache llvm-19-dev re2c libcmocka-dev
      libdlpack-dev python3)
case "${1:-}" in
  --tests) pkgs+=(python3-numpy python3-torch) ;;
  --bench) pkgs+=(python3-numpy python3-torch python3-matplotlib) ;;
esac

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo=""
  [[ $(id -u) -ne 0 ]] && sudo=sudo
  echo "setup: installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi

jobs=$(nproc)
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$jobs"
