#!/usr/bin/env bash
# Serving benchmark (part of `make bench`): first request after ready vs steady, wrk load with
# 1 and 4 connections against POST /v1/detect, and a hot swap under load.
#   scripts/bench-serve.sh [BUILD] [ASSETS]      (loopback only; ~90 s)
set -euo pipefail
build="${1:-build}"
assets="${2:-../shared/assets}"
cli="$build/hotyolo"
img="$assets/images/bus.jpg"
dur="${HY_BENCH_WRK_SECONDS:-30}"
command -v wrk >/dev/null || { echo "bench-serve: wrk not installed (scripts/install-deps.sh installs it)"; exit 0; }
tmp="$(mktemp -d)"
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
"$cli" convert "$assets/weights/yolov8n.pt" "$tmp/v1.safetensors" --fuse >/dev/null
"$cli" convert "$assets/weights/yolov8n.pt" "$tmp/v2.safetensors" --fuse --dtype f32 >/dev/null
start_server() {
    rm -f "$tmp/port"
    "$cli" serve --model "yolov8n=$tmp/v1.safetensors,pin" --port 0 --port-file "$tmp/port" --host 127.0.0.1 \
        --imgsz 640 --workers 1 --max-queue 64 -q 2>"$tmp/server.log" &
    pid=$!
    for _ in $(seq 1 300); do [ -s "$tmp/port" ] && break; sleep 0.1; done
    [ -s "$tmp/port" ] || { echo "bench-serve: server did not start"; cat "$tmp/server.log"; exit 1; }
    url="http://127.0.0.1:$(cat "$tmp/port")"
}
stop_server() { kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; pid=""; }
post() { curl -s -o /dev/null -w '%{time_total}\n' -X POST --data-binary "@$img" -H 'Content-Type: image/jpeg' \
    "$url/v1/detect?model=yolov8n"; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
# First request after ready, over 5 fresh servers: each first request is paired with the
# median of the 10 requests that follow it (same seconds, same machine phase).
: >"$tmp/firsts"
: >"$tmp/ratios"
: >"$tmp/steady"
for k in 1 2 3 4 5; do
    start_server
    f=$(post)
    for _ in $(seq 1 10); do post; done >"$tmp/next"
    n=$(median <"$tmp/next")
    cat "$tmp/next" >>"$tmp/steady"
    echo "$f" >>"$tmp/firsts"
    awk -v f="$f" -v n="$n" 'BEGIN {print f / n}' >>"$tmp/ratios"
    [ "$k" -lt 5 ] && stop_server
done
awk -v f="$(median <"$tmp/firsts")" -v s="$(median <"$tmp/steady")" -v r="$(median <"$tmp/ratios")" \
    'BEGIN {printf "first request after ready  %.1f ms (median of 5 fresh servers)\nsteady median (50 req)     %.1f ms\nfirst / steady             %.2fx, paired %.2fx (target <= 1.1x)\n", f*1000, s*1000, f/s, r}'
cat >"$tmp/post.lua" <<LUA
local f = io.open("$img", "rb"); wrk.body = f:read("*all"); f:close()
wrk.method = "POST"; wrk.headers["Content-Type"] = "image/jpeg"
LUA
for c in 1 4; do
    echo "== wrk ${dur}s, $c connection(s), POST /v1/detect bus.jpg =="
    wrk -t1 -c"$c" -d"${dur}s" --latency -s "$tmp/post.lua" "$url/v1/detect?model=yolov8n" >"$tmp/wrk.txt" || true
    grep -E "Requests/sec|^ +50%|^ +99%|Non-2xx|Socket errors|requests in" "$tmp/wrk.txt" | sed 's/^/  /'
    grep -q "Non-2xx" "$tmp/wrk.txt" || echo "  non-2xx: 0"
done
echo "== hot swap under load (wrk 20 s, 4 connections; swap v1 -> v2 -> v1) =="
wrk -t1 -c4 -d20s --latency -s "$tmp/post.lua" "$url/v1/detect?model=yolov8n" >"$tmp/wrk.txt" &
wpid=$!
sleep 5
curl -s -o /dev/null -w '  swap to v2: HTTP %{http_code} in %{time_total}s\n' -X POST \
    -H "Content-Type: application/json" -d "{\"parameters\":{\"path\":\"$tmp/v2.safetensors\"}}" "$url/v2/repository/models/yolov8n/load"
sleep 5
curl -s -o /dev/null -w '  swap to v1: HTTP %{http_code} in %{time_total}s\n' -X POST \
    -H "Content-Type: application/json" -d "{\"parameters\":{\"path\":\"$tmp/v1.safetensors\"}}" "$url/v2/repository/models/yolov8n/load"
wait "$wpid" || true
grep -E "Requests/sec|requests in|Non-2xx|Socket errors" "$tmp/wrk.txt" | sed 's/^/  /'
grep -q "Non-2xx" "$tmp/wrk.txt" || echo "  failed requests during swaps: 0"
