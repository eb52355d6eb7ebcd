#!/usr/bin/env bash
# hotyolo serve: a real Prometheus scrapes GET /metrics (config tests/web/prometheus.yml.in).
# Prometheus' strict text parser must accept the exposition (target up, no scrape error), and
# its query API must see the inference histogram count the server itself reports.
# Usage: bash test_serve_prometheus.sh CLI_PATH ASSETS_DIR SOURCE_DIR
# Needs prometheus and curl (scripts/install-deps.sh); fails, naming them, when absent.
set -u
cli="$1"
assets="$2"
[ -d "$assets" ] || { echo "skip: shared assets not found at $assets"; exit 77; }
src="$3"
pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; [ $# -gt 1 ] && printf '     %s\n' "$2"; return 0; }
finish() { echo "$pass passed, $fail failed"; [ "$fail" -eq 0 ]; exit $?; }

tmp="$(mktemp -d)"
server_pid=""
prom_pid=""
cleanup() {
    [ -n "$prom_pid" ] && kill "$prom_pid" 2>/dev/null
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null
    [ -n "$prom_pid" ] && wait "$prom_pid" 2>/dev/null
    [ -n "$server_pid" ] && wait "$server_pid" 2>/dev/null
    rm -rf -- "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Graceful stop: SIGTERM -> exit 0 (under sanitizers a leak or UB report would fail it).
stop_server() {
    kill -TERM "$server_pid" 2>/dev/null
    local _
    for _ in $(seq 1 300); do # up to 30 s
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$server_pid" 2>/dev/null; then
        kill -KILL "$server_pid" 2>/dev/null
        wait "$server_pid" 2>/dev/null
        server_pid=""
        bad "server exits after SIGTERM" "still running after 30 s"
        return
    fi
    wait "$server_pid"
    local src=$?
    server_pid=""
    [ $src -eq 0 ] && ok "server exits 0 after SIGTERM" ||
        bad "server exits 0 after SIGTERM" "exit $src; stderr: $(tail -c 1500 "$tmp/server.err")"
}

prometheus="${HY_PROMETHEUS:-$(command -v prometheus || true)}"
if [ -z "$prometheus" ] || [ ! -x "$prometheus" ]; then
    bad "prometheus is installed" "no prometheus on PATH: run scripts/install-deps.sh (Debian package 'prometheus')"
    finish
fi
command -v curl >/dev/null || { bad "curl is installed" "run scripts/install-deps.sh"; finish; }

# ---- server --------------------------------------------------------------------------------------
"$cli" serve --model "yolov8n=$assets/weights/yolov8n.pt,pin" --host 127.0.0.1 --port 0 \
    --port-file "$tmp/port" >"$tmp/server.out" 2>"$tmp/server.err" &
server_pid=$!
port=""
for _ in $(seq 1 600); do # port file: up to 60 s
    [ -s "$tmp/port" ] && port="$(tr -dc 0-9 <"$tmp/port")" && [ -n "$port" ] && break
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
done
[ -n "$port" ] || { bad "server writes its port" "$(head -c 1500 "$tmp/server.err")"; finish; }
url="http://127.0.0.1:$port"
code=""
for _ in $(seq 1 600); do # ready: up to 120 s (slow under sanitizers)
    code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$url/health/ready")"
    [ "$code" = 200 ] && break
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.2
done
[ "$code" = 200 ] || { bad "server becomes ready" "last /health/ready: $code; $(head -c 1500 "$tmp/server.err")"; finish; }
ok "server ready on 127.0.0.1:$port"

# Three detections, so the histogram has observations before Prometheus scrapes.
n_ok=0
for img in bus.jpg zidane.jpg bus.jpg; do
    c="$(curl -s -o "$tmp/det.json" -w '%{http_code}' --max-time 60 -H 'Content-Type: image/jpeg' \
        --data-binary "@$assets/images/$img" "$url/v1/detect?model=yolov8n")"
    [ "$c" = 200 ] && grep -q '"detections"' "$tmp/det.json" && n_ok=$((n_ok + 1))
done
[ $n_ok -eq 3 ] && ok "3 POST /v1/detect requests answered" ||
    bad "3 POST /v1/detect requests answered" "$n_ok ok; last: $(head -c 500 "$tmp/det.json")"

# The server's own count: the sum over every series of hotyolo_inference_duration_seconds_count.
curl -s --max-time 10 "$url/metrics" >"$tmp/metrics.txt"
own="$(awk '$1 ~ /^hotyolo_inference_duration_seconds_count([{]|$)/ { s += $NF } END { printf "%d", s }' "$tmp/metrics.txt")"
if [ "${own:-0}" -ge 3 ] && grep -q '^# TYPE hotyolo_inference_duration_seconds histogram' "$tmp/metrics.txt"; then
    ok "/metrics: hotyolo_inference_duration_seconds histogram, count $own"
else
    bad "/metrics: hotyolo_inference_duration_seconds histogram, count >= 3" "count '$own'; $(head -c 1500 "$tmp/metrics.txt")"
fi

# ---- prometheus ----------------------------------------------------------------------------------
# A free port: try random ones until Prometheus binds (a race with other processes is retried).
prom=""
for _ in 1 2 3 4 5; do
    pp=$((20000 + RANDOM % 40000))
    (exec 3<>"/dev/tcp/127.0.0.1/$pp") 2>/dev/null && continue # in use
    sed "s/@TARGET@/127.0.0.1:$port/" "$src/tests/web/prometheus.yml.in" >"$tmp/prometheus.yml"
    rm -rf -- "$tmp/tsdb"
    "$prometheus" --config.file="$tmp/prometheus.yml" --storage.tsdb.path="$tmp/tsdb" \
        --web.listen-address="127.0.0.1:$pp" --log.level=warn >"$tmp/prom.log" 2>&1 &
    prom_pid=$!
    for _ in $(seq 1 300); do # up to 30 s
        if curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$pp/-/ready"; then prom="http://127.0.0.1:$pp"; break; fi
        kill -0 "$prom_pid" 2>/dev/null || break
        sleep 0.1
    done
    [ -n "$prom" ] && break
    kill "$prom_pid" 2>/dev/null
    wait "$prom_pid" 2>/dev/null
    prom_pid=""
done
[ -n "$prom" ] || { bad "prometheus starts" "$(tail -c 1500 "$tmp/prom.log")"; finish; }
ok "prometheus listening on ${prom#http://}"

# query EXPR: the first sample value of the instant vector, or empty.
query() {
    curl -s --max-time 5 -G "$prom/api/v1/query" --data-urlencode "query=$1" |
        grep -o '"value":\[[^]]*\]' | head -n 1 | sed 's/.*,"\(.*\)"\]/\1/'
}
up="" cnt="" inf=""
for _ in $(seq 1 120); do # up to 60 s
    up="$(query 'up{job="hotyolo"}')"
    cnt="$(query 'sum(hotyolo_inference_duration_seconds_count)')"
    [ "$up" = 1 ] && [ -n "$cnt" ] && [ "${cnt%%.*}" -ge "$own" ] 2>/dev/null && break
    sleep 0.5
done
[ "$up" = 1 ] && ok "prometheus: target up" ||
    bad "prometheus: target up" "up='$up'; targets: $(curl -s --max-time 5 "$prom/api/v1/targets" | head -c 1500)"
targets="$(curl -s --max-time 5 "$prom/api/v1/targets")"
if grep -q '"health":"up"' <<<"$targets" && grep -q '"lastError":""' <<<"$targets"; then
    ok "prometheus: scrape of /metrics has no parse error"
else
    bad "prometheus: scrape of /metrics has no parse error" "$(head -c 1500 <<<"$targets")"
fi
if [ -n "$cnt" ] && [ "${cnt%%.*}" -ge "$own" ] 2>/dev/null; then
    ok "prometheus: sum(hotyolo_inference_duration_seconds_count) = $cnt (server said $own)"
else
    bad "prometheus: sum(hotyolo_inference_duration_seconds_count) >= $own" "got '$cnt'"
fi
inf="$(query 'sum(hotyolo_inference_duration_seconds_bucket{le="+Inf"})')"
[ -n "$inf" ] && [ "$inf" = "$cnt" ] && ok "prometheus: +Inf bucket equals the count ($inf)" ||
    bad "prometheus: +Inf bucket equals the count" "+Inf '$inf', count '$cnt'"
p50="$(query 'histogram_quantile(0.5, sum by (le) (hotyolo_inference_duration_seconds_bucket))')"
awk -v v="$p50" 'BEGIN { exit !(v + 0 > 0 && v + 0 < 60) }' &&
    ok "prometheus: median inference time from the histogram, $p50 s" ||
    bad "prometheus: median inference time in (0, 60) s" "got '$p50'"
stop_server
finish
