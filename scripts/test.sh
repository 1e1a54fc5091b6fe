#!/usr/bin/env bash
# test.sh - set up (scripts/setup.sh --tests), then run the whole test suite
# twice: on the release build, and on a build with AddressSanitizer +
# UndefinedBehaviorSanitizer.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --tests

jobs=$(nproc)
echo "== test suite (release build)"
ctest --test-dir build --output-on-failure -j"$jobs"

echo "== test suite (ASan + UBSan build)"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DLOSSC_SANITIZE=ON >/dev/null
cmake --build build-asan -j"$jobs"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --test-dir build-asan --output-on-failure -j"$jobs" -LE slow
