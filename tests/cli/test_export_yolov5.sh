#!/usr/bin/env bash
# hotyolo export of YOLOv5 (weights/yolov5n.pt): the ONNX file has YOLOv5's interface (input
# images (1, 3, 640, 640), output0 (1, 25200, 85), metadata stride and names only) and ONNX
# Runtime running it on reference/bus_letterbox_640_input.npy gives YOLOv5 v7.0's own output
# (reference/yolov5/yolov5n_bus_640_output0.npy: max abs error <= 0.01 on x, y, w, h, <= 1e-3
# on objectness and classes). The .pt export: torch 1.13 weights_only globals, YOLOv5's yaml
# (multiples, anchors, rows), read back by hotyolo as the same network (its ONNX export is the
# same file byte for byte, as is the export of a fused safetensors). Exit 77 when ONNX Runtime (scripts/ort-setup.sh) is unavailable.
# Usage: test_export_yolov5.sh CLI ASSETS SRCDIR
set -u
cli="$1"; assets="$2"; src="${3:-.}"
py=/usr/bin/python3
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
fail=0
check() { if "$@"; then :; else echo "FAIL: $*"; fail=1; fi; }
expect_rc() { local want="$1"; shift; "$@" >"$tmp/out" 2>"$tmp/err"; local rc=$?
    if [ "$rc" != "$want" ]; then echo "FAIL (rc $rc, want $want): $*"; cat "$tmp/err"; fail=1; fi; }
w="$assets/weights/yolov5n.pt"
npy="$assets/reference/bus_letterbox_640_input.npy"
ref="$assets/reference/yolov5/yolov5n_bus_640_output0.npy"
for f in "$w" "$npy" "$ref"; do [ -f "$f" ] || { echo "skip: no $f"; exit 77; }; done

# ---- ONNX: the file's interface -------------------------------------------------------------
expect_rc 0 "$cli" export "$w" --format onnx -o "$tmp/v5.onnx"
# ModelProto walked with a minimal protobuf reader: graph input / output shapes, metadata_props
onnx_iface() {
"$py" - "$1" <<'PY'
import sys
def fields(b):
    i = 0
    while i < len(b):
        k = 0; s = 0
        while True:
            c = b[i]; i += 1; k |= (c & 0x7f) << s; s += 7
            if c < 0x80: break
        f, t = k >> 3, k & 7
        if t == 0:
            v = 0; s = 0
            while True:
                c = b[i]; i += 1; v |= (c & 0x7f) << s; s += 7
                if c < 0x80: break
        elif t == 2:
            n = 0; s = 0
            while True:
                c = b[i]; i += 1; n |= (c & 0x7f) << s; s += 7
                if c < 0x80: break
            v = b[i:i + n]; i += n
        elif t == 5: v = b[i:i + 4]; i += 4
        elif t == 1: v = b[i:i + 8]; i += 8
        else: raise ValueError("wire type %d" % t)
        yield f, v
def get(b, f): return [v for k, v in fields(b) if k == f]
def value_info(v):  # ValueInfoProto: name, type.tensor_type.shape.dim[].dim_value
    name = get(v, 1)[0].decode()
    tt = get(get(v, 2)[0], 1)[0]
    dims = [get(d, 1)[0] for d in get(get(tt, 2)[0], 1)]
    return name, dims
m = open(sys.argv[1], "rb").read()
g = get(m, 7)[0]
meta = {get(p, 1)[0].decode(): get(p, 2)[0].decode() for p in get(m, 14)}
print("input", *value_info(get(g, 11)[0]))
print("output", *value_info(get(g, 12)[0]))
print("meta_keys", sorted(meta))
print("stride", meta.get("stride"))
print("names", meta.get("names", "")[:40])
PY
}
onnx_iface "$tmp/v5.onnx" >"$tmp/iface" || { echo "FAIL: cannot read $tmp/v5.onnx"; fail=1; }
sed 's/^/  /' "$tmp/iface"
check grep -qx "input images \[1, 3, 640, 640\]" "$tmp/iface"
check grep -qx "output output0 \[1, 25200, 85\]" "$tmp/iface"
check grep -qx "meta_keys \['names', 'stride'\]" "$tmp/iface"
check grep -qx "stride 32" "$tmp/iface"
check grep -qx "names {0: 'person', 1: 'bicycle', 2: 'car', 3:" "$tmp/iface"

# ---- .pt: YOLOv5's config beside the state_dict, read back as the same network ---------------
expect_rc 0 "$cli" export "$w" --format pt -o "$tmp/v5.pt"
check "$py" - "$tmp/v5.pt" <<'PY'
import sys, zipfile, pickle, pickletools, io, collections
allowed = {"collections OrderedDict", "torch._utils _rebuild_tensor_v2", "torch._utils _rebuild_parameter",
           "torch.nn.parameter Parameter", "torch Size", "torch Tensor"} | {
           "torch " + s for s in ("FloatStorage", "HalfStorage", "BFloat16Storage", "DoubleStorage", "LongStorage",
                                  "IntStorage", "ShortStorage", "CharStorage", "ByteStorage", "BoolStorage")}
pkl = zipfile.ZipFile(sys.argv[1]).read("archive/data.pkl")
seen = {a for op, a, _ in pickletools.genops(pkl) if op.name in ("GLOBAL", "STACK_GLOBAL", "INST", "OBJ",
                                                                  "NEWOBJ", "NEWOBJ_EX", "EXT1", "EXT2", "EXT4")}
assert None not in seen and not seen - allowed, seen
class U(pickle.Unpickler):
    def find_class(self, m, n):
        if (m, n) == ("collections", "OrderedDict"): return collections.OrderedDict
        if (m, n) == ("torch._utils", "_rebuild_tensor_v2"): return lambda *a: tuple(a[2])
        if m == "torch": return n
        raise pickle.UnpicklingError(m + "." + n)
    def persistent_load(self, pid): return pid
c = U(io.BytesIO(pkl)).load()
y, sd = c["yaml"], c["state_dict"]
assert y["nc"] == 80 and float(y["depth_multiple"]) == 0.33 and float(y["width_multiple"]) == 0.25, y
assert y["anchors"] == [[10, 13, 16, 30, 33, 23], [30, 61, 62, 45, 59, 119], [116, 90, 156, 198, 373, 326]], y["anchors"]
assert y["backbone"][0] == [-1, 1, "Conv", [64, 6, 2, 2]] and y["head"][-1] == [[17, 20, 23], 1, "Detect", ["nc", "anchors"]]
assert len(y["backbone"]) == 10 and len(y["head"]) == 15, (len(y["backbone"]), len(y["head"]))
assert sd["model.24.anchors"] == (3, 3, 2) and sd["model.24.m.0.weight"] == (255, 64, 1, 1), sd.get("model.24.anchors")
assert c["names"][5] == "bus", c["names"]
print("  .pt: %d tensors, yaml keys %s" % (len(sd), sorted(y)))
PY
expect_rc 0 "$cli" inspect "$tmp/v5.pt"
check grep -qE "^architecture: +yolov5$" "$tmp/out"
check grep -qE "^valid: +yes" "$tmp/out"
expect_rc 0 "$cli" export "$tmp/v5.pt" --format onnx -o "$tmp/v5b.onnx"
check cmp -s "$tmp/v5.onnx" "$tmp/v5b.onnx"
# a fused source (BN folded by convert --fuse) exports the same file too
expect_rc 0 "$cli" convert "$w" "$tmp/v5f.safetensors" --fuse
expect_rc 0 "$cli" export "$tmp/v5f.safetensors" --format onnx -o "$tmp/v5f.onnx"
check cmp -s "$tmp/v5.onnx" "$tmp/v5f.onnx"

# ---- hotyolo's own ONNX reader: a clear answer, never a crash --------------------------------
"$cli" inspect "$tmp/v5.onnx" >"$tmp/out" 2>&1
rc=$?
[ "$rc" -le 1 ] || { echo "FAIL: hotyolo inspect of the YOLOv5 ONNX exited $rc"; cat "$tmp/out"; fail=1; }

# ---- ONNX Runtime: the exported file computes YOLOv5's output0 --------------------------------
if ! command -v node >/dev/null || ! ortdir="$(bash "$src/scripts/ort-setup.sh" 2>"$tmp/ort.log")"; then
    echo "skip: onnxruntime-node unavailable ($(tail -n 1 "$tmp/ort.log" 2>/dev/null || echo 'node is not installed'))"
    [ "$fail" = 0 ] && exit 77
    exit "$fail"
fi
NODE_PATH="$ortdir/node_modules" node -e '
const fs = require("fs"), ort = require("onnxruntime-node");
const [m, i, o] = process.argv.slice(1);
const b = fs.readFileSync(i), h = b.readUInt16LE(8);
const x = new Float32Array(b.buffer.slice(b.byteOffset + 10 + h, b.byteOffset + b.length));
ort.InferenceSession.create(m, { executionProviders: ["cpu"] })
  .then((s) => s.run({ images: new ort.Tensor("float32", x, [1, 3, 640, 640]) }))
  .then((r) => { const y = r.output0; fs.writeFileSync(o + ".dims", y.dims.join(","));
                 fs.writeFileSync(o, Buffer.from(y.data.buffer, y.data.byteOffset, y.data.byteLength)); })
  .catch((e) => { console.error(String(e)); process.exit(1); });' "$tmp/v5.onnx" "$npy" "$tmp/ort.bin" ||
    { echo "FAIL: onnxruntime could not run $tmp/v5.onnx"; fail=1; }
check "$py" - "$tmp/ort.bin" "$ref" <<'PY'
import sys, struct, ast
got = open(sys.argv[1], "rb").read()
dims = open(sys.argv[1] + ".dims").read()
r = open(sys.argv[2], "rb").read()
hl = struct.unpack_from("<H", r, 8)[0]
hdr = ast.literal_eval(r[10:10 + hl].decode("latin1"))
assert hdr["descr"] == "<f4" and tuple(hdr["shape"]) == (1, 25200, 85), hdr
assert dims == "1,25200,85", dims
n = 25200 * 85
a = struct.unpack("<%df" % n, got)
b = struct.unpack_from("<%df" % n, r, 10 + hl)
eb = es = 0.0
for i in range(n):
    d = abs(a[i] - b[i])
    if d != d: d = float("inf")  # NaN
    if i % 85 < 4:
        eb = max(eb, d)
    else:
        es = max(es, d)
print("  onnxruntime vs YOLOv5 v7.0 output0: max abs boxes %.3g px, objectness/classes %.3g" % (eb, es))
sys.exit(0 if eb <= 0.01 and es <= 1e-3 else 1)
PY
[ "$fail" = 0 ] && echo "ok: export yolov5"
exit "$fail"
