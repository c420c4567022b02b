#!/usr/bin/env bash
# Build metrics over a large store (issue "Operations: metrics, alarms,
# build events, cost and right-sizing"):
#
#  1. One real build (`codebuild-local run`) is the template;
#     bench/metrics_fill.c replicates it into a fresh state directory through
#     the store's own API: 100,000 finished builds over 10 projects, their
#     ends spread over 60 days (so a 30-day window holds half of them), their
#     durations stretched 0.5x-8x, one in five FAILED.  The state directory
#     is on /dev/shm when writable, else /var/tmp.
#  2. `codebuild-local metrics --since 30d` (the whole program: start, open,
#     the queries, the text output), RUNS times; the best and the median against the
#     target (< 200 ms; the best run is held to it, since other load only
#     adds), and against the baseline: `sqlite3` (Debian's
#     shell) counting the same database's builds, the least a query
#     program can do on it, as a ratio.
#  3. GetMetricStatistics through `serve` (when its CloudWatch face is
#     built in): see the second half of this script.
#
# Exits 1 when a target is missed.  Not part of `make test`; the figures
# depend on what else the machine runs.
# Usage: bench/metrics.sh [BIN] [BUILDS] [RUNS]
set -euo pipefail
. "$(dirname "$0")/lib.sh"
BIN=${1:-build/codebuild-local}
NBUILDS=${2:-100000}
RUNS=${3:-15}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=$(abs_path "$BIN")
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
command -v sqlite3 >/dev/null || { echo "metrics.sh: needs sqlite3 (apt-get install sqlite3)" >&2; exit 2; }
[ -x "$BIN" ] || { echo "metrics.sh: no $BIN (make build/codebuild-local)" >&2; exit 2; }
base=/var/tmp
if [ -d /dev/shm ] && [ -w /dev/shm ]; then base=/dev/shm; fi
work=$(mktemp -d "$base/cbl-metrics-XXXXXX")
srv_pid=
cleanup() {
  if [ -n "$srv_pid" ]; then
    kill -INT "$srv_pid" 2>/dev/null || true
    wait "$srv_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

cd "$ROOT"
make -s build/libcodebuild-local.a
flags() { make -s --no-print-directory --eval 'print-%: ; @echo $($*)' "print-$1"; }
# shellcheck disable=SC2046
cc $(flags CFLAGS) -o "$work/metrics_fill" bench/metrics_fill.c build/libcodebuild-local.a $(flags LDLIBS)

# ---- 1. the template build and the fill
trivial_buildspec "$work/metricsbench-template"
CODEBUILD_LOCAL_HOME="$work/template" "$BIN" run --project metricsbench-template \
  "$work/metricsbench-template" > "$work/template.out" 2>&1 || { cat "$work/template.out"; exit 1; }
tdir=$(ls -d "$work"/template/builds/metricsbench-template/*/)
echo "metrics.sh: filling a state directory in $base with $NBUILDS builds (template: one real build)"
echo "  metrics_fill: $("$work/metrics_fill" "$work/state" "${tdir%/}" "$NBUILDS" 10 60)"
db="$work/state/codebuild-local.db"
export CODEBUILD_LOCAL_HOME="$work/state"

# ---- 2. metrics --since 30d against sqlite3's count
"$BIN" metrics --since 30d > "$work/metrics.out"
grep -q '^  builds [1-9]' "$work/metrics.out" || { cat "$work/metrics.out"; exit 1; }
: > "$work/t_metrics"; : > "$work/t_count"
for _ in $(seq "$RUNS"); do
  t0=$(now_us); "$BIN" metrics --since 30d > /dev/null; t1=$(now_us)
  echo $(( t1 - t0 )) >> "$work/t_metrics"
  t0=$(now_us); sqlite3 "$db" 'SELECT count(*) FROM builds' > /dev/null; t1=$(now_us)
  echo $(( t1 - t0 )) >> "$work/t_count"
done
m_us=$(median < "$work/t_metrics"); c_us=$(median < "$work/t_count")
m_min=$(sort -n "$work/t_metrics" | head -1); c_min=$(sort -n "$work/t_count" | head -1)
fail=0
awk -v m="$m_us" -v c="$c_us" -v mm="$m_min" -v cm="$c_min" -v n="$NBUILDS" -v l="$(cut -d' ' -f1 /proc/loadavg)" 'BEGIN {
  printf "metrics --since 30d over %d builds: best %.1f ms, median %.1f ms (target < 200 ms: best at %.2fx of it; load average %s)\n", n, mm / 1000, m / 1000, mm / 200000, l
  printf "  baseline sqlite3 count(*) over the same database: best %.1f ms, median %.1f ms; metrics / baseline = %.2fx (best), %.2fx (median)\n", cm / 1000, c / 1000, mm / cm, m / c
}'
# the best run: the machine's other load only ever adds to it
awk -v m="$m_min" 'BEGIN { exit !(m < 200000) }' || { echo "  MISSED: metrics --since 30d took >= 200 ms"; fail=1; }

# ---- 3. GetMetricStatistics through serve
if "$BIN" serve --help 2>&1 | grep -q monitoring; then
  . "$(dirname "$0")/metrics_cw.sh"
fi
exit "$fail"
