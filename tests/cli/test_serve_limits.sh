#!/usr/bin/env bash
# hotyolo serve, connection layer (docs/http-api.md "Connections and limits"):
#  - 40 clients trickling header bytes (one per 0.5 s) above --max-connections keep nobody
#    out: /health/live and a detection from other sockets (127.0.0.1 and 127.0.0.2) answer
#    within 1 s (+ the inference time), and the slow clients are cut at --header-timeout;
#  - per-address limit, and the reserve for probes once every slot is taken;
#  - body deadline;
#  - every malformed or over-limit request head (bad Content-Length, long URL, too many
#    headers, huge header line, malformed request line, HTTP/2.0, no Host on 1.1, chunked),
#    first on a connection or a keep-alive follow-up, gets the documented JSON error with
#    exactly one status line.
#  - the probe reserve takes only a bodiless probe alone on its connection; a flood of half
#    heads past the pending cap (low file limit) with trickles on the oldest; --send-timeout
#    cuts a client that does not read; --max-inflight-bytes answers 503 beyond the budget.
# Raw sockets in python3; the server binds 127.0.0.1 (127.0.0.2 is also loopback).
# Usage: bash test_serve_limits.sh CLI_PATH ASSETS_DIR SOURCE_DIR
set -u
cli="$1"
assets="$2"
[ -d "$assets" ] || { echo "skip: shared assets not found at $assets"; exit 77; }
model="$assets/weights/yolov8n.pt"
bus="$assets/images/bus.jpg"
py="$(command -v python3 || true)"
if [ -z "$py" ]; then
    echo "skip: python3 not found"
    exit 77
fi

pass=0
fail=0
tmp="$(mktemp -d)"
pids=()
cleanup() {
    local p
    for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
    rm -rf -- "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The limits' options; an older CLI without them still runs every check (which then
# shows what it does without the limits).
new_opts=1
"$cli" serve --help 2>&1 | grep -q -- '--header-timeout' || new_opts=0
opt() { [ $new_opts -eq 1 ] && printf '%s\n' "$@"; }

# start NAME ARGS...: sets pid, port, log; 1 when it did not bind within 60 s
start() {
    local name="$1"
    shift
    log="$tmp/$name.log"
    "$cli" serve --host 127.0.0.1 --port 0 --port-file "$tmp/$name.port" --model "m=$model,pin" \
        --imgsz 320 --no-warmup "$@" 2>"$log" &
    pid=$!
    pids+=("$pid")
    local i
    for i in $(seq 1 600); do
        [ -s "$tmp/$name.port" ] && { port="$(cat "$tmp/$name.port")"; return 0; }
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    port=""
    echo "FAIL $name: server did not start: $(tail -n 5 "$log")"
    fail=$((fail + 1))
    return 1
}
stop() {
    kill -TERM "$pid" 2>/dev/null
    local i
    for i in $(seq 1 300); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
}
# run_py SCRIPT ARGS...: python prints "ok ..." / "FAIL ..." lines; counted here
run_py() {
    local out
    out="$(timeout 120 "$py" "$tmp/t.py" "$@" 2>&1)"
    [ $? -eq 124 ] && out="$out
FAIL python harness ran over 120 s"
    printf '%s\n' "$out"
    pass=$((pass + $(printf '%s\n' "$out" | grep -c '^ok ')))
    fail=$((fail + $(printf '%s\n' "$out" | grep -c '^FAIL ')))
}

cat >"$tmp/t.py" <<'EOF'
import json, re, socket, sys, time

mode, port, image = sys.argv[1], int(sys.argv[2]), sys.argv[3]
HOST = b"Host: 127.0.0.1\r\n"

def check(name, cond, detail=""):
    print(("ok   " if cond else "FAIL ") + name + ("" if cond else "  [" + str(detail)[:300] + "]"))
    sys.stdout.flush()
    return cond

def conn(src="127.0.0.1", timeout=10):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.bind((src, 0))
    s.connect(("127.0.0.1", port))
    return s

def read_response(s, limit=10.0):
    """One response (headers + Content-Length body), or everything until EOF/timeout."""
    data, t0 = b"", time.time()
    while time.time() - t0 < limit:
        i = data.find(b"\r\n\r\n")
        if i >= 0:
            m = re.search(rb"(?im)^content-length:\s*(\d+)", data[:i])
            if m and len(data) >= i + 4 + int(m.group(1)):
                return data
        try:
            b = s.recv(65536)
        except socket.timeout:
            break
        except OSError:
            break
        if not b:
            break
        data += b
    return data

def status(raw):
    m = re.match(rb"HTTP/1\.[01] (\d{3}) ", raw)
    return int(m.group(1)) if m else 0

def request(path, src="127.0.0.1", method=b"GET", body=b"", extra=b""):
    t0 = time.time()
    s = conn(src)
    head = method + b" " + path + b" HTTP/1.1\r\n" + HOST + extra
    if body or method == b"POST":
        head += b"Content-Length: %d\r\n" % len(body)
    s.sendall(head + b"Connection: close\r\n\r\n" + body)
    raw = read_response(s, 30)
    s.close()
    return raw, time.time() - t0

def json_error(raw, code):
    """The documented error: one status line, application/json, {"error": str, "code": code}."""
    i = raw.find(b"\r\n\r\n")
    if i < 0:
        return "no complete response: %r" % raw[:200]
    head, body = raw[:i], raw[i + 4:]
    n_status = len(re.findall(rb"(?:^|\r\n)HTTP/\d\.\d \d{3} ", raw))
    if n_status != 1:
        return "%d status lines: %r" % (n_status, raw[:300])
    if status(raw) != code:
        return "status %d, want %d: %r" % (status(raw), code, raw[:200])
    if not re.search(rb"(?im)^content-type: application/json\r?$", head):
        return "not application/json: %r" % head
    try:
        o = json.loads(body)
    except ValueError:
        return "body is not JSON: %r" % body[:200]
    if not (isinstance(o, dict) and isinstance(o.get("error"), str) and o.get("code") == code):
        return "body is not {error, code}: %r" % body[:200]
    return ""

def raw_exchange(data, follow=False, src="127.0.0.1", half_close=False):
    s = conn(src)
    if follow:  # a good request first: the case is then a keep-alive follow-up
        s.sendall(b"GET /health/live HTTP/1.1\r\n" + HOST + b"\r\n")
        first = read_response(s)
        if status(first) != 200:
            return b"first request: " + first
    s.sendall(data)
    if half_close:
        s.shutdown(socket.SHUT_WR)
    out = read_response(s)
    s.close()
    return out

with open(image, "rb") as f:
    jpg = f.read()

if mode == "slow":
    header_timeout = float(sys.argv[4])
    raw, t_inf = request(b"/v1/detect", method=b"POST", body=jpg)
    check("baseline detect 200 (%.2f s)" % t_inf, status(raw) == 200, raw[:200])
    trickle = b"GET /health/live HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 200
    slow, opened, cut = [], [], []
    t_start = time.time()
    for i in range(40):
        try:
            s = conn(timeout=0.01)
            s.setblocking(False)
            slow.append(s)
            opened.append(time.time())
            cut.append(None)
        except OSError as e:
            check("slow client %d connects" % i, False, e)
    replies = [b""] * len(slow)
    pos, probes_done, t_next = 0, False, time.time()
    while time.time() - t_start < header_timeout + 6:
        now = time.time()
        if now >= t_next:  # one more byte to every slow client still open
            for k, s in enumerate(slow):
                if cut[k] is None:
                    try:
                        s.send(trickle[pos:pos + 1])
                    except OSError:
                        cut[k] = now
            pos += 1
            t_next = now + 0.5
        for k, s in enumerate(slow):
            if cut[k] is None:
                try:
                    b = s.recv(4096)
                    if b:
                        replies[k] += b
                    else:
                        cut[k] = time.time()
                except (BlockingIOError, socket.timeout):
                    pass
                except OSError:
                    cut[k] = time.time()
        if not probes_done and now - t_start > 1.0:
            probes_done = True
            alive = sum(1 for c in cut if c is None)
            check("40 slow clients connected and trickling (%d still open)" % alive, alive == 40, alive)
            for src in ("127.0.0.1", "127.0.0.2"):
                raw, t = request(b"/health/live", src=src)
                check("under attack: /health/live from %s 200 in %.3f s (< 1 s)" % (src, t),
                      status(raw) == 200 and t < 1.0, raw[:200])
                raw, t = request(b"/v1/detect", src=src, method=b"POST", body=jpg)
                check("under attack: detect from %s 200 in %.3f s (< 1 s + inference %.2f s)"
                      % (src, t, t_inf), status(raw) == 200 and t < 1.0 + t_inf, raw[:200])
        if all(c is not None for c in cut):
            break
        time.sleep(0.02)
    lat = [c - o for c, o in zip(cut, opened) if c is not None]
    worst = max(lat) if len(lat) == len(cut) else float("inf")
    check("every slow client cut by the header deadline (%.1f s): worst %.2f s"
          % (header_timeout, worst), worst <= header_timeout + 1.5, "%d of %d cut" % (len(lat), len(cut)))
    err = json_error(replies[0], 408) if replies else "no slow client"
    check("a cut slow client got 408 JSON", err == "", err)

elif mode == "perip":
    # --max-connections 4 --max-connections-per-ip 2: two kept-alive connections from
    # 127.0.0.1 take its share; a third is refused, another address is not.
    def hold(src):
        """A kept-alive connection that got 200 (a slot freed by a just-closed connection
        may take a moment to be returned: retried for up to 3 s)."""
        for attempt in range(30):
            s = conn(src)
            s.sendall(b"GET /v1/models HTTP/1.1\r\n" + HOST + b"\r\n")
            if status(read_response(s)) == 200:
                return s
            s.close()
            time.sleep(0.1)
        return None
    held = []
    for i in range(2):
        s = hold("127.0.0.1")
        check("kept-alive connection %d from 127.0.0.1: 200" % (i + 1), s is not None)
        held.append(s)
    raw, _ = request(b"/v1/models")
    err = json_error(raw, 503)
    check("third connection from 127.0.0.1 over --max-connections-per-ip 2 -> 503 JSON", err == "", err)
    raw, _ = request(b"/v1/models", src="127.0.0.2")
    check("a connection from 127.0.0.2 -> 200", status(raw) == 200, raw[:200])
    for i in range(2):
        s = hold("127.0.0.2")
        check("kept-alive connection %d from 127.0.0.2: 200" % (i + 1), s is not None)
        held.append(s)
    raw, _ = request(b"/v1/models", src="127.0.0.3")
    err = json_error(raw, 503)
    check("every slot taken (--max-connections 4): a request from 127.0.0.3 -> 503 JSON", err == "", err)
    for path in (b"/health/live", b"/health/ready", b"/metrics"):
        raw, t = request(path, src="127.0.0.3")
        check("every slot taken: GET %s still 200 (reserve) in %.3f s" % (path.decode(), t),
              status(raw) == 200 and t < 1.0, raw[:200])
    s = conn("127.0.0.3")
    s.sendall(b"GET /health/live HTTP/1.1\r\n" + HOST + b"\r\n")
    first = read_response(s)
    s.settimeout(3)
    try:
        rest = s.recv(100)
    except OSError:
        rest = b""
    check("a reserve connection is closed after its response", status(first) == 200 and rest == b"",
          rest[:100])
    for s in held:
        if s:
            s.close()

elif mode == "body":
    body_timeout = float(sys.argv[4])
    s = conn()
    s.sendall(b"POST /v1/detect HTTP/1.1\r\n" + HOST + b"Content-Length: 100000\r\n\r\n" + jpg[:10])
    s.setblocking(False)
    t0, closed = time.time(), None
    while time.time() - t0 < body_timeout + 5 and closed is None:
        try:
            s.send(jpg[10:11])
            if not s.recv(4096):
                closed = time.time() - t0
        except BlockingIOError:
            pass
        except OSError:
            closed = time.time() - t0
        time.sleep(0.5)
    check("a body trickled past --body-timeout %.1f s is cut (after %s s)" % (body_timeout,
          "%.2f" % closed if closed is not None else "never"),
          closed is not None and closed <= body_timeout + 1.5)

elif mode == "errors":
    header_timeout = float(sys.argv[4])
    big = b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n" + HOST + b"\r\n"
    cases = [
        ("Content-Length: abc", 400, b"POST /v1/detect HTTP/1.1\r\n" + HOST + b"Content-Length: abc\r\n\r\n"),
        ("Content-Length: -1", 400, b"POST /v1/detect HTTP/1.1\r\n" + HOST + b"Content-Length: -1\r\n\r\n"),
        ("two conflicting Content-Length", 400,
         b"POST /v1/detect HTTP/1.1\r\n" + HOST + b"Content-Length: 5\r\nContent-Length: 7\r\n\r\nhello"),
        # fuzz_http finding: the gate trimmed it, libmicrohttpd answered its own HTML page
        ("Content-Length with a trailing blank", 400,
         b"POST /v2/models/m/infer HTTP/1.1\r\n" + HOST + b"Content-Type: application/json\r\n"
         b"Content-Length:5 \r\n\r\nhello"),
        ("Content-Length over 2^64", 413,
         b"POST /v1/detect HTTP/1.1\r\n" + HOST + b"Content-Length: 99999999999999999999999\r\n\r\n"),
        ("9000-byte URL", 414, big),
        ("200 headers", 431, b"GET /health/live HTTP/1.1\r\n" + HOST +
         b"".join(b"X-H%d: v\r\n" % i for i in range(200)) + b"\r\n"),
        ("20 KB header line", 431, b"GET /health/live HTTP/1.1\r\n" + HOST + b"X-Big: " + b"a" * 20000 + b"\r\n\r\n"),
        ("malformed request line", 400, b"GARBAGE\r\n" + HOST + b"\r\n"),
        ("HTTP/2.0", 505, b"GET /health/live HTTP/2.0\r\n" + HOST + b"\r\n"),
        ("HTTP/1.1 without Host", 400, b"GET /health/live HTTP/1.1\r\n\r\n"),
        ("Transfer-Encoding: chunked", 411,
         b"POST /v1/detect HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n\r\n"),
    ]
    for name, code, data in cases:
        err = json_error(raw_exchange(data), code)
        check("%s -> %d JSON, one status line" % (name, code), err == "", err)
    for name, code, data in cases:
        err = json_error(raw_exchange(data, follow=True), code)
        check("keep-alive follow-up: %s -> %d JSON, one status line" % (name, code), err == "", err)
    for follow in (False, True):
        t0 = time.time()
        raw = raw_exchange(b"GET /health/live HTTP/1.1\r\n" + HOST, follow=follow, half_close=True)
        err = json_error(raw, 400)
        check("%shead cut short by the client's end of stream -> 400 JSON at once (%.2f s)"
              % ("keep-alive follow-up: " if follow else "", time.time() - t0),
              err == "" and time.time() - t0 < 1.0, err)
    # keep-alive still works: 20 requests on one connection, then two pipelined in one write
    s = conn()
    codes = []
    for i in range(20):
        s.sendall(b"GET /health/live HTTP/1.1\r\n" + HOST + b"\r\n")
        codes.append(status(read_response(s)))
    check("20 keep-alive requests on one connection: all 200", codes == [200] * 20, codes)
    s.close()
    # pipelining: bytes of a next request already in libmicrohttpd's buffer cannot be checked,
    # so the connection ends after the first complete response (the client retries the rest);
    # a malformed pipelined head never gets libmicrohttpd's HTML page
    for name, second in (("a valid", b"GET /health/live HTTP/1.1\r\n" + HOST + b"\r\n"),
                         ("a Content-Length: abc", b"POST /v1/detect HTTP/1.1\r\n" + HOST +
                          b"Content-Length: abc\r\n\r\n")):
        s = conn()
        s.sendall(b"GET /health/live HTTP/1.1\r\n" + HOST + b"\r\n" + second)
        raw, t0 = b"", time.time()
        while time.time() - t0 < 5:
            try:
                b = s.recv(65536)
            except OSError:
                break
            if not b:
                break
            raw += b
        s.close()
        check("%s request pipelined behind a probe: one 200 JSON response, then the end, no HTML"
              % name, raw.count(b"HTTP/1.") == 1 and status(raw) == 200 and b"<html" not in raw,
              raw[:300])
    # a follow-up head trickled past --header-timeout is cut
    s = conn()
    s.sendall(b"GET /health/live HTTP/1.1\r\n" + HOST + b"\r\n")
    first = status(read_response(s))
    s.setblocking(False)
    t0, closed, got = time.time(), None, b""
    while time.time() - t0 < header_timeout + 5 and closed is None:
        try:
            s.send(b"G")
            b = s.recv(4096)
            if not b:
                closed = time.time() - t0
            got += b
        except BlockingIOError:
            pass
        except OSError:
            closed = time.time() - t0
        time.sleep(0.5)
    check("a keep-alive follow-up head trickled past --header-timeout %.0f s is cut (after %s s)"
          % (header_timeout, "%.2f" % closed if closed is not None else "never"),
          first == 200 and closed is not None and closed <= header_timeout + 1.5, got[:200])
    raw, _ = request(b"/health/live")
    check("the server still answers after all that", status(raw) == 200, raw[:200])

elif mode == "reserve":
    # --max-connections 2 --max-connections-per-ip 2: two kept-alive connections take every slot;
    # the probe reserve then takes only a bodiless probe alone on its connection
    held = []
    for i in range(2):
        s = conn()
        s.sendall(b"GET /v1/models HTTP/1.1\r\n" + HOST + b"\r\n")
        check("kept-alive connection %d: 200" % (i + 1), status(read_response(s)) == 200)
        held.append(s)
    raw, t = request(b"/health/live", src="127.0.0.2")
    check("every slot taken: GET /health/live 200 from the reserve", status(raw) == 200, raw[:200])
    s = conn("127.0.0.2")
    s.sendall(b"GET /health/live HTTP/1.1\r\n" + HOST + b"Content-Length: 100000\r\n\r\nx")
    err = json_error(read_response(s, 5), 503)
    s.close()
    check("a probe with a Content-Length is not admitted to the reserve (503 JSON at once)",
          err == "", err)
    s = conn("127.0.0.2")
    s.sendall((b"GET /health/live HTTP/1.1\r\n" + HOST + b"\r\n") +
              b"GET /v1/models HTTP/1.1\r\n" + HOST + b"\r\n")
    err = json_error(read_response(s, 5), 503)
    s.close()
    check("a probe with a request pipelined behind it is not admitted to the reserve (503 JSON)",
          err == "", err)
    for s in held:
        s.close()

elif mode == "flood":
    # more connections than the pending set holds (the file limit is low), each with part of a
    # head, while the oldest keep trickling bytes: dropping the oldest pending connection must
    # not touch a connection that still has an event in the same batch (the sanitized build
    # reports it); the server keeps answering
    socks = []
    for i in range(300):
        try:
            s = conn(timeout=0.5)
            s.setblocking(False)
            s.send(b"GET /health/live HTTP/1.1\r\nX: ")
            socks.append(s)
        except OSError:
            pass
        if i % 10 == 9:
            for o in socks[:40]:  # the oldest: events in the batch that drops them
                try:
                    o.send(b"a")
                except OSError:
                    pass
    for rnd in range(5):
        for o in socks:
            try:
                o.send(b"b")
            except OSError:
                pass
        time.sleep(0.05)
    dropped = 0
    for o in socks:
        try:
            if o.recv(1) == b"":
                dropped += 1
        except BlockingIOError:
            pass
        except OSError:
            dropped += 1
    check("flood of %d half heads past the pending cap: the oldest dropped (%d)"
          % (len(socks), dropped), dropped > 0, dropped)
    for o in socks:
        o.close()
    time.sleep(0.3)
    try:
        raw, t = request(b"/health/live")
    except OSError as e:  # the server died
        raw, t = repr(e).encode(), 0.0
    check("after the flood /health/live 200 in %.3f s" % t, status(raw) == 200, raw[:200])

elif mode == "send":
    # --send-timeout 2: a client that asks for a large response (a KServe infer at 640: ~10 MB
    # of JSON, more than loopback's socket buffers hold) and never reads is cut
    send_timeout = float(sys.argv[4])
    vals = ",".join(["0.5"] * (3 * 640 * 640))
    body = ('{"inputs":[{"name":"images","shape":[1,3,640,640],"datatype":"FP32","data":[%s]}]}'
            % vals).encode()
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(10)
    s.connect(("127.0.0.1", port))
    s.sendall(b"POST /v2/models/m/infer HTTP/1.1\r\n" + HOST +
              b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    # the response starts once the inference is done (seconds under ASan on a busy machine):
    # wait for its first byte without taking it, then stop reading for longer than the timeout
    s.settimeout(120)
    try:
        s.recv(1, socket.MSG_PEEK)
    except OSError:
        pass
    time.sleep(send_timeout + 4)
    data, t0 = b"", time.time()
    s.settimeout(2)
    eof = False
    while time.time() - t0 < 20:
        try:
            b = s.recv(1 << 20)
        except OSError:
            eof = True
            break
        if not b:
            eof = True
            break
        data += b
    m = re.search(rb"Content-Length: (\d+)", data)
    want = int(m.group(1)) if m else -1
    got = len(data) - (data.find(b"\r\n\r\n") + 4) if m else 0
    check("a client not reading a %d-byte response is cut after --send-timeout %.0f s "
          "(%d bytes reached it)" % (want, send_timeout, got),
          eof and status(data) == 200 and 0 <= got < want, (eof, data[:120], got, want))
    raw, t = request(b"/health/live")
    check("the server still answers", status(raw) == 200, raw[:200])

elif mode == "budget":
    # --max-inflight-bytes 1.5 images: one body in flight takes the budget; a second concurrent
    # one gets 503 JSON + Retry-After; once the first completes, another succeeds
    n = len(jpg)
    head = b"POST /v1/detect?imgsz=320 HTTP/1.1\r\n" + HOST + b"Content-Length: %d\r\n\r\n" % n
    a = conn(timeout=30)
    a.sendall(head + jpg[: n // 2])
    time.sleep(0.3)
    raw, _ = request(b"/v1/detect?imgsz=320", method=b"POST", body=jpg)
    err = json_error(raw, 503)
    check("a second body beyond --max-inflight-bytes -> 503 JSON", err == "", err)
    check("... with Retry-After", re.search(rb"(?im)^retry-after:", raw) is not None, raw[:300])
    a.sendall(jpg[n // 2:])
    first = read_response(a, 30)
    a.close()
    check("the first body completes -> 200", status(first) == 200, first[:200])
    # the budget is given back when libmicrohttpd reports the request completed, which may come
    # just after the client has read the response (seen under ASan): honour Retry-After once
    raw, _ = request(b"/v1/detect?imgsz=320", method=b"POST", body=jpg)
    if status(raw) == 503 and re.search(rb"(?im)^retry-after: *1", raw):
        time.sleep(1.0)
        raw, _ = request(b"/v1/detect?imgsz=320", method=b"POST", body=jpg)
    check("after it, another body -> 200 (budget released)", status(raw) == 200, raw[:200])
EOF

# ---- A: 40 slow-header clients above --max-connections 8 ----------------------------------------
if start A --max-connections 8 $(opt --header-timeout 3 --max-connections-per-ip 8); then
    run_py slow "$port" "$bus" 3
    stop
fi

# ---- B: per-address limit and the reserve for probes ----------------------------------------------
if start B --max-connections 4 $(opt --max-connections-per-ip 2); then
    run_py perip "$port" "$bus"
    stop
fi

# ---- C: body deadline, errors --------------------------------------------------------------------
if start C $(opt --body-timeout 2 --header-timeout 2); then
    run_py body "$port" "$bus" 2
    run_py errors "$port" "$bus" 2
    stop
fi

# ---- D: probe reserve, pending flood, send deadline, body budget ----------------------------------
if start D --max-connections 2 $(opt --max-connections-per-ip 2); then
    run_py reserve "$port" "$bus"
    stop
fi
# a file limit of 160 leaves 160 - 8 - 8 - 64 = 80 pending heads (in a subshell: the limit
# stays there)
(
    ulimit -n 160
    if start E --max-connections 8 $(opt --max-connections-per-ip 8 --header-timeout 3); then
        run_py flood "$port" "$bus"
        stop
    fi
    echo "E-counts $pass $fail"
) >"$tmp/E.out" 2>&1
grep -v '^E-counts' "$tmp/E.out"
read -r _ pass fail < <(grep '^E-counts' "$tmp/E.out" || echo "E-counts $pass $((fail + 1))")
if start F $(opt --send-timeout 2) --imgsz 320,640; then
    run_py send "$port" "$bus" 2
    stop
fi
budget=$(($(wc -c <"$bus") * 3 / 2))
if start G $(opt --max-inflight-bytes "$budget"); then
    run_py budget "$port" "$bus"
    stop
fi

if grep -lE "Sanitizer|runtime error:" "$tmp"/*.log >/dev/null 2>&1; then
    echo "FAIL sanitizer report in a server log"
    fail=$((fail + 1))
else
    echo "ok   no sanitizer report in any server log"
    pass=$((pass + 1))
fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
