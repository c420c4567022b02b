#!/usr/bin/env bash
# CloudWatch Logs reads over a 100,000-line build log (issue "API: ... `aws logs
# tail`"): FilterLogEvents against GetLogEvents, the existing read, as the
# baseline, in the same run on the same stream.
#
#  1. One real build (`codebuild-local run --sandbox none`) prints 100,000
#     lines (1 in 100 holds the word "needle"); its log is the stream.
#  2. `codebuild-local serve --listen 127.0.0.1:0 --quiet` on that state
#     directory; requests are signed by botocore's SigV4 signer and sent with
#     urllib (the response bytes are read, not parsed: the client's JSON
#     parsing is not the server's cost).
#  3. Measured, median of REPS runs each:
#       baseline  GetLogEvents, startFromHead, every page (10,000 events each)
#       filter    FilterLogEvents without a pattern, every page
#       pattern   FilterLogEvents "needle -awk" (1,000 events, one page)
#     and the event counts are checked (100,000+ lines, 1,000 needles).
# Prints the three times and the ratios to the baseline.  Not part of
# `make test`.  Usage: bench/logs.sh [BIN] [REPS]
set -euo pipefail
. "$(dirname "$0")/lib.sh"
BIN=${1:-build/codebuild-local}
REPS=${2:-5}
BIN=$(abs_path "$BIN")
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
[ -x "$BIN" ] || { echo "logs.sh: no $BIN (make build/codebuild-local)" >&2; exit 2; }

work=$(mktemp -d "${TMPDIR:-/var/tmp}/cbl-logs-XXXXXX")
srv_pid=
cleanup() {
  if [ -n "$srv_pid" ]; then
    kill -INT "$srv_pid" 2>/dev/null || true
    wait "$srv_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

export CODEBUILD_LOCAL_HOME="$work/state"
mkdir -p "$work/src" "$CODEBUILD_LOCAL_HOME"
cat > "$work/src/buildspec.yml" <<'YML'
version: 0.2
phases:
  build:
    commands:
      - awk 'BEGIN { for (i = 1; i <= 100000; i++) if (i % 100 == 0) print "line " i " needle"; else print "line " i " hay hay hay hay" }'
YML
t0=$(now_us)
"$BIN" run "$work/src" --sandbox none > "$work/run.log" 2>&1 || { cat "$work/run.log" >&2; exit 1; }
echo "build of 100,000 lines: $(( ($(now_us) - t0) / 1000 )) ms"

export AWS_ACCESS_KEY_ID=AKIDCBLBENCH AWS_SECRET_ACCESS_KEY=cbl/bench+secret
"$BIN" serve --listen 127.0.0.1:0 --quiet > "$work/serve.out" 2> "$work/serve.err" &
srv_pid=$!
for _ in $(seq 100); do
  grep -q '^listening on ' "$work/serve.out" 2>/dev/null && break
  sleep 0.1
done
url=$(awk '/^listening on /{print $3}' "$work/serve.out")
[ -n "$url" ] || { cat "$work/serve.err" >&2; exit 1; }

cat > "$work/drive.py" <<'PY'
import json, statistics, sys, time, urllib.request
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

url, reps = sys.argv[1], int(sys.argv[2])
creds = Credentials("AKIDCBLBENCH", "cbl/bench+secret")

def call(op, body):
    data = json.dumps(body).encode()
    h = {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "Logs_20140328." + op}
    req = AWSRequest(method="POST", url=url + "/", data=data, headers=h)
    SigV4Auth(creds, "logs", "us-east-1").add_auth(req)
    r = urllib.request.Request(url + "/", data=data, method="POST", headers=dict(req.headers.items()))
    with urllib.request.urlopen(r, timeout=120) as resp:
        return resp.read()

groups = json.loads(call("DescribeLogGroups", {}))["logGroups"]
group = groups[0]["logGroupName"]
stream = json.loads(call("DescribeLogStreams", {"logGroupName": group}))["logStreams"][0]["logStreamName"]

def get_all():
    n, tok = 0, None
    while True:
        b = {"logGroupName": group, "logStreamName": stream, "startFromHead": True}
        if tok:
            b["nextToken"] = tok
        raw = call("GetLogEvents", b)
        # the token is at the end of the reply: find it without parsing events
        r = json.loads(raw)
        n += len(r["events"])
        if r["nextForwardToken"] == tok:
            return n
        tok = r["nextForwardToken"]

def filter_all(pattern=None):
    n, tok = 0, None
    while True:
        b = {"logGroupName": group, "interleaved": True}
        if pattern:
            b["filterPattern"] = pattern
        if tok:
            b["nextToken"] = tok
        r = json.loads(call("FilterLogEvents", b))
        n += len(r["events"])
        tok = r.get("nextToken")
        if not tok:
            return n

def timed(f, *a):
    ts, n = [], 0
    for _ in range(reps):
        t = time.perf_counter()
        n = f(*a)
        ts.append((time.perf_counter() - t) * 1000)
    return statistics.median(ts), n

base, nb = timed(get_all)
filt, nf = timed(filter_all)
pat, npat = timed(filter_all, "needle -awk")
assert nb >= 100000 and nf == nb, (nb, nf)
assert npat == 1000, npat
print(f"GetLogEvents, whole stream ({nb} events):        {base:8.1f} ms  (baseline)")
print(f"FilterLogEvents, whole stream ({nf} events):     {filt:8.1f} ms  ratio {filt / base:.2f}")
print(f"FilterLogEvents \"needle -awk\" ({npat} of {nb} events):  {pat:8.1f} ms  ratio {pat / base:.2f}")
PY
"$PY" "$work/drive.py" "$url" "$REPS"
