#!/usr/bin/env bash
# Overhead of a build: a 4-phase buildspec whose commands are `true`, run N
# times (default 20), against the baseline `bash -c 'true; true; true; true'`.
# Prints both medians, the median overhead per build and the ratio.
# Target (issue "codebuild-local run"): overhead under 15 ms without sandbox
# (--sandbox none; bench/sandbox.sh measures what the sandbox adds).
# Usage: bench/overhead.sh [BIN] [N]
set -euo pipefail
. "$(dirname "$0")/lib.sh"
BIN=${1:-build/codebuild-local}
N=${2:-20}
BIN=$(abs_path "$BIN")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
trivial_buildspec "$work/src"
export CODEBUILD_LOCAL_HOME="$work/state"

now_ns() { date +%s%N; }

# warm-up (page cache, dynamic loader)
"$BIN" run --sandbox none "$work/src" >/dev/null 2>&1
bash -c 'true; true; true; true'

: > "$work/cbl.txt"; : > "$work/bash.txt"
for _ in $(seq "$N"); do
  t0=$(now_ns); "$BIN" run --sandbox none "$work/src" >/dev/null 2>&1; t1=$(now_ns)
  echo $(( (t1 - t0) / 1000 )) >> "$work/cbl.txt"
  t0=$(now_ns); bash -c 'true; true; true; true'; t1=$(now_ns)
  echo $(( (t1 - t0) / 1000 )) >> "$work/bash.txt"
done
cbl=$(median < "$work/cbl.txt")
base=$(median < "$work/bash.txt")
awk -v c="$cbl" -v b="$base" -v n="$N" 'BEGIN {
  printf "runs:                 %d\n", n
  printf "codebuild-local run:  %.2f ms (median)\n", c / 1000
  printf "bash baseline:        %.2f ms (median)\n", b / 1000
  printf "overhead per build:   %.2f ms (target < 15 ms)\n", (c - b) / 1000
  printf "ratio:                %.1fx the baseline\n", c / b
}'
