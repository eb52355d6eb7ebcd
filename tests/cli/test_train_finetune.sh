#!/usr/bin/env bash
# hotyolo train, the fine-tuning pipeline of issue 17 on small runs (coco8's 4 train images as
# train and val, imgsz 64, batch 2, cpu backend): staged unfreezing (frozen layers keep their
# weights until their stage, then train), --save-period, results.csv / results.png, the training
# record, exact --resume after a SIGKILL and after a SIGINT (the final weights equal an
# uninterrupted run's, byte for byte), early stopping by --patience, --arch from scratch,
# loader threads not changing the result, and the usage errors of the new options.
# Usage: bash test_train_finetune.sh CLI_PATH ASSETS_DIR SOURCE_DIR
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
trap 'kill -9 $(jobs -p) 2>/dev/null; rm -rf -- "$tmp"' EXIT
run() { "$cli" "$@" >"$tmp/out" 2>"$tmp/err"; rc=$?; }
out_has() { grep -qE -- "$1" "$tmp/out"; }
err_has() { grep -qE -- "$1" "$tmp/err"; }
{
    echo "path: $coco8"
    echo "train: images/train"
    echo "val: images/train"
    sed -n '/^names:/,$p' "$coco8/data.yaml"
} >"$tmp/data.yaml"

# meta FILE KEY: a __metadata__ value of a safetensors file
meta() {
    /usr/bin/python3 -c 'import json, struct, sys
f = open(sys.argv[1], "rb"); n = struct.unpack("<Q", f.read(8))[0]
print(json.loads(f.read(n))["__metadata__"].get(sys.argv[2], ""))' "$1" "$2"
}
data_sha() { meta "$1" hotyolo.data_sha256; }
# maxdiff A B TENSOR: max |a - b| / max |a| of an F32 tensor in two safetensors files
maxdiff() {
    /usr/bin/python3 -c 'import json, struct, sys
def load(p, name):
    b = open(p, "rb").read(); n = struct.unpack("<Q", b[:8])[0]; h = json.loads(b[8:8 + n]); t = h[name]
    s, e = t["data_offsets"]; raw = b[8 + n + s:8 + n + e]
    return struct.unpack("<%df" % (len(raw) // 4), raw)
a = load(sys.argv[1], sys.argv[3]); b = load(sys.argv[2], sys.argv[3])
print("%.3g" % (max(abs(x - y) for x, y in zip(a, b)) / max(abs(x) for x in a)))' "$1" "$2" "$3"
}
# tiny NAME [options]: 2 batches per epoch, an AdamW step after each (nbs 2, no warm-up),
# validation every epoch
fast=(--imgsz 64 --batch 2 --nbs 2 --optimizer AdamW --lr0 0.002 --warmup-epochs 0 --device cpu --threads 2 --seed 1)
tiny() {
    local name="$1"
    shift
    "$cli" train --model "$pt" --data "$tmp/data.yaml" "${fast[@]}" --project "$tmp/r" --name "$name" -q "$@" \
        >"$tmp/out" 2>"$tmp/err"
    rc=$?
}
rows() { [ -f "$1" ] && tail -n +2 "$1" | grep -c . || echo 0; }

# ---- usage errors of the new options --------------------------------------------------------
run train --model "$pt" --data "$tmp/data.yaml" --unfreeze-at 0
check "--unfreeze-at 0: exit 2 naming it" '[ $rc -eq 2 ] && err_has "\-\-unfreeze-at: .0. must be EPOCH or EPOCH:LAYERS"'
run train --model "$pt" --data "$tmp/data.yaml" --unfreeze-at 5:x
check "--unfreeze-at 5:x: exit 2" '[ $rc -eq 2 ] && err_has "\-\-unfreeze-at: .5:x."'
run train --model "$pt" --arch yolov8n --data "$tmp/data.yaml"
check "--model and --arch together: exit 2" '[ $rc -eq 2 ] && err_has "\-\-model and \-\-arch"'
run train --arch yolov9q --data "$tmp/data.yaml" --project "$tmp/r" --epochs 1 --imgsz 64
check "unknown --arch: exit 1 naming it and the known ones, no run folder" \
    '[ $rc -eq 1 ] && err_has "arch .yolov9q.: unknown" && err_has "yolov8n" && [ ! -e "$tmp/r" ]'
run train --resume "$tmp/r/none" --epochs 3
check "--resume with other arguments: exit 2 (the run keeps its own)" '[ $rc -eq 2 ] && err_has "own arguments"'
run train --resume "$tmp/r/none"
check "--resume of a folder without a run: exit 1 naming the state file" '[ $rc -eq 1 ] && err_has "none/weights/state.safetensors"'
run train --model "$pt" --data "$tmp/data.yaml" --epochs 2 --unfreeze-at 3:0
check "--unfreeze-at past the last epoch: exit 1 naming it" '[ $rc -eq 1 ] && err_has "unfreeze_at 3:0"'
run train --model "$pt" --data "$tmp/data.yaml" --patience -1
check "--patience -1: exit 2" '[ $rc -eq 2 ] && err_has "\-\-patience"'

# ---- staged unfreezing, save period, results ------------------------------------------------
tiny staged --epochs 4 --freeze 10 --unfreeze-at 3:0 --save-period 1
w="$tmp/r/staged/weights"
check "staged run: exit 0, 4 epochs, the stage change printed" \
    '[ $rc -eq 0 ] && out_has "^ +4/4 " && out_has "epoch 3: layers model.0..-1 frozen now"'
check "--save-period 1: epoch0..epoch3 checkpoints (Ultralytics numbers epochs from 0)" \
    '[ -s "$w/epoch0.safetensors" ] && [ -s "$w/epoch3.safetensors" ] && [ ! -e "$w/epoch4.safetensors" ]'
check "the finished run leaves no resume state, last says finished" \
    '[ ! -e "$w/state.safetensors" ] && [ "$(meta "$w/last.safetensors" hotyolo.train.status)" = finished ]'
d01=$(maxdiff "$w/epoch0.safetensors" "$w/epoch1.safetensors" model.0.conv.weight)
d13=$(maxdiff "$w/epoch1.safetensors" "$w/epoch3.safetensors" model.0.conv.weight)
d01h=$(maxdiff "$w/epoch0.safetensors" "$w/epoch1.safetensors" model.22.cv3.2.2.weight)
check "model.0 frozen in epochs 1-2 (rel change $d01 <= 1e-5), trains after --unfreeze-at 3 ($d13 > 1e-4); the head trains throughout ($d01h)" \
    'awk -v a="$d01" -v b="$d13" -v h="$d01h" "BEGIN { exit !(a <= 1e-5 && b > 1e-4 && h > 1e-4) }"'
check "record: freeze per epoch 10 10 0 0, dataset and source hashes" \
    'meta "$w/last.safetensors" hotyolo.train.results | /usr/bin/python3 -c "import json, sys; r = json.load(sys.stdin); assert [e[\"freeze\"] for e in r] == [10, 10, 0, 0], r" && [ "$(meta "$w/last.safetensors" hotyolo.train.dataset_sha256 | wc -c)" -eq 65 ] && [ "$(meta "$w/last.safetensors" hotyolo.source_sha256)" = "$(sha256sum "$pt" | cut -d" " -f1)" ]'
csv="$tmp/r/staged/results.csv"
check "results.csv: Ultralytics' header and 4 rows, val losses filled" \
    '[ "$(rows "$csv")" = 4 ] && head -1 "$csv" | grep -q "epoch, *train/box_loss, *train/cls_loss, *train/dfl_loss, *metrics/precision(B), *metrics/recall(B), *metrics/mAP50(B), *metrics/mAP50-95(B), *val/box_loss, *val/cls_loss, *val/dfl_loss, *lr/pg0, *lr/pg1, *lr/pg2" &&
     awk -F, "NR > 1 { if (\$9 + 0 <= 0 || \$10 + 0 <= 0) exit 1 }" "$csv"'
check "results.png written (a PNG)" \
    '[ "$(head -c 8 "$tmp/r/staged/results.png" | od -An -tx1 | tr -d " \n")" = 89504e470d0a1a0a ]'

run train --compare "$tmp/cmp.png" staged="$tmp/r/staged" "reference=0.1,0.2,0.3,0.4"
check "--compare: one PNG of a run's and a literal series' mAP50 by epoch" \
    '[ $rc -eq 0 ] && [ "$(head -c 8 "$tmp/cmp.png" | od -An -tx1 | tr -d " \n")" = 89504e470d0a1a0a ]'
run train --compare "$tmp/cmp2.png" bad="$tmp/nowhere"
check "--compare of something neither a run nor numbers: exit 1 naming it" '[ $rc -eq 1 ] && err_has "nowhere"'

# ---- resume after SIGKILL and after SIGINT: the same final weights --------------------------
tiny ref --epochs 4 --freeze 10 --unfreeze-at 3:0
ref_sha=$(data_sha "$tmp/r/ref/weights/last.safetensors")
check "uninterrupted run: exit 0" '[ $rc -eq 0 ] && [ -n "$ref_sha" ]'
# interrupt NAME SIGNAL ROWS: start the run, send SIGNAL once results.csv has ROWS rows
interrupt() {
    "$cli" train --model "$pt" --data "$tmp/data.yaml" "${fast[@]}" \
        --project "$tmp/r" --name "$1" -q --epochs 4 --freeze 10 --unfreeze-at 3:0 >"$tmp/out" 2>"$tmp/err" &
    local pid=$! i=0
    while [ "$(rows "$tmp/r/$1/results.csv")" -lt "$3" ] && kill -0 $pid 2>/dev/null && [ $i -lt 3000 ]; do
        sleep 0.01
        i=$((i + 1))
    done
    kill -s "$2" $pid 2>/dev/null
    { wait $pid; } 2>/dev/null
    rc=$?
    done_rows=$(rows "$tmp/r/$1/results.csv")
}
interrupt killed KILL 2
check "SIGKILL after epoch 2: killed before the end ($done_rows epochs done), the state of a completed epoch kept" \
    '[ $rc -eq 137 ] && [ "$done_rows" -lt 4 ] && [ -s "$tmp/r/killed/weights/state.safetensors" ]'
run train --resume "$tmp/r/killed/weights/last.safetensors" --threads 2
check "--resume RUN/weights/last.safetensors: exit 0, resumed at the next epoch, 4 epochs in results.csv" \
    '[ $rc -eq 0 ] && out_has "Resuming training from .*killed at epoch [2-4]" && [ "$(rows "$tmp/r/killed/results.csv")" = 4 ]'
check "resumed after SIGKILL: final weights equal the uninterrupted run's (sha256 of the data)" \
    '[ "$(data_sha "$tmp/r/killed/weights/last.safetensors")" = "$ref_sha" ]'
run train --resume "$tmp/r/killed"
check "--resume of a finished run: exit 1, nothing to resume" '[ $rc -eq 1 ] && err_has "nothing to resume"'
interrupt intr INT 1
check "SIGINT: exit 130, last saved, says how to resume" \
    '[ $rc -eq 130 ] && [ -s "$tmp/r/intr/weights/last.safetensors" ] && out_has "hotyolo train --resume .*intr" && [ -s "$tmp/r/intr/weights/state.safetensors" ]'
run train --resume "$tmp/r/intr" --threads 2
check "resumed after SIGINT: exit 0, final weights equal the uninterrupted run's" \
    '[ $rc -eq 0 ] && [ "$(data_sha "$tmp/r/intr/weights/last.safetensors")" = "$ref_sha" ]'

# ---- loader threads do not change the result ------------------------------------------------
tiny w1 --epochs 2 --workers 1 --no-val
a=$(data_sha "$tmp/r/w1/weights/last.safetensors")
tiny w3 --epochs 2 --workers 3 --no-val
check "--workers 1 and 3: the same weights (augmentation drawn per image, not per thread)" \
    '[ $rc -eq 0 ] && [ -n "$a" ] && [ "$a" = "$(data_sha "$tmp/r/w3/weights/last.safetensors")" ]'

# ---- early stopping --------------------------------------------------------------------------
# SGD lr 0.2 without warm-up wrecks the weights: the fitness falls; with --patience 1 the run
# must end at the first epoch that is not a new best (EarlyStopping: fitness >= best is one)
tiny es --epochs 6 --patience 1 --optimizer SGD --lr0 0.2 --warmup-epochs 0
want=$(meta "$tmp/r/es/weights/last.safetensors" hotyolo.train.results | /usr/bin/python3 -c 'import json, sys
r = json.load(sys.stdin); best = -1; be = 0
for e in r:
    if e["fitness"] >= best: best, be = e["fitness"], e["epoch"]
    if e["epoch"] - be >= 1: print(e["epoch"]); break
else: print(6)')
got=$(rows "$tmp/r/es/results.csv")
check "--patience 1: the run ends where EarlyStopping says (epoch $want; ran $got)" \
    '[ $rc -eq 0 ] && [ -n "$want" ] && [ "$got" = "$want" ]'
if [ "$got" != 6 ]; then
    check "early stop: says so, status early_stopped, no resume state" \
        'out_has "Stopping training early" && [ "$(meta "$tmp/r/es/weights/last.safetensors" hotyolo.train.status)" = early_stopped ] && [ ! -e "$tmp/r/es/weights/state.safetensors" ]'
fi

# ---- from scratch ----------------------------------------------------------------------------
run train --arch yolov8n.yaml --data "$tmp/data.yaml" --imgsz 64 --batch 2 --epochs 1 --device cpu --seed 1 \
    --project "$tmp/r" --name scratch -q
check "--arch yolov8n.yaml: trains from scratch (nothing transferred), loads in detect" \
    '[ $rc -eq 0 ] && out_has "Training yolov8n.yaml from scratch" && [ -s "$tmp/r/scratch/weights/last.safetensors" ] && [ -z "$(meta "$tmp/r/scratch/weights/last.safetensors" hotyolo.source_sha256)" ]'
run train model=yolov8n.yaml data="$tmp/data.yaml" imgsz=64 batch=2 epochs=1 device=cpu seed=1 \
    project="$tmp/r" name=scratch -q
check "Ultralytics' model=yolov8n.yaml spelling: from scratch too, same seed same weights (run folder scratch2)" \
    '[ $rc -eq 0 ] && [ "$(data_sha "$tmp/r/scratch2/weights/last.safetensors")" = "$(data_sha "$tmp/r/scratch/weights/last.safetensors")" ]'

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
