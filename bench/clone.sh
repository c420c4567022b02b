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
mkdir -p "$HOME" "$work/repo"
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
