#!/usr/bin/env bash
# Batch builds (issue 18): a build-matrix of 8 builds of one CPU-bound
# command, run by `codebuild-local run` (its scheduler picks how many run at
# once from the CPUs and the builds' compute type), against the same 8
# commands run by `xargs -P <CPUs>`.  Target: the batch within 1.1x of the
# baseline (the scheduler adds no idle time), and the per-build overhead
# (the difference spread over the builds each CPU ran) as in
# bench/overhead.sh.  Each measured REPS times (default 3); medians.
# Usage: bench/batch.sh [BIN] [REPS] [SANDBOX]   (SANDBOX: namespaces | none)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
BIN=${1:-build/codebuild-local}
REPS=${2:-3}
SANDBOX=${3:-namespaces}
BIN=$(abs_path "$BIN")
CPUS=$(nproc)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export CODEBUILD_LOCAL_HOME="$work/state"

# about a second of one core on a small VM
CMD="awk 'BEGIN { for (i = 0; i < 6000000; i++) s += i * 2 % 7; print s }'"
mkdir -p "$work/src"
cat > "$work/src/buildspec.yml" <<YML
version: 0.2
batch:
  build-matrix:
    dynamic:
      env:
        variables:
          SEED: [1, 2, 3, 4, 5, 6, 7, 8]
phases:
  build:
    commands:
      - $CMD
YML

# warm-up
"$BIN" run --sandbox "$SANDBOX" --batch-build matrix_1 "$work/src" >/dev/null 2>&1
: > "$work/batch.txt"; : > "$work/xargs.txt"
run_batch() {
  local t0 t1
  t0=$(now_us)
  "$BIN" run --sandbox "$SANDBOX" "$work/src" > "$work/out.txt" 2>&1 || { cat "$work/out.txt"; exit 1; }
  t1=$(now_us)
  echo $((t1 - t0)) >> "$work/batch.txt"
}
run_xargs() {
  local t0 t1
  t0=$(now_us)
  seq 8 | xargs -P "$CPUS" -I{} sh -c "$CMD" > /dev/null
  t1=$(now_us)
  echo $((t1 - t0)) >> "$work/xargs.txt"
}
# alternating which goes first: a busy machine's load drifts
for i in $(seq "$REPS"); do
  if [ $((i % 2)) = 1 ]; then run_batch; run_xargs; else run_xargs; run_batch; fi
done
grep -q "SUCCEEDED" "$work/out.txt" || { cat "$work/out.txt"; exit 1; }
b=$(median < "$work/batch.txt")
x=$(median < "$work/xargs.txt")
awk -v b="$b" -v x="$x" -v c="$CPUS" -v r="$REPS" -v s="$SANDBOX" 'BEGIN {
  printf "builds:               8 (build-matrix), %d CPUs, sandbox %s, %d runs\n", c, s, r
  printf "codebuild-local run:  %.2f s (median)\n", b / 1e6
  printf "xargs -P %d:           %.2f s (median)\n", c, x / 1e6
  printf "overhead per build:   %.1f ms (each CPU ran 8/%d builds)\n", (b - x) / 1000 / (8 / c), c
  printf "ratio:                %.3fx the baseline (target <= 1.1x)\n", b / x
}'
