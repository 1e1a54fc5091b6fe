#!/bin/sh
# test_aot_link.sh LOSSC SOURCE_DIR - the AOT link test: `lossc build` for the host
# CPU and for x86-64-v3, then a plain C program compiled with gcc and linked
# with only the object and -lm (no LLVM, no lossc library), checked against a
# double loop (tests/cli/aot_huber.c).
set -eu
lossc=$1
src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for cpu in host x86-64-v3; do
  cpuarg=""
  [ "$cpu" = host ] || cpuarg="--cpu $cpu"
  # shellcheck disable=SC2086
  "$lossc" build "$src/examples/huber.loss" --entry huber -o "$tmp/huber.o" \
    --header "$tmp/huber.h" $cpuarg
  gcc -std=c11 -O2 -Wall -Wextra -Werror -I"$tmp" "$src/tests/cli/aot_huber.c" \
    "$tmp/huber.o" -lm -o "$tmp/prog"
  if ldd "$tmp/prog" | grep -Ei 'llvm|lossc'; then
    echo "test_aot_link: the program links LLVM or lossc ($cpu)"
    exit 1
  fi
  # an object for x86-64-v3 must run on CPUs without AVX-512
  if [ "$cpu" = x86-64-v3 ] && objdump -d "$tmp/huber.o" | grep -q zmm; then
    echo "test_aot_link: the x86-64-v3 object uses AVX-512 registers"
    exit 1
  fi
  echo "== $cpu"
  "$tmp/prog"
done
