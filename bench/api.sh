#!/usr/bin/env bash
# API server throughput (issue "Projects, build history and a
# CodeBuild-compatible API"): BatchGetBuilds of 10 ids with 10,000 builds in
# the store, driven for 10 s on 127.0.0.1 while a build is running.
#
#  1. One real build (`codebuild-local run`, a 3-phase buildspec with an
#     artifact) is the template; bench/api_fill.c replicates it into a fresh
#     state directory through the store's own API (store_build_save): 10,000
#     builds over 10 projects, new ids, ARNs, log streams, build numbers and
#     timestamps.  The fill time is printed.  The state directory is on
#     /dev/shm when writable, else /var/tmp.
#  2. `codebuild-local serve --listen 127.0.0.1:0 --quiet` on that state
#     directory (SigV4 against a test key pair in its environment); through
#     it (botocore) a project whose build sleeps is created and started, and
#     the load begins once that build is in its BUILD phase.
#  3. Load: wrk (Debian's package), 1 thread, 10 keep-alive connections
#     (botocore's default pool size), 10 s.  Every request is the same
#     BatchGetBuilds of 10 ids spread over the store, signed once by
#     botocore's SigV4 signer and replayed by wrk: the server verifies the
#     signature of every request (its clock-skew window is 15 minutes), so
#     each request costs what a client's would, without a Python client
#     being the bottleneck.  A Lua response hook counts every response that
#     is not a 200 of the exact length of the checked reply (10 builds, no
#     buildsNotFound): that count must be 0.
#  4. The sleeping build must still be IN_PROGRESS after the load; then it
#     is stopped, the server is stopped (SIGINT) and the state removed.
#
# Prints requests/s, p50/p90/p99/max latency, the server's CPU time per
# request (unmoved by other load on the machine) and the non-2xx count next to
# the targets (>= 5,000 requests/s, p99 < 20 ms) with their ratios; exits 1
# when a target is missed or a response was wrong.  Not part of `make test`.
# The figures depend on what else the machine runs (the load generator
# shares its cores with the server).
# Usage: bench/api.sh [BIN] [SECONDS] [CONNECTIONS] [BUILDS]
set -euo pipefail
. "$(dirname "$0")/lib.sh"
BIN=${1:-build/codebuild-local}
SECS=${2:-10}
CONNS=${3:-10}
NBUILDS=${4:-10000}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=$(abs_path "$BIN")
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
command -v wrk >/dev/null || { echo "api.sh: needs wrk (apt-get install wrk)" >&2; exit 2; }
[ -x "$BIN" ] || { echo "api.sh: no $BIN (make build/codebuild-local)" >&2; exit 2; }

# tmpfs when there is one: the fill creates 30,000 files, and on a disk
# filesystem that churns (ext4 looking for inodes not recently deleted) that
# alone can take half a minute; the server's reads come from the page cache
# either way (same figures measured on /var/tmp)
base=/var/tmp
if [ -d /dev/shm ] && [ -w /dev/shm ]; then base=/dev/shm; fi
work=$(mktemp -d "$base/cbl-api-XXXXXX")
srv_pid=
cleanup() {
  if [ -s "$work/url" ] && [ -s "$work/build_id" ]; then
    "$PY" "$work/api.py" stop "$(cat "$work/url")" "$(cat "$work/build_id")" >/dev/null 2>&1 || true
  fi
  if [ -n "$srv_pid" ]; then
    kill -INT "$srv_pid" 2>/dev/null || true
    wait "$srv_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

cd "$ROOT"
make -s build/libcodebuild-local.a
# the Makefile's CFLAGS / LDLIBS without editing it
flags() { make -s --no-print-directory --eval 'print-%: ; @echo $($*)' "print-$1"; }
# shellcheck disable=SC2046
cc $(flags CFLAGS) -o "$work/api_fill" bench/api_fill.c build/libcodebuild-local.a $(flags LDLIBS)

# ---- 1. the template build and the fill
export AKID=AKIDCBLBENCH SECRET=cbl/bench+secret REGION=us-east-1
mkdir -p "$work/apibench-template"
cat > "$work/apibench-template/buildspec.yml" <<'YML'
version: 0.2
env:
  variables:
    GREETING: hello
  exported-variables:
    - GREETING
phases:
  install:
    commands:
      - echo installing
  build:
    commands:
      - echo "$GREETING from the build"
  post_build:
    commands:
      - echo done
artifacts:
  files:
    - buildspec.yml
YML
CODEBUILD_LOCAL_HOME="$work/template" "$BIN" run --sandbox none --project apibench-template \
  "$work/apibench-template" > "$work/template.out" 2>&1 || { cat "$work/template.out"; exit 1; }
tdir=$(ls -d "$work"/template/builds/apibench-template/*/)
echo "api.sh: filling a state directory in $base with $NBUILDS builds (template: one real build)"
fill_line=$("$work/api_fill" "$work/state" "${tdir%/}" "$NBUILDS" 10 "$work/ids")
echo "  api_fill: $fill_line"

# ---- 2. the server and the running build
cat > "$work/api.py" <<'PY'
import json, os, sys, time, urllib.request
import boto3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

AKID, SECRET, REGION = os.environ["AKID"], os.environ["SECRET"], os.environ["REGION"]
TARGET = "CodeBuild_20161006.BatchGetBuilds"

def client(url):
    s = boto3.session.Session(aws_access_key_id=AKID, aws_secret_access_key=SECRET, region_name=REGION)
    return s.client("codebuild", endpoint_url=url, config=Config(retries={"max_attempts": 1}))

def lua_str(s):
    return json.dumps(s)  # a JSON string of ASCII text is a valid Lua string literal

def start(url, src, build_id_file):
    cb = client(url)
    cb.create_project(
        name="apibench-sleeper",
        source={"type": "NO_SOURCE", "location": f"file://{src}"},
        artifacts={"type": "NO_ARTIFACTS"},
        environment={"type": "LINUX_CONTAINER", "image": "host", "computeType": "BUILD_GENERAL1_SMALL"},
        serviceRole="arn:aws:iam::000000000000:role/codebuild")
    b = cb.start_build(projectName="apibench-sleeper")["build"]
    with open(build_id_file, "w") as f:
        f.write(b["id"])
    deadline = time.time() + 60
    while True:
        b = cb.batch_get_builds(ids=[b["id"]])["builds"][0]
        if b["currentPhase"] == "BUILD" and b["buildStatus"] == "IN_PROGRESS":
            break
        if b["buildComplete"] or time.time() > deadline:
            sys.exit(f"the sleeping build did not reach BUILD: {b['buildStatus']} {b['currentPhase']}")
        time.sleep(0.1)
    print(f"running build {b['id']} (phase {b['currentPhase']})")

def sign(url, ids_file, lua_file):
    all_ids = open(ids_file).read().split()
    step = len(all_ids) // 10
    ids = [all_ids[i * step + step // 2] for i in range(10)]
    body = json.dumps({"ids": ids})
    headers = {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": TARGET}
    req = AWSRequest(method="POST", url=url + "/", data=body.encode(), headers=headers)
    SigV4Auth(Credentials(AKID, SECRET), "codebuild", REGION).add_auth(req)
    signed = dict(req.headers.items())
    signed["Host"] = url.split("//", 1)[1]
    # the replayed request, checked once: 200, the 10 builds asked for
    r = urllib.request.Request(url + "/", data=body.encode(), method="POST", headers=signed)
    with urllib.request.urlopen(r, timeout=30) as resp:
        status, raw = resp.status, resp.read()
    got = json.loads(raw)
    assert status == 200, status
    assert [b["id"] for b in got["builds"]] == ids, "wrong builds"
    assert got["buildsNotFound"] == [], got["buildsNotFound"]
    assert all(b["buildStatus"] == "SUCCEEDED" and len(b["phases"]) == 11 for b in got["builds"])
    # and the same through boto3's own client
    assert len(client(url).batch_get_builds(ids=ids)["builds"]) == 10
    with open(lua_file, "w") as f:
        f.write(f"wrk.method = \"POST\"\nwrk.body = {lua_str(body)}\n")
        for k, v in signed.items():
            f.write(f"wrk.headers[{lua_str(k)}] = {lua_str(v)}\n")
        f.write(f"expected_len = {len(raw)}\n")
        f.write(LUA)
    print(f"request: BatchGetBuilds of 10 ids, {len(body)} bytes; reply {len(raw)} bytes")

LUA = r'''
local threads = {}
function setup(thread)
  table.insert(threads, thread)
end
function init(args)
  bad, non2xx = 0, 0
end
function response(status, headers, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
  elseif status ~= 200 or #body ~= expected_len then
    bad = bad + 1
  end
end
function done(summary, latency, requests)
  local non2xx_all, bad_all = 0, 0
  for _, t in ipairs(threads) do
    non2xx_all = non2xx_all + t:get("non2xx")
    bad_all = bad_all + t:get("bad")
  end
  io.write(string.format(
    "RESULT requests=%d duration_us=%d bytes=%d non2xx=%d wrong=%d socket_errors=%d " ..
    "p50_us=%d p90_us=%d p99_us=%d max_us=%d\n",
    summary.requests, summary.duration, summary.bytes, non2xx_all, bad_all,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
'''

def check_running(url, build_id):
    b = client(url).batch_get_builds(ids=[build_id])["builds"][0]
    print(f"{b['buildStatus']} {b['currentPhase']}")

def stop(url, build_id):
    cb = client(url)
    cb.stop_build(id=build_id)
    deadline = time.time() + 60
    while not cb.batch_get_builds(ids=[build_id])["builds"][0]["buildComplete"]:
        if time.time() > deadline:
            sys.exit("the sleeping build did not stop")
        time.sleep(0.1)

globals()[sys.argv[1]](*sys.argv[2:])
PY

mkdir -p "$work/sleeper"
printf 'version: 0.2\nphases:\n  build:\n    commands:\n      - sleep 600\n' > "$work/sleeper/buildspec.yml"
env -u AWS_PROFILE -u AWS_SESSION_TOKEN CODEBUILD_LOCAL_HOME="$work/state" \
  AWS_ACCESS_KEY_ID="$AKID" AWS_SECRET_ACCESS_KEY="$SECRET" \
  "$BIN" serve --listen 127.0.0.1:0 --quiet > "$work/ready" 2> "$work/serve.err" &
srv_pid=$!
line=
for _ in $(seq 200); do
  line=$(head -n1 "$work/ready")
  [ -n "$line" ] || ! kill -0 "$srv_pid" 2>/dev/null && break
  sleep 0.05
done
case "$line" in
  "listening on http://127.0.0.1:"*) url=${line##* } ;;
  *) echo "api.sh: the server did not start: $line"; cat "$work/serve.err"; exit 1 ;;
esac
echo "$url" > "$work/url"
export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_EC2_METADATA_DISABLED=true
"$PY" "$work/api.py" start "$url" "$work/sleeper" "$work/build_id" | sed 's/^/  /'
"$PY" "$work/api.py" sign "$url" "$work/ids" "$work/req.lua" | sed 's/^/  /'

# ---- 3. the load
echo "api.sh: wrk -t1 -c$CONNS -d${SECS}s, BatchGetBuilds on $url"
# the server's CPU time over the load (utime + stime, clock ticks): a figure
# the other processes on the machine do not move, unlike latency
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$srv_pid/stat"; }
cpu0=$(cpu_ticks)
wrk -t1 -c"$CONNS" -d"${SECS}s" -s "$work/req.lua" "$url/" > "$work/wrk.out" 2>&1 || { cat "$work/wrk.out"; exit 1; }
cpu1=$(cpu_ticks)
res=$(sed -n 's/^RESULT //p' "$work/wrk.out")
[ -n "$res" ] || { cat "$work/wrk.out"; exit 1; }

# ---- 4. the build ran throughout; stop everything
state=$("$PY" "$work/api.py" check_running "$url" "$(cat "$work/build_id")")
"$PY" "$work/api.py" stop "$url" "$(cat "$work/build_id")"
rm -f "$work/build_id"
kill -INT "$srv_pid"
srv_rc=0
wait "$srv_pid" || srv_rc=$?
srv_pid=

field() { echo " $res" | sed -n "s/.* $1=\([^ ]*\).*/\1/p"; }
reqs=$(field requests) dur=$(field duration_us) non2xx=$(field non2xx) wrong=$(field wrong)
sockerr=$(field socket_errors)
p50=$(field p50_us) p90=$(field p90_us) p99=$(field p99_us) max=$(field max_us)
rps=$(awk -v r="$reqs" -v d="$dur" 'BEGIN { printf "%.0f", r / (d / 1e6) }')
echo
echo "store:           $NBUILDS builds in 10 projects (fill: $fill_line)"
echo "load:            BatchGetBuilds of 10 ids, SigV4-signed, wrk 1 thread, $CONNS connections, ${SECS} s"
echo "during the load: the sleeping build was $state at the end"
printf 'requests:        %s in %.2f s\n' "$reqs" "$(awk -v d="$dur" 'BEGIN { print d / 1e6 }')"
printf 'latency:         p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.2f ms\n' \
  "$(awk -v v="$p50" 'BEGIN { print v / 1e3 }')" "$(awk -v v="$p90" 'BEGIN { print v / 1e3 }')" \
  "$(awk -v v="$p99" 'BEGIN { print v / 1e3 }')" "$(awk -v v="$max" 'BEGIN { print v / 1e3 }')"
awk -v t="$((cpu1 - cpu0))" -v hz="$(getconf CLK_TCK)" -v r="$reqs" 'BEGIN {
  printf "server CPU:      %.1f ms per 1,000 requests (%.2f s in all)\n", t / hz * 1e6 / r, t / hz }'
echo "non-2xx:         $non2xx (other wrong replies: $wrong, socket errors: $sockerr)"
awk -v r="$rps" -v p="$p99" 'BEGIN {
  printf "throughput:      %d requests/s (target >= 5,000: ratio %.2f)\n", r, r / 5000
  printf "p99 latency:     %.2f ms (target < 20 ms: ratio %.2f of the budget)\n", p / 1e3, p / 20000
}'

fail=0
if [ "$rps" -ge 5000 ]; then echo "target >= 5,000 requests/s: PASS"; else echo "target >= 5,000 requests/s: FAIL"; fail=1; fi
if [ "$p99" -lt 20000 ]; then echo "target p99 < 20 ms: PASS"; else echo "target p99 < 20 ms: FAIL"; fail=1; fi
if [ "$non2xx" -eq 0 ] && [ "$wrong" -eq 0 ] && [ "$sockerr" -eq 0 ]; then
  echo "every reply a 200 with the 10 builds: PASS"
else
  echo "every reply a 200 with the 10 builds: FAIL"; fail=1
fi
case "$state" in
  "IN_PROGRESS BUILD") echo "a build running throughout: PASS" ;;
  *) echo "a build running throughout: FAIL ($state)"; fail=1 ;;
esac
if [ "$srv_rc" -ne 0 ]; then echo "the server exited with $srv_rc:"; cat "$work/serve.err"; fail=1; fi
exit $fail
