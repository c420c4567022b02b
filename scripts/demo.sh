#!/usr/bin/env bash
# `make demo`: a real build of examples/hello on the default (host) setup.
set -euo pipefail
BIN=${1:-build/codebuild-local}
cd "$(dirname "$0")/.."
export CODEBUILD_LOCAL_HOME=${CODEBUILD_LOCAL_HOME:-$PWD/build/demo-state}
# the build writes into its source (no sandbox yet): run it on a copy
rm -rf build/demo-src && mkdir -p build/demo-src && cp -r examples/hello build/demo-src/hello
echo "== codebuild-local run examples/hello (state in $CODEBUILD_LOCAL_HOME)"
set +e
"$BIN" run build/demo-src/hello
rc=$?
set -e
if [ $rc -ne 0 ]; then
  echo "demo build did not succeed (exit $rc)" >&2
  exit $rc
fi
id=$(ls -t "$CODEBUILD_LOCAL_HOME/builds/hello" | grep -v '^\.' | head -1)
echo
echo "== its record, as 'aws codebuild batch-get-builds' would print it:"
out=$("$BIN" batch-get-builds --ids "hello:$id")
head -20 <<<"$out"
echo "   ..."
echo "record: $CODEBUILD_LOCAL_HOME/builds/hello/$id/build.json"
