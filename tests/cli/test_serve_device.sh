#!/usr/bin/env bash
# hotyolo serve --device / --no-fallback (issue 22) on a machine whose GPU cannot be used (none,
# no driver, or a build without CUDA):
#   - --device auto and --device cuda: the model serves on cpu; /metrics has
#     hotyolo_model_device_info{device="cpu",requested="auto"|"cuda:0"} 1 and
#     hotyolo_model_device_fallback 1 (promtool accepts the exposition); GET /v1/models has
#     device "cpu", device_requested, a non-empty device_fallback; --device cuda logs a warning;
#   - --device cpu: fallback 0, device_fallback "";
#   - HOTYOLO_CUDA_DRIVER=<the toolkit's stub libcuda.so> (loads, cuInit fails): the reason
#     names CUDA_ERROR_STUB_LIBRARY;
#   - --device cuda --no-fallback: a lazy model fails its load, /v1/models shows the device
#     reason; a pinned one makes serve exit 1 naming it;
#   - --device bogus: usage error, exit 2.
# When a usable GPU is listed (hotyolo inspect --devices --json, else hy_device_list through
# ctypes) the fallback checks print skip: instead.
# Usage: bash test_serve_device.sh CLI_PATH ASSETS_DIR SOURCE_DIR
set -u
cli="$1"
assets="$2"
[ -d "$assets" ] || { echo "skip: shared assets not found at $assets"; exit 77; }
command -v curl >/dev/null || { echo "skip: curl not installed"; exit 77; }
weights="$assets/weights/yolov8n.pt"
pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; [ $# -gt 1 ] && printf '     %s\n' "$2"; return 0; }
finish() { echo "$pass passed, $fail failed"; [ "$fail" -eq 0 ]; exit $?; }

tmp="$(mktemp -d)"
server_pid=""
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
    rm -rf -- "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
export HOTYOLO_CACHE_DIR="$tmp/cache"

# ---- is a GPU usable here? -------------------------------------------------------------------
gpu=""
if "$cli" inspect --devices --json >"$tmp/devices.json" 2>/dev/null; then
    gpu="$(python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
rows = d.get("devices", d) if isinstance(d, dict) else d
print(" ".join(r.get("name", "?") for r in rows if r.get("kind") == "cuda" and r.get("usable")))
' "$tmp/devices.json" 2>/dev/null)"
else
    lib="$(dirname "$cli")/libhotyolo.so"
    [ -e "$lib" ] && gpu="$(python3 -c '
import ctypes, sys
class D(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char * 16), ("kind", ctypes.c_char * 8), ("model", ctypes.c_char * 128),
                ("detail", ctypes.c_char * 256), ("memory_bytes", ctypes.c_uint64), ("usable", ctypes.c_int),
                ("why", ctypes.c_char * 256)]
lib = ctypes.CDLL(sys.argv[1])
rows = (D * 16)()
n = min(lib.hy_device_list(rows, 16), 16)
print(" ".join(r.name.decode() for r in rows[:n] if r.kind == b"cuda" and r.usable))
' "$lib" 2>/dev/null)"
fi
[ -n "$gpu" ] && echo "  a usable GPU is listed ($gpu): fallback checks are skipped"

# start_server NAME ARGS...: serve in the background; sets url (empty when it did not become ready)
start_server() {
    local tag="$1"
    shift
    rm -f "$tmp/port"
    "$cli" serve --host 127.0.0.1 --port 0 --port-file "$tmp/port" --workers 1 --imgsz 320 \
        --no-warmup "$@" >"$tmp/$tag.out" 2>"$tmp/$tag.err" &
    server_pid=$!
    url=""
    local port="" _
    for _ in $(seq 1 600); do # up to 60 s
        [ -s "$tmp/port" ] && port="$(tr -dc 0-9 <"$tmp/port")" && [ -n "$port" ] && break
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.1
    done
    [ -n "$port" ] && url="http://127.0.0.1:$port"
}
stop_server() {
    kill -TERM "$server_pid" 2>/dev/null
    wait "$server_pid"
    local st=$?
    server_pid=""
    [ $st -eq 0 ] || bad "server exits 0 after SIGTERM" "exit $st"
}
# json FILE EXPR: a field of the first model of /v1/models
field() {
    python3 -c 'import json, sys; m = json.load(open(sys.argv[1]))["models"][0]; v = m.get(sys.argv[2], "<absent>"); print("<null>" if v is None else v)' "$1" "$2" 2>/dev/null
}

# ---- --device auto / cuda / cpu on a pinned model ------------------------------------------------
for dev in auto cuda cpu; do
    case $dev in
    auto) want_req=auto want_fb=1 ;;
    cuda) want_req=cuda:0 want_fb=1 ;;
    cpu) want_req=cpu want_fb=0 ;;
    esac
    start_server "$dev" --model "m=$weights,pin" --device "$dev"
    if [ -z "$url" ]; then
        bad "--device $dev: server ready" "$(tail -c 1500 "$tmp/$dev.err")"
        continue
    fi
    curl -s --max-time 10 "$url/metrics" >"$tmp/$dev.metrics"
    curl -s --max-time 10 "$url/v1/models" >"$tmp/$dev.models"
    code="$(curl -s -o "$tmp/$dev.det" -w '%{http_code}' --max-time 60 -H 'Content-Type: image/jpeg' \
        --data-binary "@$assets/images/bus.jpg" "$url/v1/detect")"
    stop_server
    [ "$code" = 200 ] && ok "--device $dev: POST /v1/detect 200" || bad "--device $dev: POST /v1/detect 200" "$code"
    if command -v promtool >/dev/null; then
        # promtool's linter also has opinions (units, _total); only a parse error fails here
        if promtool check metrics <"$tmp/$dev.metrics" >"$tmp/promtool.out" 2>&1 ||
            ! grep -qi 'error parsing\|text format parsing error' "$tmp/promtool.out"; then
            ok "--device $dev: promtool parses /metrics"
        else
            bad "--device $dev: promtool parses /metrics" "$(head -c 800 "$tmp/promtool.out")"
        fi
    fi
    if [ -n "$gpu" ] && [ $want_fb = 1 ]; then
        echo "skip: --device $dev fallback checks (usable GPU: $gpu)"
        continue
    fi
    line="hotyolo_model_device_info{model=\"m\",device=\"cpu\",requested=\"$want_req\"} 1"
    grep -qxF "$line" "$tmp/$dev.metrics" && ok "--device $dev: /metrics $line" ||
        bad "--device $dev: /metrics $line" "$(grep device "$tmp/$dev.metrics" | head -c 800)"
    line="hotyolo_model_device_fallback{model=\"m\"} $want_fb"
    grep -qxF "$line" "$tmp/$dev.metrics" && ok "--device $dev: /metrics $line" ||
        bad "--device $dev: /metrics $line" "$(grep device "$tmp/$dev.metrics" | head -c 800)"
    grep -q '^# HELP hotyolo_model_device_fallback .*GET /v1/models' "$tmp/$dev.metrics" &&
        ok "--device $dev: fallback HELP says where the reason is" || bad "--device $dev: fallback HELP"
    d="$(field "$tmp/$dev.models" device)"
    r="$(field "$tmp/$dev.models" device_requested)"
    f="$(field "$tmp/$dev.models" device_fallback)"
    if [ "$d" = cpu ] && [ "$r" = "$want_req" ] && { { [ $want_fb = 1 ] && [ -n "$f" ]; } || { [ $want_fb = 0 ] && [ -z "$f" ]; }; }; then
        ok "--device $dev: /v1/models device cpu, device_requested $r, device_fallback '${f:0:60}'"
    else
        bad "--device $dev: /v1/models device/device_requested/device_fallback" "'$d' '$r' '$f'"
    fi
    if [ $dev = cuda ]; then
        grep -q "warning: model 'm': device cuda:0: .*running on cpu" "$tmp/$dev.err" &&
            ok "--device cuda: the fallback is a warning in the server log" ||
            bad "--device cuda: the fallback is a warning in the server log" "$(head -c 1500 "$tmp/$dev.err")"
    fi
done
grep -q '^hotyolo_gpu_memory_total_bytes' "$tmp/auto.metrics" 2>/dev/null && [ -z "$gpu" ] &&
    bad "no hotyolo_gpu_memory_total_bytes series without a GPU" "$(grep gpu_memory "$tmp/auto.metrics")"

# ---- a driver that loads but does not start (the toolkit's stub): the reason says so ----------
stub=/usr/local/cuda/lib64/stubs/libcuda.so
if [ -z "$gpu" ] && [ -e "$stub" ]; then
    HOTYOLO_CUDA_DRIVER="$stub" start_server stub --model "m=$weights,pin" --device cuda:0
    if [ -z "$url" ]; then
        bad "stub driver: server ready" "$(tail -c 1500 "$tmp/stub.err")"
    else
        curl -s --max-time 10 "$url/v1/models" >"$tmp/stub.models"
        curl -s --max-time 10 "$url/metrics" >"$tmp/stub.metrics"
        stop_server
        f="$(field "$tmp/stub.models" device_fallback)"
        [[ "$f" == *CUDA_ERROR_STUB_LIBRARY* ]] &&
            grep -qxF 'hotyolo_model_device_fallback{model="m"} 1' "$tmp/stub.metrics" &&
            ok "stub driver: falls back, device_fallback '$f'" ||
            bad "stub driver: device_fallback names CUDA_ERROR_STUB_LIBRARY" "'$f'"
    fi
else
    echo "skip: stub driver check (${gpu:+usable GPU: $gpu}${gpu:-no $stub})"
fi

# ---- --no-fallback ---------------------------------------------------------------------------
if [ -n "$gpu" ]; then
    echo "skip: --no-fallback failure checks (usable GPU: $gpu)"
else
    # lazy model: the server listens; the load fails on first use and /v1/models says why
    start_server nofb-lazy --model "m=$weights" --device cuda --no-fallback
    if [ -z "$url" ]; then
        bad "--no-fallback, lazy model: server listens" "$(tail -c 1500 "$tmp/nofb-lazy.err")"
    else
        code="$(curl -s -o "$tmp/nofb.det" -w '%{http_code}' --max-time 60 -H 'Content-Type: image/jpeg' \
            --data-binary "@$assets/images/bus.jpg" "$url/v1/detect")"
        curl -s --max-time 10 "$url/v1/models" >"$tmp/nofb.models"
        curl -s --max-time 10 "$url/metrics" >"$tmp/nofb.metrics"
        stop_server
        [ "$code" != 200 ] && ok "--no-fallback: detect on a GPU that cannot be used fails ($code)" ||
            bad "--no-fallback: detect fails" "200: $(head -c 300 "$tmp/nofb.det")"
        st="$(field "$tmp/nofb.models" state)"
        er="$(field "$tmp/nofb.models" error)"
        [ "$st" = failed ] && [[ "$er" == *"device cuda:0"*"no fallback"* ]] &&
            ok "--no-fallback: /v1/models state failed, error '$er'" ||
            bad "--no-fallback: /v1/models state failed with the device reason" "'$st' '$er'"
        grep -q '^hotyolo_model_load_failures_total{model="m"} 1$' "$tmp/nofb.metrics" &&
            ! grep -q '^hotyolo_model_device_info{model="m"' "$tmp/nofb.metrics" &&
            ok "--no-fallback: /metrics counts the failed load, no device series for it" ||
            bad "--no-fallback: /metrics" "$(grep 'model="m"' "$tmp/nofb.metrics" | head -c 800)"
    fi
    # pinned model: serve exits 1 naming the device and the reason
    timeout 60 "$cli" serve --host 127.0.0.1 --port 0 --workers 1 --imgsz 320 --no-warmup \
        --model "m=$weights,pin" --device cuda --no-fallback >/dev/null 2>"$tmp/nofb-pin.err"
    st=$?
    [ $st = 1 ] && grep -q "device cuda:0: .*no fallback to cpu was asked for" "$tmp/nofb-pin.err" &&
        ok "--no-fallback, pinned model: exit 1 naming the reason" ||
        bad "--no-fallback, pinned model: exit 1 naming the reason" "exit $st: $(tail -c 800 "$tmp/nofb-pin.err")"
fi

# ---- misspelt device: usage error -------------------------------------------------------------
for dev in bogus cuda:x gpu0 ""; do
    "$cli" serve --model "m=$weights" --port 0 --device "$dev" >/dev/null 2>"$tmp/bogus.err"
    st=$?
    [ $st = 2 ] && grep -q -- "--device" "$tmp/bogus.err" && ok "--device '$dev': exit 2 ($(head -n 1 "$tmp/bogus.err" | head -c 120))" ||
        bad "--device '$dev': exit 2" "exit $st: $(head -c 500 "$tmp/bogus.err")"
done
"$cli" serve --help | grep -q -- "--no-fallback" && ok "serve --help lists --no-fallback" ||
    bad "serve --help lists --no-fallback"
finish
