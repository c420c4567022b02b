#!/usr/bin/env bash
# Rootless against root (issue 14), in one run: the per-build overhead of a
# trivial build, and the cost of a source snapshot of a 10,000-file tree and
# of a 100-file one (snapshot mode against mount mode, same build), as root
# and as a normal user (cbl-rootless, created with useradd -m if absent, run
# through setpriv with a state directory it owns).
# Targets: a build as the normal user within 1.25x of root's; the snapshot
# costs the same for 10,000 files as for 100 (an overlay, not a copy).
# Runs are interleaved (root, user, root, ...) so that load on the machine
# hits both alike; N runs each (default 9), medians.
# Run it as root.  Usage: bench/rootless.sh [BIN] [N] [FILES]
set -euo pipefail
. "$(dirname "$0")/lib.sh"
BIN=${1:-build/codebuild-local}
N=${2:-9}
FILES=${3:-10000}
U=cbl-rootless
if [ "$(id -u)" != 0 ]; then
  echo "bench/rootless.sh: skipped: run it as root (it builds as root and as $U)"
  exit 0
fi
BIN=$(abs_path "$BIN")
id -u "$U" >/dev/null 2>&1 || useradd -m "$U"
UHOME=$(getent passwd "$U" | cut -d: -f6)
# outside /tmp and the homes (private inside a build), readable by the user
work=$(mktemp -d /var/tmp/cbl-bench-rootless-XXXXXX)
chmod 755 "$work"
trap 'rm -rf "$work"' EXIT

/usr/bin/python3 - "$work" "$FILES" <<'PY'
import os, random, sys
work, n = sys.argv[1], int(sys.argv[2])
spec = "version: 0.2\nphases:\n" + "".join(
    "  %s:\n    commands:\n      - true\n" % p for p in ("install", "pre_build", "build", "post_build"))
random.seed(42)
for name, files in (("tiny", 0), ("t100", 100), ("tbig", n)):
    root = os.path.join(work, name)
    os.makedirs(root)
    for i in range(files):
        d = os.path.join(root, f"pkg{i % 200:03d}", f"lib{i % 7}")
        os.makedirs(d, exist_ok=True)
        size = random.choice([200, 800, 2000, 6000, 15000])
        with open(os.path.join(d, f"f{i:05d}.js"), "w") as f:
            f.write(("x" * 60 + "\n") * (size // 61))
    with open(os.path.join(root, "buildspec.yml"), "w") as f:
        f.write(spec)
PY
mkdir "$work/state-root" "$work/state-user"
chown -R "$U:" "$work/state-user" "$work/tiny" "$work/t100" "$work/tbig"

as_root() { CODEBUILD_LOCAL_HOME="$work/state-root" "$BIN" "$@"; }
as_user() {
  setpriv --reuid "$U" --regid "$U" --init-groups \
    env HOME="$UHOME" USER="$U" LOGNAME="$U" CODEBUILD_LOCAL_HOME="$work/state-user" "$BIN" "$@"
}
time_it() { local t0 t1; t0=$(now_us); "$@" >/dev/null 2>&1; t1=$(now_us); echo $((t1 - t0)); }

# warm-up (and a check that both work: a failure is shown, not timed)
for who in as_root as_user; do
  for t in tiny t100 tbig; do
    "$who" run "$work/$t" >/dev/null 2>&1 || { "$who" run "$work/$t"; exit 1; }
  done
  "$who" run --source-mode mount "$work/tbig" >/dev/null 2>&1 || { "$who" run --source-mode mount "$work/tbig"; exit 1; }
done
if as_user run "$work/tbig" 2>&1 | grep -q "WARNING: source snapshot"; then
  echo "bench/rootless.sh: the kernel refused the user namespace's overlay here; the numbers are a copy's" >&2
fi

cases="tiny t100 tbig tbig_mount"
for who in root user; do for c in $cases; do : > "$work/$who-$c"; done; done
for _ in $(seq "$N"); do
  for c in $cases; do
    args=(run "$work/${c%_mount}")
    [ "$c" = tbig_mount ] && args=(run --source-mode mount "$work/tbig")
    time_it as_root "${args[@]}" >> "$work/root-$c"
    time_it as_user "${args[@]}" >> "$work/user-$c"
  done
done
m() { median < "$work/$1"; }
awk -v n="$N" -v f="$FILES" \
    -v rt="$(m root-tiny)" -v ut="$(m user-tiny)" \
    -v r100="$(m root-t100)" -v u100="$(m user-t100)" \
    -v rbig="$(m root-tbig)" -v ubig="$(m user-tbig)" \
    -v rmnt="$(m root-tbig_mount)" -v umnt="$(m user-tbig_mount)" 'BEGIN {
  printf "%d runs each, interleaved (medians); normal user: cbl-rootless\n", n
  printf "                                      root        user     user/root\n"
  printf "trivial build, tiny tree:        %8.2f ms %8.2f ms   %5.2fx (target <= 1.25x)\n", rt/1000, ut/1000, ut/rt
  printf "snapshot of %6d files:         %8.2f ms %8.2f ms   %5.2fx (target <= 1.25x)\n", f, rbig/1000, ubig/1000, ubig/rbig
  printf "snapshot of    100 files:        %8.2f ms %8.2f ms   %5.2fx\n", r100/1000, u100/1000, u100/r100
  printf "mount mode, %6d files:         %8.2f ms %8.2f ms   %5.2fx\n", f, rmnt/1000, umnt/1000, umnt/rmnt
  printf "snapshot cost (snapshot - mount), %d files:\n", f
  printf "                                 %8.2f ms %8.2f ms\n", (rbig-rmnt)/1000, (ubig-umnt)/1000
  printf "growth with the tree (%d files - 100 files, snapshot builds):\n", f
  printf "                                 %8.2f ms %8.2f ms   (target: ~0, noise only)\n", (rbig-r100)/1000, (ubig-u100)/1000
}'
