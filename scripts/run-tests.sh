#!/usr/bin/env bash
# Runs the unit tests (TAP binaries) and the end-to-end tests (pytest, with
# Debian's /usr/bin/python3), then prints one closing line
# "N passed, N failed, N skipped".  A skip is never counted as a pass:
# - unit: "ok N # SKIP reason" (tests/unit/tap.h skip()) is skipped, other
#   "ok" lines passed, "not ok" lines failed; a binary that exits non-zero
#   without a failing assertion (a crash), or exits 0 with its plan ("1..N")
#   missing or not matching the lines it printed, counts as one failure more;
# - e2e: each testcase of pytest's junit xml is failed (failure or error),
#   skipped, or passed; no report, or a non-zero exit with no failure in the
#   report, counts as one failure.
# The skips are listed, with their reasons, before the closing line.
# Usage: scripts/run-tests.sh [unit|e2e|all]
set -uo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
what=${1:-all}
passed=0
failed=0
skipped=0
skips=""
export CBL_BIN="$PWD/$BUILD/codebuild-local"
export CBL_SHARED="${CBL_SHARED:-$(cd .. && pwd)/shared}"

if [ "$what" = all ] || [ "$what" = unit ]; then
  for t in "$BUILD"/tests/test_*; do
    [ -x "$t" ] || continue
    echo "# unit: $t"
    out=$("$t" 2>&1); rc=$?
    echo "$out"
    okl=$(grep -E '^ok [0-9]+' <<<"$out")
    skl=$(grep -iE '^ok [0-9]+[^#]*#[[:space:]]*skip' <<<"$out")
    s=$(grep -c . <<<"$skl")
    p=$(( $(grep -c . <<<"$okl") - s ))
    f=$(grep -cE '^not ok [0-9]+' <<<"$out")
    plan=$(grep -E '^1\.\.[0-9]+' <<<"$out" | tail -1 | sed -E 's/^1\.\.([0-9]+).*/\1/')
    if [ $rc -ne 0 ] && [ "$f" -eq 0 ]; then
      echo "# $t exited $rc without a failing assertion (crash?)"
      f=1
    elif [ $rc -eq 0 ] && { [ -z "$plan" ] || [ "$plan" -ne $((p + s + f)) ]; }; then
      echo "# $t: plan ${plan:-missing}, $((p + s + f)) test lines (stopped early?)"
      f=$((f + 1))
    fi
    if [ "$s" -gt 0 ]; then
      skips+=$(sed -E "s|^ok [0-9]+[^#]*#[[:space:]]*[Ss][Kk][Ii][Pp][^[:space:]]*[[:space:]]*|#   ${t##*/}: |" <<<"$skl")$'\n'
    fi
    passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
  done
fi

if [ "$what" = all ] || [ "$what" = e2e ]; then
  mkdir -p "$BUILD"
  xml="$PWD/$BUILD/e2e-junit.xml"
  rm -f "$xml"
  /usr/bin/python3 -m pytest -q -rs -p no:cacheprovider --junitxml="$xml" tests/e2e
  rc=$?
  if [ -f "$xml" ]; then
    counts=$(/usr/bin/python3 - "$xml" <<'PY'
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
p = f = s = 0
lines = []
for case in root.iter("testcase"):
    if case.find("failure") is not None or case.find("error") is not None:
        f += 1
    elif case.find("skipped") is not None:
        s += 1
        why = case.find("skipped").get("message", "")
        lines.append(f"#   {case.get('classname', '')}::{case.get('name', '')}: {why}")
    else:
        p += 1
# failures the suites count but no testcase carries
if f == 0 and any(int(x.get("failures", 0)) + int(x.get("errors", 0)) for x in suites):
    f = 1
print(p, f, s)
print("\n".join(lines))
PY
)
    read -r p f s <<<"$(head -1 <<<"$counts")"
    if [ -z "${s:-}" ]; then
      echo "# could not read $xml"
      p=0; f=1; s=0
    fi
    if [ $rc -ne 0 ] && [ "$f" -eq 0 ]; then
      echo "# pytest exited $rc with no failure in its report"
      f=1
    fi
    [ "$s" -gt 0 ] && skips+=$(tail -n +2 <<<"$counts")$'\n'
    passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
  else
    echo "# pytest produced no report (exit $rc)"
    failed=$((failed + 1))
  fi
fi

if [ "$skipped" -gt 0 ]; then
  echo "# skipped:"
  printf '%s' "$skips"
fi
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
