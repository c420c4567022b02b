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
#  3. GetMetricStatistics through `serve`: bench/metrics_cw.py signs one
#     query-protocol request (botocore's SigV4) and replays it 20 x RUNS
#     times on a keep-alive connection (after one check through boto3's
#     client); p99 against the target (< 50 ms), and against the baseline:
#     CodeBuild's ListProjects replayed the same way on the same server
#     (what any signed request costs), as ratios.  The same window's
#     ExtendedStatistics (p50, p90, p99) too, against the plain statistics.
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

# ---- 3. GetMetricStatistics through serve, against ListProjects on the same server
export AKID=AKIDCBLBENCH SECRET=cbl/bench+secret REGION=us-east-1
env -u AWS_PROFILE -u AWS_SESSION_TOKEN AWS_ACCESS_KEY_ID="$AKID" AWS_SECRET_ACCESS_KEY="$SECRET" \
  "$BIN" serve --listen 127.0.0.1:0 --quiet > "$work/ready" 2> "$work/serve.err" &
srv_pid=$!
line=
for _ in $(seq 200); do
  line=$(head -n1 "$work/ready")
  [ -n "$line" ] || ! kill -0 "$srv_pid" 2>/dev/null && break
  sleep 0.05
done
case "$line" in
  "listening on http://127.0.0.1:"*) url=${line##* } ;;
  *) echo "metrics.sh: the server did not start: $line"; cat "$work/serve.err"; exit 1 ;;
esac
export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_EC2_METADATA_DISABLED=true
"$PY" bench/metrics_cw.py "$url" "$((RUNS * 20))" > "$work/cw.out" || { cat "$work/cw.out"; exit 1; }
kill -INT "$srv_pid"; wait "$srv_pid" || true; srv_pid=
sed -n 's/^check /  GetMetricStatistics check (boto3): /p' "$work/cw.out"
read -r _ g50 g99 gmax < <(grep '^GetMetricStatistics ' "$work/cw.out")
read -r _ l50 l99 lmax < <(grep '^ListProjects ' "$work/cw.out")
awk -v a="$g50" -v b="$g99" -v c="$gmax" -v d="$l50" -v e="$l99" -v n="$((RUNS * 20))" \
    -v l="$(cut -d' ' -f1 /proc/loadavg)" 'BEGIN {
  printf "GetMetricStatistics (Duration, 30 days, daily, no dimension: every build of the window), %d requests: p50 %.1f ms, p99 %.1f ms, max %.1f ms (target p99 < 50 ms: %.2fx of it; load average %s)\n", n, a / 1000, b / 1000, c / 1000, b / 50000, l
  printf "  baseline ListProjects on the same server: p50 %.2f ms, p99 %.2f ms; GetMetricStatistics / baseline = %.1fx (p50), %.1fx (p99)\n", d / 1000, e / 1000, a / d, b / e
}'
awk -v b="$g99" 'BEGIN { exit !(b < 50000) }' || { echo "  MISSED: GetMetricStatistics p99 >= 50 ms"; fail=1; }
read -r _ x50 x99 xmax < <(grep '^ExtendedStatistics ' "$work/cw.out")
awk -v a="$x50" -v b="$x99" -v c="$xmax" -v d="$g50" -v e="$g99" -v n="$((RUNS * 20))" 'BEGIN {
  printf "GetMetricStatistics ExtendedStatistics p50, p90, p99 (same window), %d requests: p50 %.1f ms, p99 %.1f ms, max %.1f ms (target p99 < 50 ms: %.2fx of it)\n", n, a / 1000, b / 1000, c / 1000, b / 50000
  printf "  baseline the same query with Sum, Average, SampleCount: ExtendedStatistics / baseline = %.1fx (p50), %.1fx (p99)\n", a / d, b / e
}'
awk -v b="$x99" 'BEGIN { exit !(b < 50000) }' || { echo "  MISSED: ExtendedStatistics p99 >= 50 ms"; fail=1; }
exit "$fail"
