#!/usr/bin/env bash
# demo.sh - set up (scripts/setup.sh), then the main job on a shipped example:
# compile examples/huber.loss, run forward + backward on generated data, and
# print the loss, a gradient summary, a finite-difference gradient check and
# the timings.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec build/cli/lossc demo examples/huber.loss --entry huber -n 1000000 "$@"
