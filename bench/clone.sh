#!/usr/bin/env bash
# Shallow clone (depth 1) of a repository of several thousand files served
# over git smart HTTP on 127.0.0.1 (tests/e2e/gitserver.py, git http-backend):
# `codebuild-local run URL` (a build whose only command is `true`, so the
# clone dominates) vs `git clone --depth 1 --single-branch URL`, N runs each
# (default 5), medians and their ratio.  Target (issue "Sources"): <= 1.0.
# codebuild-local hands the clone's removal to a detached low-priority
# process (the user does not wait for it): each timed run waits until that
# removal is over before git's run starts, so git never competes with it.
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
