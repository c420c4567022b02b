#!/usr/bin/env bash
# Cost of snapshot mode on a 10,000-file tree (issue "Sources"):
#  - with the sandbox (overlay): snapshot vs mount, same trivial build;
#    target: snapshot adds under 20 ms;
#  - without the sandbox (a real copy): snapshot vs mount, against `cp -a`
#    of the same tree; target: the copy costs <= 1.0x cp -a.
# N runs each (default 5), medians.  Usage: bench/snapshot.sh [BIN] [N] [FILES]
set -euo pipefail
. "$(dirname "$0")/lib.sh"
BIN=${1:-build/codebuild-local}
N=${2:-5}
FILES=${3:-10000}
BIN=$(abs_path "$BIN")
work=$(mktemp -d /var/tmp/cbl-bench-XXXXXX)
trap 'rm -rf "$work"' EXIT
src="$work/src"
/usr/bin/python3 - "$src" "$FILES" <<'PY'
import os, random, sys
root, n = sys.argv[1], int(sys.argv[2])
random.seed(42)
for i in range(n):
    d = os.path.join(root, f"pkg{i % 200:03d}", f"lib{i % 7}")
    os.makedirs(d, exist_ok=True)
    size = random.choice([200, 800, 2000, 6000, 15000])
    with open(os.path.join(d, f"f{i:05d}.js"), "w") as f:
        f.write(("x" * 60 + "\n") * (size // 61))
with open(os.path.join(root, "buildspec.yml"), "w") as f:
    f.write("version: 0.2\nphases:\n  build:\n    commands:\n      - true\n")
PY
export CODEBUILD_LOCAL_HOME="$work/state"
time_it() { local t0 t1; t0=$(now_us); "$@" >/dev/null 2>&1; t1=$(now_us); echo $((t1 - t0)); }

"$BIN" run "$src" >/dev/null 2>&1 || { "$BIN" run "$src"; exit 1; }
cp -a "$src" "$work/warm" && rm -rf "$work/warm"
for f in sb_snap sb_mount none_snap none_mount cpa; do : > "$work/$f"; done
for _ in $(seq "$N"); do
  time_it "$BIN" run "$src" >> "$work/sb_snap"
  time_it "$BIN" run --source-mode mount "$src" >> "$work/sb_mount"
  time_it "$BIN" run --sandbox none "$src" >> "$work/none_snap"
  time_it "$BIN" run --sandbox none --source-mode mount "$src" >> "$work/none_mount"
  rm -rf "$work/cpa-dst"; time_it cp -a "$src" "$work/cpa-dst" >> "$work/cpa"
done
sbs=$(median < "$work/sb_snap"); sbm=$(median < "$work/sb_mount")
ns=$(median < "$work/none_snap"); nm=$(median < "$work/none_mount"); cpa=$(median < "$work/cpa")
awk -v sbs="$sbs" -v sbm="$sbm" -v ns="$ns" -v nm="$nm" -v cpa="$cpa" -v f="$FILES" -v n="$N" 'BEGIN {
  printf "tree: %d files; %d runs each (medians)\n", f, n
  printf "sandbox, snapshot:      %8.2f ms\n", sbs / 1000
  printf "sandbox, mount:         %8.2f ms\n", sbm / 1000
  printf "  snapshot adds:        %8.2f ms (target < 20 ms)\n", (sbs - sbm) / 1000
  printf "no sandbox, snapshot:   %8.2f ms\n", ns / 1000
  printf "no sandbox, mount:      %8.2f ms\n", nm / 1000
  printf "cp -a of the tree:      %8.2f ms\n", cpa / 1000
  printf "  copy costs:           %8.2f ms = %.2fx cp -a (target <= 1.0x)\n", (ns - nm) / 1000, (ns - nm) / cpa
}'
