#!/usr/bin/env bash
# Serving memory (part of `make bench`): peak and current RSS of a warm `hotyolo serve` with
# 1 and with 2 workers on one model. Each worker has its own context (arena, scratch, threads)
# over the model's one copy of the weights, so the second worker must cost no more than its
# arena and scratch: the weights' size (parameters x 4 bytes, from `hotyolo inspect`) and the
# server's own per-worker figure (/v1/models worker_bytes) are printed beside the difference.
#   scripts/bench-serve-rss.sh [BUILD] [ASSETS] [MODEL] [IMGSZ]   (~20 s; loopback only)
set -euo pipefail
build="${1:-build}"
assets="${2:-../shared/assets}"
model="${3:-$assets/weights/yolov8s_random.pt}"
imgsz="${4:-640}"
cli="$build/hotyolo"
tmp="$(mktemp -d)"
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
kb() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }
field() { tr -d ' ' <"$1" | grep -oE "\"$2\":[^,}]*" | head -1 | sed -E "s/^\"$2\"://"; }
params="$("$cli" inspect "$model" --json | grep -oE '"parameters": *[0-9]+' | grep -oE '[0-9]+$')"
printf "model %s, imgsz %s, --threads 2 per worker context, weights %d parameters x 4 B = %.1f MiB\n" \
    "$(basename "$model")" "$imgsz" "$params" "$(awk -v p="$params" 'BEGIN {print p * 4 / 1048576}')"
printf "%-9s %12s %12s %16s %18s\n" workers VmRSS_MiB VmHWM_MiB weights_MiB* per_worker_MiB*
for w in 1 2; do
    rm -f "$tmp/port"
    "$cli" serve --model "m=$model,pin" --port 0 --port-file "$tmp/port" --host 127.0.0.1 \
        --imgsz "$imgsz" --threads 2 --workers "$w" -q 2>"$tmp/server.log" &
    pid=$!
    for _ in $(seq 1 600); do [ -s "$tmp/port" ] && break; sleep 0.1; done
    [ -s "$tmp/port" ] || { echo "bench-serve-rss: server did not start"; cat "$tmp/server.log"; exit 1; }
    # ready = bound after load + every worker's context prepared and warm
    eval "rss_$w=$(kb "$pid" VmRSS) hwm_$w=$(kb "$pid" VmHWM)"
    curl -s "http://127.0.0.1:$(cat "$tmp/port")/v1/models" >"$tmp/models.json"
    eval "wb_$w=$(field "$tmp/models.json" weights_bytes) cb_$w=$(field "$tmp/models.json" worker_bytes)"
    kill "$pid" && wait "$pid" 2>/dev/null || true
    pid=""
    eval "awk -v r=\$rss_$w -v h=\$hwm_$w -v wb=\$wb_$w -v cb=\$cb_$w -v w=$w" \
        "'BEGIN {printf \"%-9d %12.1f %12.1f %16.1f %18.1f\n\", w, r/1024, h/1024, wb/1048576, cb/1048576}'"
done
# shellcheck disable=SC2154 # rss_1 ... set by eval above
awk -v r1="$rss_1" -v r2="$rss_2" -v h1="$hwm_1" -v h2="$hwm_2" -v p="$params" -v cb="$cb_2" 'BEGIN {
    w = p * 4 / 1024
    printf "2nd worker: +%.1f MiB RSS, +%.1f MiB peak; weights %.1f MiB, one context (server) %.1f MiB: %s\n",
        (r2 - r1) / 1024, (h2 - h1) / 1024, w / 1024, cb / 1048576,
        (r2 - r1 < w && h2 - h1 < w) ? "weights counted once" : "WEIGHTS DUPLICATED?" }'
echo "(* the server's RSS growth while loading the weights / per worker context, GET /v1/models)"
