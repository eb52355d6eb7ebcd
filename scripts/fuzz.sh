#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/fuzz_*.c) with clang + ASan + UBSan, prepares their seed
# corpora and runs each for a fixed time. docs/fuzzing.md explains the targets and caps.
#
#   scripts/fuzz.sh [-s SECONDS] [-j JOBS] [TARGET...]     (default: every target, 300 s each)
#   make fuzz FUZZ_SECONDS=600 FUZZ_TARGETS="pickle zip"   make fuzz-ci  (60 s each)
#
# Environment: FUZZ_BUILD (build-fuzz), HY_ASSETS (../shared/assets), FUZZ_JOBS (targets run
# side by side; default 2), FUZZ_CC (clang).
# Layout under the build folder:
#   corpus/<t>/    what each target has learnt (kept between local runs; grows)
#   seeds/<t>/     regenerated every run: tests/fixtures, shared assets, fuzz/seeds/<t>
#   findings/<t>/  crash-*, leak-*, oom-*, timeout-* reproducers (libFuzzer's artifacts)
#   logs/<t>.log   the fuzzer's output
# Exit status: 0 when no target found anything, 1 when one did, 2 on a setup error.
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=$PWD
SECONDS_EACH=${FUZZ_SECONDS:-300}
JOBS=${FUZZ_JOBS:-2}
BUILD=${FUZZ_BUILD:-build-fuzz}
CC_FUZZ=${FUZZ_CC:-clang}
ASSETS=${HY_ASSETS:-$(cd .. && pwd)/shared/assets}
while getopts "s:j:" o; do
  case $o in
    s) SECONDS_EACH=$OPTARG ;;
    j) JOBS=$OPTARG ;;
    *) echo "usage: $0 [-s SECONDS] [-j JOBS] [TARGET...]" >&2; exit 2 ;;
  esac
done
shift $((OPTIND - 1))

# Every target: name -> "max_len_bytes malloc_limit_mb" (see docs/fuzzing.md, "Caps").
# rss_limit is 2048 MB for all: ASan's shadow, redzones and 256 MB quarantine come on top of
# what the library holds, and the HTTP target holds a loaded model.
declare -A CAPS=(
  [pickle]="1048576 256"
  [zip]="1048576 256"
  [pt]="8388608 256"
  [model]="8388608 256"
  [safetensors]="8388608 256"
  [onnx]="8388608 256"
  [image]="2097152 1024"
  [yaml]="65536 256"
  [labels]="65536 256"
  [http]="65536 1024"
  [http_json]="65536 256"
  [train_state]="1048576 256"
  [oci]="65536 256"
  [triton_binary]="262144 256"
  [video]="1048576 512"
  [device]="256 64"
)
ALL=()
for f in fuzz/fuzz_*.c; do
  t=$(basename "$f" .c); t=${t#fuzz_}
  [ -n "${CAPS[$t]:-}" ] || { echo "fuzz.sh: no caps for target '$t'" >&2; exit 2; }
  ALL+=("$t")
done
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=("${ALL[@]}")
for t in "${TARGETS[@]}"; do
  [ -f "fuzz/fuzz_$t.c" ] || { echo "fuzz.sh: unknown target '$t' (have: ${ALL[*]})" >&2; exit 2; }
done
command -v "$CC_FUZZ" >/dev/null || { echo "fuzz.sh: $CC_FUZZ not found (scripts/install-deps.sh)" >&2; exit 2; }
[ -d "$ASSETS" ] || { echo "fuzz.sh: assets folder $ASSETS not found (set HY_ASSETS)" >&2; exit 2; }
ASSETS=$(cd "$ASSETS" && pwd)

# --- build ------------------------------------------------------------------------------------
# -Werror off: clang warns (-Wunknown-pragmas) on GCC-only pragmas of the CPU kernels.
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache)
cmake -S . -B "$BUILD" -DCMAKE_C_COMPILER="$CC_FUZZ" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DHY_FUZZ=ON -DHY_BUILD_TESTS=OFF -DHY_BUILD_BENCH=OFF -DHY_NATIVE=OFF \
  -DHY_WARNINGS_AS_ERRORS=OFF -DHY_ASSETS_DIR="$ASSETS" "${launcher[@]}" >/dev/null
mkdir -p "$BUILD"
if ! cmake --build "$BUILD" -j "$(nproc)" --target $(printf 'fuzz_%s ' "${TARGETS[@]}") \
    >"$BUILD/fuzz-build.log" 2>&1; then
  grep -E 'error|Error' "$BUILD/fuzz-build.log" | head -20 >&2
  echo "fuzz.sh: build failed ($BUILD/fuzz-build.log)" >&2
  exit 2
fi
B=$(cd "$BUILD" && pwd)

# --- seeds ------------------------------------------------------------------------------------
rm -rf "$B/seeds"
mkdir -p "$B/seeds" "$B/logs"
for t in "${TARGETS[@]}"; do
  mkdir -p "$B/seeds/$t" "$B/corpus/$t" "$B/findings/$t"
  [ -d "fuzz/seeds/$t" ] && cp fuzz/seeds/"$t"/* "$B/seeds/$t/" 2>/dev/null || true
done
/usr/bin/python3 - "$B/seeds" "$SRC" "$ASSETS" <<'PY'
import glob, io, os, pickle, struct, sys, zipfile, zlib, json, collections
out, src, assets = sys.argv[1:4]
def put(t, name, data):
    d = os.path.join(out, t)
    if os.path.isdir(d):
        with open(os.path.join(d, name), "wb") as f: f.write(data)
def small(paths, limit):
    return [p for p in sorted(paths) if os.path.getsize(p) <= limit]
pts = small(glob.glob(src + "/tests/fixtures/*.pt") + glob.glob(assets + "/fixtures/pt/*.pt"), 1 << 20)
big_pts = small(glob.glob(assets + "/weights/*.pt"), 8 << 20)
# pt: whole checkpoints (the tiny fixtures, yolov8n.pt/yolov5n.pt; yolov8s_random.pt is too big)
for p in pts + big_pts:
    put("pt", os.path.basename(p), open(p, "rb").read())
    put("model", os.path.basename(p), open(p, "rb").read())
# zip: the small .pt archives plus archives with every feature the reader handles
for p in pts: put("zip", os.path.basename(p), open(p, "rb").read())
for name, kw in [("stored.zip", dict(compression=zipfile.ZIP_STORED)),
                 ("deflated.zip", dict(compression=zipfile.ZIP_DEFLATED))]:
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w", **kw) as z:
        z.writestr("archive/data.pkl", pickle.dumps({"a": 1}, protocol=2))
        z.writestr("archive/data/0", b"\0" * 64)
        z.writestr("archive/version", b"3\n")
    put("zip", name, b.getvalue())
b = io.BytesIO()
with zipfile.ZipFile(b, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as z:
    with z.open("big/data/0", "w", force_zip64=True) as f: f.write(b"x" * 1000)
put("zip", "zip64.zip", b.getvalue())
# pickle: data.pkl of every checkpoint, and plain pickles of every protocol
for p in pts + big_pts:
    try:
        with zipfile.ZipFile(p) as z:
            for n in z.namelist():
                if n.endswith("data.pkl") and z.getinfo(n).file_size <= (1 << 20):
                    put("pickle", os.path.basename(p) + ".pkl", z.read(n))
    except zipfile.BadZipFile:
        put("pickle", os.path.basename(p) + ".legacy", open(p, "rb").read()[:1 << 20])
val = collections.OrderedDict([("model", {"names": ["a", "b"], "nc": 2, "yaml": {"scale": "n"}}),
       ("epoch", -1), ("f", 1.5), ("big", 1 << 70), ("neg", -(1 << 40)), ("b", b"\x00\x01"),
       ("t", (1, 2, (3,))), ("l", [None, True, False]), ("s", {1, 2}), ("fs", frozenset([3])),
       ("u", "\u00e9\u4e2d")])
for proto in range(0, 6): put("pickle", "proto%d.pkl" % proto, pickle.dumps(val, protocol=proto))
shared = [1, 2]
put("pickle", "memo.pkl", pickle.dumps({"x": shared, "y": shared}, protocol=2))
# safetensors: the small reference file plus hand-made hotyolo-style ones
for p in small(glob.glob(assets + "/reference/train/*.safetensors"), 8 << 20):
    put("safetensors", os.path.basename(p), open(p, "rb").read())
def st(tensors, meta):
    hdr, data = {"__metadata__": meta}, b""
    for name, dt, shape, raw in tensors:
        hdr[name] = {"dtype": dt, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    h = json.dumps(hdr).encode()
    h += b" " * ((-(8 + len(h))) % 64)
    return struct.pack("<Q", len(h)) + h + data
import hashlib
raw = [("model.0.conv.weight", "F16", [2, 1, 1, 1], b"\0<\0<"), ("model.0.conv.bias", "F32", [2], b"\0" * 8),
       ("model.22.dfl.conv.weight", "F32", [1, 16, 1, 1], struct.pack("<16f", *range(16)))]
data = b"".join(r[3] for r in raw)
meta = {"format": "hotyolo", "hotyolo.format_version": "1", "hotyolo.arch": "yolov8", "hotyolo.nc": "2",
        "hotyolo.names": json.dumps(["a", "b"]), "hotyolo.variant": "n", "hotyolo.imgsz": "640",
        "hotyolo.fused": "1", "hotyolo.data_sha256": hashlib.sha256(data).hexdigest()}
put("safetensors", "hotyolo_tiny.safetensors", st(raw, meta))
put("model", "hotyolo_tiny.safetensors", st(raw, meta))
put("safetensors", "plain.safetensors", st([("w", "BF16", [1], b"\0\0"), ("i", "I64", [], b"\0" * 8)], {}))
# onnx: the int8 export (the fp32 one is 12.8 MB, over max_len)
for p in small(glob.glob(assets + "/weights/*.onnx"), 8 << 20):
    put("onnx", os.path.basename(p), open(p, "rb").read())
    put("model", os.path.basename(p), open(p, "rb").read())
# a tiny hand-encoded ONNX ModelProto (fast to mutate): a Conv with weight/bias, a ConvInteger
# with quantized weight/scale/zero point, metadata, input images [1,3,32,32], output [1,84,21]
def vint(v):
    b = b""
    while True:
        c = v & 0x7F; v >>= 7
        if v: b += bytes([c | 0x80])
        else: return b + bytes([c])
def fld(n, wire, payload):
    key = vint(n << 3 | wire)
    if wire == 0: return key + vint(payload)
    if wire == 5: return key + payload
    return key + vint(len(payload)) + payload
def s_(n, text): return fld(n, 2, text.encode() if isinstance(text, str) else text)
def tensor(name, dt, dims, raw):
    return b"".join(fld(1, 0, d) for d in dims) + fld(2, 0, dt) + s_(8, name) + s_(9, raw)
def vinfo(name, dims):
    shape = b"".join(s_(1, fld(1, 0, d) if isinstance(d, int) else s_(2, d)) for d in dims)
    return s_(1, name) + s_(2, s_(1, fld(1, 0, 1) + s_(2, shape)))
def attr(name, ints=None, i=None):
    a = s_(1, name)
    if ints is not None: a += b"".join(fld(8, 0, v) for v in ints) + fld(20, 0, 7)
    if i is not None: a += fld(3, 0, i) + fld(20, 0, 2)
    return a
node1 = s_(1, "images") + s_(1, "model.0.conv.weight") + s_(1, "model.0.conv.bias") + s_(2, "/model.0/conv/Conv_output_0") + \
    s_(3, "/model.0/conv/Conv") + s_(4, "Conv") + s_(5, attr("kernel_shape", ints=[3, 3])) + s_(5, attr("strides", ints=[2, 2])) + \
    s_(5, attr("group", i=1))
node2 = s_(1, "/model.0/conv/Conv_output_0") + s_(1, "model.1.conv.weight_quantized") + s_(2, "/model.1/conv/ConvInteger_output_0") + \
    s_(4, "ConvInteger") + s_(5, attr("pads", ints=[1, 1, 1, 1]))
node3 = s_(1, "/model.1/conv/ConvInteger_output_0") + s_(2, "/model.1/act/Sigmoid_output_0") + s_(4, "Sigmoid")
node4 = s_(1, "/model.1/act/Sigmoid_output_0") + s_(2, "output0") + s_(4, "Concat") + s_(5, attr("axis", i=1))
graph = s_(1, node1) + s_(1, node2) + s_(1, node3) + s_(1, node4) + s_(2, "main_graph") + \
    s_(5, tensor("model.0.conv.weight", 1, [2, 3, 3, 3], struct.pack("<54f", *[0.01 * i for i in range(54)]))) + \
    s_(5, tensor("model.0.conv.bias", 1, [2], struct.pack("<2f", 0.5, -0.5))) + \
    s_(5, tensor("model.1.conv.weight_quantized", 2, [2, 2, 1, 1], bytes([1, 128, 255, 0]))) + \
    s_(5, tensor("model.1.conv.weight_scale", 1, [], struct.pack("<f", 0.02))) + \
    s_(5, tensor("model.1.conv.weight_zero_point", 2, [], bytes([128]))) + \
    s_(11, vinfo("images", [1, 3, 32, 32])) + s_(12, vinfo("output0", [1, 84, "anchors"]))
meta = b"".join(s_(14, s_(1, k) + s_(2, v)) for k, v in [("description", "Ultralytics YOLOv8n model"),
    ("stride", "32"), ("imgsz", "[32, 32]"), ("names", "{0: 'person', 1: 'bicycle'}"), ("task", "detect")])
model = fld(1, 0, 7) + s_(2, "pytorch") + s_(3, "1.13.0") + s_(7, graph) + s_(8, s_(1, "") + fld(2, 0, 12)) + meta
put("onnx", "tiny.onnx", model)
# image: JPEGs of the assets, one with an EXIF orientation, and PNGs of every colour type
jpgs = small(glob.glob(assets + "/images/*.jpg") + glob.glob(assets + "/images/darknet/*.jpg") +
             glob.glob(assets + "/datasets/coco8/images/*/*.jpg"), 2 << 20)
for p in jpgs: put("image", os.path.basename(p), open(p, "rb").read())
if jpgs:
    j = open(min(jpgs, key=os.path.getsize), "rb").read()
    tiff = b"MM\0*" + struct.pack(">IH", 8, 1) + struct.pack(">HHIHH", 0x0112, 3, 1, 6, 0) + b"\0\0\0\0"
    app1 = b"Exif\0\0" + tiff
    put("image", "exif6.jpg", j[:2] + b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1 + j[2:])
def png(w, h, ctype, depth, rows, interlace=0, extra=b""):
    def chunk(t, d): return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
    ihdr = struct.pack(">IIBBBBB", w, h, depth, ctype, 0, 0, interlace)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + extra + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
for ctype, depth, bpp in [(0, 8, 1), (0, 16, 2), (2, 8, 3), (2, 16, 6), (4, 8, 2), (6, 8, 4), (0, 1, 1)]:
    w, h = 5, 4
    rowlen = (w * depth + 7) // 8 if ctype == 0 and depth < 8 else w * bpp
    rows = b"".join(bytes([i % 5]) + bytes((x * 37 + y * 11) & 255 for x in range(rowlen)) for y, i in zip(range(h), range(h)))
    put("image", "c%d_d%d.png" % (ctype, depth), png(w, h, ctype, depth, rows))
plte = struct.pack(">I", 6) + b"PLTE" + b"\xff\0\0\0\xff\0" + struct.pack(">I", zlib.crc32(b"PLTE\xff\0\0\0\xff\0"))
put("image", "palette.png", png(4, 2, 3, 8, b"\0\0\1\0\1\0\1\0\1\0", extra=plte))
# yaml: the datasets' data.yaml and the export metadata; fuzz/seeds/yaml has hand-written ones
for p in glob.glob(assets + "/datasets/*/data.yaml") + glob.glob(assets + "/weights/*.yaml"):
    put("yaml", os.path.basename(os.path.dirname(p)) + "_" + os.path.basename(p), open(p, "rb").read())
# labels: the first byte is nc - 1 (see fuzz_labels.c); 79 = COCO's 80 classes
for p in sorted(glob.glob(assets + "/datasets/*/labels/*/*.txt"))[::20]:
    put("labels", os.path.basename(p), b"\x4f" + open(p, "rb").read())
# train_state: a small state file as `hotyolo train` writes it (tiny tensors; real records)
def st(tensors, meta):
    hdr = {"__metadata__": meta}; off = 0; blob = b""
    for name, dt, vals in tensors:
        b = struct.pack("<%d%s" % (len(vals), "f" if dt == "F32" else "q"), *vals)
        hdr[name] = {"dtype": dt, "shape": [len(vals)], "data_offsets": [off, off + len(b)]}; off += len(b); blob += b
    h = json.dumps(hdr).encode(); h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + blob
args = {"model": "yolov8n.pt", "arch": None, "data": "data.yaml", "epochs": 4, "imgsz": 64, "batch": 2, "freeze": 10,
        "unfreeze_at": ["3:0"], "optimizer": "auto", "lr0": 0.01, "lrf": 0.01, "momentum": 0.937, "weight_decay": 0.0005,
        "warmup_epochs": 3, "warmup_momentum": 0.8, "warmup_bias_lr": 0.1, "box": 7.5, "cls": 0.5, "dfl": 1.5,
        "cos_lr": False, "nbs": 64, "fliplr": 0.5, "flipud": 0, "hsv_h": 0.015, "hsv_s": 0.7, "hsv_v": 0.4, "degrees": 0,
        "translate": 0.1, "scale": 0.5, "shear": 0, "perspective": 0, "mosaic": 1, "close_mosaic": 10, "augment": True,
        "workers": 2, "patience": 50, "save_period": -1, "cache_bytes": 2147483648, "seed": 0, "device": "cpu",
        "threads": 0, "project": "runs/detect", "name": "train", "exist_ok": False, "val": True}
row = {"epoch": 1, "train/box_loss": 1.9, "train/cls_loss": 2.1, "train/dfl_loss": 1.5, "validated": True,
       "metrics/precision(B)": 0.8, "metrics/recall(B)": 0.5, "metrics/mAP50(B)": 0.6, "metrics/mAP50-95(B)": 0.4,
       "fitness": 0.42, "lr/pg0": 0.0007, "lr/pg1": 0.0007, "lr/pg2": 0.0007, "val/box_loss": 1.6,
       "val/cls_loss": 1.7, "val/dfl_loss": 1.4, "freeze": 10, "mosaic": True, "instances": 900, "train_s": 8.1,
       "val_s": 1.2, "seconds": 9.5, "saved_best": True}
state = {"epoch": 1, "ema_updates": 13, "lr": [0.0007, 0.0007, 0.0007], "momentum": 0.9, "accumulate": 4,
         "last_opt_step": 12, "best_epoch": 1, "best_fitness": 0.42, "stop_best_epoch": 1, "stop_best_fitness": 0.42}
put("train_state", "state.safetensors", st([("weights", "F32", [0.5, -1.0, 2.0]), ("ema", "F32", [0.5, -1.0, 2.0]),
    ("nbt", "I64", [3]), ("optim.steps", "I64", [1, 1]), ("optim.buf0", "F32", [0.1, 0.2]), ("optim.buf1", "F32", [0.01, 0.02])],
    {"hotyolo.state": json.dumps(state), "hotyolo.train.args": json.dumps(args), "hotyolo.train.results": json.dumps([row])}))
# oci: first byte picks the parser (0 manifest, 1 config, 2 oci:// address, 3 Bearer challenge)
man = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
       "artifactType": "application/vnd.hotyolo.model.v1",
       "config": {"mediaType": "application/vnd.hotyolo.model.config.v1+json", "digest": "sha256:" + "ab" * 32, "size": 120},
       "layers": [{"mediaType": "application/vnd.hotyolo.model.weights.v1.safetensors", "digest": "sha256:" + "cd" * 32,
                   "size": 6400000, "annotations": {"org.opencontainers.image.title": "pcb-v1.safetensors"}}]}
put("oci", "manifest", b"\x00" + json.dumps(man).encode())
put("oci", "config", b"\x01" + json.dumps({"name": "pcb", "version": 1, "scenario": "line 3", "metrics": {"mAP50": 0.79},
                                            "tags": ["line3"], "record": {"hotyolo.train.epoch": "20"}}).encode())
put("oci", "url", b"\x02oci://127.0.0.1:5000/team/pcb:production")
put("oci", "challenge", b'\x03Bearer realm="http://127.0.0.1:5001/token",service="registry",scope="repository:pcb:pull"')
# http: a real detect request (the smallest JPEG that fits max_len)
for p in sorted(jpgs, key=os.path.getsize):
    img = open(p, "rb").read()
    if len(img) < 60000:
        put("http", "post_detect_jpeg", b"POST /v1/detect?conf=0.25 HTTP/1.1\r\nHost: localhost\r\nContent-Length: %d\r\n\r\n" % len(img) + img)
    break
# triton_binary: 2 bytes of header length (0xffff: "VALUE\n" text first), then an infer body as
# tritonclient sends it (JSON header, then the binary input; see fuzz_triton_binary.c)
raw = b"".join(struct.pack("<f", (i % 97) / 97.0) for i in range(3 * 32 * 32))
for name, outs in [("bin_all", None), ("bin_json_out", [{"name": "output0", "parameters": {"binary_data": False}}])]:
    req = {"id": "r", "inputs": [{"name": "images", "shape": [1, 3, 32, 32], "datatype": "FP32",
                                  "parameters": {"binary_data_size": len(raw)}}]}
    if outs: req["outputs"] = outs
    else: req["parameters"] = {"binary_data_output": True}
    h = json.dumps(req, separators=(",", ":")).encode()
    put("triton_binary", name, struct.pack("<H", len(h)) + h + raw)
    put("triton_binary", name + "_text", b"\xff\xff%d\n" % len(h) + h + raw)
# video: 4-frame 64x48 clips in each container / codec the allow-lists take (ffmpeg CLI; none
# without it: the fuzzer then starts from nothing)
import shutil, subprocess, tempfile
if shutil.which("ffmpeg") and os.path.isdir(os.path.join(out, "video")):
    with tempfile.TemporaryDirectory() as td:
        for name, args in [("h264.mp4", ["-c:v", "libx264", "-pix_fmt", "yuv420p"]),
                           ("h264.ts", ["-c:v", "libx264", "-f", "mpegts"]),
                           ("h264.mkv", ["-c:v", "libx264"]), ("mpeg4.avi", ["-c:v", "mpeg4"]),
                           ("mjpeg.avi", ["-c:v", "mjpeg"]), ("vp8.webm", ["-c:v", "libvpx"]),
                           ("flv.flv", ["-c:v", "flv"]), ("anim.gif", ["-c:v", "gif"])]:
            dst = os.path.join(td, name)
            r = subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i",
                                "testsrc=size=64x48:rate=10:duration=0.4"] + args + ["-y", dst],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if r.returncode == 0 and os.path.getsize(dst) <= (1 << 20):
                put("video", name, open(dst, "rb").read())
PY

# --- run --------------------------------------------------------------------------------------
run_one() {
  local t=$1 caps len mlimit
  caps=${CAPS[$t]}; len=${caps% *}; mlimit=${caps#* }
  local dict=()
  [ -f "fuzz/${t%%_*}.dict" ] && dict=(-dict="fuzz/${t%%_*}.dict") # http_json uses http.dict
  rm -f "$B/findings/$t"/*
  # timeout(1) backs up -max_total_time in case a target hangs outside libFuzzer's watchdog.
  HY_ASSETS="$ASSETS" ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1} \
    UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
    timeout -k 10 $((SECONDS_EACH + 300)) "$B/fuzz_$t" -max_total_time="$SECONDS_EACH" \
      -rss_limit_mb=2048 -malloc_limit_mb="$mlimit" -timeout=10 -max_len="$len" \
      -print_final_stats=1 -artifact_prefix="$B/findings/$t/" "${dict[@]}" \
      "$B/corpus/$t" "$B/seeds/$t" >"$B/logs/$t.log" 2>&1
  echo $? >"$B/logs/$t.rc"
}
echo "fuzz.sh: ${#TARGETS[@]} targets x ${SECONDS_EACH} s, $JOBS at a time (logs: $B/logs)"
for t in "${TARGETS[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do sleep 1; done
  run_one "$t" &
done
wait

# --- report -----------------------------------------------------------------------------------
status=0
printf '%-12s %12s %9s %7s %8s %8s  %s\n' target executions exec/s cov features peak_mb result
for t in "${TARGETS[@]}"; do
  log="$B/logs/$t.log"; rc=$(cat "$B/logs/$t.rc" 2>/dev/null || echo 2)
  execs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | tail -1 | grep -o '[0-9]*$' || true)
  [ -n "$execs" ] || execs=$(grep -oE '^#[0-9]+' "$log" | tail -1 | tr -d '#' || true)
  eps=$(grep -oE 'stat::average_exec_per_sec: *[0-9]+' "$log" | tail -1 | grep -o '[0-9]*$' || true)
  rss=$(grep -oE 'stat::peak_rss_mb: *[0-9]+' "$log" | tail -1 | grep -o '[0-9]*$' || true)
  cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -1 || true)
  found=$(ls "$B/findings/$t" 2>/dev/null | grep -E '^(crash|leak|oom|timeout|slow-unit)-' || true)
  if [ "$rc" = 0 ] && [ -z "$found" ]; then
    result=ok
  else
    status=1
    what=$(grep -m1 -E 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:|out-of-memory|malloc\(|Timeout|malformed response' "$log" | cut -c1-110 || true)
    result="FOUND (rc $rc): ${found:-no artifact} ${what}"
  fi
  c=${cov#cov: }; printf '%-12s %12s %9s %7s %8s %8s  %s\n' "$t" "${execs:-?}" "${eps:-?}" \
    "${c% ft:*}" "${cov##* }" "${rss:-?}" "$result"
done
if [ $status -ne 0 ]; then
  echo "fuzz.sh: findings under $B/findings/<target>/ (reproduce: $B/fuzz_<target> FILE; docs/fuzzing.md)"
fi
exit $status
