#!/usr/bin/env bash
# hotyolo serve under a service manager (issue 19, docs/deploy.md): systemd's sd_notify.
# A python3 datagram socket stands in for systemd's NOTIFY_SOCKET.
#   1. --listen-early, three pinned models (a slow warm-up, /health/ready polled in a loop
#      meanwhile): READY=1 arrives, and no /health/ready request sent after READY=1 arrived
#      gets anything but 200 (READY never precedes warm-up); 503s were seen before it;
#      STATUS= lines name the loading; WATCHDOG=1 repeats with WATCHDOG_USEC (and
#      WATCHDOG_PID = the server's pid); STOPPING=1 on SIGTERM, then exit 0.
#   2. default (bind once warm): READY=1, and /health/ready is 200 at the first try after it.
#   3. WATCHDOG_PID naming another process: no WATCHDOG=1 (the watchdog is not ours).
#   4. deploy/: `systemd-analyze verify` of hotyolo.service (when the tool exists), and the
#      Kubernetes manifest's probes point at endpoints the server answers.
# Skipped without libsystemd.so.0 (sd_notify is optional at run time).
# Usage: bash test_serve_notify.sh CLI_PATH ASSETS_DIR SOURCE_DIR
set -u
cli="$1"
assets="$2"
src="$3"
py=/usr/bin/python3
[ -x "$py" ] || { echo "skip: no $py"; exit 77; }
[ -d "$assets" ] || { echo "skip: shared assets not found at $assets"; exit 77; }
model="$assets/weights/yolov8n.pt"
[ -f "$model" ] || { echo "skip: $model not found"; exit 77; }
"$py" -c 'import ctypes; ctypes.CDLL("libsystemd.so.0")' 2>/dev/null ||
    { echo "skip: libsystemd.so.0 not installed (Debian package libsystemd0)"; exit 77; }

pass=0
fail=0
tmp="$(mktemp -d)"
trap 'rm -rf -- "$tmp"' EXIT
ok() { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; [ $# -gt 1 ] && printf '     %s\n' "$2"; }

# The driver: starts the server with NOTIFY_SOCKET, records every datagram and every
# /health/ready answer with its send time, SIGTERMs it, prints one JSON summary.
cat >"$tmp/drive.py" <<'PY'
import json, os, signal, socket, subprocess, sys, threading, time, urllib.request

tmp, mode, wd_pid = sys.argv[1], sys.argv[2], sys.argv[3]
cmd = sys.argv[4:]
sock_path = os.path.join(tmp, "notify-%s.sock" % mode)
port_file = os.path.join(tmp, "port-%s" % mode)
sk = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
sk.bind(sock_path)
sk.settimeout(0.2)
msgs = []  # (monotonic seconds at arrival, text)
done = threading.Event()
def listen():
    while not done.is_set():
        try:
            data = sk.recv(4096)
        except socket.timeout:
            continue
        msgs.append((time.monotonic(), data.decode("utf-8", "replace")))
threading.Thread(target=listen, daemon=True).start()

env = dict(os.environ, NOTIFY_SOCKET=sock_path, WATCHDOG_USEC="400000")
if wd_pid == "self":  # WATCHDOG_PID = the server's own pid, set by the shell it execs from
    cmd = ["sh", "-c", 'WATCHDOG_PID=$$; export WATCHDOG_PID; exec "$@"', "sh"] + cmd
elif wd_pid == "other":
    env["WATCHDOG_PID"] = "1"
log = open(os.path.join(tmp, "server-%s.log" % mode), "w")
proc = subprocess.Popen(cmd + ["--port-file", port_file], env=env, stderr=log)
def has(text):
    return [t for t, m in msgs if text in m.split("\n")]
polls = []  # (send time, arrival time, HTTP status or 0)
t_end = time.monotonic() + 240
port = None
while time.monotonic() < t_end and proc.poll() is None:
    if port is None and os.path.exists(port_file) and open(port_file).read().strip():
        port = int(open(port_file).read())
    if port is not None:
        t0 = time.monotonic()
        try:
            code = urllib.request.urlopen("http://127.0.0.1:%d/health/ready" % port, timeout=5).status
        except urllib.error.HTTPError as e:
            code = e.code
        except Exception:
            code = 0
        polls.append((t0, time.monotonic(), code))
        r = has("READY=1")
        if r and [p for p in polls if p[0] > r[0]] and time.monotonic() > r[0] + 1.5:
            break  # ready, and 1.5 s of watchdog pings after it
    time.sleep(0.01)
t_term = time.monotonic()
proc.send_signal(signal.SIGTERM)
try:
    rc = proc.wait(timeout=120)
except subprocess.TimeoutExpired:
    proc.kill()
    rc = -9
time.sleep(0.3)
done.set()
ready = has("READY=1")
t_ready = ready[0] if ready else None
out = {
    "rc": rc,
    "ready": len(ready),
    "stopping_after_term": len([t for t in has("STOPPING=1") if t >= t_term]),
    "stopping_before_term": len([t for t in has("STOPPING=1") if t < t_term]),
    "watchdog_after_ready": len([t for t in has("WATCHDOG=1") if t_ready and t_ready <= t < t_term]),
    "watchdog_s": round(t_term - t_ready, 2) if t_ready else 0,
    "status": [l for _, m in msgs for l in m.split("\n") if l.startswith("STATUS=")][:40],
    "polls": len(polls),
    "n503_before_ready": len([p for p in polls if p[2] == 503 and t_ready and p[1] <= t_ready]),
    # a poll SENT after READY=1 arrived that was not answered 200: READY came too early
    "bad_after_ready": [p[2] for p in polls if t_ready and p[0] > t_ready and p[2] != 200],
    "first_after_ready": next((p[2] for p in polls if t_ready and p[0] > t_ready), None),
    "ready_ms_after_listen": round((t_ready - polls[0][0]) * 1e3) if t_ready and polls else None,
}
print(json.dumps(out))
PY

j() { "$py" -c 'import json,sys; v=json.load(open(sys.argv[1]))[sys.argv[2]]; print(v if not isinstance(v,list) else json.dumps(v))' "$1" "$2"; }

pins=(--model "a=$model,pin" --model "b=$model,pin" --model "c=$model,pin")
# imgsz 320, 2 warm-up passes: ~2 s of warm-up for the three (~20 s under sanitizers)
base=("$cli" serve --host 127.0.0.1 --port 0 --imgsz 320 --warmup 2 --threads 1 --workers 1)

# ---- 1. listen early: READY only once /health/ready is 200 ------------------------------
"$py" "$tmp/drive.py" "$tmp" early self "${base[@]}" --listen-early "${pins[@]}" >"$tmp/early.json"
cat "$tmp/early.json"
r="$tmp/early.json"
[ "$(j "$r" ready)" = 1 ] && ok "listen-early: READY=1 sent once" ||
    bad "listen-early: READY=1 sent once" "$(cat "$r"; tail -5 "$tmp/server-early.log")"
[ "$(j "$r" bad_after_ready)" = "[]" ] && [ "$(j "$r" first_after_ready)" = 200 ] &&
    ok "listen-early: every /health/ready sent after READY=1 got 200" ||
    bad "listen-early: READY=1 preceded readiness" "answers after READY: $(j "$r" bad_after_ready)"
[ "$(j "$r" n503_before_ready)" -gt 0 ] &&
    ok "listen-early: warm-up was observable ($(j "$r" n503_before_ready) x 503 before READY, READY $(j "$r" ready_ms_after_listen) ms after the first poll)" ||
    bad "listen-early: no 503 seen before READY (warm-up too fast to prove the order)"
grep -q "loading and warming pinned model 'c'" "$r" && grep -q 'STATUS=ready: serving on http://127.0.0.1:' "$r" &&
    ok "listen-early: STATUS= lines (loading, ready)" || bad "listen-early: STATUS= lines" "$(j "$r" status)"
[ "$(j "$r" watchdog_after_ready)" -ge 3 ] &&
    ok "watchdog: $(j "$r" watchdog_after_ready) x WATCHDOG=1 in $(j "$r" watchdog_s) s (WATCHDOG_USEC=0.4 s, WATCHDOG_PID=server)" ||
    bad "watchdog: WATCHDOG=1 repeats" "$(j "$r" watchdog_after_ready) in $(j "$r" watchdog_s) s"
[ "$(j "$r" stopping_before_term)" = 0 ] && [ "$(j "$r" stopping_after_term)" = 1 ] &&
    ok "SIGTERM: STOPPING=1 (once, not before)" || bad "SIGTERM: STOPPING=1" "$(cat "$r")"
[ "$(j "$r" rc)" = 0 ] && ok "SIGTERM: exit 0" || bad "SIGTERM: exit 0" "rc $(j "$r" rc)"

# ---- 2. default: bound once warm, ready at once ------------------------------------------
"$py" "$tmp/drive.py" "$tmp" default none "${base[@]}" --model "a=$model,pin" >"$tmp/default.json"
r="$tmp/default.json"
[ "$(j "$r" ready)" = 1 ] && [ "$(j "$r" first_after_ready)" = 200 ] && [ "$(j "$r" bad_after_ready)" = "[]" ] &&
    [ "$(j "$r" rc)" = 0 ] &&
    ok "default: READY=1, /health/ready 200 at the first try after it" ||
    bad "default: READY=1 then 200" "$(cat "$r")"

# ---- 3. a watchdog for another pid is not ours ---------------------------------------------
"$py" "$tmp/drive.py" "$tmp" other other "${base[@]}" --model "a=$model,pin" >"$tmp/other.json"
r="$tmp/other.json"
[ "$(j "$r" ready)" = 1 ] && [ "$(j "$r" watchdog_after_ready)" = 0 ] &&
    ok "watchdog: WATCHDOG_PID of another process: no WATCHDOG=1" ||
    bad "watchdog: WATCHDOG_PID honoured" "$(cat "$r")"

# ---- 4. deploy/ ----------------------------------------------------------------------------
unit="$src/deploy/hotyolo.service"
if [ ! -f "$unit" ]; then
    bad "deploy/hotyolo.service exists"
elif command -v systemd-analyze >/dev/null; then
    # ExecStart names the installed binary; verify checks it is executable: point it at ours
    mkdir -p "$tmp/unit"
    sed "s#/usr/local/bin/hotyolo#$(cd "$(dirname "$cli")" && pwd)/$(basename "$cli")#g" "$unit" >"$tmp/unit/hotyolo.service"
    if (cd "$tmp/unit" && SYSTEMD_LOG_LEVEL=warning systemd-analyze verify --man=no ./hotyolo.service) >"$tmp/verify" 2>&1 &&
        ! grep -v -i "^$" "$tmp/verify" | grep -q .; then
        ok "systemd-analyze verify deploy/hotyolo.service"
    else
        bad "systemd-analyze verify deploy/hotyolo.service" "$(head -5 "$tmp/verify")"
    fi
else
    echo "skip: systemd-analyze not installed (unit not verified)"
fi
grep -q '^Type=notify' "$unit" && grep -q '^WatchdogSec=' "$unit" &&
    ok "hotyolo.service: Type=notify, WatchdogSec" || bad "hotyolo.service: Type=notify, WatchdogSec"
if "$py" -c 'import yaml' 2>/dev/null; then
    "$py" - "$src/deploy/kubernetes.yaml" >"$tmp/k8s" 2>&1 <<'PY'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
dep = next(d for d in docs if d["kind"] == "Deployment")
c = dep["spec"]["template"]["spec"]["containers"][0]
for probe, path in (("startupProbe", "/health/ready"), ("readinessProbe", "/health/ready"),
                    ("livenessProbe", "/health/live")):
    assert c[probe]["httpGet"]["path"] == path, (probe, c[probe])
assert "preStop" in c["lifecycle"], "no preStop"
r = c["resources"]["requests"]
assert r["cpu"] and r["memory"], r
print("ok")
PY
    [ "$(tail -1 "$tmp/k8s")" = ok ] && ok "kubernetes.yaml: startup/readiness on /health/ready, liveness on /health/live, preStop, requests" ||
        bad "kubernetes.yaml" "$(tail -3 "$tmp/k8s")"
else
    echo "skip: python3-yaml not installed (manifest not parsed)"
fi

echo "passed $pass, failed $fail"
[ "$fail" -eq 0 ]
