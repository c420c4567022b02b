#!/usr/bin/env bash
# Report parser benchmark (issue "report parsers"): generates a ~200 MB JUnit
# file with 1,000,000 test cases in a temporary directory, parses it with
# bench/report_bench.c (artifacts_report_parse_file + the stored JSON shapes,
# linked against build/libcodebuild-local.a with the Makefile's own flags),
# and compares with Python's xml.etree.ElementTree.iterparse counting the
# <testcase> elements of the same file.
#
# Prints cases/second, peak RSS, the ratio to Python, and checks the targets:
#   - at least 200,000 cases/second;
#   - bounded memory: peak RSS under 100 MB for the 1,000,000-case file, and
#     within a few MB of the peak for a 100,000-case file (memory does not
#     grow with the file).
# Exits 1 when a target is missed.  Not part of `make test`.
# Usage: bench/reports.sh [CASES]   (default 1000000)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-1000000}
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

make -s build/libcodebuild-local.a
# the Makefile's CFLAGS / LDLIBS without editing it
flags() { make -s --no-print-directory --eval 'print-%: ; @echo $($*)' "print-$1"; }
# shellcheck disable=SC2046
cc $(flags CFLAGS) -o "$work/report_bench" bench/report_bench.c build/libcodebuild-local.a $(flags LDLIBS)

gen() { # gen FILE CASES
  "$PY" - "$1" "$2" <<'PY'
import sys
out, n = sys.argv[1], int(sys.argv[2])
per = 1000
with open(out, "w", buffering=1 << 20) as f:
    w = f.write
    w('<?xml version="1.0" encoding="UTF-8"?>\n<testsuites name="bench">\n')
    for s in range((n + per - 1) // per):
        cnt = min(per, n - s * per)
        w(f'<testsuite name="com.example.bench.Suite{s:04d}" tests="{cnt}" time="12.5">\n')
        for i in range(cnt):
            k = s * per + i
            w(f'  <testcase classname="com.example.bench.Suite{s:04d}Test" '
              f'name="testCase{k:07d}_does_something_useful" time="0.{k % 1000:03d}"')
            if k % 97 == 0:
                w('>\n    <failure message="expected: &lt;1&gt; but was: &lt;2&gt;" '
                  'type="org.opentest4j.AssertionFailedError">org.opentest4j.AssertionFailedError: expected 1\n'
                  f'\tat com.example.bench.Suite{s:04d}Test.testCase(Suite{s:04d}Test.java:{i + 10})\n'
                  '</failure>\n  </testcase>\n')
            elif k % 101 == 0:
                w('>\n    <skipped message="disabled"/>\n  </testcase>\n')
            else:
                w('>\n    <system-out><![CDATA[log line one for this test case\nlog line two]]></system-out>\n'
                  '  </testcase>\n')
        w('</testsuite>\n')
    w('</testsuites>\n')
PY
}

small=$((N / 10))
echo "reports.sh: generating $N and $small case JUnit files in $work"
gen "$work/big.xml" "$N"
gen "$work/small.xml" "$small"
size_mb=$(( $(stat -c %s "$work/big.xml") / 1000000 ))
echo "reports.sh: big.xml is ${size_mb} MB"
cat "$work/big.xml" > /dev/null # page cache, for both parsers

field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p"; }
best_rate=0 best_line=
for run in 1 2 3; do
  line=$("$work/report_bench" JUNITXML "$work/big.xml")
  rate=$(echo " $line" | field cases_per_sec)
  echo "  codebuild-local run $run: $line"
  if [ "$rate" -gt "$best_rate" ]; then best_rate=$rate best_line=$line; fi
done
rss_big=$(echo " $best_line" | field peak_rss_kib)
secs=$(echo " $best_line" | field seconds)
total=$(echo " $best_line" | field total)
small_line=$("$work/report_bench" JUNITXML "$work/small.xml")
rss_small=$(echo " $small_line" | field peak_rss_kib)
echo "  codebuild-local, $small cases: $small_line"

py_line=$("$PY" - "$work/big.xml" <<'PY'
import resource, sys, time
import xml.etree.ElementTree as ET
t0 = time.monotonic()
n = 0
for ev, el in ET.iterparse(sys.argv[1], events=("end",)):
    if el.tag == "testcase":
        n += 1
    if el.tag in ("testcase", "testsuite"):
        el.clear()
dt = time.monotonic() - t0
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(f"total={n} seconds={dt:.3f} cases_per_sec={n / dt:.0f} peak_rss_kib={rss}")
PY
)
echo "  python3 iterparse:        $py_line"
py_rate=$(echo " $py_line" | field cases_per_sec)

echo
printf 'cases:            %s (file %s MB)\n' "$total" "$size_mb"
printf 'codebuild-local:  %s cases/s (%s s), peak RSS %s MiB\n' "$best_rate" "$secs" $((rss_big / 1024))
printf 'python3 iterparse: %s cases/s\n' "$py_rate"
awk -v a="$best_rate" -v b="$py_rate" 'BEGIN { printf "ratio:            %.1fx python3\n", a / b }'
printf 'peak RSS, %s vs %s cases: %s MiB vs %s MiB\n' "$N" "$small" $((rss_big / 1024)) $((rss_small / 1024))

fail=0
if [ "$best_rate" -ge 200000 ]; then
  echo "target >= 200,000 cases/s: PASS"
else
  echo "target >= 200,000 cases/s: FAIL"; fail=1
fi
if [ "$rss_big" -lt $((100 * 1024)) ] && [ $((rss_big - rss_small)) -lt $((8 * 1024)) ]; then
  echo "target bounded memory (< 100 MB, independent of file size): PASS"
else
  echo "target bounded memory (< 100 MB, independent of file size): FAIL"; fail=1
fi
exit $fail
