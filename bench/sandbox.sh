#!/usr/bin/env bash
# Cost of the sandbox: the trivial 4-phase build (commands `true`) with the
# sandbox on (default) and off (--sandbox none), and `bash -c 'true; true;
# true; true'`, N runs each (default 20), interleaved.  Prints medians, what
# the sandbox adds per build, and the ratios.
# Target (issue "Sandbox"): the sandbox adds under 10 ms per build.
# Usage: bench/sandbox.sh [BIN] [N]
set -euo pipefail
. "$(dirname "$0")/lib.sh"
BIN=${1:-build/codebuild-local}
N=${2:-20}
BIN=$(abs_path "$BIN")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
trivial_buildspec "$work/src"
export CODEBUILD_LOCAL_HOME="$work/state"

"$BIN" run "$work/src" >/dev/null 2>&1 || { echo "the sandboxed build fails here:"; "$BIN" run "$work/src"; exit 1; }
"$BIN" run --sandbox none "$work/src" >/dev/null 2>&1
: > "$work/on"; : > "$work/off"; : > "$work/bash"
for _ in $(seq "$N"); do
  t0=$(now_us); "$BIN" run "$work/src" >/dev/null 2>&1; t1=$(now_us); echo $((t1 - t0)) >> "$work/on"
  t0=$(now_us); "$BIN" run --sandbox none "$work/src" >/dev/null 2>&1; t1=$(now_us); echo $((t1 - t0)) >> "$work/off"
  t0=$(now_us); bash -c 'true; true; true; true'; t1=$(now_us); echo $((t1 - t0)) >> "$work/bash"
done
on=$(median < "$work/on"); off=$(median < "$work/off"); b=$(median < "$work/bash")
awk -v on="$on" -v off="$off" -v b="$b" -v n="$N" 'BEGIN {
  printf "runs:                   %d each\n", n
  printf "sandbox on (default):   %.2f ms (median)\n", on / 1000
  printf "sandbox off:            %.2f ms (median)\n", off / 1000
  printf "bash -c baseline:       %.2f ms (median)\n", b / 1000
  printf "sandbox adds:           %.2f ms per build (target < 10 ms)\n", (on - off) / 1000
  printf "ratios:                 on/off %.2fx, on/bash %.1fx\n", on / off, on / b
}'
