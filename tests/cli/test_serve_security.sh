#!/usr/bin/env bash
# hotyolo serve under attack (issue 14, request handling): JSON body bombs and huge images
# answered with a JSON error under 256 MB extra peak RSS (VmHWM) and 2 s; the watchdog
# times the forward pass only; non-finite / out-of-range infer inputs; cross-site and
# DNS-rebinding requests, load paths outside the model directories, admin token; failed
# loads not kept, model cap; forged log lines, NUL in query values, unknown query
# parameters, the classes filter, readiness; tritonclient's load/unload content types, CORS
# preflights for --allow-origin, token length and scheme case, pipelined requests' log lines.
# Servers bind 127.0.0.1 (--port 0).
# Usage: bash test_serve_security.sh CLI_PATH ASSETS_DIR SOURCE_DIR
set -u
cli="$1"
assets="$2"
[ -d "$assets" ] || { echo "skip: shared assets not found at $assets"; exit 77; }
model="$assets/weights/yolov8n.pt"
bus="$assets/images/bus.jpg"
py=/usr/bin/python3
for t in curl "$py"; do
    command -v "$t" >/dev/null 2>&1 || { echo "skip: $t not found"; exit 77; }
done
[ -f "$model" ] || { echo "skip: $model not found"; exit 77; }

pass=0
fail=0
tmp="$(mktemp -d)"
pids=()
cleanup() {
    local p
    for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
    [ -n "${KEEP_TMP:-}" ] || rm -rf -- "$tmp"
}
trap cleanup EXIT

ok() { pass=$((pass + 1)); echo "ok   [${SECONDS}s] $1"; }
bad() {
    fail=$((fail + 1))
    echo "FAIL $1"
    [ $# -gt 1 ] && printf '     check: %s\n' "$2"
    printf '     code=%s body: %s\n' "${code:-}" "$(head -c 400 "$tmp/body" 2>/dev/null)"
}
check() { if eval "$2"; then ok "$1"; else bad "$1" "$2"; fi; }
json_error() { grep -qE "^\{\"error\":\".+\",\"code\":$1\}$" "$tmp/body"; }

# start NAME ARGS...: sets pid, port, base, log; 0 once bound. The address space is capped
# (4 GB) so that a server without the fixes fails these tests instead of the machine.
start() {
    local name="$1"
    shift
    log="$tmp/$name.log"
    rm -f "$tmp/$name.port"
    (
        [ -z "${HY_TEST_SANITIZED:-}" ] && ulimit -v 4000000
        exec "$cli" serve --host 127.0.0.1 --port 0 --port-file "$tmp/$name.port" "$@"
    ) 2>"$log" &
    pid=$!
    pids+=("$pid")
    local i
    for i in $(seq 1 600); do
        if [ -s "$tmp/$name.port" ]; then
            port="$(cat "$tmp/$name.port")"
            base="http://127.0.0.1:$port"
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    port=""
    base="http://127.0.0.1:1"
    return 1
}
stop() { kill -TERM "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; }
req() { code="$(curl -s -o "$tmp/body" -w '%{http_code}' --max-time 60 "$@")"; }
hwm() { awk '/^VmHWM:/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0; } # kB
# bomb NAME CURL_ARGS...: one request; prints extra peak RSS (MB) and time; sets code, mb, secs
bomb() {
    local name="$1" h0 t0 t1
    shift
    h0="$(hwm)"
    t0="$(date +%s.%N)"
    req "$@"
    t1="$(date +%s.%N)"
    mb=$((($(hwm) - h0) / 1024))
    secs="$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f", b - a}')"
    echo "     measured: $name: code $code, +$mb MB peak RSS (VmHWM), $secs s"
}
within() { [ "$mb" -lt 256 ] && awk -v s="$secs" 'BEGIN {exit !(s < 2)}'; }

mkdir -p "$tmp/models" "$tmp/other"
cp "$model" "$tmp/models/m.pt"
printf 'SECRETBYTES of a file that is not weights\nsecond line\n' >"$tmp/models/junk.pt"
printf 'SECRET-OUTSIDE\n' >"$tmp/other/outside.pt"

# ---- S: the main server --------------------------------------------------------------------
start S --model "m=$tmp/models/m.pt,pin" --imgsz 320,64 --no-warmup --workers 1
check "S: started" '[ -n "$port" ]'

# ---- 7: JSON bodies are bounded before parsing ---------------------------------------------
"$py" -c 'import sys; n=4*1000*1000//3; sys.stdout.write("[" + "{},"*(n-1) + "{}]")' >"$tmp/bomb4.json"
bomb "4 MB of {} to infer" -H 'Content-Type: application/json' --data-binary @"$tmp/bomb4.json" "$base/v2/models/m/infer"
check "7: 4 MB of {} values -> 400 JSON error, < 256 MB, < 2 s" '[ "$code" = 400 ] && json_error 400 && within'
"$py" -c 'import sys; n=300000; sys.stdout.write("{\"inputs\":[" + "{},"*(n-1) + "{}]}")' >"$tmp/bomb300k.json"
bomb "300000 {} (under the value cap of imgsz 320) to infer" -H 'Content-Type: application/json' --data-binary @"$tmp/bomb300k.json" "$base/v2/models/m/infer"
check "7: 300000 empty objects -> 400 (objects are capped apart from numbers), < 256 MB, < 2 s" '[ "$code" = 400 ] && json_error 400 && within'
"$py" -c 'import sys; n=33*1000*1000//3; sys.stdout.write("[" + "{},"*(n-1) + "{}]")' >"$tmp/bomb33.json"
bomb "33 MB of {} to infer" -H 'Content-Type: application/json' --data-binary @"$tmp/bomb33.json" "$base/v2/models/m/infer"
check "7: 33 MB of {} values (under --max-body) -> 413 JSON error, < 256 MB, < 2 s" '[ "$code" = 413 ] && json_error 413 && within'
"$py" -c 'import sys; sys.stdout.write("{\"parameters\":{\"path\":[" + "1,"*20000 + "1]}}")' >"$tmp/adminbomb.json"
bomb "40 kB of values to load" -H 'Content-Type: application/json' --data-binary @"$tmp/adminbomb.json" "$base/v2/repository/models/m/load"
check "7: repository load with 20000 values -> 400 (a few values at most)" '[ "$code" = 400 ] && json_error 400 && grep -q "values" "$tmp/body"'
# a legitimate body still works: shape 1x3x32x32
"$py" -c 'import sys; v=sys.argv[1]; sys.stdout.write("{\"id\":\"r\\n1\",\"inputs\":[{\"name\":\"images\",\"shape\":[1,3,32,32],\"datatype\":\"FP32\",\"data\":[" + ",".join(["0.5"]*3071 + [v]) + "]}]}")' 0.25 >"$tmp/ok.json"
req -H 'Content-Type: application/json' --data-binary @"$tmp/ok.json" "$base/v2/models/m/infer"
check "7: a legitimate infer body -> 200, id echoed" '[ "$code" = 200 ] && grep -q "\"id\":\"r\\\\n1\"" "$tmp/body" && grep -q "\"shape\":\[1,84,21\]" "$tmp/body"'

# ---- 12: non-finite and out-of-range inputs --------------------------------------------
for v in 1e39 3e38 -0.5 2; do
    "$py" -c 'import sys; v=sys.argv[1]; sys.stdout.write("{\"inputs\":[{\"name\":\"images\",\"shape\":[1,3,32,32],\"datatype\":\"FP32\",\"data\":[" + ",".join(["0.5"]*3071 + [v]) + "]}]}")' "$v" >"$tmp/nf.json"
    req -H 'Content-Type: application/json' --data-binary @"$tmp/nf.json" "$base/v2/models/m/infer"
    check "12: infer data value $v -> 400 naming the element and [0, 1]" '[ "$code" = 400 ] && json_error 400 && grep -q "data\[3071\]" "$tmp/body" && grep -q "\[0, 1\]" "$tmp/body"'
done
req -H 'Content-Type: application/json' --data-binary @"$tmp/ok.json" "$base/v2/models/m/infer"
check "12: output never holds null" '[ "$code" = 200 ] && ! grep -q null "$tmp/body"'

# ---- 11: decode cost: the pixel cap is checked from the header ---------------------------
"$py" - "$tmp/huge.png" 16384 16384 <<'EOF'
import struct, sys, zlib
path, w, h = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def chunk(t, d):
    return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
c = zlib.compressobj(9)
row = b"\0" * (1 + 3 * w)
parts = [c.compress(row * 64) for _ in range(h // 64)] + [c.flush()]
with open(path, "wb") as f:
    f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)))
    f.write(chunk(b"IDAT", b"".join(parts)) + chunk(b"IEND", b""))
EOF
bomb "16384x16384 PNG to detect" --data-binary @"$tmp/huge.png" "$base/v1/detect"
check "11: 16384x16384 PNG ($(($(stat -c %s "$tmp/huge.png") / 1024)) kB) -> 413 naming size and cap, < 256 MB, < 2 s" '[ "$code" = 413 ] && json_error 413 && grep -q "16384x16384" "$tmp/body" && grep -q "max-pixels" "$tmp/body" && within'
req --data-binary @"$bus" "$base/v1/detect?imgsz=320"
check "11: a normal image still detects" '[ "$code" = 200 ] && grep -q "\"class_name\":\"bus\"" "$tmp/body"'

# ---- 14: classes filter, query validation, NUL, forged log lines --------------------------
req --data-binary @"$bus" "$base/v1/detect?imgsz=320&classes=0"
check "14: classes=0 keeps only persons" '[ "$code" = 200 ] && grep -q "\"class_id\":0" "$tmp/body" && ! grep -q "\"class_id\":[1-9]" "$tmp/body"'
for q in "classes=99" "classes=a" "classes=0,,2" "classes=-1"; do
    req --data-binary @"$bus" "$base/v1/detect?imgsz=320&$q"
    check "14: $q -> 400" '[ "$code" = 400 ] && json_error 400 && grep -q classes "$tmp/body"'
done
req --data-binary @"$bus" "$base/v1/detect?imgsz=320&bogus=1"
check "14: unknown query parameter -> 400 naming it" '[ "$code" = 400 ] && json_error 400 && grep -q "bogus" "$tmp/body"'
req "$base/v1/models?x=1"
check "14: unknown query parameter on GET -> 400" '[ "$code" = 400 ] && json_error 400'
req --data-binary @"$bus" "$base/v1/detect?imgsz=320&model=m%00x"
check "14: model=m%00x -> 400 (not served as m)" '[ "$code" = 400 ] && json_error 400'
req "$base/v1/models%0a2099-01-01T00:00:00.000Z%20hotyolo%20serve:%20info:%20FORGED"
req -H 'Content-Type: application/json' --data-binary '{"parameters":{"path":"/x\n2099-01-01T00:00:00.000Z hotyolo serve: info: FORGED2"}}' "$base/v2/repository/models/m/load"
sleep 0.3
check "14: %0a in a path or a load path cannot forge a log line" '! grep -qE "^2099-01-01T00:00:00.000Z hotyolo serve: info: FORGED" "$log" && grep -q "FORGED" "$log"'
# a pipelined request MHD parses itself (no gate peek) and the gate answers (no Host): its
# method and URL are escaped in the log line too
"$py" - "$port" <<'PYEOF'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(b"GET /health/live HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
          b"GET /x%0d%0a2099-01-01T00:00:00.000Z%20hotyolo%20serve:%20info:%20FORGED3 HTTP/1.1\r\n\r\n")
t0 = time.time()
while time.time() - t0 < 3:
    try:
        if not s.recv(65536):
            break
    except OSError:
        break
PYEOF
sleep 0.3
check "14: a pipelined request answered by the gate (%0d%0a in its URL) cannot forge a log line" '! grep -qE "^2099-01-01T00:00:00.000Z hotyolo serve: info: FORGED3" "$log" && grep -q "FORGED3" "$log"'

# ---- 9: cross-site, rebinding, load paths, admin token -----------------------------------
pinned_ready() { curl -s --max-time 10 "$base/v2/models/m/ready" | grep -q '"ready":true'; }
req -X POST -H 'Content-Type: text/plain' -H 'Origin: http://evil.example' -H 'Host: evil.example' --data-binary 'x' "$base/v2/repository/models/m/unload"
check "9: unload with text/plain, foreign Origin and Host -> 403, model still ready" '[ "$code" = 403 ] && json_error 403 && pinned_ready'
req -X POST -H 'Content-Type: text/plain' --data-binary '{}' "$base/v2/repository/models/m/unload"
check "9: unload with Content-Type text/plain -> 415, model still ready" '[ "$code" = 415 ] && json_error 415 && pinned_ready'
req -X POST -H 'Content-Type: application/x-www-form-urlencoded' "$base/v2/repository/models/m/unload"
check "9: unload as a form (no body) -> 415" '[ "$code" = 415 ] && pinned_ready'
req -X POST -H 'Origin: http://evil.example' "$base/v2/repository/models/m/unload"
check "9: unload from a foreign Origin -> 403" '[ "$code" = 403 ] && pinned_ready'
req -H 'Host: rebind.evil.example' "$base/v1/models"
check "9: DNS rebinding (foreign Host) on GET /v1/models -> 403" '[ "$code" = 403 ] && json_error 403 && ! grep -q "models/m.pt" "$tmp/body"'
req -H "Origin: http://127.0.0.1:$port" -H 'Content-Type: application/json' --data-binary '{"ready":true}' "$base/v2/repository/index"
check "9: same-origin request -> 200" '[ "$code" = 200 ]'
req -H 'Host: localhost' "$base/health/live"
check "9: Host localhost -> 200" '[ "$code" = 200 ]'
for f in /etc/passwd /nonexistent/x.pt "$tmp/other/outside.pt" "$tmp/models/../other/outside.pt"; do
    req -H 'Content-Type: application/json' --data-binary "{\"parameters\":{\"path\":\"$f\"}}" "$base/v2/repository/models/x/load"
    cp "$tmp/body" "$tmp/body.$(basename "$f")"
    check "9: load from $f (outside the model dirs) -> 403, no file bytes" '[ "$code" = 403 ] && json_error 403 && ! grep -qiE "SECRET|root:|first bytes|no such" "$tmp/body"'
done
check "9: the answer does not tell an existing file from a missing one" 'cmp -s "$tmp/body.passwd" "$tmp/body.x.pt"'
req -H 'Content-Type: application/json' --data-binary "{\"parameters\":{\"path\":\"$tmp/models/junk.pt\"}}" "$base/v2/repository/models/j/load"
check "9: a junk file in the model dir -> 400 without its bytes" '[ "$code" = 400 ] && json_error 400 && ! grep -qiE "SECRET|first bytes|53" "$tmp/body"'
req "$base/v1/models"
check "9: /v1/models shows no loader text either" '! grep -qiE "SECRET|first bytes" "$tmp/body"'
get_index() { curl -s --max-time 10 -X POST "$base/v2/repository/index"; }
# concurrent loads and unloads of one added name: every answer is JSON, and once the name is
# gone no metric series of it is left (a load finishing after the unload forgot the name)
"$py" - "$port" "$tmp/models/m.pt" >"$tmp/race.out" 2>&1 <<'PYEOF'
import http.client, json, sys, threading
port, path = int(sys.argv[1]), sys.argv[2]
bad, codes, lock = [], {}, threading.Lock()
def worker(k):
    for i in range(20):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            if k % 2 == 0:
                c.request("POST", "/v2/repository/models/race/load",
                          body=json.dumps({"parameters": {"path": path}}),
                          headers={"Content-Type": "application/json"})
            else:
                c.request("POST", "/v2/repository/models/race/unload")
            r = c.getresponse()
            body = r.read()
            with lock:
                codes[r.status] = codes.get(r.status, 0) + 1
                if not body.startswith(b"{"):
                    bad.append((r.status, body[:80]))
        except Exception as e:
            with lock:
                bad.append(repr(e)[:80])
        finally:
            c.close()
ts = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
[t.start() for t in ts]
[t.join() for t in ts]
print("codes", sorted(codes.items()), "bad", bad[:3])
PYEOF
curl -s --max-time 10 -X POST "$base/v2/repository/models/race/unload" >/dev/null
echo "     measured: $(cat "$tmp/race.out")"
curl -s --max-time 10 "$base/metrics" >"$tmp/metrics.race"
check "13: concurrent load/unload of one name: JSON answers, no series left for the gone name" 'grep -q "bad \[\]" "$tmp/race.out" && ! grep -q "model=\"race\"" "$tmp/metrics.race"'
stop

# admin token (from the environment) on a server with a --model-dir
printf 'secret-token-123\n' >"$tmp/token"
start T --model "m=$model,pin" --imgsz 64 --no-warmup --model-dir "$tmp/models" --admin-token-file "$tmp/token" --max-models 2 --allow-origin https://app.example
check "T: started" '[ -n "$port" ]'
req -X POST "$base/v2/repository/models/m/unload"
check "9: --admin-token: unload without a token -> 401" '[ "$code" = 401 ] && json_error 401 && pinned_ready'
req -X POST -H 'Authorization: Bearer wrong-token-123' "$base/v2/repository/models/m/unload"
check "9: --admin-token: wrong token -> 401" '[ "$code" = 401 ] && pinned_ready'
A=(-H 'Authorization: Bearer secret-token-123' -H 'Content-Type: application/json')
req "${A[@]}" --data-binary "{\"parameters\":{\"path\":\"$tmp/models/m.pt\"}}" "$base/v2/repository/models/m2/load"
check "9: load from --model-dir with the token -> 200" '[ "$code" = 200 ]'
# tritonclient: the sync client sends its JSON body without a Content-Type, the aio client as
# application/octet-stream; neither is a type a cross-site form can send
req -H 'Authorization: Bearer secret-token-123' -H 'Content-Type:' --data-binary "{\"parameters\":{\"path\":\"$tmp/models/m.pt\"}}" "$base/v2/repository/models/m2/load"
check "tritonclient: load with a JSON body and no Content-Type (tritonclient) -> 200" '[ "$code" = 200 ]'
req -H 'Authorization: Bearer secret-token-123' -H 'Content-Type: application/octet-stream' --data-binary "{\"parameters\":{\"path\":\"$tmp/models/m.pt\"}}" "$base/v2/repository/models/m2/load"
check "tritonclient: load as application/octet-stream (tritonclient aio) -> 200" '[ "$code" = 200 ]'
req -H 'Authorization: Bearer secret-token-123' -H 'Content-Type: Multipart/Form-Data; boundary=x' --data-binary '--x--' "$base/v2/repository/models/m2/load"
check "tritonclient: load as multipart/form-data (any case, parameters) -> 415" '[ "$code" = 415 ] && json_error 415'
req -H 'Authorization: bearer secret-token-123' -H 'Content-Type: application/json' --data-binary "{\"parameters\":{\"path\":\"$tmp/models/m.pt\"}}" "$base/v2/repository/models/m2/load"
check "token: the Bearer scheme matches in any case -> 200" '[ "$code" = 200 ]'

# --allow-origin: preflights of an allowed origin are answered, its responses name it
curl -s -D "$tmp/hdr" -o /dev/null -w '%{http_code}' --max-time 10 -X OPTIONS -H 'Origin: https://app.example' -H 'Access-Control-Request-Method: POST' -H 'Access-Control-Request-Headers: authorization, content-type' "$base/v2/repository/models/m2/load" >"$tmp/code"
check "CORS: OPTIONS preflight from an --allow-origin origin -> 204 with Access-Control-Allow-*" '[ "$(cat "$tmp/code")" = 204 ] && grep -qi "^Access-Control-Allow-Origin: https://app.example" "$tmp/hdr" && grep -qi "^Access-Control-Allow-Methods: .*POST" "$tmp/hdr" && grep -qi "^Access-Control-Allow-Headers: .*Authorization" "$tmp/hdr"'
curl -s -D "$tmp/hdr" -o /dev/null -w '%{http_code}' --max-time 10 -H 'Origin: https://app.example' "$base/v1/models" >"$tmp/code"
check "CORS: a GET from the allowed origin -> 200 naming it in Access-Control-Allow-Origin" '[ "$(cat "$tmp/code")" = 200 ] && grep -qi "^Access-Control-Allow-Origin: https://app.example" "$tmp/hdr"'
req -X OPTIONS -H 'Origin: https://evil.example' -H 'Access-Control-Request-Method: POST' "$base/v2/repository/models/m2/load"
check "CORS: a preflight from another origin -> 403" '[ "$code" = 403 ] && json_error 403'
# a short token is refused at start, however it is given
timeout 30 "$cli" serve --port 0 --model "m=$model" --admin-token short7c >/dev/null 2>"$tmp/short.err"
rc1=$?
HY_ADMIN_TOKEN=short7c timeout 30 "$cli" serve --port 0 --model "m=$model" >/dev/null 2>"$tmp/short2.err"
rc2=$?
check "token: --admin-token / HY_ADMIN_TOKEN shorter than 8 characters -> exit 2 naming it" '[ "$rc1" = 2 ] && [ "$rc2" = 2 ] && grep -q "8 characters" "$tmp/short.err" && grep -q "HY_ADMIN_TOKEN" "$tmp/short2.err"'
# ---- 10: failed loads are not kept; the number of models is capped -----------------------
req "${A[@]}" --data-binary "{\"parameters\":{\"path\":\"$tmp/models/m.pt\"}}" "$base/v2/repository/models/m3/load"
check "10: --max-models 2: a third model -> 409" '[ "$code" = 409 ] && json_error 409'
req -X POST -H 'Authorization: Bearer secret-token-123' "$base/v2/repository/models/m2/unload"
check "10: unloading a model added by a request frees its name" '[ "$code" = 200 ] && ! get_index | grep -q m2'
"$py" - "$port" "$tmp/models/junk.pt" 10 >/dev/null <<'EOF'
import http.client, json, sys
port, path, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
h = {"Content-Type": "application/json", "Authorization": "Bearer secret-token-123"}
for i in range(n):
    c.request("POST", "/v2/repository/models/junk%d/load" % i, json.dumps({"parameters": {"path": path}}), h)
    c.getresponse().read()
EOF
curl -s "$base/metrics" >"$tmp/metrics0"
get_index >"$tmp/index0"
t0=$SECONDS
"$py" - "$port" "$tmp/models/junk.pt" 5000 >"$tmp/codes" <<'EOF'
import http.client, json, sys
port, path, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
h = {"Content-Type": "application/json", "Authorization": "Bearer secret-token-123"}
codes = {}
for i in range(n):
    c.request("POST", "/v2/repository/models/junk%d/load" % i, json.dumps({"parameters": {"path": path}}), h)
    r = c.getresponse()
    r.read()
    codes[r.status] = codes.get(r.status, 0) + 1
print(codes)
EOF
curl -s "$base/metrics" >"$tmp/metrics1"
get_index >"$tmp/index1"
echo "     measured: 5000 junk loads in $((SECONDS - t0)) s: $(cat "$tmp/codes"); /metrics $(wc -c <"$tmp/metrics0") -> $(wc -c <"$tmp/metrics1") bytes"
check "10: 5000 failed loads: each 400, model index unchanged" 'grep -q "{400: 5000}" "$tmp/codes" && cmp -s "$tmp/index0" "$tmp/index1"'
check "10: /metrics keeps its size (same lines, no junk series)" '[ "$(wc -l <"$tmp/metrics0")" = "$(wc -l <"$tmp/metrics1")" ] &&
    [ $(( $(wc -c <"$tmp/metrics1") - $(wc -c <"$tmp/metrics0") )) -lt 200 ] && ! grep -q junk "$tmp/metrics1"'
stop

# ---- 14: readiness means every pinned model can serve; lazy paths checked at start --------
start R --model "m=$model,pin" --imgsz 64 --no-warmup
req -X POST "$base/v2/repository/models/m/unload"
req "$base/health/ready"
check "14: /health/ready after the pinned model was unloaded -> 503" '[ "$code" = 503 ] && grep -q unloaded "$tmp/body"'
stop
start L --model "m=$model,pin" --model "lazy=$tmp/missing.pt" --imgsz 64 --no-warmup
rc=$?
[ $rc -eq 0 ] && stop
check "14: a lazy model whose file is missing: the server does not start, naming it" '[ $rc -ne 0 ] && grep -q "missing.pt" "$log"'

# ---- 11: the watchdog times the forward pass only -----------------------------------------
"$py" - "$tmp/big.png" 5000 5000 <<'EOF'
import struct, sys, zlib
path, w, h = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def chunk(t, d):
    return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
c = zlib.compressobj(6)
row = b"\0" + bytes(range(256)) * (3 * w // 256) + b"\0" * (3 * w % 256)
parts = [c.compress(row * 50) for _ in range(h // 50)] + [c.flush()]
with open(path, "wb") as f:
    f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)))
    f.write(chunk(b"IDAT", b"".join(parts)) + chunk(b"IEND", b""))
EOF
start W --model "m=$model,pin" --imgsz 64 --no-warmup --threads 1 --timeout 250 --workers 1
for i in 1 2 3 4; do
    req --data-binary @"$tmp/big.png" "$base/v1/detect"
    for j in $(seq 1 100); do # wait until the worker is idle (a 504 still finishes its run)
        [ "$(curl -s "$base/metrics" | awk '/^hotyolo_inference_running / {print $2}')" = 0 ] && break
        sleep 0.05
    done
done
grep -oE '"decode":[0-9.]+' "$tmp/body" | head -1 | sed 's/^/     measured: 25 MP PNG /'
check "11: slow decodes (25 MP PNG, --timeout 250) do not trigger a watchdog reload" '! grep -q watchdog "$log" && ! grep -q "loading new version" "$log"'
stop

check "no sanitizer report in any server log" '! grep -lE "runtime error|AddressSanitizer|LeakSanitizer" "$tmp"/*.log'
echo "test_serve_security: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
