#!/usr/bin/env bash
# hotyolo train: usage errors (exit 2 naming the option), runtime errors (exit 1 naming the
# file; nothing of the user's overwritten), and the overfit acceptance of issue 16: from
# weights/yolov8n.pt, the 4 coco8 train images at 320 as train and val split, batch 4, a fixed
# seed: the loss (box + cls + dfl) falls >= 5x from the first epoch to the last and mAP50 on
# those images reaches >= 0.9; last/best.safetensors exist, carry the training record, load in
# `hotyolo detect`, and `hotyolo convert --fuse` of best gives the same detections.
# Usage: bash test_train.sh CLI_PATH ASSETS_DIR SOURCE_DIR
set -u
cli="$1"
assets="$2"
[ -d "$assets" ] || { echo "skip: shared assets not found at $assets"; exit 77; }
pt="$assets/weights/yolov8n.pt"
coco8="$assets/datasets/coco8"

pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok   $1"; }
bad() {
    fail=$((fail + 1))
    echo "FAIL $1"
    [ $# -gt 1 ] && printf '     check: %s\n' "$2"
    printf '     rc=%s\n     stdout: %s\n     stderr: %s\n' "$rc" "$(tail -c 2500 "$tmp/out")" "$(head -c 1500 "$tmp/err")"
}
check() { if eval "$2"; then ok "$1"; else bad "$1" "$2"; fi; }

tmp="$(mktemp -d)"
trap 'rm -rf -- "$tmp"' EXIT
run() { "$cli" "$@" >"$tmp/out" 2>"$tmp/err"; rc=$?; }
out_has() { grep -qE -- "$1" "$tmp/out"; }
err_has() { grep -qE -- "$1" "$tmp/err"; }

# a data.yaml whose train and val splits are both coco8's 4 train images
{
    echo "path: $coco8"
    echo "train: images/train"
    echo "val: images/train"
    sed -n '/^names:/,$p' "$coco8/data.yaml"
} >"$tmp/data.yaml"
printf 'train: [unclosed\n  names: {\n' >"$tmp/bad.yaml"

# ---- help and usage errors ------------------------------------------------------------------
run train --help
check "train --help documents the options" \
    '[ $rc -eq 0 ] && out_has "Usage: hotyolo train --model MODEL --data" && out_has "^  --freeze K" && out_has "^  --optimizer NAME" && out_has "^  --exist-ok"'
run --help
check "hotyolo --help lists train" '[ $rc -eq 0 ] && out_has "^  train "'
run train --model "$pt"
check "no --data: exit 2 naming --data" '[ $rc -eq 2 ] && err_has "missing --data"'
run train --data "$tmp/data.yaml"
check "no --model: exit 2 naming --model" '[ $rc -eq 2 ] && err_has "missing --model"'
run train --model "$pt" --data "$tmp/data.yaml" --optimizer Lion
check "unknown optimizer: exit 2 naming --optimizer" '[ $rc -eq 2 ] && err_has "\-\-optimizer: .Lion. must be SGD, Adam, AdamW or auto"'
run train --model "$pt" --data "$tmp/data.yaml" --batch 0
check "batch 0: exit 2 naming --batch" '[ $rc -eq 2 ] && err_has "\-\-batch: 0 is out of range"'
run train --model "$pt" --data "$tmp/data.yaml" --imgsz 100
check "imgsz not a multiple of 32: exit 2" '[ $rc -eq 2 ] && err_has "\-\-imgsz: 100 is not a multiple of 32"'
run train --model "$pt" --data "$tmp/data.yaml" --fliplr 1.5
check "fliplr out of [0, 1]: exit 2" '[ $rc -eq 2 ] && err_has "\-\-fliplr: 1.5 is out of range"'
run train --model "$pt" --data "$tmp/data.yaml" mixup=0.5
check "unknown key=value: exit 2 naming it" '[ $rc -eq 2 ] && err_has "unknown argument .mixup=0.5."'
run train --model "$pt" --data "$tmp/data.yaml" cos_lr=maybe
check "bad boolean key=value: exit 2" '[ $rc -eq 2 ] && err_has "cos_lr=maybe: .maybe. must be True or False"'
run train --model "$pt" --data "$tmp/data.yaml" --name a/b
check "a --name with '/': exit 2" '[ $rc -eq 2 ] && err_has "\-\-name: .a/b. must be a folder name"'

# ---- runtime errors -------------------------------------------------------------------------
run train --model "$pt" --data "$tmp/missing.yaml" --project "$tmp/runs"
check "unreadable data.yaml: exit 1 naming it" '[ $rc -eq 1 ] && err_has "missing.yaml"'
run train model="$pt" data="$tmp/bad.yaml" epochs=1 project="$tmp/runs"
check "malformed data.yaml (key=value spelling): exit 1 naming it" '[ $rc -eq 1 ] && err_has "bad.yaml"'
run train --model "$tmp/nothing.pt" --data "$tmp/data.yaml" --project "$tmp/runs"
check "unreadable model: exit 1 naming it" '[ $rc -eq 1 ] && err_has "nothing.pt"'
check "no run folder made for a failed start" '[ ! -e "$tmp/runs/train" ]'
echo "precious" >"$tmp/afile"
run train --model "$pt" --data "$tmp/data.yaml" --project "$tmp/afile" --epochs 1 --imgsz 64 --batch 4
check "--project that is a file: exit 1 naming it, file untouched" \
    '[ $rc -eq 1 ] && err_has "afile" && err_has "not a folder" && [ "$(cat "$tmp/afile")" = precious ]'
mkdir -p "$tmp/runs/mine/weights"
echo "user data" >"$tmp/runs/mine/weights/last.safetensors"
run train --model "$pt" --data "$tmp/data.yaml" --project "$tmp/runs" --name mine --exist-ok --epochs 1 --imgsz 64 --batch 4
check "--exist-ok over a file that is not ours: exit 1, file untouched" \
    '[ $rc -eq 1 ] && err_has "last.safetensors: exists and is not a hotyolo training checkpoint" && [ "$(cat "$tmp/runs/mine/weights/last.safetensors")" = "user data" ]'

# an image with more labels than training takes (8192): refused naming it, before any graph
mkdir -p "$tmp/many/images" "$tmp/many/labels"
cp "$coco8/images/train/000000000009.jpg" "$tmp/many/images/"
awk 'BEGIN { for (i = 0; i < 8193; i++) printf "0 %.4f %.4f 0.05 0.05\n", 0.1 + (i % 100) * 0.008, 0.1 + int(i / 100) * 0.008 }' >"$tmp/many/labels/000000000009.txt"
printf 'path: %s\ntrain: images\nval: images\nnames:\n  0: person\n' "$tmp/many" >"$tmp/many.yaml"
run train --model "$pt" --data "$tmp/many.yaml" --project "$tmp/runs" --name many --epochs 1 --imgsz 64 --batch 2 --no-val
check "8193 labels on one image: exit 1 naming the image" \
    '[ $rc -eq 1 ] && err_has "000000000009.jpg: 8193 labels, more than the 8192" && [ ! -e "$tmp/runs/many" ]'

# ---- a small run on the reference kernels ---------------------------------------------------
# imgsz 64, batch 3 over 4 images: a full and a partial batch (two training graphs), validation
# and checkpoints every epoch; the same seed twice gives the same weights.
# small NAME [DEVICE [THREADS]]
small() {
    "$cli" train --model "$pt" --data "$tmp/data.yaml" --epochs 2 --imgsz 64 --batch 3 --device "${2:-ref}" \
        --threads "${3:-1}" --seed 3 --project "$tmp/small" --name "$1" -q >"$tmp/out" 2>"$tmp/err"
    rc=$?
}
# meta FILE KEY: a __metadata__ value of a safetensors file
meta() {
    /usr/bin/python3 -c 'import json, struct, sys
f = open(sys.argv[1], "rb"); n = struct.unpack("<Q", f.read(8))[0]
print(json.loads(f.read(n))["__metadata__"].get(sys.argv[2], ""))' "$1" "$2"
}
data_sha() { meta "$1" hotyolo.data_sha256; }
small a
check "small run (ref): exit 0, 2 epochs validated" \
    '[ $rc -eq 0 ] && [ "$(grep -cE "^ +all " "$tmp/out")" = 2 ] && out_has "^ +2/2 " && [ -s "$tmp/small/a/weights/last.safetensors" ] && [ -s "$tmp/small/a/weights/best.safetensors" ]'
check "small run: the last checkpoint records both epochs" \
    '[ "$(meta "$tmp/small/a/weights/last.safetensors" hotyolo.train.epoch)" = 2 ] && meta "$tmp/small/a/weights/last.safetensors" hotyolo.train.results | /usr/bin/python3 -c "import json, sys; r = json.load(sys.stdin); assert [e[\"epoch\"] for e in r] == [1, 2] and all(e[\"validated\"] for e in r)"'
check "small run: the checkpoint's default size is the training size (hotyolo.imgsz 64, as Ultralytics' train_args)" \
    '[ "$(meta "$tmp/small/a/weights/last.safetensors" hotyolo.imgsz)" = 64 ]'
small b
check "small run: the same seed gives the same weights" \
    '[ $rc -eq 0 ] && [ -n "$(data_sha "$tmp/small/a/weights/last.safetensors")" ] && [ "$(data_sha "$tmp/small/a/weights/last.safetensors")" = "$(data_sha "$tmp/small/b/weights/last.safetensors")" ]'
small c cpu 2
small d cpu 2
check "cpu backend, 2 threads: the same seed gives bit-identical weights (reproducible kernels)" \
    '[ $rc -eq 0 ] && [ -n "$(data_sha "$tmp/small/c/weights/last.safetensors")" ] && [ "$(data_sha "$tmp/small/c/weights/last.safetensors")" = "$(data_sha "$tmp/small/d/weights/last.safetensors")" ]'
small a
check "small run again with --name a: goes to a2" '[ $rc -eq 0 ] && [ -s "$tmp/small/a2/weights/last.safetensors" ]'

# ---- overfit acceptance ---------------------------------------------------------------------
# AdamW lr0 0.002 without warm-up, nbs 4 (a step every batch), no augmentation (letterbox only,
# as the reference loss): the 4 images memorised.
epochs=60
overfit() {
    "$cli" train --model "$pt" --data "$tmp/data.yaml" --epochs $epochs --imgsz 320 --batch 4 \
        --optimizer AdamW --lr0 0.002 --warmup-epochs 0 --nbs 4 --fliplr 0 --no-augment --seed 0 --no-val \
        --project "$tmp/runs" --name train -q "$@" >"$tmp/out" 2>"$tmp/err"
    rc=$?
}
mkdir -p "$tmp/runs/train" # taken: the run goes to train2 (Ultralytics' increment_path)
if [ "${HY_TEST_SANITIZED:-0}" = 1 ]; then
    echo "skip: overfit run: $epochs yolov8n training steps take ~14 s each under ASan+UBSan (~14 min); the loader, CLI and small-run checks above ran"
else
    t0=$(date +%s.%N)
    overfit
    t1=$(date +%s.%N)
    if [ $rc -ne 0 ] && err_has "cannot train"; then
        echo "skip: overfit: the cpu backend has no training kernels yet ($(cat "$tmp/err"))"
    else
        secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
        echo "overfit: $epochs epochs in $secs s; loss per epoch (box + cls + dfl):"
        awk '$1 ~ /^[0-9]+\/[0-9]+$/ { printf "  %s %.4f\n", $1, $2 + $3 + $4 }' "$tmp/out"
        grep -E '^ +all ' "$tmp/out" | tail -1 | sed 's/^/  final val: P R mAP50 mAP50-95 = /'
        check "overfit run exits 0" '[ $rc -eq 0 ]'
        read -r first last <<<"$(awk '$1 ~ /^[0-9]+\/[0-9]+$/ { l = $2 + $3 + $4; if (!n++) f = l } END { print f, l }' "$tmp/out")"
        check "loss falls >= 5x (first $first, last $last)" \
            'awk -v f="$first" -v l="$last" "BEGIN { exit !(l > 0 && f / l >= 5) }"'
        map50=$(grep -E '^ +all ' "$tmp/out" | tail -1 | awk '{ print $4 }')
        check "mAP50 on the training images >= 0.9 (got ${map50:-none})" \
            'awk -v m="${map50:-0}" "BEGIN { exit !(m >= 0.9) }"'
        # the issue's "under two minutes" is a figure (printed, in docs/training.md), not an
        # assertion: a timed test fails on a busy machine (ctest -j, CI neighbours)
        echo "  overfit run took $secs s (2-minute budget; $(nproc) cores)"
        w="$tmp/runs/train2/weights"
        check "run folder train2 (train was taken), last and best written" \
            '[ -s "$w/last.safetensors" ] && [ -s "$w/best.safetensors" ] && out_has "Results saved to .*train2"'
        check "checkpoint carries the training record" \
            '[ "$(meta "$w/best.safetensors" hotyolo.train.epoch)" = $epochs ] && meta "$w/best.safetensors" hotyolo.train.args | grep -q "\"lr0\":0.002"'
        "$cli" detect "$w/best.safetensors" "$coco8/images/train" --imgsz 320 --json "$tmp/a.jsonl" >"$tmp/out" 2>"$tmp/err"
        rc=$?
        check "hotyolo detect loads best.safetensors" '[ $rc -eq 0 ] && [ -s "$tmp/a.jsonl" ]'
        "$cli" detect "$w/last.safetensors" "$coco8/images/train" --imgsz 320 >"$tmp/out" 2>"$tmp/err"
        rc=$?
        check "hotyolo detect loads last.safetensors" '[ $rc -eq 0 ]'
        "$cli" convert "$w/best.safetensors" "$tmp/fused.safetensors" --fuse >"$tmp/out" 2>"$tmp/err" &&
            "$cli" detect "$tmp/fused.safetensors" "$coco8/images/train" --imgsz 320 --json "$tmp/b.jsonl" >"$tmp/out" 2>"$tmp/err"
        rc=$?
        check "convert --fuse of best: same detections (class, box, confidence within 1e-4)" \
            '[ $rc -eq 0 ] && /usr/bin/python3 - "$tmp/a.jsonl" "$tmp/b.jsonl" <<"EOF"
import json, sys
a = [json.loads(l) for l in open(sys.argv[1])]
b = [json.loads(l) for l in open(sys.argv[2])]
assert len(a) == len(b) == 4 and sum(len(x["detections"]) for x in a) > 0
for x, y in zip(a, b):
    assert len(x["detections"]) == len(y["detections"]), (x["image"], len(x["detections"]), len(y["detections"]))
    for d, e in zip(x["detections"], y["detections"]):
        assert d["class_id"] == e["class_id"]
        assert abs(d["confidence"] - e["confidence"]) <= 1e-4
        assert max(abs(p - q) for p, q in zip(d["box"], e["box"])) <= 1e-2
EOF'
    fi
fi

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
