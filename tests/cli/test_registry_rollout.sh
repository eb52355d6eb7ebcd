#!/usr/bin/env bash
# Serving from the registry (docs/registry.md "Serving and rollout"): a server watching
# registry:m@production under load (wrk, 4 connections) while the alias moves v1 -> v2 -> a
# v3 whose blob was corrupted on disk -> v2: zero failed requests, v3 refused (logged, shown
# in /v1/models, counted in /metrics), v1 and v2 each seen serving in /v1/models, v3 never.
# Also registry:PROJECT (and its re-binding), registry:NAME@N, an unknown reference at start
# (exit 1 naming it), and oci:// when the remote cannot be reached (the newest cached
# version; none cached: exit 1 naming the URL).
# Usage: bash test_registry_rollout.sh CLI_PATH ASSETS_DIR SOURCE_DIR
set -u
cli="$1"
assets="$2"
[ -d "$assets" ] || { echo "skip: shared assets not found at $assets"; exit 77; }
model="$assets/weights/yolov8n.pt"
bus="$assets/images/bus.jpg"
py=/usr/bin/python3
[ -x "$py" ] || { echo "skip: $py not found"; exit 0; }

pass=0
fail=0
tmp="$(mktemp -d)"
pids=()
cleanup() {
    local p
    for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
    chmod -R u+w "$tmp" 2>/dev/null
    rm -rf -- "$tmp"
}
trap cleanup EXIT

ok() { pass=$((pass + 1)); echo "ok   [${SECONDS}s] $1"; }
bad() {
    fail=$((fail + 1))
    echo "FAIL $1"
    [ $# -gt 1 ] && printf '     check: %s\n' "$2"
    printf '     code=%s body: %s\n' "${code:-}" "$(head -c 800 "$tmp/body" 2>/dev/null)"
    [ -n "${log:-}" ] && printf '     server log (tail):\n%s\n' "$(tail -n 12 "$log" 2>/dev/null)"
}
check() { if eval "$2"; then ok "$1"; else bad "$1" "$2"; fi; }

# Sanitized builds are ~10x slower: smaller shapes, no warm-up passes.
if [ -n "${HY_TEST_SANITIZED:-}" ]; then
    srv_opts=(--imgsz 128 --no-warmup --workers 2 --threads 1)
    swap_wait=600 # x 0.1 s
else
    srv_opts=(--imgsz 320 --warmup 1 --workers 2 --threads 1)
    swap_wait=300
fi

start() { # start NAME ARGS...: pid, port, base, log; 0 once bound
    local name="$1" i
    shift
    log="$tmp/$name.log"
    "$cli" serve --host 127.0.0.1 --port 0 --port-file "$tmp/$name.port" "${srv_opts[@]}" "$@" \
        2>"$log" &
    pid=$!
    pids+=("$pid")
    for i in $(seq 1 1200); do
        if [ -s "$tmp/$name.port" ]; then
            port="$(cat "$tmp/$name.port")"
            base="http://127.0.0.1:$port"
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    base="http://127.0.0.1:1"
    return 1
}
stop_wait() { # SIGTERM; exit_rc (124: did not exit)
    local i
    kill -TERM "$pid" 2>/dev/null
    for i in $(seq 1 600); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        kill -KILL "$pid"
        wait "$pid" 2>/dev/null
        exit_rc=124
    else
        wait "$pid"
        exit_rc=$?
    fi
}
req() { code="$(curl -s -o "$tmp/body" -w '%{http_code}' --max-time 60 "$@")"; }
get() { req "$base$1"; }
# mfield FILE MODEL KEY[.KEY...]: a field of a model in a /v1/models body ("" when absent/null)
mfield() {
    "$py" - "$@" <<'PY' 2>/dev/null
import json, sys
d = json.load(open(sys.argv[1]))
m = [x for x in d.get("models", []) if x.get("name") == sys.argv[2]]
v = m[0] if m else None
for k in sys.argv[3].split("."):
    v = v.get(k) if isinstance(v, dict) else None
print("" if v is None else v)
PY
}
reg() { "$cli" registry --registry "$R" "$@"; }
blob_of() { reg show "$1" --json | "$py" -c 'import json,sys; print(json.load(sys.stdin)["blob"])'; }
# wait_version MODEL N: until /v1/models shows registry version N serving (bounded)
wait_version() {
    local i
    for i in $(seq 1 "$swap_wait"); do
        curl -s -o "$tmp/wv.json" --max-time 10 "$base/v1/models"
        [ "$(mfield "$tmp/wv.json" "$1" registry.version)" = "$2" ] && return 0
        sleep 0.1
    done
    return 1
}

# ---- registry: v1, v2 (fused: other bytes, same detections), v3 (f32, corrupted on disk) ----
R="$tmp/reg"
"$cli" convert "$model" "$tmp/v1.safetensors" >/dev/null 2>&1
"$cli" convert "$model" "$tmp/v2.safetensors" --fuse >/dev/null 2>&1
"$cli" convert "$model" "$tmp/v3.safetensors" --dtype f32 >/dev/null 2>&1
reg add "$tmp/v1.safetensors" --name m >/dev/null 2>"$tmp/err1"
reg add "$tmp/v2.safetensors" --name m >/dev/null 2>>"$tmp/err1"
reg add "$tmp/v3.safetensors" --name m >/dev/null 2>>"$tmp/err1"
reg alias m@1 production >/dev/null 2>>"$tmp/err1"
reg bind proj m@1 >/dev/null 2>>"$tmp/err1"
b3="$(blob_of m@3)"
check "registry holds m@1, m@2, m@3 (three blobs) with production -> 1 and proj bound to 1" \
    '[ -f "$b3" ] && [ "$(blob_of m@production)" = "$(blob_of m@1)" ] && [ "$(blob_of m@1)" != "$(blob_of m@2)" ] &&
    [ "$b3" != "$(blob_of m@1)" ] && [ "$b3" != "$(blob_of m@2)" ]'
# corrupt v3 in its tensor data (bytes 1 KB before the end): it would still parse
size3="$(stat -c %s "$b3")"
chmod u+w "$b3"
"$py" - "$b3" "$((size3 - 1024))" <<'PY'
import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(int(sys.argv[2])); b = f.read(8); f.seek(int(sys.argv[2]))
    f.write(bytes(x ^ 0x5A for x in b))
PY
chmod a-w "$b3"
check "v3's blob no longer matches its digest (registry verify says so)" '! reg verify >/dev/null 2>&1'

# ---- unknown reference at start: exit 1 naming it ----
"$cli" serve --port 0 --model "x=registry:nosuch@9,pin" --registry "$R" >/dev/null 2>"$tmp/err"
rc=$?
check "an unknown reference at start: exit 1 naming it" '[ $rc -eq 1 ] && grep -q "nosuch@9" "$tmp/err"'
HOTYOLO_REGISTRY= "$cli" serve --port 0 --model "x=registry:m@1,pin" >/dev/null 2>"$tmp/err"
rc=$?
check "registry:REF without --registry or HOTYOLO_REGISTRY: exit 2 saying so" \
    '[ $rc -eq 2 ] && grep -q "HOTYOLO_REGISTRY" "$tmp/err"'

# ---- rollout under load ----
if ! command -v wrk >/dev/null; then
    echo "skip: wrk not installed (scripts/install-deps.sh installs it): rollout under load not run"
else
    start R --model "m=registry:m@production,pin" --registry "$R" --registry-poll 0.2
    get /v1/models
    check "R: serving registry:m@production = m@1" '[ "$code" = 200 ] &&
        [ "$(mfield "$tmp/body" m source)" = "registry:m@production" ] &&
        [ "$(mfield "$tmp/body" m registry.version)" = 1 ] && [ "$(mfield "$tmp/body" m registry.name)" = m ] &&
        [ "$(mfield "$tmp/body" m registry.digest)" = "$(reg show m@1 --json | "$py" -c "import json,sys; print(json.load(sys.stdin)[\"digest\"])")" ]'
    cat >"$tmp/post.lua" <<LUA
local f = io.open("$bus", "rb"); wrk.body = f:read("*all"); f:close()
wrk.method = "POST"; wrk.headers["Content-Type"] = "image/jpeg"
LUA
    # /v1/models polled all along: the registry version serving, one line per poll
    : >"$tmp/seen"
    (while [ ! -f "$tmp/stop_poll" ]; do
        curl -s -o "$tmp/poll.json" --max-time 10 "$base/v1/models" &&
            mfield "$tmp/poll.json" m registry.version >>"$tmp/seen"
        sleep 0.1
    done) &
    poller=$!
    wrk -t1 -c4 -d600s --timeout 30s -s "$tmp/post.lua" "$base/v1/detect" >"$tmp/wrk.txt" 2>&1 &
    wpid=$!
    pids+=("$wpid")
    sleep 3
    reg alias m@2 production >/dev/null
    wait_version m 2
    r2=$?
    sleep 3
    reg alias m@3 production >/dev/null
    for i in $(seq 1 "$swap_wait"); do
        curl -s -o "$tmp/body" --max-time 10 "$base/v1/models"
        [ "$(mfield "$tmp/body" m registry.refused.version)" = 3 ] && break
        sleep 0.1
    done
    cp "$tmp/body" "$tmp/after3.json"
    sleep 3
    reg alias m@2 production >/dev/null
    sleep 3
    kill -INT "$wpid"
    wait "$wpid"
    touch "$tmp/stop_poll"
    wait "$poller"
    requests="$(grep -oE '^ *[0-9]+ requests in' "$tmp/wrk.txt" | grep -oE '[0-9]+' | head -1)"
    echo "     wrk: $(grep -E 'requests in|Requests/sec|Non-2xx|Socket errors' "$tmp/wrk.txt" | tr -s ' ' | tr '\n' ';')"
    check "R: alias -> m@2 swapped in under load" '[ "$r2" -eq 0 ]'
    cp "$tmp/after3.json" "$tmp/body"
    check "R: the corrupted m@3 is refused (sha256 mismatch), m@2 keeps serving" '
        [ "$(mfield "$tmp/body" m registry.refused.version)" = 3 ] &&
        mfield "$tmp/body" m registry.refused.reason | grep -q "sha256 mismatch" &&
        [ "$(mfield "$tmp/body" m registry.version)" = 2 ] && [ "$(mfield "$tmp/body" m state)" = ready ]'
    check "R: the refusal is logged" 'grep -E "m@3 .*refused" "$log" | grep -q "sha256 mismatch"'
    check "R: wrk ran (${requests:-0} requests) with 0 non-2xx responses and 0 socket errors" '
        [ "${requests:-0}" -ge 8 ] && ! grep -q "Non-2xx" "$tmp/wrk.txt" && ! grep -q "Socket errors" "$tmp/wrk.txt"'
    seen="$(sort -u "$tmp/seen" | tr '\n' ' ')"
    check "R: versions seen serving in /v1/models: 1 and 2, never 3 (seen: $seen)" '
        grep -qx 1 "$tmp/seen" && grep -qx 2 "$tmp/seen" && ! grep -qx 3 "$tmp/seen"'
    get /v1/models
    check "R: after the alias came back to m@2: m@2 serving, one swap, m@3 still the last refused" '
        [ "$(mfield "$tmp/body" m registry.version)" = 2 ] && [ "$(mfield "$tmp/body" m registry.swaps)" = 1 ] &&
        [ "$(mfield "$tmp/body" m registry.refused.version)" = 3 ]'
    get /v2/models/m
    check "R: /v2/models/m shows the source and the registry version" '[ "$code" = 200 ] &&
        "$py" -c "import json,sys; d=json.load(open(sys.argv[1])); assert d[\"source\"]==\"registry:m@production\" and d[\"registry\"][\"version\"]==2" "$tmp/body"'
    get /metrics
    check "R: /metrics counts 1 swap and 1 refused version" '
        grep -qx "hotyolo_registry_swaps_total{model=\"m\"} 1" "$tmp/body" &&
        grep -qx "hotyolo_registry_refused_total{model=\"m\"} 1" "$tmp/body"'
    stop_wait
    check "R: graceful stop: exit 0" '[ "$exit_rc" -eq 0 ]'
fi

# ---- registry:PROJECT (and its re-binding) and registry:NAME@N ----
start P --model "a=registry:proj,pin" --model "b=registry:m@2" --registry "$R" --registry-poll 0.2
get /v1/models
check "P: registry:proj serves its bound m@1, registry:m@2 is m@2 (loads when used)" '[ "$code" = 200 ] &&
    [ "$(mfield "$tmp/body" a registry.version)" = 1 ] && [ "$(mfield "$tmp/body" a source)" = registry:proj ] &&
    [ "$(mfield "$tmp/body" b source)" = registry:m@2 ]'
req --data-binary @"$bus" "$base/v1/detect?model=b"
code_b="$code"
get /v1/models
check "P: a request loads registry:m@2 (version 2)" '[ "$code_b" = 200 ] && [ "$(mfield "$tmp/body" b registry.version)" = 2 ]'
reg bind proj m@2 >/dev/null
wait_version a 2
rb=$?
check "P: re-binding proj to m@2 swaps it in" '[ "$rb" -eq 0 ]'
req --data-binary @"$bus" "$base/v1/detect?model=a"
check "P: detects with the re-bound version" '[ "$code" = 200 ] && grep -q "\"class_name\":\"bus\"" "$tmp/body"'
stop_wait
check "P: graceful stop: exit 0" '[ "$exit_rc" -eq 0 ]'

# ---- oci:// with the remote unreachable ----
R2="$tmp/edge"
"$cli" registry --registry "$R2" add "$tmp/v2.safetensors" --name line3 >/dev/null 2>&1
start O --model "line3=oci://127.0.0.1:1/pcb:production,pin" --registry "$R2"
get /v1/models
check "O: unreachable remote: serves the newest cached line3 (line3@1), logged" '[ "$code" = 200 ] &&
    [ "$(mfield "$tmp/body" line3 registry.name)" = line3 ] && [ "$(mfield "$tmp/body" line3 registry.version)" = 1 ] &&
    grep -q "cannot pull oci://127.0.0.1:1/pcb:production" "$log" && grep -q "newest cached" "$log"'
stop_wait
XDG_CACHE_HOME="$tmp/xdg" HOTYOLO_REGISTRY= "$cli" serve --port 0 --model "line3=oci://127.0.0.1:1/pcb:production,pin" \
    >/dev/null 2>"$tmp/err"
rc=$?
check "O: unreachable remote and nothing cached (default cache dir): exit 1 naming the URL" '[ $rc -eq 1 ] &&
    grep -q "oci://127.0.0.1:1/pcb:production" "$tmp/err" && grep -q "$tmp/xdg/hotyolo/registry" "$tmp/err"'

check "no sanitizer report in any server log" '! grep -lE "runtime error|AddressSanitizer|LeakSanitizer" "$tmp"/*.log'
echo "passed $pass, failed $fail"
[ "$fail" -eq 0 ]
