#!/usr/bin/env bash
# Installs everything codebuild-local needs to build and test on Debian 12.
# Idempotent: does nothing when every package is already present.
set -euo pipefail

PKGS=(
  build-essential pkg-config clang libclang-rt-14-dev
  libyaml-dev libarchive-dev libcurl4-openssl-dev libssl-dev
  libjansson-dev libsqlite3-dev libxml2-dev libexpat1-dev libseccomp-dev libmicrohttpd-dev
  # python3 runs scripts/gen-model.py at build time (the request validator's tables)
  python3
  git unzip zip python3-pytest python3-boto3 python3-yaml python3-venv python3-setuptools python3-coverage awscli
  docker-registry skopeo umoci busybox-static zstd openssh-server openssh-client wrk
  slirp4netns iproute2
  # bench/metrics.sh's baseline (a plain count over the store's database)
  sqlite3
  # used by the builds the tests run: pip by the seed guide's Python example
  # (examples/python), strace by the sandbox's ptrace test
  python3-pip strace
  # rootless: newuidmap/newgidmap map a normal user's subordinate ids in the sandbox,
  # fuse-overlayfs gives it a writable host root where /dev/fuse is usable; debootstrap
  # builds the Debian test image of tests/e2e/test_rootless_ids.py, and acl's setfacl
  # lends its test user /dev/fuse for the length of one test
  uidmap fuse-overlayfs debootstrap acl
  # the real test and coverage tools tests/e2e/test_real_reports.py runs inside builds
  # (pytest and coverage.py above; the npm ones come from the npm registry)
  golang-go gotestsum maven default-jdk-headless maven-debian-helper libsurefire-java junit4
  libmaven-compiler-plugin-java libmaven-resources-plugin-java libjacoco-java ant
  # the dashboard's browser tests (tests/e2e/test_dashboard.py): headless Chromium
  # driven by Selenium through chromedriver
  chromium chromium-driver python3-selenium
)
BACKPORT_PKGS=(libgit2-dev)

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

# node and npm for the seed guide's multi-stage example: Debian's packages
# unless the machine already has its own node (e.g. from another source)
if ! command -v npm >/dev/null 2>&1; then
  for p in nodejs npm; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
fi

libgit2_ok=0
if pkg-config --exists 'libgit2 >= 1.7' 2>/dev/null; then libgit2_ok=1; fi

if [ ${#missing[@]} -eq 0 ] && [ $libgit2_ok = 1 ]; then
  exit 0
fi

# libgit2 >= 1.7 (shallow clone) comes from bookworm-backports. The mirror URI is
# copied from the first entry of the machine's own debian.sources, so no registry
# host is written here.
if [ $libgit2_ok = 0 ]; then
  src=/etc/apt/sources.list.d/debian.sources
  bp=/etc/apt/sources.list.d/bookworm-backports.sources
  if [ ! -f "$bp" ]; then
    uri=""
    if [ -f "$src" ]; then
      uri=$(awk '/^URIs:/ {print $2; exit}' "$src")
    fi
    if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
      uri=$(awk '$1=="deb" {print $2; exit}' /etc/apt/sources.list)
    fi
    if [ -z "$uri" ]; then
      echo "install-deps: cannot find a Debian mirror URI in $src" >&2
      exit 1
    fi
    printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
      "$uri" | $SUDO tee "$bp" >/dev/null
  fi
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
if [ ${#missing[@]} -gt 0 ]; then
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
if [ $libgit2_ok = 0 ]; then
  $SUDO apt-get install -y -q --no-install-recommends -t bookworm-backports "${BACKPORT_PKGS[@]}"
fi
pkg-config --exists 'libgit2 >= 1.7' || { echo "install-deps: libgit2 >= 1.7 not available" >&2; exit 1; }
