#!/usr/bin/env bash
# hotyolo train on bad datasets (issue 17), on broken copies of coco8 made here: a bad data.yaml
# or split (missing file or key, a split path that does not exist, a split without images, no
# names, nc disagreeing with names, every image of a split unusable) exits 1 naming the file
# and key before any run folder is made; a bad image or label file (malformed rows, class id
# >= nc, negative values, coordinates outside [0, 1], duplicate rows, an empty or undecodable
# image) is skipped with a warning naming it and training goes on with the rest (exit 0), as
# Ultralytics 8.0.172's verify_image_label drops it; an image without a label file is a
# background image, without a warning. Nothing the user had is overwritten: an existing --name
# gives NAME2, --exist-ok over a foreign weights/last.safetensors is refused.
# Usage: bash test_train_data.sh CLI_PATH ASSETS_DIR SOURCE_DIR
set -u
cli="$1"
assets="$2"
[ -d "$assets" ] || { echo "skip: shared assets not found at $assets"; exit 77; }
pt="$assets/weights/yolov8n.pt"
coco8="$assets/datasets/coco8"
[ -f "$pt" ] && [ -d "$coco8" ] || { echo "skip: $pt or $coco8 missing"; exit 77; }

pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok   $1"; }
bad() {
    fail=$((fail + 1))
    echo "FAIL $1"
    [ $# -gt 1 ] && printf '     check: %s\n' "$2"
    printf '     rc=%s\n     stdout: %s\n     stderr: %s\n' "$rc" "$(tail -c 1500 "$tmp/out")" "$(head -c 2500 "$tmp/err")"
}
check() { if eval "$2"; then ok "$1"; else bad "$1" "$2"; fi; }

tmp="$(mktemp -d)"
trap 'chmod -R u+rwx -- "$tmp" 2>/dev/null; rm -rf -- "$tmp"' EXIT
out_has() { grep -qE -- "$1" "$tmp/out"; }
err_has() { grep -qE -- "$1" "$tmp/err"; }
err_lacks() { ! grep -qE -- "$1" "$tmp/err"; }
# train DATA [PROJECT [options]]: one epoch at 64 on 2-image batches
train() {
    local data="$1" proj="${2:-$tmp/runs}"
    shift 2 2>/dev/null || shift $#
    "$cli" train --model "$pt" --data "$data" --epochs 1 --imgsz 64 --batch 2 --no-val -q \
        --project "$proj" "$@" >"$tmp/out" 2>"$tmp/err"
    rc=$?
}
no_run_folder() { [ ! -e "$1" ] || [ -z "$(ls -A "$1")" ]; }
# mk NAME: a copy of coco8 at $tmp/NAME with its data.yaml (names and nc: 80)
mk() {
    cp -r "$coco8" "$tmp/$1"
    chmod -R u+w "$tmp/$1"
}
names80() { sed -n '/^names:/,$p' "$coco8/data.yaml"; }
jpg="$coco8/images/train/000000000009.jpg"
# a PNG with a valid signature and IHDR and garbage after it
garbage_png() {
    /usr/bin/python3 - "$1" <<'EOF'
import struct, sys, zlib
def chunk(t, d):
    return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)
ihdr = struct.pack(">IIBBBBB", 64, 48, 8, 2, 0, 0, 0)
junk = bytes((i * 37 + 11) & 255 for i in range(200))
open(sys.argv[1], "wb").write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", junk) + chunk(b"IEND", b""))
EOF
}
cut_jpeg() { head -c 3000 "$1" >"$2"; } # a JPEG cut inside its pixel data (header intact)

# ---- the good copy trains (the baseline of the cases below) ------------------------------------
mk good
train "$tmp/good/data.yaml" "$tmp/p_good"
check "intact coco8 copy: exit 0, 4 train images" '[ $rc -eq 0 ] && out_has "train: 4 images, 13 instances"'

# ---- errors before training: exit 1 naming the file and key, no run folder ----------------------
# err CASE YAML PATTERN: trains on YAML, expects exit 1, PATTERN on stderr and no run folder
err() {
    train "$2" "$tmp/p_$1"
    check "$1: exit 1 naming it, no run folder" "[ \$rc -eq 1 ] && err_has \"$3\" && no_run_folder \"$tmp/p_$1\""
}
err "data.yaml missing" "$tmp/nope/data.yaml" "nope/data.yaml"
if [ "$(id -u)" != 0 ]; then
    mk unreadable
    chmod 000 "$tmp/unreadable/data.yaml"
    err "data.yaml unreadable" "$tmp/unreadable/data.yaml" "unreadable/data.yaml: Permission denied"
else
    echo "skip: data.yaml unreadable (running as root: chmod 000 does not stop reading)"
fi
mk diryaml
mv "$tmp/diryaml/data.yaml" "$tmp/diryaml/data.yaml.txt" && mkdir "$tmp/diryaml/data.yaml"
err "data.yaml a folder" "$tmp/diryaml/data.yaml" "diryaml/data.yaml: not a regular file"
mk malformed
printf 'train: [images/train\nval: images/val\n' >"$tmp/malformed/data.yaml"
err "data.yaml malformed" "$tmp/malformed/data.yaml" "malformed/data.yaml:[0-9]+:[0-9]+: YAML"
mk notrain
{ echo "val: images/val"; names80; } >"$tmp/notrain/data.yaml"
err "train key missing" "$tmp/notrain/data.yaml" "notrain/data.yaml: no 'train' split"
mk noval
{ echo "train: images/train"; names80; } >"$tmp/noval/data.yaml"
err "val key missing" "$tmp/noval/data.yaml" "noval/data.yaml: no 'val' split"
mk nopath
{ echo "train: images/train"; echo "val: images/nothing"; names80; } >"$tmp/nopath/data.yaml"
err "val path does not exist" "$tmp/nopath/data.yaml" "nopath/data.yaml: val: '.*/images/nothing' does not exist"
mk notrainpath
{ echo "train: ../elsewhere/train"; echo "val: images/val"; names80; } >"$tmp/notrainpath/data.yaml"
err "train path does not exist" "$tmp/notrainpath/data.yaml" "notrainpath/data.yaml: train: '.*elsewhere/train' does not exist"
mk emptyval
rm -f "$tmp/emptyval/images/val/"*
err "empty val folder" "$tmp/emptyval/data.yaml" "emptyval/data.yaml: val: no images found"
mk nonames
printf 'train: images/train\nval: images/val\n' >"$tmp/nonames/data.yaml"
err "no names (nor nc)" "$tmp/nonames/data.yaml" "nonames/data.yaml: needs 'names'"
mk emptynames
printf 'train: images/train\nval: images/val\nnames: []\n' >"$tmp/emptynames/data.yaml"
err "names empty" "$tmp/emptynames/data.yaml" "emptynames/data.yaml: 'names' is empty"
mk ncnames
{ echo "train: images/train"; echo "val: images/val"; echo "nc: 3"; names80 | grep -v '^nc:'; } >"$tmp/ncnames/data.yaml"
err "nc disagrees with names (Ultralytics: SyntaxError)" "$tmp/ncnames/data.yaml" "ncnames/data.yaml: 'names' has 80 entries but 'nc' is 3"
mk alllabelsbad
for f in "$tmp/alllabelsbad/labels/train/"*.txt; do echo "0 0.5 0.5 0.2" >"$f"; done
err "every train image skipped (malformed labels)" "$tmp/alllabelsbad/data.yaml" "train: none of the 4 images is usable"
# every image of a split undecodable: refused by the decode check before training (lead's
# wiring of hy__val_dataset_verify_decode in hy_train)
mk valundecodable
for f in "$tmp/valundecodable/images/val/"*.jpg; do cut_jpeg "$jpg" "$f"; done
err "every val image undecodable" "$tmp/valundecodable/data.yaml" "val.*cannot decode"
mk trainundecodable
for f in "$tmp/trainundecodable/images/train/"*.jpg; do cut_jpeg "$jpg" "$f"; done
err "every train image undecodable" "$tmp/trainundecodable/data.yaml" "train.*cannot decode"

# ---- warnings: the file skipped, named on stderr, the rest trained ------------------------------
mk warn
T="$tmp/warn/images/train" L="$tmp/warn/labels/train"
for n in cols nan outside negcoord negcls cls80 dup nolabel; do cp "$jpg" "$T/$n.jpg"; done
echo "0 0.5 0.5 0.2" >"$L/cols.txt"
printf '0 0.5 0.5 0.2 0.2\n0 0.5 abc 0.2 0.2\n' >"$L/nan.txt"
echo "0 1.5 0.5 0.2 0.2" >"$L/outside.txt"
echo "0 0.5 0.5 -0.2 0.2" >"$L/negcoord.txt"
echo "-1 0.5 0.5 0.2 0.2" >"$L/negcls.txt"
echo "80 0.5 0.5 0.2 0.2" >"$L/cls80.txt"
printf '3 0.5 0.5 0.2 0.2\n3 0.5 0.5 0.2 0.2\n' >"$L/dup.txt"
: >"$T/zero.jpg"
echo "0 0.5 0.5 0.2 0.2" >"$L/zero.txt"
train "$tmp/warn/data.yaml" "$tmp/p_warn"
# 4 + dup + nolabel trained; 13 + 1 instances (dup's duplicate removed)
check "label and image warnings: exit 0, trains on the other 6 images (14 instances)" \
    '[ $rc -eq 0 ] && out_has "train: 6 images, 14 instances"'
check "wrong column count: warning naming the label file (line) and image" \
    'err_has "warning: .*cols.txt:1: expected 5 values.*cols.jpg skipped"'
check "non-number: warning naming the file and line" 'err_has "warning: .*nan.txt:2: .abc. is not a number.*nan.jpg skipped"'
check "coordinate > 1: warning naming the file" 'err_has "warning: .*outside.txt:1: coordinate 1.5 outside \[0, 1\].*outside.jpg skipped"'
check "negative coordinate: warning naming the file" 'err_has "warning: .*negcoord.txt:1: coordinate -0.2 outside.*negcoord.jpg skipped"'
check "negative class id: warning naming the file" 'err_has "warning: .*negcls.txt:1: class id -1 out of range.*negcls.jpg skipped"'
check "class id >= nc: warning naming the file" 'err_has "warning: .*cls80.txt:1: class id 80 out of range \(dataset has 80 classes"'
check "duplicate rows: removed with a warning naming the file, the image kept" 'err_has "warning: .*dup.txt: 1 duplicate label removed"'
check "zero-byte image: warning naming it" 'err_has "warning: .*zero.jpg: empty file \(0 bytes\); image skipped"'
check "image without a label file: a background image, no warning" 'err_lacks "nolabel"'

mk undecodable
cut_jpeg "$jpg" "$tmp/undecodable/images/train/trunc.jpg"
cp "$coco8/labels/train/000000000009.txt" "$tmp/undecodable/labels/train/trunc.txt"
garbage_png "$tmp/undecodable/images/train/garbage.png"
cut_jpeg "$coco8/images/val/000000000036.jpg" "$tmp/undecodable/images/val/trunc_val.jpg"
head -c -2 "$jpg" >"$tmp/undecodable/images/train/noeoi.jpg" # only the end marker missing: kept
train "$tmp/undecodable/data.yaml" "$tmp/p_undecodable"
check "undecodable images (header fine, body not): exit 0, trained on the other 5 and validated on 4" \
    '[ $rc -eq 0 ] && out_has "train: 5 images, 13 instances; val: 4 images, 17 instances"'
check "JPEG cut inside its pixels: warning naming it" \
    'err_has "warning: .*trunc.jpg: cannot decode \(JPEG: Premature end of JPEG file.*\); image skipped"'
check "PNG with garbage after IHDR: warning naming it" 'err_has "warning: .*garbage.png: cannot decode \(PNG.*\); image skipped"'
check "val image that does not decode: warning naming it" 'err_has "warning: .*trunc_val.jpg: cannot decode"'
check "JPEG missing only its end marker: kept (repaired), no skip warning" 'err_lacks "noeoi.jpg.*skipped"'

# hotyolo val skips an undecodable image with a warning (as the dataset check would drop it)
"$cli" val "$pt" --data "$tmp/undecodable/data.yaml" --imgsz 64 >"$tmp/out" 2>"$tmp/err"
rc=$?
check "hotyolo val: exit 0, the undecodable image named in a warning, 4 images counted" \
    '[ $rc -eq 0 ] && grep -qE "trunc_val.jpg" "$tmp/out" "$tmp/err" && out_has "^ +all +4 +17 "'

# ---- nothing the user had is overwritten --------------------------------------------------------
train "$tmp/good/data.yaml" "$tmp/p_keep" --name mine
sha0="$(sha256sum "$tmp/p_keep/mine/weights/last.safetensors" 2>/dev/null | cut -d' ' -f1)"
train "$tmp/good/data.yaml" "$tmp/p_keep" --name mine
check "--name of an existing run: the new run goes to mine2, mine's weights untouched" \
    '[ $rc -eq 0 ] && [ -n "$sha0" ] && [ -s "$tmp/p_keep/mine2/weights/last.safetensors" ] && [ "$(sha256sum "$tmp/p_keep/mine/weights/last.safetensors" | cut -d" " -f1)" = "$sha0" ]'
train "$tmp/nonames/data.yaml" "$tmp/p_keep" --name mine
check "a bad dataset with an existing run name: exit 1, no mine3" '[ $rc -eq 1 ] && [ ! -e "$tmp/p_keep/mine3" ]'
mkdir -p "$tmp/p_keep/foreign/weights"
head -c 4096 /dev/urandom >"$tmp/p_keep/foreign/weights/last.safetensors"
sha1="$(sha256sum "$tmp/p_keep/foreign/weights/last.safetensors" | cut -d' ' -f1)"
train "$tmp/good/data.yaml" "$tmp/p_keep" --name foreign --exist-ok
check "--exist-ok over a foreign weights/last.safetensors: exit 1 naming it, file untouched (sha256)" \
    '[ $rc -eq 1 ] && err_has "foreign/weights/last.safetensors: exists and is not a hotyolo training checkpoint" && [ "$(sha256sum "$tmp/p_keep/foreign/weights/last.safetensors" | cut -d" " -f1)" = "$sha1" ] && [ ! -e "$tmp/p_keep/foreign/weights/best.safetensors" ]'
rm "$tmp/p_keep/foreign/weights/last.safetensors"
echo "my notes" >"$tmp/p_keep/foreign/weights/best.safetensors"
train "$tmp/good/data.yaml" "$tmp/p_keep" --name foreign --exist-ok
check "--exist-ok over a foreign weights/best.safetensors: exit 1, file untouched" \
    '[ $rc -eq 1 ] && err_has "best.safetensors: exists and is not a hotyolo training checkpoint" && [ "$(cat "$tmp/p_keep/foreign/weights/best.safetensors")" = "my notes" ]'
check "the dataset folders were not written to (no .cache files, as Ultralytics writes)" \
    '[ -z "$(find "$tmp" -name "*.cache" | head -1)" ]'

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
