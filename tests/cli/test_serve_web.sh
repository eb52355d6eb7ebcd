#!/usr/bin/env bash
# hotyolo serve: the web page (GET /) driven in headless Chromium by tests/web/test_web_page.js
# (Chrome DevTools Protocol, Node's built-in WebSocket): readiness badge, model selector, upload
# of bus.jpg, detections table against shared/assets/reference/yolov8n_predict_images.jsonl,
# canvas, PNG sample, error display. Saves a screenshot as ./web_page.png (the build dir).
# Usage: bash test_serve_web.sh CLI_PATH ASSETS_DIR SOURCE_DIR
# Needs chromium and node >= 20.10 (scripts/install-deps.sh); fails, naming them, when absent.
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
browser_pid=""
cleanup() {
    [ -n "$browser_pid" ] && kill -- "-$browser_pid" 2>/dev/null
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null
    [ -n "$server_pid" ] && wait "$server_pid" 2>/dev/null
    [ -n "$browser_pid" ] && wait "$browser_pid" 2>/dev/null
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

chromium="${HY_CHROMIUM:-$(command -v chromium || command -v chromium-browser || true)}"
if [ -z "$chromium" ] || [ ! -x "$chromium" ]; then
    bad "chromium is installed" "no chromium on PATH: run scripts/install-deps.sh (Debian package 'chromium')"
    finish
fi
node_ok=0
if command -v node >/dev/null && node --experimental-websocket -e 'process.exit(typeof WebSocket === "function" ? 0 : 1)' 2>/dev/null; then
    node_ok=1
fi
if [ $node_ok -ne 1 ]; then
    bad "node >= 20.10 is installed" "need node with --experimental-websocket (global WebSocket) to drive Chromium"
    finish
fi

# ---- server --------------------------------------------------------------------------------------
"$cli" serve --model "yolov8n=$assets/weights/yolov8n.pt,pin" --host 127.0.0.1 --port 0 \
    --port-file "$tmp/port" >"$tmp/server.out" 2>"$tmp/server.err" &
server_pid=$!
port=""
for _ in $(seq 1 2400); do # port file: up to 240 s (the server binds once warm; ASan on a loaded 2-core machine took 86 s)
    [ -s "$tmp/port" ] && port="$(tr -dc 0-9 <"$tmp/port")" && [ -n "$port" ] && break
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
done
if [ -z "$port" ]; then
    bad "server writes its port" "$(head -c 1500 "$tmp/server.err")"
    finish
fi
ok "server listens on 127.0.0.1:$port"
url="http://127.0.0.1:$port"
code=""
for _ in $(seq 1 600); do # ready: up to 120 s (slow under sanitizers)
    code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$url/health/ready")"
    [ "$code" = 200 ] && break
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.2
done
if [ "$code" != 200 ]; then
    bad "server becomes ready" "last /health/ready: $code; stderr: $(head -c 1500 "$tmp/server.err")"
    finish
fi
ok "server ready"
ctype="$(curl -s -o "$tmp/page.html" -w '%{content_type}' --max-time 10 "$url/")"
if [[ "$ctype" == text/html* ]] && grep -q '<canvas id="canvas"' "$tmp/page.html"; then
    ok "GET / serves the page as $ctype"
else
    bad "GET / serves the page as text/html" "content type: '$ctype'; body: $(head -c 300 "$tmp/page.html")"
fi

# ---- browser -------------------------------------------------------------------------------------
# Own process group (setsid), so the trap ends the browser and its helpers together.
setsid "$chromium" --headless=new --no-sandbox --disable-gpu --disable-dev-shm-usage \
    --remote-debugging-address=127.0.0.1 --remote-debugging-port=0 --user-data-dir="$tmp/profile" \
    --no-first-run --no-default-browser-check --disable-extensions --disable-background-networking \
    --disable-component-update --disable-sync --mute-audio --window-size=1280,1000 about:blank \
    >"$tmp/chromium.log" 2>&1 &
browser_pid=$!
devport=""
for _ in $(seq 1 300); do # DevToolsActivePort: up to 30 s
    [ -s "$tmp/profile/DevToolsActivePort" ] && devport="$(head -n 1 "$tmp/profile/DevToolsActivePort" | tr -dc 0-9)"
    [ -n "$devport" ] && break
    kill -0 "$browser_pid" 2>/dev/null || break
    sleep 0.1
done
if [ -z "$devport" ]; then
    bad "chromium starts with remote debugging" "$(tail -c 1500 "$tmp/chromium.log")"
    finish
fi
ok "chromium listens for DevTools on 127.0.0.1:$devport"

shot="$PWD/web_page.png"
rm -f -- "$shot"
timeout 240 node --experimental-websocket --no-warnings "$src/tests/web/test_web_page.js" \
    "$devport" "$url" "$assets" "$shot" >"$tmp/driver.out" 2>&1
rc=$?
cat "$tmp/driver.out"
pass=$((pass + $(grep -c '^ok ' "$tmp/driver.out")))
fail=$((fail + $(grep -c '^FAIL ' "$tmp/driver.out")))
if [ $rc -ne 0 ] && ! grep -q '^FAIL ' "$tmp/driver.out"; then
    bad "page driver exits 0" "rc=$rc"
fi
kill -0 "$server_pid" 2>/dev/null && ok "server still running after the page session" ||
    bad "server still running after the page session" "$(tail -c 1500 "$tmp/server.err")"
[ -s "$shot" ] && echo "screenshot: $shot"
stop_server
finish
