#!/usr/bin/env bash
# bench/iterate.sh as a normal user (issue 19: "a normal user must get
# everything root gets"): the same project (`npm ci` on a real lockfile in
# INSTALL, `node -e 1` in BUILD), the same measure (time to the first BUILD
# command, --from-phase BUILD vs a full run, in the same run), the same
# targets (< 50 ms, >= 20x).  The checkpoint then holds the sandbox's
# layers copied in its user namespace (the source overlay's upper layer,
# /root's npm cache, /tmp), restored as lower layers.
# Run as root it creates the normal user the e2e tests use (useradd -m, as
# tests/e2e/conftest.py does) and measures as that user; run as a normal
# user it measures as itself.
# Usage: bench/iterate-user.sh [BIN] [N]
set -euo pipefail
. "$(dirname "$0")/lib.sh"
BIN=$(abs_path "${1:-build/codebuild-local}")
N=${2:-5}
here=$(cd "$(dirname "$0")" && pwd)
if [ "$(id -u)" != 0 ]; then
  echo "iterate-user: as $(id -un)"
  exec bash "$here/iterate.sh" "$BIN" "$N"
fi
if ! command -v setpriv >/dev/null || ! command -v useradd >/dev/null; then
  echo "iterate-user: skipped: needs setpriv and useradd to measure as a normal user"
  exit 0
fi
user=cbl-rootless
getent passwd "$user" >/dev/null || useradd -m "$user"
home=$(getent passwd "$user" | cut -d: -f6)
if ! setpriv --reuid="$user" --regid="$user" --init-groups test -x "$BIN"; then
  echo "iterate-user: skipped: $user cannot run $BIN (a directory on its path is closed to other users)"
  exit 0
fi
echo "iterate-user: as the normal user $user"
exec setpriv --reuid="$user" --regid="$user" --init-groups \
  env -i PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" HOME="$home" USER="$user" \
  LOGNAME="$user" LANG=C.UTF-8 bash "$here/iterate.sh" "$BIN" "$N"
