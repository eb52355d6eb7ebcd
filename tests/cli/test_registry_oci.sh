#!/bin/bash
# hotyolo registry push / pull against Debian's docker-registry (Distribution 2.8) on loopback
# ports, plus a small hostile registry (python3) for what Distribution never sends: foreign
# media types, oversized answers, redirect loops, a Bearer token challenge.
#   test_registry_oci.sh CLI ASSETS [SRCDIR]
set -u
CLI=$1
ASSETS=$2
REGBIN=/usr/bin/docker-registry
[ -x "$REGBIN" ] || { echo "SKIP: $REGBIN missing (Debian package docker-registry)"; exit 0; }
command -v python3 >/dev/null || { echo "SKIP: python3 missing"; exit 0; }
WEIGHTS=$ASSETS/weights/yolov8n.pt
IMG=$ASSETS/images/bus.jpg
[ -f "$WEIGHTS" ] && [ -f "$IMG" ] || { echo "SKIP: $WEIGHTS or $IMG missing"; exit 0; }

T=$(mktemp -d)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    rm -rf "$T"
}
trap cleanup EXIT
fails=0
ok() { echo "ok: $*"; }
bad() { echo "FAIL: $*"; fails=$((fails + 1)); }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
    for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done
    return 1
}

# --- docker-registry: anonymous on PORT, basic auth (htpasswd, bcrypt) on APORT, one storage ---
PORT=$(free_port)
APORT=$(free_port)
STORE=$T/store
mkdir -p "$STORE"
python3 -W ignore -c 'import crypt; print("ci:" + crypt.crypt("s3cret", crypt.mksalt(crypt.METHOD_BLOWFISH)))' \
    >"$T/htpasswd" 2>/dev/null || { echo "SKIP: no bcrypt in python3's crypt"; exit 0; }
regcfg() { # PORT [auth]
    printf 'version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: false\nstorage:\n  filesystem:\n    rootdirectory: %s\n  maintenance:\n    uploadpurging:\n      enabled: false\nhttp:\n  addr: 127.0.0.1:%s\n' "$STORE" "$1"
    [ $# -gt 1 ] && printf 'auth:\n  htpasswd:\n    realm: hotyolo-test\n    path: %s\n' "$T/htpasswd"
}
regcfg "$PORT" >"$T/reg.yml"
regcfg "$APORT" auth >"$T/reg_auth.yml"
"$REGBIN" serve "$T/reg.yml" >"$T/reg.log" 2>&1 &
PIDS+=($!)
"$REGBIN" serve "$T/reg_auth.yml" >"$T/reg_auth.log" 2>&1 &
PIDS+=($!)
wait_port "$PORT" && wait_port "$APORT" || { bad "docker-registry did not start"; cat "$T/reg.log"; exit 1; }
OCI=oci://127.0.0.1:$PORT

A=$T/A
B=$T/B
"$CLI" convert "$WEIGHTS" "$T/n.safetensors" >/dev/null || { bad "convert"; exit 1; }
"$CLI" registry --registry "$A" add "$T/n.safetensors" --name pcb --scenario "line 3 solder joints" \
    --metric mAP50=0.61 --tag edge >/dev/null || { bad "add to A"; exit 1; }
"$CLI" registry --registry "$B" init >/dev/null 2>&1 || true
DIGEST=$("$CLI" registry --registry "$A" show pcb@1 --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["digest"])')
HEX=${DIGEST#sha256:}
echo "weights digest $DIGEST"

# --- push, twice: the second uploads nothing (HEAD finds both blobs) --------------------------
posts() { grep -c 'http.request.method=POST' "$T/reg.log"; }
if "$CLI" registry --registry "$A" push pcb@1 "$OCI/pcb:production" >"$T/out" 2>&1; then ok "push"; else
    bad "push: $(cat "$T/out")"; fi
n1=$(posts)
"$CLI" registry --registry "$A" push pcb@1 "$OCI/pcb:production" >"$T/out" 2>&1 || bad "second push: $(cat "$T/out")"
n2=$(posts)
[ "$n1" -eq 2 ] && [ "$n2" -eq 2 ] && ok "second push uploaded nothing (upload sessions: $n1 then $n2)" ||
    bad "upload sessions: $n1 after the first push (want 2), $n2 after the second (want 2)"
[ -f "$STORE/docker/registry/v2/blobs/sha256/${HEX:0:2}/$HEX/data" ] && ok "the layer is the weights' sha256" ||
    bad "no blob $DIGEST in the docker-registry storage"

# --- pull into B; detect with it equals detect with the file ---------------------------------
if "$CLI" registry --registry "$B" pull "$OCI/pcb:production" --name pcb >"$T/out" 2>&1; then ok "pull"; else
    bad "pull: $(cat "$T/out")"; fi
"$CLI" registry --registry "$B" show pcb@1 --json >"$T/b.json" 2>&1 || bad "show pcb@1 in B: $(cat "$T/b.json")"
python3 - "$T/b.json" "$DIGEST" <<'EOF' && ok "B's entry: digest, scenario, metric, tag, record" || bad "B's entry: $(cat "$T/b.json")"
import json, sys
e = json.load(open(sys.argv[1]))
assert e["digest"] == sys.argv[2], e["digest"]
assert e["scenario"] == "line 3 solder joints", e.get("scenario")
assert abs(e["metrics"]["mAP50"] - 0.61) < 1e-9, e.get("metrics")
assert "edge" in e["tags"], e.get("tags")
assert e["format"] == "safetensors" and e["nc"] == 80, (e.get("format"), e.get("nc"))
EOF
"$CLI" detect "$T/n.safetensors" "$IMG" --threads 1 >"$T/d_file" 2>&1 || bad "detect from the file"
HOTYOLO_REGISTRY=$B "$CLI" detect registry:pcb@1 "$IMG" --threads 1 >"$T/d_reg" 2>&1 || bad "detect registry:pcb@1"
if [ -s "$T/d_file" ] && diff <(grep -v -i 'ms\b\|time' "$T/d_file") <(grep -v -i 'ms\b\|time' "$T/d_reg") >/dev/null; then
    ok "detect registry:pcb@1 (pulled) = detect the file ($(grep -c . "$T/d_reg") lines)"
else bad "detections differ:"; diff "$T/d_file" "$T/d_reg" | head; fi
"$CLI" registry --registry "$B" pull "$OCI/pcb:production" --name pcb >"$T/out" 2>&1 || bad "pull again: $(cat "$T/out")"
nv=$("$CLI" registry --registry "$B" list --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
[ "$nv" = 1 ] && ok "pulling the same content again adds no version" || bad "B has $nv versions after a second pull"
snapshot() { "$CLI" registry --registry "$B" list --json; ls "$B/blobs/sha256"/*/ 2>/dev/null; ls "$B/tmp" 2>/dev/null; }
snapshot >"$T/b_before"

expect_refused() { # WHAT PATTERN ARGS...: exit 1, message matching PATTERN, B unchanged
    local what=$1 pat=$2
    shift 2
    "$CLI" registry --registry "$B" "$@" >"$T/out" 2>&1
    local rc=$?
    snapshot >"$T/b_after"
    if [ $rc -eq 1 ] && grep -q -- "$pat" "$T/out" && ! grep -q 'Sanitizer\|runtime error' "$T/out" &&
        cmp -s "$T/b_before" "$T/b_after"; then
        ok "$what refused: $(tail -1 "$T/out" | cut -c1-200)"
    else bad "$what: rc $rc (want 1), want /$pat/, B unchanged: $(cmp -s "$T/b_before" "$T/b_after" && echo yes || echo no): $(cat "$T/out")"; fi
}

# --- basic auth (the htpasswd instance) ------------------------------------------------------
if HY_PW=s3cret "$CLI" registry --registry "$B" pull "oci://127.0.0.1:$APORT/pcb:production" --name pcbauth \
    --user ci --password-env HY_PW >"$T/out" 2>&1; then ok "pull with basic auth"; else bad "basic auth pull: $(cat "$T/out")"; fi
snapshot >"$T/b_before"
HY_PW=wrong expect_refused "a wrong password" "HTTP 401" pull "oci://127.0.0.1:$APORT/pcb:production" --name other \
    --user ci --password-env HY_PW
expect_refused "no credentials" "HTTP 401" pull "oci://127.0.0.1:$APORT/pcb:production" --name other

# --- a foreign manifest on the real registry: refused ----------------------------------------
python3 - "$PORT" "$T/b.json" <<'EOF' || bad "could not put the foreign manifest"
import json, sys, urllib.request
port = sys.argv[1]
m = urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{port}/v2/pcb/manifests/production",
    headers={"Accept": "application/vnd.oci.image.manifest.v1+json"})).read()
m = json.loads(m)
m["artifactType"] = "application/vnd.example.not-a-model"
req = urllib.request.Request(f"http://127.0.0.1:{port}/v2/pcb/manifests/foreign", data=json.dumps(m).encode(),
    method="PUT", headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
assert urllib.request.urlopen(req).status == 201
EOF
expect_refused "a foreign artifactType" "not a hotyolo model" pull "$OCI/pcb:foreign" --name other

# --- a tampered blob in the registry's storage: refused naming the digest --------------------
DATA=$STORE/docker/registry/v2/blobs/sha256/${HEX:0:2}/$HEX/data
python3 -c 'import sys; f=open(sys.argv[1],"r+b"); f.seek(4096); b=f.read(1); f.seek(4096); f.write(bytes([b[0]^1]))' "$DATA"
expect_refused "a tampered blob" "$DIGEST" pull "$OCI/pcb:production" --name other

# --- a hostile registry ----------------------------------------------------------------------
# The fake binds a port of its own choosing (0) and writes it to PORTFILE: a port picked by
# free_port and bound later can be taken by another test in between.
cat >"$T/fake.py" <<'EOF'
import base64, hashlib, http.server, json, os, sys, urllib.request
portfile, upstream = sys.argv[1], sys.argv[2]
MT = "application/vnd.oci.image.manifest.v1+json"
cfg = b'{"name":"x","scenario":"s"}'
def sha(b): return "sha256:" + hashlib.sha256(b).hexdigest()
def manifest(layers=None, art="application/vnd.hotyolo.model.v1", cfg_mt="application/vnd.hotyolo.model.config.v1+json"):
    return json.dumps({"schemaVersion": 2, "mediaType": MT, "artifactType": art,
        "config": {"mediaType": cfg_mt, "digest": sha(cfg), "size": len(cfg)},
        "layers": layers if layers is not None else [{"mediaType": "application/vnd.hotyolo.model.weights.v1.safetensors",
                   "digest": "sha256:" + "ab" * 32, "size": 100}]}).encode()
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def send(self, code, body=b"", ctype=MT, extra=()):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        for k, v in extra: self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD": self.wfile.write(body)
    def do_HEAD(self): self.do_GET()
    def do_GET(self):
        p = self.path
        if p == "/token":  # Bearer realm: wants basic ci:s3cret
            if self.headers.get("Authorization") == "Basic " + base64.b64encode(b"ci:s3cret").decode():
                return self.send(200, b'{"token":"tok.123-ok"}', "application/json")
            return self.send(401, b'{"errors":[{"code":"UNAUTHORIZED","message":"bad basic"}]}', "application/json")
        if p.startswith("/token?"):
            return self.do_GET_token(p)
        if p.startswith("/v2/bearer/"):
            if self.headers.get("Authorization") != "Bearer tok.123-ok":
                return self.send(401, b'{"errors":[{"code":"UNAUTHORIZED","message":"token needed"}]}', "application/json",
                    [("WWW-Authenticate", f'Bearer realm="http://127.0.0.1:{port}/token",service="fake",scope="repository:bearer:pull"')])
            req = urllib.request.Request(upstream + "/v2/pcb/" + p[len("/v2/bearer/"):], headers={"Accept": MT})
            with urllib.request.urlopen(req) as r:
                return self.send(200, r.read(), r.headers.get("Content-Type"))
        if p == "/v2/foreigncfg/manifests/x": return self.send(200, manifest(cfg_mt="application/vnd.oci.image.config.v1+json"))
        if p == "/v2/wrongct/manifests/x": return self.send(200, manifest(), "application/vnd.docker.distribution.manifest.v2+json")
        if p == "/v2/twolayers/manifests/x":
            l = json.loads(manifest())["layers"]
            return self.send(200, manifest(l + l))
        if p == "/v2/hugelayer/manifests/x":
            return self.send(200, manifest([{"mediaType": "application/vnd.hotyolo.model.weights.v1", "digest": "sha256:" + "ab" * 32, "size": 3 << 30}]))
        if p == "/v2/bigmanifest/manifests/x": return self.send(200, b" " * (300 << 10) + manifest())
        if p == "/v2/bighdr/manifests/x": return self.send(200, manifest(), MT, [("X-Junk-%d" % i, "j" * 1000) for i in range(100)])
        if p == "/v2/loop/manifests/x": return self.send(302, b"", "text/plain", [("Location", "/v2/loop/manifests/x")])
        if p.endswith("/blobs/" + sha(cfg)): return self.send(200, cfg, "application/octet-stream")
        if p.startswith("/v2/longblob/manifests/"): return self.send(200, manifest())
        if p.startswith("/v2/longblob/blobs/"):  # announced 100 bytes by the manifest, sends 1 MiB unannounced
            self.send_response(200); self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Connection", "close"); self.end_headers()
            try: self.wfile.write(b"x" * (1 << 20))
            except Exception: pass
            return
        if p.startswith("/v2/longcl/manifests/"): return self.send(200, manifest())
        if p.startswith("/v2/longcl/blobs/"): return self.send(200, b"x" * 5000, "application/octet-stream")
        self.send(404, b'{"errors":[{"code":"NAME_UNKNOWN"}]}', "application/json")
    def do_GET_token(self, p):
        self.path = "/token"; self.do_GET()
srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
port = srv.server_address[1]
with open(portfile + ".tmp", "w") as f: f.write(str(port))
os.rename(portfile + ".tmp", portfile)
srv.serve_forever()
EOF
python3 "$T/fake.py" "$T/fport" "http://127.0.0.1:$PORT" 2>"$T/fake.log" &
PIDS+=($!)
for _ in $(seq 100); do [ -s "$T/fport" ] && break; sleep 0.1; done
FPORT=$(cat "$T/fport" 2>/dev/null)
[ -n "$FPORT" ] && wait_port "$FPORT" || { bad "fake registry did not start"; cat "$T/fake.log"; exit 1; }
F=oci://127.0.0.1:$FPORT
expect_refused "a config of a foreign media type" "application/vnd.oci.image.config.v1+json" pull "$F/foreigncfg:x" --name other
expect_refused "a Docker manifest" "manifest.v2+json" pull "$F/wrongct:x" --name other
expect_refused "two layers" "exactly one layer" pull "$F/twolayers:x" --name other
expect_refused "a 3 GiB layer" "size must be" pull "$F/hugelayer:x" --name other
expect_refused "a 300 KiB manifest" "over" pull "$F/bigmanifest:x" --name other
expect_refused "100 KB of headers" "headers over" pull "$F/bighdr:x" --name other
expect_refused "a redirect loop" "redirects" pull "$F/loop:x" --name other
expect_refused "a blob longer than announced (unannounced)" "more than the 100 bytes" pull "$F/longblob:x" --name other
expect_refused "a blob longer than announced (Content-Length)" "announced 5000 bytes" pull "$F/longcl:x" --name other
expect_refused "a malformed address" "bad repository" pull "$F/UPPER:x" --name other
# Bearer: 401 + WWW-Authenticate -> token from the realm (with basic credentials) -> retried.
# The tampered blob is still upstream, so the pull gets as far as the digest check.
HY_PW=s3cret expect_refused "Bearer flow, up to the tampered blob" "$DIGEST" pull "$F/bearer:production" --name other \
    --user ci --password-env HY_PW
HY_PW=wrong expect_refused "Bearer flow with a wrong password" "HTTP 401" pull "$F/bearer:production" --name other \
    --user ci --password-env HY_PW

[ "$fails" -eq 0 ] && echo "PASS test_registry_oci" || { echo "FAILED $fails check(s)"; exit 1; }
