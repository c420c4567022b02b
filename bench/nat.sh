#!/usr/bin/env bash
# The user-space NATs side by side, as measured for sandbox/net.c's choice:
# slirp4netns (as the sandbox starts it) and pasta (passt), N rounds (default
# 10) interleaved with this machine itself (no namespace), so that a busy
# machine weighs on all three alike.  Each round, a fresh network namespace:
#   - startup: from spawning the helper to a configured namespace;
#   - 3 downloads of 100 MB and 100 small GETs (connect + request + close)
#     from an HTTP server on a non-loopback address of this machine: a veth
#     pair with 10.77.0.1/32, since the NATs must not (and do not) reach the
#     host's loopback.
# Prints medians over all rounds.  Root only (the veth, the namespaces); not
# part of `make bench`.  Cleans up.
# Usage: bench/nat.sh [N]   (needs slirp4netns, pasta, busybox, curl)
set -euo pipefail
N=${1:-10}
[ "$(id -u)" = 0 ] || { echo "bench/nat.sh: needs root" >&2; exit 1; }
for t in slirp4netns pasta busybox curl unshare nsenter; do
  command -v "$t" >/dev/null || { echo "bench/nat.sh: $t is not installed" >&2; exit 1; }
done
work=$(mktemp -d)
httpd=""
cleanup() {
  [ -n "$httpd" ] && kill "$httpd" 2>/dev/null || true
  ip link del cblnat0 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
ip link add cblnat0 type veth peer name cblnat1
ip addr add 10.77.0.1/32 dev cblnat0
ip link set cblnat0 up
ip link set cblnat1 up
head -c 100M /dev/urandom > "$work/100m.bin"
echo hi > "$work/small.txt"
busybox httpd -f -p 10.77.0.1:8080 -h "$work" & httpd=$!
sleep 0.3
size=$(curl -s -o /dev/null -w '%{size_download}' http://10.77.0.1:8080/100m.bin || true)
[ "$size" = 104857600 ] || { echo "bench/nat.sh: the HTTP server on 10.77.0.1:8080 does not serve (${size:-nothing})" >&2; exit 1; }

# one round of load from the current network namespace: JSON on stdout
cat > "$work/load.py" <<'PY'
import json, socket, subprocess, time
dl = []
for i in range(3):
    out = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{time_total}",
                          "http://10.77.0.1:8080/100m.bin"], capture_output=True, text=True).stdout
    dl.append(float(out))
lat = []
for i in range(100):
    t = time.monotonic()
    s = socket.create_connection(("10.77.0.1", 8080))
    s.sendall(b"GET /small.txt HTTP/1.0\r\n\r\n")
    while s.recv(65536):
        pass
    s.close()
    lat.append((time.monotonic() - t) * 1e6)
print(json.dumps({"dl": dl, "lat": lat}))
PY

cat > "$work/nat.py" <<'PY'
import json, os, statistics, subprocess, sys, time
rounds, load = int(sys.argv[1]), sys.argv[2]

def netns():
    p = subprocess.Popen(["unshare", "--net", "--", "sleep", "1000"])
    me = os.readlink("/proc/self/ns/net")
    while True:
        try:
            if os.readlink(f"/proc/{p.pid}/ns/net") != me:
                return p
        except FileNotFoundError:
            pass
        time.sleep(0.0005)

def start(mode, pid):
    r, w = os.pipe()
    if mode == "slirp4netns":
        er, keep = os.pipe()
        argv = ["slirp4netns", "--configure", "--mtu=65520", "--disable-host-loopback", "--enable-sandbox",
                "--enable-seccomp", f"--ready-fd={w}", f"--exit-fd={er}", str(pid), "eth0"]
        fds = (w, er)
    else:
        # as root pasta drops to nobody unless told, and may then not open
        # /proc/PID/ns/net of a process with more capabilities: an fd of it;
        # -P on a pipe: its PID once configured
        keep = None
        nsfd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY)
        argv = ["pasta", "-f", "-q", "--config-net", "--runas", "0", "--no-map-gw", "-t", "none", "-u", "none",
                "-T", "none", "-U", "none", "-P", f"/proc/self/fd/{w}", "--netns", f"/proc/self/fd/{nsfd}"]
        fds = (w, nsfd)
    t0 = time.monotonic()
    h = subprocess.Popen(argv, pass_fds=fds, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for fd in fds:
        os.close(fd)
    os.read(r, 64)
    dt = (time.monotonic() - t0) * 1000
    os.close(r)
    return dt, h, keep

res = {m: {"start": [], "dl": [], "lat": []} for m in ("host", "slirp4netns", "pasta")}
for i in range(rounds):
    for mode, r in res.items():
        if mode == "host":
            out = subprocess.run([sys.executable, load], capture_output=True, text=True).stdout
        else:
            p = netns()
            dt, h, keep = start(mode, p.pid)
            r["start"].append(dt)
            out = subprocess.run(["nsenter", "-t", str(p.pid), "-n", sys.executable, load],
                                 capture_output=True, text=True).stdout
            if keep is not None:
                os.close(keep)
            h.kill()
            h.wait()
            p.kill()
            p.wait()
        got = json.loads(out)
        r["dl"] += got["dl"]
        r["lat"] += got["lat"]
for mode, r in res.items():
    dl = statistics.median(r["dl"])
    line = f"{mode + ':':13} 100 MB in {dl:.3f} s ({100 / dl:.0f} MB/s), connect + small GET " \
           f"{statistics.median(r['lat']):.0f} us"
    if r["start"]:
        line += f", startup {statistics.median(r['start']):.2f} ms (min {min(r['start']):.2f})"
    print(line)
PY
echo "$N rounds, medians (load average before: $(cut -d' ' -f1-3 /proc/loadavg))"
/usr/bin/python3 "$work/nat.py" "$N" "$work/load.py"
