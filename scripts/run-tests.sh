#!/usr/bin/env bash
# Runs the unit tests (TAP binaries) and the end-to-end tests (pytest, with
# Debian's /usr/bin/python3), then prints one closing line "N passed, N failed".
# Usage: scripts/run-tests.sh [unit|e2e|all]
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
what=${1:-all}
passed=0
failed=0
export CBL_BIN="$PWD/$BUILD/codebuild-local"
export CBL_SHARED="${CBL_SHARED:-$(cd .. && pwd)/shared}"

if [ "$what" = all ] || [ "$what" = unit ]; then
  for t in "$BUILD"/tests/test_*; do
    [ -x "$t" ] || continue
    echo "# unit: $t"
    out=$("$t" 2>&1); rc=$?
    echo "$out"
    p=$(grep -c '^ok ' <<<"$out")
    f=$(grep -c '^not ok ' <<<"$out")
    if [ $rc -ne 0 ] && [ "$f" -eq 0 ]; then
      echo "# $t exited $rc without a failing assertion (crash?)"
      f=1
    fi
    passed=$((passed + p)); failed=$((failed + f))
  done
fi

if [ "$what" = all ] || [ "$what" = e2e ]; then
  mkdir -p "$BUILD"
  xml="$PWD/$BUILD/e2e-junit.xml"
  rm -f "$xml"
  /usr/bin/python3 -m pytest -q -p no:cacheprovider --junitxml="$xml" tests/e2e
  rc=$?
  if [ -f "$xml" ]; then
    read -r p f < <(/usr/bin/python3 - "$xml" <<'PY'
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
suites = [root] if root.tag == "testsuite" else list(root)
t = sum(int(s.get("tests", 0)) for s in suites)
f = sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites)
sk = sum(int(s.get("skipped", 0)) for s in suites)
print(t - f - sk, f)
PY
)
    passed=$((passed + p)); failed=$((failed + f))
  else
    echo "# pytest produced no report (exit $rc)"
    failed=$((failed + 1))
  fi
  if [ $rc -ne 0 ] && [ $rc -ne 1 ] && [ "$failed" -eq 0 ]; then failed=1; fi
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
