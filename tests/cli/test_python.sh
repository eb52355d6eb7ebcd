#!/usr/bin/env bash
# The Python package (python/hotyolo, issue 19) with /usr/bin/python3 and Debian's numpy, over
# the build's libhotyolo.so (beside the CLI):
#   - the 138 reference images (reference/yolov8n_predict_*.jsonl) through YOLO(...)(path) and
#     through numpy BGR arrays (and RGB with rgb=True) under the core tolerance of
#     tests/test_reference.c: same class, IoU >= 0.95, confidence within 0.02, unmatched only
#     below 0.27;
#   - two threads on two contexts vs one after the other (times printed; asserted: both finish,
#     same detections);
#   - exceptions for a missing file, a malicious .pt and a non-image carrying the message the
#     CLI prints; plot(), save(), val() on coco128 = Ultralytics' numbers;
#   - pip install --no-build-isolation --target into a temporary folder, then the import uses
#     the .so bundled there.
# Usage: bash test_python.sh CLI_PATH ASSETS_DIR SOURCE_DIR
set -u
cli="$1"
assets="$2"
src="$3"
py=/usr/bin/python3
[ -d "$assets" ] || { echo "skip: shared assets not found at $assets"; exit 77; }
[ -x "$py" ] || { echo "skip: $py not found"; exit 77; }
"$py" -c "import numpy" 2>/dev/null || { echo "skip: numpy missing for $py (apt-get install python3-numpy)"; exit 77; }
lib="$(dirname "$cli")/libhotyolo.so"
[ -e "$lib" ] || { echo "skip: $lib not built (target hotyolo_shared)"; exit 77; }
lib="$(readlink -f "$lib")"

tmp="$(mktemp -d)"
trap 'rm -rf -- "$tmp"' EXIT
export HOTYOLO_CACHE_DIR="$tmp/cache"   # the packed-weights cache, kept out of $HOME

# A sanitized library needs its runtimes loaded first; CPython's own allocations are not ours.
preload=""
san=0
for rt in libasan libubsan; do
    p="$(ldd "$lib" | awk -v r="$rt" '$1 ~ "^" r {print $3}')"
    [ -n "$p" ] && preload="$preload${preload:+:}$p" && san=1
done
export ASAN_OPTIONS="detect_leaks=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
[ "${HY_TEST_SANITIZED:-0}" = 1 ] && san=1

# malicious checkpoint: yolov8n.pt whose data.pkl first calls os.system (as test_unsafe_weights.sh)
"$py" - "$assets/weights/yolov8n.pt" "$tmp/evil.pt" <<'EOF' || { echo "FAIL building evil.pt"; exit 1; }
import sys, zipfile
src, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(src) as zin, zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as z:
    for info in zin.infolist():
        data = zin.read(info.filename)
        if info.filename.endswith("/data.pkl"):
            assert data[:2] == b"\x80\x02"
            data = b"\x80\x02cos\nsystem\nX\x0a\x00\x00\x00echo pwned\x85R0" + data[2:]
        z.writestr(zipfile.ZipInfo(info.filename, date_time=(1980, 1, 1, 0, 0, 0)), data)
EOF
printf 'this is not an image\n' >"$tmp/notimage.jpg"
# what the CLI says about each bad input (the exceptions must carry the same text)
for what in missing evil notimage; do
    case $what in
    missing) args=(detect "$assets/weights/yolov8n.pt" "$tmp/nope.jpg") ;;
    evil) args=(detect "$tmp/evil.pt" "$assets/images/bus.jpg") ;;
    notimage) args=(detect "$assets/weights/yolov8n.pt" "$tmp/notimage.jpg") ;;
    esac
    if [ -x "$cli" ]; then "$cli" "${args[@]}" >/dev/null 2>"$tmp/cli_$what.err"; fi
done

cat >"$tmp/check.py" <<'EOF'
import json, os, sys, threading, time
import numpy as np
assets, tmp, san, src = sys.argv[1], sys.argv[2], sys.argv[3] == "1", sys.argv[4]
import re
import hotyolo
from hotyolo import YOLO, _lib

passed = failed = 0
def check(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1; print("ok   " + name)
    else:
        failed += 1; print("FAIL " + name + ("\n     " + detail if detail else ""))

print("  library: %s (%s), version %s" % (hotyolo.library_path, hotyolo.library_source, hotyolo.__version__))
check("library from HOTYOLO_LIBRARY", hotyolo.library_source == "HOTYOLO_LIBRARY")

# every ctypes struct mirrors its header struct field for field (a field added in C and not in
# Python would let the library write past what Python allocated)
hdr = "".join(open(os.path.join(src, "include", f)).read() for f in ("hotyolo.h", "hotyolo/val.h",
                                                                     "hotyolo/stream.h", "hotyolo/device.h"))
hdr = re.sub(r"/\*.*?\*/", "", hdr, flags=re.S)
for name in ("hy_image", "hy_shape", "hy_model_params", "hy_prepare_params", "hy_context_params",
             "hy_detect_params", "hy_detection", "hy_timings", "hy_val_params", "hy_val_metrics",
             "hy_val_speed", "hy_stream_params", "hy_stream_info", "hy_frame", "hy_video_writer_params",
             "hy_device_info"):
    m = re.search(r"typedef struct %s \{(.*?)\} %s;" % (name, name), hdr, re.S)
    fields = []
    for decl in (m.group(1).split(";") if m else []):
        decl = re.sub(r"\(\s*\*\s*(\w+)\s*\)\s*\(.*\)", r" \1", decl.strip())  # fn pointer
        if decl:
            fields += [re.sub(r"[\s*]", "", v).split("[")[0] for v in [decl.split(",")[0].split()[-1]] + decl.split(",")[1:]]
    ours = [f[0] for f in getattr(_lib, name)._fields_]
    check("ctypes %s = header fields" % name, m is not None and fields == ours, "header %s, ctypes %s" % (fields, ours))

IOU_MIN, CONF_TOL = 0.95, 0.02
BORDER = 0.25 + CONF_TOL
def iou(a, b):
    iw = min(a[2], b[2]) - max(a[0], b[0]); ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0: return 0.0
    inter = iw * ih
    ua = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / ua if ua > 0 else 0.0

def match(ref, res):
    """test_reference.c's rule: greedy over reference detections by descending confidence."""
    ours = [(int(c), float(s), [float(v) for v in b])
            for b, s, c in zip(res.boxes.xyxy, res.boxes.conf, res.boxes.cls)]
    used = [False] * len(ours)
    why = []
    for d in sorted(ref["detections"], key=lambda d: -d["confidence"]):
        best, best_iou = -1, 0.0
        for j, (c, s, b) in enumerate(ours):
            if used[j] or c != d["class_id"]: continue
            v = iou(d["box"], b)
            if v >= IOU_MIN and abs(s - d["confidence"]) <= CONF_TOL and v > best_iou:
                best, best_iou = j, v
        if best >= 0: used[best] = True
        elif d["confidence"] >= BORDER: why.append("missing %s" % d)
    for j, (c, s, b) in enumerate(ours):
        if not used[j] and s >= BORDER: why.append("extra %d %.4f %s" % (c, s, b))
    if res.orig_shape != (ref["height"], ref["width"]):
        why.append("orig_shape %s, reference %dx%d" % (res.orig_shape, ref["width"], ref["height"]))
    return why

refs = []
for f in ("yolov8n_predict_images.jsonl", "yolov8n_predict_coco128.jsonl"):
    with open(os.path.join(assets, "reference", f)) as fh:
        refs += [json.loads(l) for l in fh if l.strip()]
all_refs = refs
if san:  # a forward pass is ~10x slower under ASan: the 10 images only
    refs = refs[:10]
model = YOLO(os.path.join(assets, "weights", "yolov8n.pt"))
check("names: 80 classes, 0 person, 5 bus", len(model.names) == 80 and model.names[0] == "person" and model.names[5] == "bus")

def run_refs(label, fn):
    bad, t0 = [], time.time()
    for ref in refs:
        try:
            res = fn(os.path.join(assets, ref["image"]))
        except hotyolo.HotyoloError as e:
            bad.append("%s: %s" % (ref["image"], e)); continue
        if len(res) != 1:
            bad.append("%s: %d results" % (ref["image"], len(res))); continue
        why = match(ref, res[0])
        if why: bad.append("%s: %s" % (ref["image"], "; ".join(why)[:600]))
    print("  %s: %d images in %.1f s" % (label, len(refs), time.time() - t0))
    check("reference detections through %s (%d images)" % (label, len(refs)), not bad, "\n     ".join(bad[:10]))

run_refs("YOLO(...)(path)", lambda p: model(p, conf=0.25))
run_refs("numpy BGR arrays", lambda p: model(hotyolo.imread(p)))
refs, saved = refs[:10], refs
run_refs("numpy RGB arrays, rgb=True", lambda p: model(np.ascontiguousarray(hotyolo.imread(p)[..., ::-1]), rgb=True))
refs = saved

# sources: directory, list, glob; numpy array shapes/dtypes
imgdir = os.path.join(assets, "images")
names = sorted(f for f in os.listdir(imgdir) if f.lower().endswith((".jpg", ".jpeg", ".png")))
r = model(imgdir)
check("directory: one result per image, sorted", [os.path.basename(x.path) for x in r] == names,
      "%s vs %s" % ([os.path.basename(x.path) for x in r], names))
os.mkdir(os.path.join(tmp, "empty"))
try:
    model(os.path.join(tmp, "empty")); check("empty folder raises", False)
except FileNotFoundError as e:
    check("empty folder: FileNotFoundError naming it", "empty" in str(e), str(e))
bus = os.path.join(imgdir, "bus.jpg")
r = model([bus, hotyolo.imread(bus)])
check("list of path + array: equal boxes", len(r) == 2 and np.array_equal(r[0].boxes.data, r[1].boxes.data))
r0 = r[0]
check("boxes are numpy: xyxy (n,4) float32, conf (n,), cls (n,)",
      isinstance(r0.boxes.xyxy, np.ndarray) and r0.boxes.xyxy.shape == (len(r0), 4) and
      r0.boxes.xyxy.dtype == np.float32 and r0.boxes.conf.shape == (len(r0),) and r0.boxes.cls.shape == (len(r0),))
check("orig_shape (h, w) and orig_img BGR", r0.orig_shape == (1080, 810) and
      np.array_equal(r0.orig_img, hotyolo.imread(bus)))
check("conf=0.5 keeps only >= 0.5", all(c >= 0.5 for c in model(bus, conf=0.5)[0].boxes.conf))
check("classes=[5]: only buses", set(model(bus, classes=[5])[0].boxes.cls.tolist()) == {5.0})
try:
    model(np.zeros((10, 10, 3), np.float32)); check("float array refused", False)
except TypeError as e:
    check("float array refused (TypeError)", "uint8" in str(e), str(e))
plot = r0.plot()
check("plot(): (h, w, 3) uint8, boxes drawn", plot.shape == (1080, 810, 3) and plot.dtype == np.uint8 and
      (plot != r0.orig_img).any())
out = r0.save(os.path.join(tmp, "bus_out.jpg"))
back = hotyolo.imread(out)
check("save(): a JPEG of the annotated image", back.shape == plot.shape and
      np.abs(back.astype(int) - plot.astype(int)).mean() < 8, "mean abs diff %.2f" % np.abs(back.astype(int) - plot.astype(int)).mean())

# YOLOv5: its own family's defaults (detect.py: iou 0.45, max_det 1000) and YOLOv5's detections
v5 = YOLO(os.path.join(assets, "weights", "yolov5n.pt"), threads=2)
refv5 = next(json.loads(l) for l in open(os.path.join(assets, "reference", "yolov5", "yolov5n_predict_images.jsonl"))
             if json.loads(l)["image"] == "images/bus.jpg")
b5 = v5(bus)[0].boxes
got5 = sorted(zip(b5.cls.astype(int).tolist(), np.round(b5.conf, 3).tolist()))
want5 = sorted((d["class_id"], round(d["confidence"], 3)) for d in refv5["detections"])
check("YOLO('yolov5n.pt')(bus.jpg): YOLOv5's 5 detections (class, conf to 0.001)",
      v5.info["arch"] == "yolov5" and len(got5) == 5 and
      all(a[0] == b[0] and abs(a[1] - b[1]) <= 0.002 for a, b in zip(got5, want5)), "%r vs %r" % (got5, want5))
v5.close()

# exceptions carry hotyolo's message (the CLI prints the same text)
def cli_err(what):
    p = os.path.join(tmp, "cli_%s.err" % what)
    return open(p).read() if os.path.exists(p) else None
def expect(label, what, exc, fn, needle):
    try:
        fn(); check(label + ": raises", False, "no exception")
    except exc as e:
        msg = str(e); ce = cli_err(what)
        print("     %s: %s: %s" % (label, type(e).__name__, msg))
        check(label + ": %s naming %r" % (exc.__name__, needle), needle in msg and e.status.startswith("HY_ERR_"), msg)
        if ce is not None:
            check(label + ": same message as the CLI", msg in ce, "cli: " + ce.strip())
missing = os.path.join(tmp, "nope.jpg")
expect("missing image", "missing", FileNotFoundError, lambda: model(missing), missing)
expect("missing image", "missing", hotyolo.NotFoundError, lambda: model(missing), "No such file")
expect("missing weights", None, FileNotFoundError, lambda: YOLO(os.path.join(tmp, "nope.pt")), "nope.pt")
expect("malicious .pt", "evil", hotyolo.UnsafeContentError, lambda: YOLO(os.path.join(tmp, "evil.pt")),
       "refusing pickle global 'os.system'")
expect("non-image", "notimage", hotyolo.FormatError, lambda: model(os.path.join(tmp, "notimage.jpg")), "notimage.jpg")

# two threads on two contexts (one thread each) vs one after the other
imgs = [hotyolo.imread(os.path.join(assets, r["image"])) for r in all_refs[10:10 + (4 if san else 12)]]
a = YOLO(os.path.join(assets, "weights", "yolov8n.pt"), threads=1)
b = a.new_context(threads=1)
for m in (a, b): m(imgs[0])  # plan the first shape outside the timing
def work(m, out):
    out.extend(x.boxes.data for x in m(imgs))
s1, s2 = [], []
t0 = time.time(); work(a, s1); work(b, s2); serial = time.time() - t0
c1, c2 = [], []
th = [threading.Thread(target=work, args=(a, c1)), threading.Thread(target=work, args=(b, c2))]
t0 = time.time()
for t in th: t.start()
for t in th: t.join()
conc = time.time() - t0
print("  2 x %d images on 2 contexts (1 thread each): serial %.2f s, two Python threads %.2f s (%.2fx)"
      % (len(imgs), serial, conc, serial / conc if conc else 0))
check("two threads: both finish, same detections as serial",
      len(c1) == len(c2) == len(imgs) and all(np.array_equal(x, y) for x, y in zip(s1 + s2, c1 + c2)))

# videos (docs/video.md): model("clip.mp4", stream=True) gives every frame the CLI's detections,
# with .frame / .pts; vid_stride; save= writes a playable annotated MP4 (the shell part made the
# clip and the CLI's records; skipped without ffmpeg)
clip, cli_json = os.path.join(tmp, "clip.mp4"), os.path.join(tmp, "clip_cli.jsonl")
if not (os.path.exists(clip) and os.path.exists(cli_json)):
    print("skip: video checks (no ffmpeg with libx264, or no CLI)")
else:
    ref = [json.loads(l) for l in open(cli_json)]
    os.makedirs(os.path.join(tmp, "vid_out"), exist_ok=True)
    vid = list(model(clip, stream=True, save=os.path.join(tmp, "vid_out")))
    def same(r, j):
        d = [(x["class_id"], x["confidence"], x["box"]) for x in j["detections"]]
        got = [(int(c), float(p), [float(v) for v in b]) for b, p, c in zip(r.boxes.xyxy, r.boxes.conf, r.boxes.cls)]
        return (r.frame == j["frame"] and abs(r.pts - j["pts"]) < 1e-3 and len(d) == len(got) and
                all(a[0] == b[0] and abs(a[1] - b[1]) < 1e-3 and max(abs(u - v) for u, v in zip(a[2], b[2])) < 1e-2
                    for a, b in zip(d, got)))
    check("video: %d frames, each with the CLI's frame, pts and detections" % len(ref),
          len(vid) == len(ref) > 0 and all(same(r, j) for r, j in zip(vid, ref)),
          "python %s, cli %s" % ([(r.frame, len(r)) for r in vid], [(j["frame"], len(j["detections"])) for j in ref]))
    strided = [r.frame for r in model(clip, stream=True, vid_stride=2)]
    check("video: vid_stride=2 gives frames 0, 2, ...", strided == list(range(0, len(ref), 2)), str(strided))
    mixed = model([os.path.join(assets, "images", "bus.jpg"), clip])
    check("video: a list of an image and a video", len(mixed) == 1 + len(ref) and mixed[1].frame == 0)
    out = os.path.join(tmp, "vid_out", "results_clip.mp4")
    import subprocess
    pr = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-show_entries", "stream=codec_name,nb_read_frames",
                         "-of", "default=nw=1", out], capture_output=True, text=True)
    check("video: save= writes an annotated H.264 MP4 with every frame", pr.returncode == 0 and
          "codec_name=h264" in pr.stdout and "nb_read_frames=%d" % len(ref) in pr.stdout, pr.stdout + pr.stderr)
    try:
        model(os.path.join(tmp, "nope.mp4"))
        check("video: a missing video raises", False)
    except hotyolo.HotyoloError as e:
        check("video: a missing video raises, naming it", "nope.mp4" in str(e), str(e))

# val on coco128 = Ultralytics 8.0.172 (shared/assets/MANIFEST.md): P 0.666 R 0.496 mAP50 0.595 mAP50-95 0.435
if san:
    print("skip: val on coco128 under sanitizers")
else:
    t0 = time.time()
    v = model.val(data=os.path.join(assets, "datasets", "coco128", "data.yaml"), batch=8)
    print("  val coco128: %s, %d instances, %.1f s" % (v, v.all["instances"], time.time() - t0))
    got = tuple(round(x, 3) for x in (v.box.mp, v.box.mr, v.box.map50, v.box.map))
    check("val(coco128, batch=8) = Ultralytics' P R mAP50 mAP50-95 (0.666 0.496 0.595 0.435), 929 instances",
          got == (0.666, 0.496, 0.595, 0.435) and v.all["instances"] == 929, str(got))
    check("val: results_dict and per-class rows", "metrics/mAP50-95(B)" in v.results_dict and len(v.classes) > 0)
# devices (include/hotyolo/device.h, issue 22): device= forms, the fallback of a GPU that cannot
# be used (a warning, .device_fallback), no_fallback=True raising, devices() / cuda_built()
import warnings
devs = hotyolo.devices()
check("devices(): the cpu row first, usable", len(devs) >= 1 and devs[0]["name"] == "cpu" and
      devs[0]["kind"] == "cpu" and devs[0]["usable"] is True, repr(devs[:1]))
check("devices(): a 'cuda' row saying why when none is usable",
      any(d["kind"] == "cuda" and (d["usable"] or d["why"]) for d in devs), repr(devs))
check("cuda_built() is a bool", isinstance(hotyolo.cuda_built(), bool))
wpt = os.path.join(assets, "weights", "yolov8n.pt")
if any(d["kind"] == "cuda" and d["usable"] for d in devs):
    print("skip: fallback checks (a usable GPU is listed: %r)" % [d["name"] for d in devs if d["usable"]])
else:
    with warnings.catch_warnings(record=True) as ws:
        warnings.simplefilter("always")
        ma = YOLO(wpt, device="auto")
    check("device='auto' without a usable GPU: cpu, requested auto, a reason, no warning",
          ma.device == "cpu" and ma.device_requested == "auto" and ma.device_fallback != "" and
          not [w for w in ws if "device" in str(w.message)],
          "%r %r %r %r" % (ma.device, ma.device_requested, ma.device_fallback, [str(w.message) for w in ws]))
    check("default device is cpu (no driver probe), with no fallback",
          YOLO(wpt).device_requested == "cpu" and YOLO(wpt).device_fallback == "")
    for dev, want in (("cuda", "cuda:0"), (0, "cuda:0"), ("cuda:1", "cuda:1")):
        with warnings.catch_warnings(record=True) as ws:
            warnings.simplefilter("always")
            mc = YOLO(wpt, device=dev)
        msgs = [str(w.message) for w in ws if issubclass(w.category, RuntimeWarning)]
        check("device=%r: runs on cpu, requested %s, RuntimeWarning with the reason" % (dev, want),
              mc.device == "cpu" and mc.device_requested == want and mc.device_fallback != "" and
              any(mc.device_fallback in m and want in m for m in msgs),
              "%r %r %r %r" % (mc.device, mc.device_requested, mc.device_fallback, msgs))
    check("fallback model detects", len(mc(os.path.join(assets, "images", "bus.jpg"))[0]) >= 4)
    try:
        YOLO(wpt, device="cuda", no_fallback=True)
        check("no_fallback=True raises", False, "no exception")
    except hotyolo.HotyoloError as e:
        check("no_fallback=True raises HY_ERR_BACKEND naming the device and the reason",
              e.status == "HY_ERR_BACKEND" and "cuda:0" in str(e) and "no fallback" in str(e) and
              ma.device_fallback.split(":")[0] in str(e), "%s: %s" % (e.status, e))
    check("no_fallback=True with auto still loads on cpu",
          YOLO(wpt, device="auto", no_fallback=True).device == "cpu")
for bad in ("bogus", "cuda:x", "gpu"):
    try:
        YOLO(wpt, device=bad)
        check("device=%r raises" % bad, False, "no exception")
    except ValueError as e:
        check("device=%r raises InvalidArgumentError (a ValueError)" % bad,
              isinstance(e, hotyolo.InvalidArgumentError) and bad in str(e), str(e))
check("device='cpu' and 'ref' run where asked, no fallback",
      YOLO(wpt, device="cpu").device_fallback == "" and YOLO(wpt, device="ref").device == "ref")

print("%d passed, %d failed" % (passed, failed))
sys.exit(1 if failed else 0)
EOF

# a 4-frame 640x480 H.264 clip from coco128 and the CLI's records of it (the video checks)
if command -v ffmpeg >/dev/null && command -v ffprobe >/dev/null && [ -x "$cli" ] &&
    ffmpeg -hide_banner -encoders 2>/dev/null | grep -q libx264; then
    i=0
    for f in $(ls "$assets"/datasets/coco128/images/train2017/*.jpg | head -n 4); do
        ffmpeg -v error -nostdin -i "$f" -frames:v 1 \
            -vf "scale=640:480:force_original_aspect_ratio=decrease,pad=640:480:(ow-iw)/2:(oh-ih)/2" "$tmp/v$i.png"
        i=$((i + 1))
    done
    ffmpeg -v error -nostdin -framerate 10 -i "$tmp/v%d.png" -c:v libx264 -pix_fmt yuv420p "$tmp/clip.mp4" &&
        "$cli" detect "$assets/weights/yolov8n.pt" "$tmp/clip.mp4" --quiet --json "$tmp/clip_cli.jsonl" 2>/dev/null ||
        rm -f "$tmp/clip_cli.jsonl"
fi

rc=0
( cd "$tmp" && HOTYOLO_LIBRARY="$lib" PYTHONPATH="$src/python" LD_PRELOAD="$preload" \
    "$py" "$tmp/check.py" "$assets" "$tmp" "$san" "$src" ) || rc=1

# ---- pip install: bundled library ------------------------------------------------------------
if "$py" -m pip --version >/dev/null 2>&1; then
    cp -r "$src/python" "$tmp/pkgsrc"   # pip builds in tree: keep the checkout clean
    rm -rf "$tmp/pkgsrc/build" "$tmp/pkgsrc"/*.egg-info "$tmp/pkgsrc/hotyolo/libhotyolo.so"
    if HOTYOLO_LIBRARY="$lib" "$py" -m pip install -q --no-build-isolation --no-deps --no-index \
        --target "$tmp/site" "$tmp/pkgsrc" >"$tmp/pip.log" 2>&1; then
        echo "ok   pip install --no-build-isolation --target"
        if ( cd "$tmp" && env -u HOTYOLO_LIBRARY PYTHONPATH="$tmp/site" LD_PRELOAD="$preload" "$py" -c '
import sys, hotyolo
assert hotyolo.library_source == "bundled", hotyolo.library_source
assert hotyolo.library_path.startswith(sys.argv[1]), hotyolo.library_path
r = hotyolo.YOLO(sys.argv[2])(sys.argv[3])
assert len(r) == 1 and len(r[0]) >= 4, r
print("     imported from %s, library %s: %d boxes" % (hotyolo.__file__, hotyolo.library_path, len(r[0])))
' "$tmp/site" "$assets/weights/yolov8n.pt" "$assets/images/bus.jpg" ); then
            echo "ok   installed package loads the bundled libhotyolo.so and detects"
        else
            echo "FAIL installed package"; rc=1
        fi
    else
        echo "FAIL pip install"; cat "$tmp/pip.log"; rc=1
    fi
else
    echo "skip: pip install (no pip for $py: apt-get install python3-pip)"
fi
exit $rc
