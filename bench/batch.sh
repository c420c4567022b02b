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
CMD="awk 'BEGIN { for (i = 0; i < 20000000; i++) s += i * 2 % 7; print s }'"
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
: > "$work/batch.txt"; : > "$work/xargs.txt"; : > "$work/setsid.txt"
run_batch() {
  local t0 t1
  t0=$(now_us)
  "$BIN" run --json --sandbox "$SANDBOX" "$work/src" > "$work/out.txt" 2>&1 || { cat "$work/out.txt"; exit 1; }
  t1=$(now_us)
  echo $((t1 - t0)) >> "$work/batch.txt"
}
run_xargs() {
  local t0 t1
  t0=$(now_us)
  seq 8 | xargs -P "$CPUS" -I{} sh -c "$CMD" > /dev/null
  t1=$(now_us)
  echo $((t1 - t0)) >> "$work/xargs.txt"
  # each command in a session of its own, as a build's commands are: with
  # the kernel's autogroup scheduling a session is a scheduling group, so
  # on a busy machine this is the like-for-like baseline
  t0=$(now_us)
  seq 8 | xargs -P "$CPUS" -I{} setsid -w sh -c "$CMD" > /dev/null
  t1=$(now_us)
  echo $((t1 - t0)) >> "$work/setsid.txt"
}
# alternating which goes first: a busy machine's load drifts
for i in $(seq "$REPS"); do
  if [ $((i % 2)) = 1 ]; then run_batch; run_xargs; else run_xargs; run_batch; fi
done
grep -q "SUCCEEDED" "$work/out.txt" || { cat "$work/out.txt"; exit 1; }
# the scheduler's own time: from a build's end (its record) to the start of
# the build that took its place, and from a start request to the build's
# start (the process and runner startup), over the last batch
/usr/bin/python3 - "$work/out.txt" "$CODEBUILD_LOCAL_HOME" > "$work/gaps.txt" <<'PY'
import glob, json, statistics, sys
batch = json.loads(open(sys.argv[1]).read().splitlines()[-1])["buildBatch"]
req = {g["currentBuildSummary"]["arn"].split("build/")[1]: g["currentBuildSummary"]["requestedOn"]
       for g in batch["buildGroups"]}
builds = {}
for f in glob.glob(sys.argv[2] + "/builds/*/*/build.json"):
    r = json.load(open(f))
    if r["id"] in req:
        builds[r["id"]] = (req[r["id"]], r["startTime"], r["endTime"])
ends = sorted(e for _, _, e in builds.values())
reqs = sorted(q for q, _, _ in builds.values())
# the k-th start after the first CPUs' is the slot the k-th end freed
cpus = len([q for q in reqs if q - reqs[0] < 0.5])
idle = [max(0.0, q - e) for q, e in zip(reqs[cpus:], ends)]
start = [s - q for q, s, _ in builds.values()]
print("%.1f %.1f" % (statistics.median(idle) * 1000, statistics.median(start) * 1000))
PY
read idle startup < "$work/gaps.txt"
b=$(median < "$work/batch.txt")
x=$(median < "$work/xargs.txt")
y=$(median < "$work/setsid.txt")
auto=$(cat /proc/sys/kernel/sched_autogroup_enabled 2>/dev/null || echo 0)
awk -v b="$b" -v x="$x" -v y="$y" -v c="$CPUS" -v r="$REPS" -v s="$SANDBOX" -v a="$auto" 'BEGIN {
  printf "builds:               8 (build-matrix), %d CPUs, sandbox %s, %d runs\n", c, s, r
  printf "codebuild-local run:  %.2f s (median)\n", b / 1e6
  printf "xargs -P %d:           %.2f s (median)\n", c, x / 1e6
  printf "xargs -P %d setsid:    %.2f s (median; autogroup scheduling %s)\n", c, y / 1e6, a == 1 ? "on" : "off"
  printf "overhead per build:   %.1f ms against xargs setsid (each CPU ran 8/%d builds)\n", (b - y) / 1000 / (8 / c), c
  printf "ratio:                %.3fx xargs -P %d (target <= 1.1x)\n", b / x, c
  printf "ratio:                %.3fx xargs -P %d setsid\n", b / y, c
}'
awk -v i="$idle" -v s="$startup" 'BEGIN {
  printf "scheduler idle:       %.1f ms from a build'"'"'s end to the next build'"'"'s start request (median)\n", i
  printf "build startup:        %.1f ms from the request to the build'"'"'s start (median)\n", s
}'
