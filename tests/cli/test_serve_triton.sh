#!/usr/bin/env bash
# Triton's binary tensor data extension on POST /v2/models/{m}/infer, with requests built byte
# for byte as tritonclient.http builds them (_get_inference_request: compact JSON header, then
# each binary input's bytes in input order, Inference-Header-Content-Length when any binary
# input): binary in + binary out, the mixed cases, outputs equal to the JSON path bit for bit;
# malformed binary sections -> 400 JSON; /v2/models/{m}/config and /stats in Triton's shapes;
# the versioned URLs (/v2/models/{m}/versions/{v}/...): the served version only, others 404.
# Usage: bash test_serve_triton.sh CLI_PATH ASSETS_DIR SOURCE_DIR
set -u
cli="$1"
assets="$2"
[ -d "$assets" ] || { echo "skip: shared assets not found at $assets"; exit 77; }
command -v python3 >/dev/null || { echo "skip: python3 not found"; exit 77; }
model="$assets/weights/yolov8n.pt"
tmp="$(mktemp -d)"
pid=""
cleanup() {
    [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
    rm -rf -- "$tmp"
}
trap cleanup EXIT

"$cli" serve --host 127.0.0.1 --port 0 --port-file "$tmp/port" --model "m=$model,pin" \
    --imgsz 64 --workers 1 2>"$tmp/log" &
pid=$!
for i in $(seq 1 600); do # <= 60 s (sanitizer builds are slow)
    [ -s "$tmp/port" ] && [ "$(curl -s -o /dev/null -w '%{http_code}' \
        "http://127.0.0.1:$(cat "$tmp/port")/v2/health/ready")" = 200 ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
done
[ -s "$tmp/port" ] || { echo "FAIL server did not start"; tail -n 20 "$tmp/log"; exit 1; }

/usr/bin/python3 - "$(cat "$tmp/port")" <<'PY'
import http.client, json, math, struct, sys

port = int(sys.argv[1])
passed = failed = 0

def check(name, cond, detail=""):
    global passed, failed
    if cond:
        passed += 1
        print("ok  ", name)
    else:
        failed += 1
        print("FAIL", name, detail[:600])

def post(body, headers=None, path="/v2/models/m/infer"):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    c.request("POST", path, body=body, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    hdrs = {k.lower(): v for k, v in r.getheaders()}
    c.close()
    return r.status, hdrs, data

def get(path):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    c.request("GET", path)
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, data

# --- tritonclient.http, re-done by hand (no numpy, no tritonclient) ---------------------
def f32(v):
    return struct.unpack("<f", struct.pack("<f", v))[0]

class InferInput:  # name, shape, datatype; set_data_from_numpy(binary_data=True)
    def __init__(self, name, shape, datatype):
        self.name, self.shape, self.datatype = name, shape, datatype
        self.parameters, self.data, self.raw = {}, None, None
    def set_data(self, values, binary_data=True):
        if binary_data:
            self.raw = b"".join(struct.pack("<f", v) for v in values)  # ndarray.tobytes()
            self.parameters["binary_data_size"] = len(self.raw)
        else:
            self.data = list(values)
    def tensor(self):
        t = {"name": self.name, "shape": self.shape, "datatype": self.datatype}
        if self.parameters:
            t["parameters"] = self.parameters
        if self.raw is None and self.data is not None:
            t["data"] = self.data
        return t

class InferRequestedOutput:
    def __init__(self, name, binary_data=True):
        self.name, self.parameters = name, {"binary_data": binary_data}
    def tensor(self):
        return {"name": self.name, "parameters": self.parameters}

def inference_request(inputs, outputs=None, request_id=""):
    """(body, json_size or None) exactly as tritonclient's _get_inference_request."""
    req, params = {}, {}
    if request_id != "":
        req["id"] = request_id
    req["inputs"] = [i.tensor() for i in inputs]
    if outputs:
        req["outputs"] = [o.tensor() for o in outputs]
    else:
        params["binary_data_output"] = True
    if params:
        req["parameters"] = params
    text = json.dumps(req, separators=(",", ":"))  # rapidjson.dumps is compact
    body = [text.encode()]
    for i in inputs:
        if i.raw is not None:
            body.append(i.raw)
    if len(body) == 1:
        return body[0], None
    return b"".join(body), len(text)

def infer(inputs, outputs=None, request_id=""):
    body, json_size = inference_request(inputs, outputs, request_id)
    headers = {}
    if json_size is not None:
        headers["Inference-Header-Content-Length"] = json_size
    return post(body, headers)

def result(status, hdrs, data):
    """InferResult: (json header, {name: [floats]}, binary?) as tritonclient reads it."""
    hl = hdrs.get("inference-header-content-length")
    if hl is None:
        return json.loads(data), None
    hl = int(hl)
    head = json.loads(data[:hl])
    out, off = {}, hl
    for o in head["outputs"]:
        n = o.get("parameters", {}).get("binary_data_size")
        if n is not None:
            out[o["name"]] = list(struct.unpack("<%df" % (n // 4), data[off:off + n]))
            off += n
    return head, (out, off == len(data))

H, W = 64, 64
values = [f32((i % 97) / 97.0) for i in range(3 * H * W)]

def images(binary):
    x = InferInput("images", [1, 3, H, W], "FP32")
    x.set_data(values, binary)
    return x

# JSON path: the reference
st, hd, data = infer([images(False)], [InferRequestedOutput("output0", False)], "r1")
ref = json.loads(data) if st == 200 else {}
ref_out = ref.get("outputs", [{}])[0].get("data", [])
check("JSON in + JSON out: 200, [1,84,84]", st == 200 and len(ref_out) == 84 * 84 and
      ref["outputs"][0]["shape"] == [1, 84, 84] and "inference-header-content-length" not in hd,
      repr(data[:300]))
ref_bits = [struct.pack("<f", v) for v in ref_out]

def same_as_json(out):
    return out is not None and len(out) == len(ref_bits) and \
        all(struct.pack("<f", a) == b for a, b in zip(out, ref_bits))

# binary in + binary out: tritonclient's defaults (outputs=None -> binary_data_output)
body, js = inference_request([images(True)], None, "r2")
check("request: JSON header then 49152 bytes, Inference-Header-Content-Length = JSON length",
      js is not None and len(body) == js + 3 * H * W * 4 and body[:js].endswith(b"}"))
st, hd, data = infer([images(True)], None, "r2")
ok = st == 200 and hd.get("content-type") == "application/octet-stream" and \
    "inference-header-content-length" in hd
head, bins = result(st, hd, data) if ok else ({}, None)
check("binary in + binary out (binary_data_output): 200 octet-stream with the header length",
      ok, "%d %r %r" % (st, hd, data[:200]))
check("binary out: header says binary_data_size 28224, shape [1,84,84], id echoed, body exact",
      ok and head["outputs"][0]["parameters"]["binary_data_size"] == 84 * 84 * 4 and
      head["outputs"][0]["shape"] == [1, 84, 84] and head.get("id") == "r2" and bins[1] and
      "data" not in head["outputs"][0], repr(head))
check("binary in + binary out equals the JSON path bit for bit", ok and same_as_json(bins[0]["output0"]))

# binary in + binary out, asked per output
st, hd, data = infer([images(True)], [InferRequestedOutput("output0", True)])
head, bins = result(st, hd, data) if st == 200 else ({}, None)
check("binary in + output0 binary_data=true: equal to JSON", st == 200 and bins and
      same_as_json(bins[0].get("output0")))

# binary in + JSON out
st, hd, data = infer([images(True)], [InferRequestedOutput("output0", False)])
head, bins = result(st, hd, data) if st == 200 else ({}, None)
check("binary in + JSON out: application/json, no header length, equal to JSON",
      st == 200 and bins is None and hd.get("content-type") == "application/json" and
      [struct.pack("<f", v) for v in head["outputs"][0]["data"]] == ref_bits, repr(data[:200]))

# JSON in + binary out (no binary input: no Inference-Header-Content-Length in the request)
body, js = inference_request([images(False)], [InferRequestedOutput("output0", True)])
st, hd, data = infer([images(False)], [InferRequestedOutput("output0", True)])
head, bins = result(st, hd, data) if st == 200 else ({}, None)
check("JSON in + binary out: request has no header length; answer binary, equal to JSON",
      js is None and st == 200 and bins and same_as_json(bins[0].get("output0")), repr(data[:200]))

# JSON in with binary_data_output (tritonclient's default outputs)
st, hd, data = infer([images(False)])
head, bins = result(st, hd, data) if st == 200 else ({}, None)
check("JSON in + binary_data_output: binary, equal to JSON", st == 200 and bins and
      same_as_json(bins[0].get("output0")))

# an explicit header length equal to the whole body (no binary part) is fine
body, _ = inference_request([images(False)], [InferRequestedOutput("output0", False)])
st, hd, data = post(body, {"Inference-Header-Content-Length": str(len(body))})
check("header length = whole body: JSON answer", st == 200, repr(data[:200]))

# --- malformed: 400 with a JSON error ---------------------------------------------------
good_in = images(True)
good, js = inference_request([good_in], None)
header = good[:js]
raw = good[js:]

def bad(name, body, headers, want):
    st, hd, data = post(body, headers)
    try:
        e = json.loads(data)
    except ValueError:
        e = {}
    check(name + " -> 400 JSON", st == 400 and e.get("code") == 400 and
          want in e.get("error", ""), "%d %r" % (st, data[:300]))

def hdr(n):
    return {"Inference-Header-Content-Length": str(n)}

def with_size(size_text, data_key=False):
    t = header.decode().replace('"binary_data_size":%d' % len(raw), '"binary_data_size":' + size_text)
    if data_key:
        t = t.replace('"parameters":{"binary', '"data":[0.5],"parameters":{"binary')
    return t.encode()

bad("sizes that do not add up: 4 extra bytes", good + b"\0\0\0\0", hdr(js), "binary_data_size")
bad("sizes that do not add up: 4 bytes short", good[:-4], hdr(js), "binary_data_size")
bad("header length past the body", good, hdr(len(good) + 1), "past the end")
bad("header length past the body (huge)", good, hdr("99999999999999999999"), "Inference-Header-Content-Length")
bad("header length negative", good, hdr("-5"), "Inference-Header-Content-Length")
bad("header length not a number", good, hdr("12abc"), "Inference-Header-Content-Length")
bad("header length cuts the JSON", good, hdr(js - 1), "JSON")
bad("header length 0", good, hdr(0), "JSON")
h2 = with_size("-49152")
bad("binary_data_size negative", h2 + raw, hdr(len(h2)), "binary_data_size")
h2 = with_size("18446744073709600000")
bad("binary_data_size overflowing", h2 + raw, hdr(len(h2)), "binary_data_size")
h2 = with_size("49152.0")
bad("binary_data_size not an integer", h2 + raw, hdr(len(h2)), "binary_data_size")
h2 = with_size("49152", data_key=True)
bad("binary_data_size on an input with data", h2 + raw, hdr(len(h2)), "both")
h2 = with_size("24576")
bad("binary_data_size that does not fit the shape", h2 + raw[:24576], hdr(len(h2)), "expected 49152")
body, _ = inference_request([images(False)], [InferRequestedOutput("output0", False)])
bad("bytes after the header but no binary input", body + raw, hdr(len(body)), "binary_data_size")
bad("binary_data_size without the header length", good, {}, "JSON")
nan = struct.pack("<f", float("nan"))
bad("a NaN in the binary data", header + raw[:-4] + nan, hdr(js), "element 12287")
bad("a value over 1 in the binary data", header + struct.pack("<f", 2.0) + raw[4:], hdr(js), "element 0")
b2, j2 = inference_request([images(True)], [InferRequestedOutput("boxes", True)])
bad("an unknown output name", b2, hdr(j2), "output0")
t = header.decode().replace('"binary_data_output":true', '"binary_data_output":"yes"').encode()
bad("binary_data_output not a boolean", t + raw, hdr(len(t)), "binary_data_output")
t = header.decode().replace('"binary_data_size"', '"shared_memory_region":"r","binary_data_size"').encode()
bad("an input parameter not supported (shared memory)", t + raw, hdr(len(t)), "shared_memory_region")

# --- metadata, config, stats --------------------------------------------------------------
st, data = get("/v2")
check("/v2 lists binary_tensor_data", st == 200 and "binary_tensor_data" in json.loads(data)["extensions"])
st, data = get("/v2/models/m/config")
cfg = json.loads(data) if st == 200 else {}
check("/v2/models/m/config in Triton's shape", st == 200 and cfg.get("name") == "m" and
      cfg.get("max_batch_size") == 0 and cfg["input"][0] == {"name": "images", "data_type":
      "TYPE_FP32", "format": "FORMAT_NCHW", "dims": [1, 3, 64, 64]} and
      cfg["output"][0]["dims"] == [1, 84, 84] and cfg["output"][0]["data_type"] == "TYPE_FP32",
      repr(data[:400]))
st, data = get("/v2/models/m/stats")
ms = json.loads(data)["model_stats"][0] if st == 200 else {}
succ = ms.get("inference_stats", {}).get("success", {})
check("/v2/models/m/stats in Triton's shape, counting the 7 inferences", st == 200 and
      ms.get("name") == "m" and ms.get("inference_count") == 7 and succ.get("count") == 7 and
      succ.get("ns", 0) > 0 and ms.get("last_inference", 0) > 1.6e12, repr(data[:400]))
st, data = get("/v2/models/nope/stats")
check("/v2/models/nope/stats -> 404", st == 404)

# --- versioned URLs, as tritonclient builds them with model_version="..." ------------------
st, data = get("/v2/models/m")
meta = json.loads(data) if st == 200 else {}
ver = (meta.get("versions") or [""])[0]
check("/v2/models/m lists the served version", st == 200 and len(ver) == 12, repr(data[:200]))
vurl = "/v2/models/m/versions/%s" % ver
body, js = inference_request([images(True)], [InferRequestedOutput("output0", True)], "v1")
st, hd, data = post(body, {"Inference-Header-Content-Length": js}, vurl + "/infer")
head, bins = result(st, hd, data) if st == 200 else ({}, None)
check("versions/<served>/infer: binary, model_version echoed, equal to JSON", st == 200 and
      head.get("model_version") == ver and head.get("id") == "v1" and bins and bins[1] and
      same_as_json(bins[0].get("output0")), "%d %r" % (st, data[:300]))
for tail in ["", "/ready", "/config"]:
    st, data = get(vurl + tail)
    st0, data0 = get("/v2/models/m" + tail)
    check("GET versions/<served>%s = GET /v2/models/m%s" % (tail, tail), st == 200 and data == data0,
          repr(data[:200]))
st, data = get(vurl + "/stats")
ms = json.loads(data)["model_stats"][0] if st == 200 else {}
check("versions/<served>/stats counts the versioned inference too (8)", st == 200 and
      ms.get("version") == ver and ms.get("inference_count") == 8, repr(data[:300]))
for path, what in [("/v2/models/m/versions/1/infer", "1"), ("/v2/models/m/versions/%s0/infer" % ver, ver + "0"),
                   ("/v2/models/m/versions/%s/infer" % ver.upper(), ver.upper())]:
    st, hd, data = post(body, {"Inference-Header-Content-Length": js}, path)
    e = json.loads(data) if st == 404 else {}
    check("POST %s -> 404 naming the version and the served one" % path, st == 404 and
          ("'%s'" % what[:13]) in e.get("error", "") and ver in e.get("error", ""), repr(data[:300]))
for path in ["/v2/models/m/versions/1/ready", "/v2/models/m/versions/1/config", "/v2/models/m/versions/1"]:
    st, data = get(path)
    check("GET %s -> 404" % path, st == 404, repr(data[:200]))
for path in ["/v2/models/m/versions//infer", vurl + "/nope", vurl + "/infer/x", "/v2/models/nope/versions/%s/infer" % ver]:
    st, hd, data = post(body, {"Inference-Header-Content-Length": js}, path)
    check("POST %s -> 404" % path, st == 404, repr(data[:200]))

print("passed %d, failed %d" % (passed, failed))
sys.exit(1 if failed else 0)
PY
rc=$?
kill -TERM "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
pid=""
exit $rc
