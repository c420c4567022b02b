#!/usr/bin/env bash
# What a writable host root costs a normal user's build: a compile-heavy
# build (this project's library, `make -j2`, about a hundred C files against
# the host's headers, compilers and libraries) with its / as
#   kernel - the kernel's overlay of / (what root's builds get),
#   fuse   - fuse-overlayfs of / with squash_to_root (what a normal user's
#            build gets where /dev/fuse is usable: sandbox/fuse.c),
#   host   - the host's / itself (the floor),
# each in a private mount namespace and a chroot, the source bound in (as the
# sandbox binds it, not through the root's overlay), N runs each (default 3),
# interleaved.  Prints medians and fuse's cost over the kernel's overlay.
# Needs root (the kernel's overlay of /) and fuse-overlayfs.
# Measured (Debian 12, 2 vCPUs shared with other work): 1.34x, 1.41x, 1.60x the
# kernel overlay's time in three runs of 5-7 (+3.8 to +8.9 s on 11-18 s).
# Usage: bench/fuse-overlay.sh [N]
set -euo pipefail
. "$(dirname "$0")/lib.sh"
N=${1:-3}
[ "$(id -u)" = 0 ] || { echo "fuse-overlay.sh: needs root (the kernel's overlay of /)"; exit 2; }
command -v fuse-overlayfs >/dev/null || { echo "fuse-overlay.sh: fuse-overlayfs is not installed"; exit 2; }
top=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /var/tmp/cbl-fuse-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
git -C "$top" archive HEAD | tar -C "$work" --one-top-level=src -x
for m in kernel fuse host; do : > "$work/$m"; done

# one run: mode, then prints microseconds
one() {
  local mode=$1 t0 t1
  rm -rf "$work/src/bbuild"
  unshare -m sh -euc '
    mode=$1 work=$2
    mount --make-rprivate /
    mount -t tmpfs tmpfs "$work/mnt" 2>/dev/null || { mkdir -p "$work/mnt"; mount -t tmpfs tmpfs "$work/mnt"; }
    mkdir -p "$work/mnt/upper" "$work/mnt/work" "$work/mnt/root"
    case $mode in
      kernel) mount -t overlay overlay -o "lowerdir=/,upperdir=$work/mnt/upper,workdir=$work/mnt/work" "$work/mnt/root" ;;
      fuse) fuse-overlayfs -o "lowerdir=/,upperdir=$work/mnt/upper,workdir=$work/mnt/work,squash_to_root" "$work/mnt/root" 2>/dev/null ;;
      host) mount --rbind / "$work/mnt/root" ;;
    esac
    r=$work/mnt/root
    mount -t proc proc "$r/proc"
    mount --rbind /dev "$r/dev"
    mkdir -p "$r/srcb" && mount --bind "$work/src" "$r/srcb"
    chroot "$r" sh -c "cd /srcb && make -j2 BUILD=bbuild bbuild/libcodebuild-local.a >/dev/null 2>&1"
  ' sh "$mode" "$work"
}
mkdir -p "$work/mnt"
one host # warm the page cache
for _ in $(seq "$N"); do
  for m in kernel fuse host; do
    t0=$(now_us); one "$m"; t1=$(now_us); echo $((t1 - t0)) >> "$work/$m"
  done
done
k=$(median < "$work/kernel"); f=$(median < "$work/fuse"); h=$(median < "$work/host")
awk -v k="$k" -v f="$f" -v h="$h" -v n="$N" 'BEGIN {
  printf "runs:                                   %d each (make -j2 of the library)\n", n
  printf "host / (no overlay):                    %.2f s (median)\n", h / 1e6
  printf "kernel overlay of / (root'"'"'s builds):    %.2f s\n", k / 1e6
  printf "fuse-overlayfs of /, squash_to_root:    %.2f s\n", f / 1e6
  printf "fuse over kernel overlay:               %.2fx (%+.2f s)\n", f / k, (f - k) / 1e6
}'
