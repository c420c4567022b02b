#!/usr/bin/env bash
# Shallow clone (depth 1) of a repository of several thousand files served
# over git smart HTTP on 127.0.0.1 (tests/e2e/gitserver.py, git http-backend):
# `codebuild-local run URL` (a build whose only command is `true`, so the
# clone dominates) vs `git clone --depth 1 --single-branch URL`, N runs each
# (default 5), medians and their ratio.  Target (issue "Sources"): <= 1.0.
# codebuild-local hands the clone's removal to a detached low-priority
# process (the user does not wait for it): each timed run waits until that
# removal is over before git's run starts, so git never competes with it.
# Then the warm source cache (LOCAL_SOURCE_CACHE): before each run one new
# commit is pushed, and `codebuild-local run --source-cache URL` (its cache
# filled by an untimed first run) is timed against `git clone --depth 1` of
# the same commit; the objects and bytes the server sent to each are printed
# too (from the agent's "Source cache:" line and from git's pack).
# Then a local repository (file://) of realistic size, generated:
# LOCAL_FILES files (default 5000), LOCAL_COMMITS commits (default 250)
# changing LOCAL_CHANGES files each (default 20): ~20k objects, a tag every
# 50 commits.  The DOWNLOAD_SOURCE phase of `codebuild-local run
# --source-version TAG file://REPO` (from the build log's timestamps) is
# timed against `git clone --depth 1 --branch TAG file://REPO`, N runs each;
# which of the two goes first alternates, and each starts once the previous
# clones are removed (file creation after a removal is slower on ext4).
# Medians and their ratio; target (issue 15): <= 1.0.  The whole build's
# time is printed too.  CLONE_CASES=local runs only this part.
# Usage: bench/clone.sh [BIN] [N] [FILES] [COMMITS]
set -euo pipefail
. "$(dirname "$0")/lib.sh"
BIN=${1:-build/codebuild-local}
N=${2:-5}
FILES=${3:-5000}
COMMITS=${4:-30}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=$(abs_path "$BIN")
work=$(mktemp -d /var/tmp/cbl-clone-XXXXXX)
srv_pid=
cleanup() { [ -n "$srv_pid" ] && kill "$srv_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
export GIT_CONFIG_NOSYSTEM=1 HOME="$work/home"
mkdir -p "$HOME"
if [ "${CLONE_CASES:-all}" != local ]; then
mkdir -p "$work/repo"
git -C "$work/repo" init -q -b main
git -C "$work/repo" config user.email bench@example.com
git -C "$work/repo" config user.name bench
/usr/bin/python3 - "$work/repo" "$FILES" <<'PY'
import os, random, sys
root, n = sys.argv[1], int(sys.argv[2])
random.seed(7)
words = [f"w{i}" for i in range(5000)]
for i in range(n):
    d = os.path.join(root, f"src/mod{i % 100:02d}/pkg{i % 13}")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"file{i:05d}.c"), "w") as f:
        for _ in range(random.randint(10, 120)):
            f.write(" ".join(random.choice(words) for _ in range(8)) + ";\n")
with open(os.path.join(root, "buildspec.yml"), "w") as f:
    f.write("version: 0.2\nphases:\n  build:\n    commands:\n      - true\n")
PY
git -C "$work/repo" add -A && git -C "$work/repo" commit -q -m c0
for c in $(seq 1 "$COMMITS"); do
  find "$work/repo/src" -name "file0${c}*.c" -exec sh -c 'echo "change;" >> "$1"' _ {} \;
  git -C "$work/repo" commit -q -am "c$c" --allow-empty
  git -C "$work/repo" tag "v$c"
done
git clone -q --bare "$work/repo" "$work/srv/app.git"
/usr/bin/python3 "$ROOT/tests/e2e/gitserver.py" --root "$work/srv" --port-file "$work/port" &
srv_pid=$!
for _ in $(seq 100); do [ -s "$work/port" ] && break; sleep 0.05; done
url="http://127.0.0.1:$(cat "$work/port")/app.git"
export CODEBUILD_LOCAL_HOME="$work/state"
"$BIN" run --sandbox none "$url" >/dev/null 2>&1 || { "$BIN" run --sandbox none "$url"; exit 1; }
: > "$work/cbl"; : > "$work/git"
for i in $(seq "$N"); do
  t0=$(now_us); "$BIN" run --sandbox none "$url" >/dev/null 2>&1; t1=$(now_us); echo $((t1 - t0)) >> "$work/cbl"
  while [ -n "$(ls -A "$CODEBUILD_LOCAL_HOME/trash" 2>/dev/null)" ]; do sleep 0.02; done
  t0=$(now_us); git clone -q --depth 1 --single-branch "$url" "$work/g$i"; t1=$(now_us); echo $((t1 - t0)) >> "$work/git"
  rm -rf "$work/g$i"
done
c=$(median < "$work/cbl"); g=$(median < "$work/git")
awk -v c="$c" -v g="$g" -v n="$N" -v f="$FILES" -v k="$COMMITS" 'BEGIN {
  printf "repository: %d files, %d commits, %d tags; %d runs each (medians)\n", f, k + 1, k, n
  printf "codebuild-local run URL (whole build): %8.1f ms\n", c / 1000
  printf "git clone --depth 1 --single-branch:    %8.1f ms\n", g / 1000
  printf "ratio:                                  %8.2f (target <= 1.0)\n", c / g
}'

# --- warm source cache: one new commit before each run ---
"$BIN" run --sandbox none --source-cache "$url" >/dev/null 2>&1 || { "$BIN" run --sandbox none --source-cache "$url"; exit 1; }
: > "$work/cbl_sc"; : > "$work/git_sc"; : > "$work/sc_lines"; : > "$work/git_pack"
for i in $(seq "$N"); do
  echo "bench $i;" >> "$work/repo/src/mod00/pkg0/file00000.c"
  git -C "$work/repo" commit -q -am "bench $i"
  git -C "$work/repo" push -q "$work/srv/app.git" main
  while [ -n "$(ls -A "$CODEBUILD_LOCAL_HOME/trash" 2>/dev/null)" ]; do sleep 0.02; done
  t0=$(now_us); "$BIN" run --sandbox none --source-cache "$url" > "$work/log" 2>&1; t1=$(now_us)
  echo $((t1 - t0)) >> "$work/cbl_sc"
  grep -o 'Source cache: .*' "$work/log" | head -1 >> "$work/sc_lines"
  while [ -n "$(ls -A "$CODEBUILD_LOCAL_HOME/trash" 2>/dev/null)" ]; do sleep 0.02; done
  t0=$(now_us); git clone -q --depth 1 --single-branch "$url" "$work/g$i"; t1=$(now_us); echo $((t1 - t0)) >> "$work/git_sc"
  du -cb "$work/g$i"/.git/objects/pack/*.pack | tail -1 | cut -f1 >> "$work/git_pack"
  rm -rf "$work/g$i"
done
c=$(median < "$work/cbl_sc"); g=$(median < "$work/git_sc"); gp=$(median < "$work/git_pack")
echo "warm source cache, one new commit per run (medians of $N):"
echo "  last agent line: $(tail -1 "$work/sc_lines")"
awk -v c="$c" -v g="$g" -v gp="$gp" 'BEGIN {
  printf "  codebuild-local run --source-cache URL (whole build): %8.1f ms\n", c / 1000
  printf "  git clone --depth 1 --single-branch:                  %8.1f ms (pack %.1f KiB)\n", g / 1000, gp / 1024
  printf "  ratio:                                                %8.2f\n", c / g
}'
fi

# --- file:// (a local repository read directly), vs git clone --depth 1 file:// ---
LFILES=${LOCAL_FILES:-5000}
LCOMMITS=${LOCAL_COMMITS:-250}
LCHANGES=${LOCAL_CHANGES:-20}
lrepo="$work/local/app"
mkdir -p "$lrepo"
git -C "$lrepo" init -q -b main
/usr/bin/python3 - "$lrepo" "$LFILES" "$LCOMMITS" "$LCHANGES" <<'PY'
import os, random, subprocess, sys
root, nfiles, ncommits, nchanges = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
random.seed(11)
words = [f"w{i}" for i in range(5000)]
paths = []
for i in range(nfiles):
    d = f"src/mod{i % 60:02d}/pkg{i % 7}"
    os.makedirs(os.path.join(root, d), exist_ok=True)
    paths.append(os.path.join(d, f"file{i:05d}.c"))
    with open(os.path.join(root, paths[-1]), "w") as f:
        for _ in range(random.randint(10, 120)):
            f.write(" ".join(random.choice(words) for _ in range(8)) + ";\n")
with open(os.path.join(root, "buildspec.yml"), "w") as f:
    f.write("version: 0.2\nphases:\n  build:\n    commands:\n      - true\n")
git = ["git", "-c", "gc.auto=0", "-c", "user.email=bench@example.com", "-c", "user.name=bench", "-C", root]
subprocess.run(git + ["add", "-A"], check=True)
subprocess.run(git + ["commit", "-q", "-m", "c0"], check=True)
for c in range(1, ncommits + 1):
    for p in random.sample(paths, nchanges):
        with open(os.path.join(root, p), "a") as f:
            f.write(f"change {c};\n")
    subprocess.run(git + ["commit", "-q", "-am", f"c{c}"], check=True)
    if c % 50 == 0:
        subprocess.run(git + ["tag", "-a", f"v{c}", "-m", f"release {c}"], check=True)
PY
git -C "$lrepo" gc -q
ltag=$(git -C "$lrepo" tag --sort=-creatordate | head -1)
lurl="file://$lrepo"
lobjects=$(git -C "$lrepo" count-objects -v | awk '/^in-pack:/ {print $2}')
export CODEBUILD_LOCAL_HOME="$work/lstate"
wait_trash() { while [ -n "$(ls -A "$CODEBUILD_LOCAL_HOME/trash" 2>/dev/null)" ]; do sleep 0.02; done; }
# the DOWNLOAD_SOURCE phase's length in the log, in microseconds
phase_us() {
  awk '/ Phase is DOWNLOAD_SOURCE$/ {a = $3} / Phase complete: DOWNLOAD_SOURCE / {b = $3}
       function us(t,  p) { split(t, p, ":"); return ((p[1] * 60 + p[2]) * 60 + p[3]) * 1e6 }
       END { if (a == "" || b == "") exit 1; d = us(b) - us(a); if (d < 0) d += 86400e6; printf "%d\n", d }' "$1"
}
run_cbl() {
  local t0 t1
  wait_trash
  t0=$(now_us); "$BIN" run --sandbox none --source-version "$ltag" "$lurl" > "$work/llog" 2>&1 || { cat "$work/llog"; exit 1; }
  t1=$(now_us)
  echo $((t1 - t0)) >> "$work/lcbl_run"
  phase_us "$work/llog" >> "$work/lcbl"
  wait_trash
}
run_git() {
  local t0 t1
  t0=$(now_us); git -c advice.detachedHead=false clone -q --depth 1 --branch "$ltag" "$lurl" "$work/lg"; t1=$(now_us)
  echo $((t1 - t0)) >> "$work/lgit"
  git -C "$work/lg" count-objects -v | awk '/^in-pack:/ {print $2}' > "$work/lgit_objects"
  rm -rf "$work/lg"
}
run_cbl >/dev/null; : > "$work/lcbl"; : > "$work/lcbl_run"   # warm-up (page cache), untimed
: > "$work/lgit"
for i in $(seq "$N"); do
  if [ $((i % 2)) = 1 ]; then run_cbl; sync; run_git; else run_git; sync; run_cbl; fi
  sync
done
[ -n "${BENCH_VERBOSE:-}" ] && { echo "cbl: $(tr "\n" " " < "$work/lcbl")"; echo "git: $(tr "\n" " " < "$work/lgit")"; }
c=$(median < "$work/lcbl"); g=$(median < "$work/lgit"); cr=$(median < "$work/lcbl_run")
awk -v c="$c" -v g="$g" -v cr="$cr" -v n="$N" -v f="$LFILES" -v k="$LCOMMITS" -v o="$lobjects" -v t="$ltag" \
    -v go="$(cat "$work/lgit_objects")" 'BEGIN {
  printf "file:// repository: %d files, %d commits, %d objects; tag %s at depth 1 (%s objects); %d runs each (medians)\n", f, k + 1, o, t, go, n
  printf "codebuild-local run file:// (DOWNLOAD_SOURCE): %8.1f ms (whole build %.1f ms)\n", c / 1000, cr / 1000
  printf "git clone --depth 1 --branch TAG file://:       %8.1f ms\n", g / 1000
  printf "ratio:                                          %8.2f (target <= 1.0)\n", c / g
}'
