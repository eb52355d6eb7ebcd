#!/usr/bin/env bash
# hotyolo CLI: help/version, detect output, option validation, errors, --json, --save-dir,
# --classes. Usage: bash test_detect.sh CLI_PATH ASSETS_DIR SOURCE_DIR
# Expected detections come from shared/assets/reference/yolov8n_predict_images.jsonl
# (bus.jpg: person 0.896, person 0.886, bus 0.871 [22.69, 228.25, 808.14, 754.43],
# person 0.864, person 0.274).
set -u
cli="$1"
assets="$2"
[ -d "$assets" ] || { echo "skip: shared assets not found at $assets"; exit 77; }
model="$assets/weights/yolov8n.pt"
bus="$assets/images/bus.jpg"
zidane="$assets/images/zidane.jpg"

pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok   $1"; }
bad() {
    fail=$((fail + 1))
    echo "FAIL $1"
    [ $# -gt 1 ] && printf '     check: %s\n' "$2"
    printf '     rc=%s\n     stdout: %s\n     stderr: %s\n' "$rc" "$(head -c 1500 "$tmp/out")" "$(head -c 1500 "$tmp/err")"
}
check() { if eval "$2"; then ok "$1"; else bad "$1" "$2"; fi; }

tmp="$(mktemp -d)"
trap 'rm -rf -- "$tmp"' EXIT
# run ARGS...: rc, $tmp/out, $tmp/err
run() { "$cli" "$@" >"$tmp/out" 2>"$tmp/err"; rc=$?; }
out_has() { grep -qE -- "$1" "$tmp/out"; }
err_has() { grep -qE -- "$1" "$tmp/err"; }
count_rows() { grep -cE "^  $1 +[01]\.[0-9]{3}  \[" "${2:-$tmp/out}"; }
# Exits 2 with a message naming the option (and no crash)
usage_error() {
    local name="$1" needle="$2"
    shift 2
    run detect "$model" "$bus" "$@"
    check "usage error: $name" '[ $rc -eq 2 ] && err_has "$needle"'
}

# ---- help / version -----------------------------------------------------------------
run --version
check "--version prints 'hotyolo 0.1.0'" '[ $rc -eq 0 ] && [ "$(cat "$tmp/out")" = "hotyolo 0.1.0" ]'
run --help
check "--help lists detect" '[ $rc -eq 0 ] && out_has "^  detect "'
run
check "no arguments: usage on stderr, exit 2" '[ $rc -eq 2 ] && err_has "Usage"'
run frobnicate
check "unknown command: exit 2, named" '[ $rc -eq 2 ] && err_has "frobnicate"'
run detect --help
check "detect --help documents every option with its default" '[ $rc -eq 0 ] &&
    out_has "--conf F .*default 0\.25" && out_has "--iou F .*default 0\.7" &&
    out_has "default 640" && out_has "--imgsz N" && out_has "--max-det N .*default 300" &&
    out_has "--classes LIST" && out_has "--threads N" && out_has "one per online core" &&
    out_has "--json FILE" && out_has "--save-dir DIR" && out_has "--quiet" &&
    out_has "--strict-images" && out_has "directory"'

# ---- usage errors (exit 2, option named) ----------------------------------------------
usage_error "--conf 2" "--conf" --conf 2
usage_error "--conf abc" "--conf: 'abc' is not a number" --conf abc
usage_error "--conf nan" "--conf" --conf nan
usage_error "--iou -0.1" "--iou" --iou -0.1
usage_error "--imgsz 33" "--imgsz: 33 is not a multiple of 32" --imgsz 33
usage_error "--imgsz 0" "--imgsz" --imgsz 0
usage_error "--imgsz 640x" "--imgsz" --imgsz 640x
usage_error "--max-det 0" "--max-det" --max-det 0
usage_error "--threads -1" "--threads" --threads -1
usage_error "--classes a,b" "--classes" --classes a,b
usage_error "--classes 1,,2" "--classes" --classes 1,,2
usage_error "--classes -1" "--classes" --classes -1
usage_error "--classes 80 (model has 80)" "--classes: class id 80 is out of range" --classes 80
usage_error "unknown option" "unknown option '--bogus'" --bogus 1
usage_error "missing value" "option --conf needs a value" --conf
usage_error "--quiet=1" "--quiet takes no value" --quiet=1
usage_error "--json ''" "--json" --json ""
run detect "$model"
check "missing IMAGE: exit 2" '[ $rc -eq 2 ] && err_has "IMAGE"'
run detect
check "missing MODEL: exit 2" '[ $rc -eq 2 ] && err_has "MODEL"'

# ---- runtime errors (exit 1) ----------------------------------------------------------
run detect "$tmp/no-such-model.pt" "$bus"
check "missing model: exit 1, file named" '[ $rc -eq 1 ] && err_has "no-such-model\.pt"'
echo "not a checkpoint" >"$tmp/fake.pt"
run detect "$tmp/fake.pt" "$bus"
check "non-checkpoint model: exit 1, file named" '[ $rc -eq 1 ] && err_has "fake\.pt"'

# ---- detection on bus.jpg -------------------------------------------------------------
run detect "$model" "$bus"
check "bus.jpg: exit 0" '[ $rc -eq 0 ]'
check "bus.jpg: header with size, count and stage timings" \
    'out_has "^image 1/1 .*bus\.jpg: 810x1080, [0-9]+ detections?, [0-9.]+ ms \(decode [0-9.]+, preprocess [0-9.]+, inference [0-9.]+, postprocess [0-9.]+\)$"'
check "bus.jpg: one bus, 3-4 persons, nothing else" \
    '[ "$(count_rows bus)" -eq 1 ] && p=$(count_rows person) && [ "$p" -ge 3 ] && [ "$p" -le 4 ] &&
     [ "$(grep -cE "^  [a-z]" "$tmp/out")" -eq $((1 + p)) ]'
# bus box within 3 px of the reference, confidence within 0.02
check "bus.jpg: bus box and confidence match the reference" \
    'grep -E "^  bus " "$tmp/out" | tr -d "[]," | awk "{ d=0; r[1]=22.69; r[2]=228.25; r[3]=808.14; r[4]=754.43;
        for (i = 1; i <= 4; i++) { e = \$(i+2) - r[i]; if (e < 0) e = -e; if (e > 3) d = 1 }
        c = \$2 - 0.87057; if (c < 0) c = -c; if (c > 0.02) d = 1; exit d }"'

# ---- bad images: named, others still processed, exit 1 ---------------------------------
echo "hello, I am text" >"$tmp/notes.txt"
head -c 30000 "$bus" >"$tmp/truncated.jpg"
printf '\xff\xd8\xff' >"$tmp/stub.jpg"
: >"$tmp/empty.jpg"
run detect "$model" "$tmp/notes.txt" "$bus" "$tmp/missing.jpg" "$tmp/stub.jpg" "$tmp/empty.jpg"
check "bad images: exit 1" '[ $rc -eq 1 ]'
check "text file named in the error" 'err_has "notes\.txt"'
check "missing image named in the error" 'err_has "missing\.jpg"'
check "3-byte JPEG named in the error" 'err_has "stub\.jpg"'
check "empty file named in the error" 'err_has "empty\.jpg"'
check "bus.jpg still processed after a bad image" 'out_has "^image 2/5 .*bus\.jpg: 810x1080" && [ "$(count_rows bus)" -eq 1 ]'
# A truncated JPEG may decode partially (as OpenCV does) or fail; either way no crash, and a
# failure names the file.
run detect "$model" "$tmp/truncated.jpg"
check "truncated JPEG: exit 0 or 1 (no crash), a failure names it" \
    '[ $rc -eq 0 ] || { [ $rc -eq 1 ] && err_has "truncated\.jpg"; }'

# ---- options change the result ---------------------------------------------------------
run detect "$model" "$bus" --classes 5
check "--classes 5: only the bus" '[ $rc -eq 0 ] && [ "$(count_rows bus)" -eq 1 ] && [ "$(grep -cE "^  [a-z]" "$tmp/out")" -eq 1 ]'
run detect "$model" "$bus" --classes=0,2
check "--classes=0,2: only persons" '[ $rc -eq 0 ] && [ "$(count_rows bus)" -eq 0 ] && [ "$(count_rows person)" -ge 3 ]'
run detect "$model" "$bus" --conf 0.8
check "--conf 0.8: the 4 detections above 0.8" '[ $rc -eq 0 ] && [ "$(grep -cE "^  [a-z]" "$tmp/out")" -eq 4 ]'
run detect "$model" "$bus" --max-det 2 --threads 1
check "--max-det 2 --threads 1: the 2 most confident (persons)" \
    '[ $rc -eq 0 ] && [ "$(grep -cE "^  [a-z]" "$tmp/out")" -eq 2 ] && [ "$(count_rows person)" -eq 2 ] && out_has "1 thread,"'
run detect "$model" "$bus" --imgsz 320 --quiet
check "--imgsz 320 --quiet: exit 0, nothing on stdout" '[ $rc -eq 0 ] && [ ! -s "$tmp/out" ]'

# ---- --json ------------------------------------------------------------------------------
run detect "$model" "$bus" "$zidane" --json "$tmp/p.jsonl" --quiet
check "--json: exit 0, one line per image" '[ $rc -eq 0 ] && [ "$(wc -l <"$tmp/p.jsonl")" -eq 2 ]'
check "--json: records have the reference keys and timings" \
    '[ "$(grep -cE "^\{\"image\":\".*\",\"width\":[0-9]+,\"height\":[0-9]+,\"detections\":\[.*\],\"timings_ms\":\{\"decode\":[0-9.]+,\"preprocess\":[0-9.]+,\"inference\":[0-9.]+,\"postprocess\":[0-9.]+\}\}$" "$tmp/p.jsonl")" -eq 2 ]'
check "--json: bus record" 'head -1 "$tmp/p.jsonl" | grep -q "\"class_id\":5,\"class_name\":\"bus\",\"confidence\":0\.[0-9]*,\"box\":\["'
check "--json: zidane has persons and a tie" 'tail -1 "$tmp/p.jsonl" | grep -q "\"width\":1280,\"height\":720" &&
    tail -1 "$tmp/p.jsonl" | grep -q "\"class_name\":\"person\"" && tail -1 "$tmp/p.jsonl" | grep -q "\"class_name\":\"tie\""'
run detect "$model" "$bus" --json -
check "--json -: JSON on stdout, table on stderr" '[ $rc -eq 0 ] && [ "$(wc -l <"$tmp/out")" -eq 1 ] &&
    out_has "^\{\"image\":" && err_has "^image 1/1 "'
cp "$bus" "$tmp/mine.jpg"
run detect "$model" "$tmp/mine.jpg" --json "$tmp/mine.jpg"
check "--json onto an input image: refused (exit 2), image intact" '[ $rc -eq 2 ] && err_has "--json" && cmp -s "$bus" "$tmp/mine.jpg"'
run detect "$model" "$bus" --json "$tmp/no/such/dir/p.jsonl"
check "--json into a missing directory: exit 1, named" '[ $rc -eq 1 ] && err_has "no/such/dir/p\.jsonl"'

# ---- --save-dir ----------------------------------------------------------------------------
run detect "$model" "$bus" "$zidane" --save-dir "$tmp/runs/a/b"
check "--save-dir: exit 0" '[ $rc -eq 0 ]'
check "--save-dir: nested dir created, JPEGs written" \
    '[ "$(head -c 3 "$tmp/runs/a/b/bus.jpg" | od -An -tx1 | tr -d " ")" = "ffd8ff" ] &&
     [ "$(head -c 3 "$tmp/runs/a/b/zidane.jpg" | od -An -tx1 | tr -d " ")" = "ffd8ff" ]'
check "--save-dir: annotated image differs from the input" '! cmp -s "$bus" "$tmp/runs/a/b/bus.jpg"'
echo "precious" >"$tmp/afile"
run detect "$model" "$bus" --save-dir "$tmp/afile"
check "--save-dir onto a regular file: refused, file unchanged" \
    '[ $rc -eq 1 ] && err_has "afile.*not a directory" && [ "$(cat "$tmp/afile")" = "precious" ]'
run detect "$model" "$bus" --save-dir "$tmp/afile/sub"
check "--save-dir below a regular file: refused" '[ $rc -eq 1 ] && err_has "not a directory"'
run detect "$model" "$tmp/mine.jpg" --save-dir "$tmp"
check "--save-dir into the input's own folder: input not overwritten" \
    '[ $rc -eq 1 ] && err_has "mine\.jpg" && cmp -s "$bus" "$tmp/mine.jpg"'
mkdir -p "$tmp/x" "$tmp/y"
cp "$bus" "$tmp/x/pic.jpg"
cp "$zidane" "$tmp/y/pic.jpg"
run detect "$model" "$tmp/x/pic.jpg" "$tmp/y/pic.jpg" --save-dir "$tmp/out2" --quiet
check "--save-dir: same base names do not overwrite each other" \
    '[ $rc -eq 0 ] && [ -s "$tmp/out2/pic.jpg" ] && [ -s "$tmp/out2/pic_2.jpg" ]'

# ---- one-shot start-up ----------------------------------------------------------------
# The first image is decoded on a thread while the model loads: its errors still name it,
# and the next image is still processed.
head -c 20000 "$bus" >"$tmp/cut.jpg" # headers intact (probe succeeds), scan data cut
run detect "$model" "$tmp/cut.jpg" "$zidane" --json "$tmp/cut.jsonl" --strict-images
check "first image truncated (--strict-images): named error, next image done" \
    '[ $rc -eq 1 ] && err_has "image 1/2.*cut\.jpg.*Premature end of JPEG file" && [ "$(wc -l <"$tmp/cut.jsonl")" -eq 1 ] && grep -q zidane "$tmp/cut.jsonl"'
printf 'not an image' >"$tmp/text.jpg"
run detect "$model" "$tmp/text.jpg" "$bus" --quiet
check "first image not an image: named error, next image done" \
    '[ $rc -eq 1 ] && err_has "image 1/2.*text\.jpg.*unknown image format"'

# ---- JPEG cut short: decoded as OpenCV does, with a warning; --strict-images refuses -------
# bus.jpg without its final FFD9 (end-of-image) marker: every pixel is there; OpenCV's imread
# decodes it (libjpeg warns "Premature end of JPEG file") and Ultralytics returns its boxes.
size=$(wc -c <"$bus")
head -c $((size - 2)) "$bus" >"$tmp/bus_noeoi.jpg"
run detect "$model" "$bus" --json "$tmp/intact.jsonl" --quiet
run detect "$model" "$tmp/bus_noeoi.jpg" --json "$tmp/noeoi.jsonl"
check "JPEG without its end marker: exit 0, warning names it and what is missing" \
    '[ $rc -eq 0 ] && err_has "warning: image 1/1 .*bus_noeoi\.jpg.*Premature end of JPEG file.*end-of-image marker" &&
     out_has "cut short"'
dets() { sed -e 's/.*"detections":\(\[.*\]\),"timings_ms".*/\1/' "$1"; }
check "JPEG without its end marker: the same detections as the intact file" \
    '[ -n "$(dets "$tmp/intact.jsonl")" ] && [ "$(dets "$tmp/intact.jsonl")" = "$(dets "$tmp/noeoi.jsonl")" ]'
run detect "$model" "$tmp/bus_noeoi.jpg" --strict-images
check "--strict-images: JPEG without its end marker is an error (exit 1, named)" \
    '[ $rc -eq 1 ] && err_has "image 1/1 .*bus_noeoi\.jpg.*Premature end of JPEG file.*--strict-images"'
run detect "$model" "$zidane" "$tmp/cut.jpg" --json "$tmp/cut2.jsonl"
check "JPEG cut mid-scan: decoded (grey fill) with a warning, exit 0" \
    '[ $rc -eq 0 ] && err_has "warning: image 2/2 .*cut\.jpg.*pixel data is missing" &&
     [ "$(wc -l <"$tmp/cut2.jsonl")" -eq 2 ] && grep -q "cut\.jpg.*\"width\":810,\"height\":1080" "$tmp/cut2.jsonl"'

# ---- directories and globs (as Ultralytics' source=DIR / source='dir/*.jpg') -----------
d="$tmp/dir"
mkdir -p "$d/sub"
cp "$bus" "$d/b.jpg"
cp "$zidane" "$d/a.JPG"
cp "$bus" "$d/C.jpeg"
cp "$bus" "$d/.hidden.jpg"
cp "$bus" "$d/sub/deep.jpg"
echo "0 0.5 0.5 0.1 0.1" >"$d/b.txt"
: >"$d/clip.mp4"
run detect "$model" "$d" --json "$tmp/dir.jsonl"
check "directory: exit 0, its 3 images in byte order (C.jpeg, a.JPG, b.jpg), no hidden, not recursive" \
    '[ $rc -eq 0 ] && [ "$(sed -e "s/^{\"image\":\"\([^\"]*\)\".*/\1/" "$tmp/dir.jsonl" | tr "\n" " ")" = "$d/C.jpeg $d/a.JPG $d/b.jpg " ]'
check "directory: header counts 3 images, video file named in a warning" \
    'out_has "^image 3/3 .*b\.jpg: 810x1080" && err_has "warning: .*dir.*1 video file"'
run detect "$model" "$d/" --quiet --json "$tmp/dir2.jsonl"
check "directory with a trailing slash: same images" '[ $rc -eq 0 ] && grep -q "\"$d/a.JPG\"" "$tmp/dir2.jsonl" && [ "$(wc -l <"$tmp/dir2.jsonl")" -eq 3 ]'
run detect "$model" "$d/*.jpg" --json "$tmp/glob.jsonl"
check "quoted glob '\''dir/*.jpg'\'': expanded here (case-sensitive: b.jpg only)" \
    '[ $rc -eq 0 ] && [ "$(wc -l <"$tmp/glob.jsonl")" -eq 1 ] && grep -q "\"$d/b.jpg\"" "$tmp/glob.jsonl"'
run detect "$model" "$d/[aC]*" --json "$tmp/glob2.jsonl"
check "glob with [..]: sorted, image extensions only" \
    '[ $rc -eq 0 ] && [ "$(sed -e "s/^{\"image\":\"\([^\"]*\)\".*/\1/" "$tmp/glob2.jsonl" | tr "\n" " ")" = "$d/C.jpeg $d/a.JPG " ]'
run detect "$model" "$d/*.png"
check "glob without a match: exit 1, pattern named" '[ $rc -eq 1 ] && err_has "no images match .*dir/\*\.png"'
run detect "$model" "$d/*.txt"
check "glob matching only non-images: exit 1, says why" '[ $rc -eq 1 ] && err_has "no images match .*1 path match"'
cp "$bus" "$tmp/star*.jpg"
run detect "$model" "$tmp/star*.jpg" --quiet --json "$tmp/star.jsonl"
check "a file whose name holds '\''*'\'' is that file, not a glob" '[ $rc -eq 0 ] && [ "$(wc -l <"$tmp/star.jsonl")" -eq 1 ]'
mkdir -p "$tmp/empty_dir"
: >"$tmp/empty_dir/readme.txt"
run detect "$model" "$tmp/empty_dir"
check "directory without images: exit 1, named" '[ $rc -eq 1 ] && err_has "no images in directory .*empty_dir"'
mkdir -p "$tmp/mixed"
cp "$bus" "$tmp/mixed/1.jpg"
printf 'BM not really' >"$tmp/mixed/2.bmp"
printf 'garbage' >"$tmp/mixed/3.png"
cp "$zidane" "$tmp/mixed/4.jpg"
run detect "$model" "$tmp/mixed" --json "$tmp/mixed.jsonl"
check "directory with an unsupported and a corrupt file: both named, others done, exit 1" \
    '[ $rc -eq 1 ] && err_has "image 2/4.*2\.bmp.*BMP" && err_has "image 3/4.*3\.png" &&
     [ "$(wc -l <"$tmp/mixed.jsonl")" -eq 2 ] && out_has "4 images, .*2 failed"'
# Bound: more than 100000 images in all is refused before anything is read.
mkdir -p "$tmp/many"
/usr/bin/python3 -c "
import os, sys
d = sys.argv[1]
for i in range(100001): open(os.path.join(d, '%06d.jpg' % i), 'w').close()" "$tmp/many"
t0=$(date +%s%N)
run detect "$model" "$tmp/many"
t1=$(date +%s%N)
echo "     (100001-file directory refused in $(( (t1 - t0) / 1000000 )) ms)"
check "more than 100000 images: exit 1, the limit named" '[ $rc -eq 1 ] && err_has "more than 100000 images"'
rm -rf "$tmp/many"

# ---- --save-dir failures say why (errno text) -----------------------------------------
run detect "$model" "$bus" --save-dir "$tmp/afile"
check "--save-dir onto a file: strerror text (Not a directory)" \
    '[ $rc -eq 1 ] && err_has "--save-dir .*afile: Not a directory"'
run detect "$model" "$bus" --save-dir "$tmp/afile/sub/deeper"
check "--save-dir below a file: Not a directory, the part at fault named" \
    '[ $rc -eq 1 ] && err_has "--save-dir .*afile/sub/deeper: Not a directory \(.*afile. exists"'
long=$(printf 'x%.0s' $(seq 300))
run detect "$model" "$bus" --save-dir "$tmp/$long"
check "--save-dir with a too-long name: File name too long" '[ $rc -eq 1 ] && err_has "--save-dir .*: File name too long"'

# HTTP serving is opened at run time (src/server/mhd.c): detect does not load libmicrohttpd
# and the GnuTLS stack behind it (~1.5 ms of every process start).
if command -v ldd >/dev/null; then
    ldd "$cli" >"$tmp/out" 2>&1
    check "CLI does not link libmicrohttpd / GnuTLS" '! grep -qE "microhttpd|gnutls" "$tmp/out"'
fi

# ---- --device: the plain-C reference backend gives cpu's detections --------------------------
run detect --help
check "--help documents --device" 'out_has "^  --device NAME" && out_has "ref"'
usage_error "--device without a value" "option --device needs a value" --device
run detect "$model" "$bus" --device gpu
check "--device gpu: exit 2 naming it and the accepted forms (tests/cli/test_device.sh)" \
    '[ $rc -eq 2 ] && err_has "--device .gpu.: expected cpu, ref, cuda"'
# same count, classes and names; confidences within 1e-4, boxes within 0.011 px (the JSON
# rounds boxes to 0.01 px, so one rounding step of a sub-1e-3 px difference can show)
same_dets() {
    /usr/bin/python3 - "$1" "$2" <<'PY'
import json, sys
a, b = (json.loads(open(f).read()) for f in sys.argv[1:3])
da, db = a["detections"], b["detections"]
ok = len(da) == len(db) > 0 and (a["width"], a["height"]) == (b["width"], b["height"])
for x, y in zip(da, db):
    ok = ok and x["class_id"] == y["class_id"] and x["class_name"] == y["class_name"]
    ok = ok and abs(x["confidence"] - y["confidence"]) <= 1e-4
    ok = ok and all(abs(p - q) <= 0.011 for p, q in zip(x["box"], y["box"]))
print("     %d vs %d detections" % (len(da), len(db)))
sys.exit(0 if ok else 1)
PY
}
for img in "$bus" "$zidane"; do
    name="${img##*/}"
    run detect "$model" "$img" --device cpu --threads 2 --json "$tmp/cpu.jsonl"
    check "$name --device cpu: exit 0, device named" '[ $rc -eq 0 ] && out_has "device cpu"'
    t0=$(date +%s%N)
    run detect "$model" "$img" --device ref --threads 2 --json "$tmp/ref.jsonl"
    t1=$(date +%s%N)
    echo "     (--device ref on $name at 640: $(( (t1 - t0) / 1000000 )) ms)"
    check "$name --device ref: exit 0, device named" '[ $rc -eq 0 ] && out_has "device ref"'
    check "$name: --device ref gives --device cpu's detections" 'same_dets "$tmp/cpu.jsonl" "$tmp/ref.jsonl"'
done

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
