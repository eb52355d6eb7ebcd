#!/usr/bin/env bash
# hotyolo val: usage errors (exit 2 naming the option), runtime errors (exit 1 naming the file),
# a run on datasets/coco8 (4 val images, 17 instances per MANIFEST.md) printing Ultralytics'
# table, progress on stderr, --json and --plots (PNG files).
# Usage: bash test_val.sh CLI_PATH ASSETS_DIR SOURCE_DIR
set -u
cli="$1"
assets="$2"
[ -d "$assets" ] || { echo "skip: shared assets not found at $assets"; exit 77; }
pt="$assets/weights/yolov8n.pt"
coco8="$assets/datasets/coco8/data.yaml"

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
run() { "$cli" "$@" >"$tmp/out" 2>"$tmp/err"; rc=$?; }
out_has() { grep -qE -- "$1" "$tmp/out"; }
err_has() { grep -qE -- "$1" "$tmp/err"; }
png_sig() { [ -s "$1" ] && [ "$(head -c 8 "$1" | od -An -tx1 | tr -d ' \n')" = "89504e470d0a1a0a" ]; }

# ---- help and usage errors ------------------------------------------------------------------
run val --help
check "val --help documents MODEL and the options" \
    '[ $rc -eq 0 ] && out_has "Usage: hotyolo val MODEL --data" && out_has "^  --batch N" && out_has "^  --plots DIR" && out_has "^  --json FILE"'
run --help
check "hotyolo --help lists val" '[ $rc -eq 0 ] && out_has "^  val "'
run val
check "no MODEL: exit 2" '[ $rc -eq 2 ] && err_has "missing MODEL"'
run val "$pt"
check "no --data: exit 2 naming --data" '[ $rc -eq 2 ] && err_has "missing --data"'
run val "$pt" --data "$coco8" --bogus
check "unknown option: exit 2, named" '[ $rc -eq 2 ] && err_has "unknown option .--bogus."'
run val "$pt" --data "$coco8" --imgsz 100
check "--imgsz 100: exit 2, named" '[ $rc -eq 2 ] && err_has "--imgsz: 100 is not a multiple of 32"'
run val "$pt" --data "$coco8" --imgsz abc
check "--imgsz abc: exit 2, named" '[ $rc -eq 2 ] && err_has "--imgsz: .abc. is not an integer"'
run val "$pt" --data "$coco8" --conf 1.5
check "--conf 1.5: exit 2, named" '[ $rc -eq 2 ] && err_has "--conf: 1.5 is out of range"'
run val "$pt" --data "$coco8" --iou x
check "--iou x: exit 2, named" '[ $rc -eq 2 ] && err_has "--iou: .x. is not a number"'
run val "$pt" --data "$coco8" --batch 0
check "--batch 0: exit 2, named" '[ $rc -eq 2 ] && err_has "--batch: 0 is out of range"'
run val "$pt" --data "$coco8" --max-det 0
check "--max-det 0: exit 2, named" '[ $rc -eq 2 ] && err_has "--max-det: 0 is out of range"'
run val "$pt" --data "$coco8" --split holdout
check "--split holdout: exit 2, named" '[ $rc -eq 2 ] && err_has "--split: .holdout. must be val, train or test"'
run val "$pt" --data
check "--data without a value: exit 2" '[ $rc -eq 2 ] && err_has "option --data needs a value"'
run val "$pt" "$pt" --data "$coco8"
check "two models: exit 2" '[ $rc -eq 2 ] && err_has "unexpected argument"'

# ---- runtime errors -------------------------------------------------------------------------
run val "$pt" --data "$tmp/missing.yaml"
check "missing data.yaml: exit 1 naming it" '[ $rc -eq 1 ] && err_has "missing\.yaml" && [ ! -s "$tmp/out" ]'
run val "$tmp/nope.pt" --data "$coco8"
check "missing model: exit 1 naming it" '[ $rc -eq 1 ] && err_has "nope\.pt"'
printf 'val: images/val\nnames: [a\n' >"$tmp/broken.yaml"
run val "$pt" --data "$tmp/broken.yaml"
check "malformed data.yaml: exit 1 naming file:line" '[ $rc -eq 1 ] && err_has "broken\.yaml:[0-9]+:[0-9]+: YAML"'
printf 'path: %s\nval: images/nothing\nnames: [a]\n' "$assets/datasets/coco8" >"$tmp/nosplit.yaml"
run val "$pt" --data "$tmp/nosplit.yaml"
check "missing split folder: exit 1 naming it" '[ $rc -eq 1 ] && err_has "images/nothing. does not exist"'
run val "$pt" --data "$coco8" --split test
check "split absent from the yaml: exit 1" '[ $rc -eq 1 ] && err_has "no .test. split"'
: >"$tmp/file"
run val "$pt" --data "$coco8" --plots "$tmp/file/sub"
check "--plots under a file: exit 1" '[ $rc -eq 1 ] && err_has "--plots"'

# ---- coco8 ------------------------------------------------------------------------------------
run val "$pt" --data "$coco8" --threads 2 --json "$tmp/r.json" --plots "$tmp/plots/a"
check "coco8: exit 0" '[ $rc -eq 0 ]'
check "coco8: Ultralytics table header" \
    'out_has "^ +Class +Images +Instances +Box\(P +R +mAP50 +mAP50-95\)$"'
check "coco8: all row, 4 images, 17 instances, 4 metrics" \
    'out_has "^ +all +4 +17( +[0-9.e-]+){4}$"'
check "coco8: a row per class with labels (person: 10 instances)" 'out_has "^ +person +4 +10( +[0-9.e-]+){4}$"'
check "coco8: speed line" 'out_has "^Speed: [0-9.]+ms preprocess, [0-9.]+ms inference, [0-9.]+ms postprocess per image"'
check "coco8: progress on stderr, not stdout" 'err_has "val: 4/4 images" && ! out_has "4/4 images"'
check "coco8: --json written" '[ -s "$tmp/r.json" ] && grep -q "\"mAP50-95\"" "$tmp/r.json" && grep -q "\"instances\": 17" "$tmp/r.json" && grep -q "\"classes\"" "$tmp/r.json"'
check "coco8: --json all row matches the table (mAP50)" \
    'm=$(awk "/^ +all /{print \$6}" "$tmp/out"); j=$(grep -A9 "\"all\"" "$tmp/r.json" | grep "\"mAP50\"" | head -1 | sed "s/.*: //; s/,//"); [ -n "$m" ] && awk -v a="$m" -v b="$j" "BEGIN{exit !((a-b)^2 < 1e-6)}"'
for f in PR_curve.png confusion_matrix.png confusion_matrix_normalized.png; do
    check "coco8: --plots $f is a PNG (folder created)" 'png_sig "$tmp/plots/a/$f"'
done
run val "$pt" --data "$coco8" -q --batch 1 --imgsz 320
check "coco8 -q: no progress, exit 0" '[ $rc -eq 0 ] && ! err_has "images" && out_has "^ +all +4 +17 "'

# ---- no labels: a loud warning, not a silent mAP 0 ------------------------------------------
# coco128's images (symlinks) without its labels/ folder. Ultralytics warns "No labels found in
# ..." and "no labels found in val set, can not compute metrics without labels", and goes on.
mkdir -p "$tmp/nolabels/images/val"
for f in "$assets"/datasets/coco128/images/train2017/*.jpg; do ln -s "$f" "$tmp/nolabels/images/val/"; done
n_img=$(ls "$tmp/nolabels/images/val" | wc -l)
printf 'path: %s\nval: images/val\nnames: {0: person, 1: bicycle}\n' "$tmp/nolabels" >"$tmp/nolabels/data.yaml"
run val "$pt" --data "$tmp/nolabels/data.yaml" -q --imgsz 160 --batch 32
check "no label files: exit 0 (as Ultralytics), the table still printed" \
    '[ $rc -eq 0 ] && out_has "^ +all +$n_img +0 "'
check "no label files: a warning naming the image count and the label path looked for" \
    'err_has "warning: .*no label files found for the $n_img images .*nolabels/labels/val/[0-9]+\.txt.*mAP will be 0"'
check "no label files: a WARNING after the table that every figure is 0" \
    'err_has "WARNING: no labels found in the .val. split.*every figure above is 0"'
mkdir -p "$tmp/nolabels/labels/val"
for f in "$tmp"/nolabels/images/val/*.jpg; do b=${f##*/}; : >"$tmp/nolabels/labels/val/${b%.jpg}.txt"; done
run val "$pt" --data "$tmp/nolabels/data.yaml" -q --imgsz 160 --batch 32
check "only empty label files: warned too" \
    '[ $rc -eq 0 ] && err_has "the $n_img label files found for the $n_img images hold no labels" && err_has "WARNING: no labels found"'
run val "$pt" --data "$coco8" -q --imgsz 160
check "labelled dataset: no such warning" '[ $rc -eq 0 ] && ! err_has "no label"'

# ---- --batch: real batches, as Ultralytics' numbers ---------------------------------------------
run val "$pt" --data "$coco8" -q --imgsz 320 --batch 4 --device gpu
check "--device gpu: exit 2, the accepted forms named" '[ $rc -eq 2 ] && err_has "--device .gpu.: expected cpu, ref, cuda"'
run val --help
check "--help documents --device" '[ $rc -eq 0 ] && out_has "^  --device NAME"'
run val "$pt" --data "$coco8" -q --imgsz 320 --batch 4 --device ref --threads 2 --json "$tmp/ref.json"
cp "$tmp/out" "$tmp/ref.out"
run val "$pt" --data "$coco8" -q --imgsz 320 --batch 4 --device cpu --threads 2 --json "$tmp/cpu.json"
check "coco8 --batch 4: --device ref prints --device cpu's table (the Speed line aside)" \
    '[ $rc -eq 0 ] && out_has "^ +all +4 +17 " && diff <(grep -v "^Speed" "$tmp/ref.out") <(grep -v "^Speed" "$tmp/out") >/dev/null'
# Ultralytics 8.0.172 on coco128, imgsz 640, batch 8 (shared/assets/MANIFEST.md): P 0.666,
# R 0.496, mAP50 0.595, mAP50-95 0.435, 929 instances; one forward pass per batch of 8
if [ -n "${HY_TEST_SANITIZED:-}" ] && [ "${HY_TEST_SANITIZED}" != 0 ]; then
    echo "skip: coco128 --batch 8 under sanitizers (tests/test_val_coco128.c runs a subset)"
else
    t0=$(date +%s%N)
    run val "$pt" --data "$assets/datasets/coco128/data.yaml" -q --batch 8 --threads 2
    echo "     (coco128 --batch 8: $(( ($(date +%s%N) - t0) / 1000000 )) ms)"
    check "coco128 --batch 8 = Ultralytics: all 128 929 0.666 0.496 0.595 0.435" \
        'out_has "^ +all +128 +929 +0\.666 +0\.496 +0\.595 +0\.435$"'
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
