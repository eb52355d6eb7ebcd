#!/usr/bin/env bash
# hotyolo serve: one context per worker over one copy of the weights (issue 15).
#   - --workers 2: /v1/models reports 2 worker contexts; concurrent requests run on both
#     (hotyolo_worker_inferences_total per worker), with no cold event (every request hits a
#     shape prepared before ready).
#   - weights counted once: peak and current RSS of a warm server (YOLOv8s, ~45 MB of float32
#     weights) with 2 workers exceed those with 1 worker by less than the weights' size: the
#     second worker costs its arena and scratch only. The weights' size is read from the file
#     (hotyolo inspect: parameters x 4 bytes), not from the server. Skipped under sanitizers
#     (their shadow memory is not the program's).
# Usage: bash test_serve_workers.sh CLI_PATH ASSETS_DIR SOURCE_DIR
set -u
cli="$1"
assets="$2"
[ -d "$assets" ] || { echo "skip: shared assets not found at $assets"; exit 77; }
model="$assets/weights/yolov8s_random.pt"
bus="$assets/images/bus.jpg"
[ -f "$model" ] || { echo "skip: $model not found"; exit 77; }
command -v curl >/dev/null || { echo "skip: curl not installed"; exit 77; }

pass=0
fail=0
tmp="$(mktemp -d)"
pid=""
cleanup() {
    [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
    rm -rf -- "$tmp"
}
trap cleanup EXIT
ok() { pass=$((pass + 1)); echo "ok   $1"; }
bad() {
    fail=$((fail + 1))
    echo "FAIL $1"
    [ $# -gt 1 ] && printf '     check: %s\n' "$2"
    [ -n "${log:-}" ] && printf '     server log (tail):\n%s\n' "$(tail -n 6 "$log" 2>/dev/null)"
}
check() { if eval "$2"; then ok "$1"; else bad "$1" "$2"; fi; }

# start NAME ARGS...: a server on an ephemeral port, returns once it is ready (bound after
# its pinned model is loaded and warm); sets pid, base, log.
start() {
    local name="$1"
    shift
    log="$tmp/$name.log"
    "$cli" serve --host 127.0.0.1 --port 0 --port-file "$tmp/$name.port" "$@" 2>"$log" &
    pid=$!
    local i
    for i in $(seq 1 1200); do # <= 120 s (sanitizer builds are slow)
        [ -s "$tmp/$name.port" ] && { base="http://127.0.0.1:$(cat "$tmp/$name.port")"; return 0; }
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    base="http://127.0.0.1:1"
    return 1
}
stop() {
    kill -TERM "$pid" 2>/dev/null
    local i
    for i in $(seq 1 600); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    pid=""
}
status_kb() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }
field() { # field JSON_FILE NAME: a number of the first model in /v1/models
    tr -d ' ' <"$1" | grep -oE "\"$2\":[^,}]*" | head -1 | sed -E "s/^\"$2\"://; s/\"//g"
}
metric() { grep -E "^$1 " "$2" | awk '{print $2}' | head -1; }
post() { curl -s -o "$1" -w '%{http_code}' --max-time 120 -X POST --data-binary "@$bus" \
    -H 'Content-Type: image/jpeg' "$base/v1/detect?model=s"; }

common=(--model "s=$model,pin" --imgsz 320 --warmup 1 --threads 2)

# ---- 2 workers: two contexts, both serve, no cold event ------------------------------------
start W2 "${common[@]}" --workers 2
check "2 workers: ready" '[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null'
curl -s "$base/v1/models" >"$tmp/models2.json"
check "2 workers: /v1/models reports 2 worker contexts on device cpu" \
    '[ "$(field "$tmp/models2.json" workers)" = 2 ] && [ "$(field "$tmp/models2.json" device)" = cpu ]'
rss2_kb="$(status_kb "$pid" VmRSS)"
hwm2_kb="$(status_kb "$pid" VmHWM)"
# 4 rounds of 4 concurrent requests: with a forward pass in flight on one worker's context the
# other worker takes the next request on its own context
codes=""
for round in 1 2 3 4; do
    cpids=()
    for k in 1 2 3 4; do
        post "$tmp/d$k.json" >"$tmp/c$k" &
        cpids+=($!)
    done
    wait "${cpids[@]}"
    for k in 1 2 3 4; do codes="$codes$(cat "$tmp/c$k") "; done
done
check "2 workers: 16 concurrent detections answered 200" '[ "$(echo $codes | tr " " "\n" | grep -vc "^200$")" = 0 ]'
curl -s "$base/metrics" >"$tmp/metrics2.txt"
w0="$(metric 'hotyolo_worker_inferences_total\{model="s",worker="0"\}' "$tmp/metrics2.txt")"
w1="$(metric 'hotyolo_worker_inferences_total\{model="s",worker="1"\}' "$tmp/metrics2.txt")"
check "2 workers: both contexts ran inferences (worker 0: ${w0:-none}, worker 1: ${w1:-none}; sum 16)" \
    '[ "${w0:-0}" -ge 1 ] && [ "${w1:-0}" -ge 1 ] && [ $((w0 + w1)) -eq 16 ]'
cold="$(metric 'hotyolo_model_cold_events_total\{model="s"\}' "$tmp/metrics2.txt")"
check "2 workers: no cold event (${cold:-none}): every shape was prepared on both contexts" '[ "${cold:-x}" = 0 ]'
curl -s "$base/v1/models" >"$tmp/models2b.json"
check "2 workers: /v1/models sums the contexts' inferences (16) and cold events (0)" \
    '[ "$(field "$tmp/models2b.json" inferences)" = 16 ] && [ "$(field "$tmp/models2b.json" cold_events)" = 0 ]'
wb="$(field "$tmp/models2.json" weights_bytes)"
cb="$(field "$tmp/models2.json" worker_bytes)"
stop

# ---- weights counted once ---------------------------------------------------------------
if [ "${HY_TEST_SANITIZED:-0}" = 1 ]; then
    echo "skip: RSS comparison under sanitizers (shadow memory)"
else
    start W1 "${common[@]}" --workers 1
    rss1_kb="$(status_kb "$pid" VmRSS)"
    hwm1_kb="$(status_kb "$pid" VmHWM)"
    stop
    params="$("$cli" inspect "$model" --json | grep -oE '"parameters": *[0-9]+' | grep -oE '[0-9]+$')"
    weights_kb=$((${params:-0} * 4 / 1024))
    echo "     yolov8s (imgsz 320, 2 threads): weights ${params:-?} parameters x 4 B = ${weights_kb} kB"
    echo "     1 worker : VmRSS ${rss1_kb} kB, VmHWM ${hwm1_kb} kB"
    echo "     2 workers: VmRSS ${rss2_kb} kB, VmHWM ${hwm2_kb} kB"
    echo "     2nd worker: +$((rss2_kb - rss1_kb)) kB RSS, +$((hwm2_kb - hwm1_kb)) kB peak;" \
        "server's figures: weights $((${wb:-0} / 1024)) kB, per worker context $((${cb:-0} / 1024)) kB"
    check "weights counted once: the 2nd worker adds $((rss2_kb - rss1_kb)) kB RSS, $((hwm2_kb - hwm1_kb)) kB peak (< ${weights_kb} kB of weights)" \
        '[ "$weights_kb" -gt 40000 ] && [ $((rss2_kb - rss1_kb)) -lt "$weights_kb" ] &&
         [ $((hwm2_kb - hwm1_kb)) -lt "$weights_kb" ]'
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
