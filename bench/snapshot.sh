#!/usr/bin/env bash
# Cost of snapshot mode on a 10,000-file tree (issue "Sources"):
#  - with the sandbox (overlay): snapshot vs mount, same trivial build;
#    target: snapshot adds under 20 ms;
#  - without the sandbox (a real copy): snapshot vs mount, against `cp -a`
#    of the same tree; target: the copy costs <= 1.0x cp -a;
#  - the same tree as a git repository, then with a 100 MB git-ignored
#    node_modules beside it (IGNORED_MB, in 4 KiB files): the snapshot leaves
#    it out (issue 15: whiteouts in the overlay, skipped by the copy);
#    target: it costs no more than without it.
# N runs each (default 5), medians.
# Usage: bench/snapshot.sh [BIN] [N] [FILES] [IGNORED_MB]
set -euo pipefail
. "$(dirname "$0")/lib.sh"
BIN=${1:-build/codebuild-local}
N=${2:-5}
FILES=${3:-10000}
IGNORED_MB=${4:-100}
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

# ---- a git repository, with and without a large ignored node_modules:
# A/B in turns (the tree renamed away and back, O(1)), so both see the same
# machine (the copies' background removers, the page cache)
repo="$work/repo"
cp -a "$src" "$repo"
git -C "$repo" init -q
printf 'node_modules/\n' > "$repo/.gitignore"
git -C "$repo" add -A
git -C "$repo" -c user.email=bench@localhost -c user.name=bench commit -qm bench
nm_files=$(/usr/bin/python3 - "$repo/node_modules" "$IGNORED_MB" <<'PY'
import os, sys
root, mb = sys.argv[1], int(sys.argv[2])
n = mb * 256  # 4 KiB files
blob = b"module.exports = 1;\n" * 204 + b"\n" * 16
for i in range(n):
    d = os.path.join(root, f"pkg{i // 100:04d}", "lib")
    if i % 100 == 0:
        os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"m{i:06d}.js"), "wb") as f:
        f.write(blob)
print(n)
PY
)
nm_mb=$(du -sm "$repo/node_modules" | cut -f1)
sync # its writeback is not the snapshot's cost
for f in g_sb g_none gi_sb gi_none; do : > "$work/$f"; done
"$BIN" run "$repo" >/dev/null 2>&1 || { "$BIN" run "$repo"; exit 1; }
for mode in sb none; do
  args=(); [ $mode = none ] && args=(--sandbox none)
  for _ in $(seq "$N"); do
    time_it "$BIN" run "${args[@]}" "$repo" >> "$work/gi_$mode"
    mv "$repo/node_modules" "$work/nm-away"
    time_it "$BIN" run "${args[@]}" "$repo" >> "$work/g_$mode"
    mv "$work/nm-away" "$repo/node_modules"
  done
done
# medians, and the fastest run (the least disturbed by the rest of the machine)
gs=$(median < "$work/g_sb"); gn=$(median < "$work/g_none")
gis=$(median < "$work/gi_sb"); gin=$(median < "$work/gi_none")
ms=$(sort -n "$work/g_sb" | head -1); mn=$(sort -n "$work/g_none" | head -1)
mis=$(sort -n "$work/gi_sb" | head -1); min_=$(sort -n "$work/gi_none" | head -1)
awk -v gs="$gs" -v gn="$gn" -v gis="$gis" -v gin="$gin" -v ms="$ms" -v mn="$mn" -v mis="$mis" -v mi="$min_" \
    -v f="$FILES" -v nf="$nm_files" -v mb="$nm_mb" 'BEGIN {
  printf "git repository of %d files, without / with an ignored node_modules of %d files (%d MB):\n", f, nf, mb
  printf "sandbox, snapshot:      median %8.2f / %8.2f ms (%+.2f), fastest %8.2f / %8.2f ms (%+.2f); target: no more\n", gs / 1000, gis / 1000, (gis - gs) / 1000, ms / 1000, mis / 1000, (mis - ms) / 1000
  printf "no sandbox, snapshot:   median %8.2f / %8.2f ms (%+.2f), fastest %8.2f / %8.2f ms (%+.2f); target: no more\n", gn / 1000, gin / 1000, (gin - gn) / 1000, mn / 1000, mi / 1000, (mi - mn) / 1000
}'
