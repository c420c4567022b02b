#!/usr/bin/env bash
# Report auto-discover (UPLOAD_ARTIFACTS): its cost on a source of 20,000
# files (2,000 package.json-like JSON files, 50 JUnit XML files, the rest
# text) against the same build with CODEBUILD_CONFIG_AUTO_DISCOVER=false
# (the baseline, set in the buildspec's env), and its own "file discovery took" figure against the
# service's 5-second bound.  N runs each (default 3), medians, --sandbox none
# (the walk is what is measured, not the sandbox).
# Usage: bench/autodiscover.sh [BIN] [N]
set -euo pipefail
. "$(dirname "$0")/lib.sh"
BIN=${1:-build/codebuild-local}
N=${2:-3}
BIN=$(abs_path "$BIN")
work=$(mktemp -d /var/tmp/cbl-bench-XXXXXX)
trap 'rm -rf "$work"' EXIT
export CODEBUILD_LOCAL_HOME="$work/state"
/usr/bin/python3 - "$work" <<'PY'
import os, sys
w = sys.argv[1]
junit = ("<testsuites><testsuite name='s'><testcase classname='a.B' name='t%d'/>"
         "<testcase classname='a.B' name='f%d'><failure message='m'>x</failure></testcase></testsuite></testsuites>")
for name, off in (("on", ""), ("off", "env:\n  variables:\n    CODEBUILD_CONFIG_AUTO_DISCOVER: 'false'\n")):
    src = os.path.join(w, name)
    for i in range(20000):
        d = os.path.join(src, "pkg%03d" % (i // 100))
        os.makedirs(d, exist_ok=True)
        if i % 10 == 0:
            p, body = os.path.join(d, "m%d.json" % i), '{"name": "m%d", "version": "1.0.0"}' % i
        elif i % 400 == 1:
            p, body = os.path.join(d, "TEST-%d.xml" % i), junit % (i, i)
        else:
            p, body = os.path.join(d, "f%d.txt" % i), "x\n"
        with open(p, "w") as f:
            f.write(body)
    with open(os.path.join(src, "buildspec.yml"), "w") as f:
        f.write("version: 0.2\n" + off + "phases:\n  build:\n    commands:\n      - 'true'\n")
PY
run() { # run NAME -> wall microseconds; appends the "took" seconds to $work/took
  local t0 t1 out
  t0=$(now_us)
  out=$("$BIN" run --sandbox none "$work/$1" 2>&1) || { echo "$out" | tail -20 >&2; exit 1; }
  t1=$(now_us)
  echo "$out" | sed -n 's/.*Report auto-discover file discovery took \([0-9.]*\) seconds/\1/p' >> "$work/took"
  echo $((t1 - t0))
}
: > "$work/on.us"; : > "$work/off.us"; : > "$work/took"
for _ in $(seq "$N"); do
  run on >> "$work/on.us"
  run off >> "$work/off.us"
done
on=$(median < "$work/on.us"); off=$(median < "$work/off.us"); took=$(median < "$work/took")
echo "autodiscover: 20000 files: build with auto-discover ${on} us, without (baseline) ${off} us," \
     "ratio $(awk -v a="$on" -v b="$off" 'BEGIN {printf "%.2f", a / b}')"
echo "autodiscover: file discovery took ${took} s (median), bound 5 s:" \
     "ratio $(awk -v a="$took" 'BEGIN {printf "%.3f", a / 5}')"
