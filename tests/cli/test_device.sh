#!/usr/bin/env bash
# --device and --no-fallback on every command that runs a network (issue 22): a misspelt device
# is a usage error (exit 2, naming the forms) before any model is loaded; a GPU that cannot be
# used falls back to cpu with one warning on stderr and the same detections as --device cpu
# (auto: silently); --no-fallback makes it exit 1 naming the device; inspect --devices lists a
# cpu and a cuda row (why not usable: no driver, or the toolkit's stub driver); inspect, bench
# report the device asked for, the device used and why. On a machine where a GPU is usable
# the fallback checks are skipped (printed), not passed.
# Usage: bash test_device.sh CLI_PATH ASSETS_DIR SOURCE_DIR
set -u
cli="$1"
assets="$2"
[ -d "$assets" ] || { echo "skip: shared assets not found at $assets"; exit 77; }
py=/usr/bin/python3
[ -x "$py" ] || { echo "skip: no $py"; exit 77; }
pt="$assets/weights/yolov8n.pt"
img="$assets/images/bus.jpg"
coco8="$assets/datasets/coco8"

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
# JSON check: python expression over d (the JSON of $tmp/out)
json_ok() { "$py" -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if eval(sys.argv[2]) else 1)' "$tmp/out" "$1" 2>/dev/null; }
FALLBACK_WARN='warning: device cuda:0: .+; running on cpu$'

# ---- inspect --devices: what this build and machine have ------------------------------------
run inspect --devices --json
check "inspect --devices --json: exit 0, an array with a cpu row (usable) and a cuda row" \
    '[ $rc -eq 0 ] && json_ok "isinstance(d, list) and d[0][\"name\"] == \"cpu\" and d[0][\"usable\"] is True and any(r[\"kind\"] == \"cuda\" for r in d) and all(set(r) >= {\"name\", \"model\", \"memory_bytes\", \"usable\", \"detail\", \"why\", \"built\"} for r in d)"'
cp "$tmp/out" "$tmp/devices.json"
cuda_built=0
cuda_usable=0
json_ok 'any(r["kind"] == "cuda" and r["built"] for r in d)' && cuda_built=1
json_ok 'any(r["kind"] == "cuda" and r["usable"] for r in d)' && cuda_usable=1
echo "     (cuda backend built: $cuda_built, a usable GPU: $cuda_usable)"
if [ $cuda_usable = 0 ]; then
    check "inspect --devices --json: the unusable cuda row says why" \
        'json_ok "all(r[\"why\"] for r in d if r[\"kind\"] == \"cuda\")"'
    if [ $cuda_built = 0 ]; then
        check "a build without the CUDA backend: the cuda row says so" \
            'json_ok "any(\"no CUDA backend\" in r[\"why\"] and not r[\"built\"] for r in d if r[\"kind\"] == \"cuda\")"'
    fi
fi
run inspect --devices
check "inspect --devices: a cpu row and a cuda row, usable yes/no" \
    '[ $rc -eq 0 ] && out_has "^cpu:" && out_has "^cuda(:0)?:" && out_has "^  usable: +yes" && out_has "^  memory: " && out_has "^  model: "'
stub=/usr/local/cuda/lib64/stubs/libcuda.so
if [ $cuda_built = 1 ] && [ -e "$stub" ]; then
    HOTYOLO_CUDA_DRIVER="$stub" "$cli" inspect --devices --json >"$tmp/out" 2>"$tmp/err"
    rc=$?
    check "HOTYOLO_CUDA_DRIVER=the toolkit's stub: the cuda row is not usable, why names CUDA_ERROR_STUB_LIBRARY" \
        '[ $rc -eq 0 ] && json_ok "any(r[\"kind\"] == \"cuda\" and not r[\"usable\"] and \"CUDA_ERROR_STUB_LIBRARY\" in r[\"why\"] for r in d)"'
    HOTYOLO_CUDA_DRIVER="$stub" "$cli" detect "$pt" "$img" --device cuda >"$tmp/out" 2>"$tmp/err"
    rc=$?
    check "detect --device cuda with the stub driver: falls back, the warning names CUDA_ERROR_STUB_LIBRARY" \
        '[ $rc -eq 0 ] && err_has "$FALLBACK_WARN" && err_has "CUDA_ERROR_STUB_LIBRARY"'
else
    echo "skip: stub-driver checks (CUDA backend built: $cuda_built; $stub present: $([ -e "$stub" ] && echo yes || echo no))"
fi
run inspect --devices "$pt"
check "inspect --devices FILE: exit 2" '[ $rc -eq 2 ] && err_has "devices takes no FILE"'
run inspect "$pt" --no-fallback
check "inspect FILE --no-fallback without --device: exit 2" '[ $rc -eq 2 ] && err_has "needs --device"'

# ---- misspelt devices: exit 2 before any model is loaded, on every command --------------------
printf 'path: %s\ntrain: images/train\nval: images/train\n' "$coco8" >"$tmp/data.yaml"
sed -n '/^names:/,$p' "$coco8/data.yaml" >>"$tmp/data.yaml"
for dev in gpu cuda:x 0,1 '' cuda:64; do
    for cmd in detect val bench inspect train; do
        case $cmd in
        detect) run detect "$tmp/missing.pt" "$img" --device "$dev" ;;
        val) run val "$tmp/missing.pt" --data "$tmp/data.yaml" --device "$dev" ;;
        bench) run bench "$tmp/missing.pt" --imgsz 64 --runs 1 --device "$dev" ;;
        inspect) run inspect "$tmp/missing.pt" --device "$dev" ;;
        train) run train --model "$tmp/missing.pt" --data "$tmp/data.yaml" --device "$dev" ;;
        esac
        check "$cmd --device '$dev': exit 2 naming --device and the accepted forms" \
            '[ $rc -eq 2 ] && err_has "hotyolo $cmd: error: --device" && err_has "cuda:N" && err_has "auto" && ! err_has "missing\.pt"'
    done
done

# ---- every command's help lists the forms and --no-fallback ----------------------------------
for cmd in detect val bench inspect train; do
    run "$cmd" --help
    check "$cmd --help: --device lists cpu, ref, cuda, cuda:N, N, auto; --no-fallback" \
        '[ $rc -eq 0 ] && out_has "--device" && out_has "cuda:N" && out_has "auto" && out_has "ref" && out_has "^  --no-fallback"'
done

# ---- detect ---------------------------------------------------------------------------------
dets() { "$py" -c 'import json,sys; print(json.dumps([json.loads(l)["detections"] for l in open(sys.argv[1])]))' "$1"; }
run detect "$pt" "$img" --device cpu --json "$tmp/cpu.jsonl"
check "detect --device cpu: exit 0, no warning, model line says device cpu" \
    '[ $rc -eq 0 ] && ! err_has warning && out_has ", device cpu, loaded in"'
dets "$tmp/cpu.jsonl" >"$tmp/cpu.dets"
check "detect --device cpu found something on bus.jpg" '[ "$(cat "$tmp/cpu.dets")" != "[[]]" ] && [ -s "$tmp/cpu.dets" ]'
run detect "$pt" "$img" --device auto --json "$tmp/auto.jsonl"
if [ $cuda_usable = 0 ]; then
    check "detect --device auto: exit 0, no warning (auto choosing cpu is no problem), same detections as cpu" \
        '[ $rc -eq 0 ] && ! err_has warning && [ "$(dets "$tmp/auto.jsonl")" = "$(cat "$tmp/cpu.dets")" ]'
    check "detect --device auto: model line says cpu, auto requested" 'out_has "device cpu \(auto requested: fallback\)"'
    run detect "$pt" "$img" --device cuda --json "$tmp/cuda.jsonl"
    check "detect --device cuda: exit 0, one warning on stderr naming cuda:0 and why" \
        '[ $rc -eq 0 ] && err_has "^hotyolo detect: $FALLBACK_WARN" && [ "$(grep -c warning "$tmp/err")" -eq 1 ]'
    check "detect --device cuda: the same detections as --device cpu" \
        '[ "$(dets "$tmp/cuda.jsonl")" = "$(cat "$tmp/cpu.dets")" ]'
    check "detect --device cuda: model line says device cpu (cuda:0 requested: fallback)" \
        'out_has "device cpu \(cuda:0 requested: fallback\)"'
    run detect "$pt" "$img" --device 0 -q
    check "detect --device 0 -q: exit 0, no warning" '[ $rc -eq 0 ] && ! err_has warning'
    run detect "$pt" "$img" --device cuda --no-fallback
    check "detect --device cuda --no-fallback: exit 1, the error names cuda:0 and no fallback" \
        '[ $rc -eq 1 ] && err_has "hotyolo detect: error: .*cuda:0: .+no fallback" && [ ! -s "$tmp/out" ]'
    run detect "$pt" "$img" --device auto --no-fallback --json "$tmp/auto2.jsonl"
    check "detect --device auto --no-fallback: auto never errors (cpu, exit 0)" \
        '[ $rc -eq 0 ] && [ "$(dets "$tmp/auto2.jsonl")" = "$(cat "$tmp/cpu.dets")" ]'
else
    echo "skip: detect fallback checks (a usable GPU here: $(tr -d '\n ' <"$tmp/devices.json" | head -c 300))"
fi

# ---- val (coco8's 4 train images as the val split, imgsz 320) --------------------------------
table() { grep -vE '^Speed:' "$1"; }
run val "$pt" --data "$tmp/data.yaml" --imgsz 320 --device cpu -q
cp "$tmp/out" "$tmp/val_cpu"
check "val --device cpu: exit 0, the metrics table" '[ $rc -eq 0 ] && out_has "^ +all +4 "'
if [ $cuda_usable = 0 ]; then
    run val "$pt" --data "$tmp/data.yaml" --imgsz 320 --device cuda
    check "val --device cuda: exit 0, the warning, the same table as cpu" \
        '[ $rc -eq 0 ] && err_has "^hotyolo val: $FALLBACK_WARN" && [ "$(table "$tmp/out")" = "$(table "$tmp/val_cpu")" ]'
    run val "$pt" --data "$tmp/data.yaml" --imgsz 320 --device auto -q
    check "val --device auto: exit 0, no warning, the same table as cpu" \
        '[ $rc -eq 0 ] && ! err_has warning && [ "$(table "$tmp/out")" = "$(table "$tmp/val_cpu")" ]'
    run val "$pt" --data "$tmp/data.yaml" --imgsz 320 --device cuda:0 --no-fallback
    check "val --device cuda:0 --no-fallback: exit 1 naming cuda:0 and no fallback" \
        '[ $rc -eq 1 ] && err_has "cuda:0: .+no fallback"'
else
    echo "skip: val fallback checks (a usable GPU here)"
fi

# ---- bench (tiny) ---------------------------------------------------------------------------
bench=(bench "$pt" --imgsz 64 --runs 1 --engines 1 --warmup 1)
run "${bench[@]}" --device cpu --json
check "bench --device cpu --json: device cpu, requested cpu, fallback null" \
    '[ $rc -eq 0 ] && json_ok "d[\"device\"] == \"cpu\" and d[\"device_requested\"] == \"cpu\" and d[\"device_fallback\"] is None"'
if [ $cuda_usable = 0 ]; then
    run "${bench[@]}" --device cuda --json
    check "bench --device cuda --json: device cpu, device_requested cuda:0, device_fallback why; the warning" \
        '[ $rc -eq 0 ] && json_ok "d[\"device\"] == \"cpu\" and d[\"device_requested\"] == \"cuda:0\" and len(d[\"device_fallback\"]) > 0 and d[\"time_to_ready_ms\"] > 0" && err_has "^hotyolo bench: $FALLBACK_WARN"'
    run "${bench[@]}" --device cuda
    check "bench --device cuda (text): device cpu (cuda:0 requested: fallback), a device fallback line, time-to-ready lines" \
        '[ $rc -eq 0 ] && out_has "device cpu \(cuda:0 requested: fallback\)" && out_has "^  device fallback: .+" && out_has "^  load " && out_has "^  prepare "'
    run "${bench[@]}" --device cuda -q
    check "bench --device cuda -q: no warning on stderr" '[ $rc -eq 0 ] && ! err_has warning'
    run "${bench[@]}" --device cuda --no-fallback
    check "bench --device cuda --no-fallback: exit 1 naming cuda:0 and no fallback" \
        '[ $rc -eq 1 ] && err_has "cuda:0: .+no fallback"'
    if command -v ffmpeg >/dev/null 2>&1 &&
        ffmpeg -nostdin -hide_banner -v error -f lavfi -i testsrc=size=96x64:rate=10 -frames:v 3 -c:v mpeg4 \
            -y "$tmp/v.mp4" 2>/dev/null; then
        run bench "$pt" --imgsz 64 --video "$tmp/v.mp4" --device cuda --json
        check "bench --video --device cuda --json: device cpu, device_requested cuda:0, device_fallback why" \
            '[ $rc -eq 0 ] && json_ok "d[\"device\"] == \"cpu\" and d[\"device_requested\"] == \"cuda:0\" and len(d[\"device_fallback\"]) > 0" && err_has "^hotyolo bench: $FALLBACK_WARN"'
        run bench "$pt" --imgsz 64 --video "$tmp/v.mp4" --device cuda
        check "bench --video --device cuda (text): the device and fallback lines" \
            '[ $rc -eq 0 ] && out_has "device cpu \(cuda:0 requested: fallback\)" && out_has "^  device fallback: .+"'
        run bench "$pt" --imgsz 64 --video "$tmp/v.mp4" --device cuda --no-fallback
        check "bench --video --device cuda --no-fallback: exit 1" '[ $rc -eq 1 ] && err_has "cuda:0: .+no fallback"'
    else
        echo "skip: bench --video checks (no ffmpeg CLI to make a test video)"
    fi
else
    echo "skip: bench fallback checks (a usable GPU here)"
fi

# ---- inspect FILE --device ------------------------------------------------------------------
run inspect "$pt" --json
check "inspect FILE --json without --device: no device keys (the model is not loaded)" \
    '[ $rc -eq 0 ] && json_ok "\"device\" not in d and d[\"valid\"] is True"'
run inspect "$pt" --device cpu
check "inspect FILE --device cpu: device cpu, requested cpu, fallback none" \
    '[ $rc -eq 0 ] && out_has "^device: +cpu$" && out_has "^device requested: cpu$" && out_has "^device fallback: none$"'
if [ $cuda_usable = 0 ]; then
    run inspect "$pt" --device auto --json
    check "inspect FILE --device auto --json: device cpu, device_requested auto, a non-empty device_fallback; no warning" \
        '[ $rc -eq 0 ] && json_ok "d[\"device\"] == \"cpu\" and d[\"device_requested\"] == \"auto\" and len(d[\"device_fallback\"]) > 0 and d[\"valid\"] is True" && ! err_has warning'
    run inspect "$pt" --device cuda
    check "inspect FILE --device cuda: device, device requested, device fallback lines; the warning" \
        '[ $rc -eq 0 ] && out_has "^device: +cpu$" && out_has "^device requested: cuda:0$" && out_has "^device fallback: .+" && err_has "^hotyolo inspect: $FALLBACK_WARN"'
    run inspect "$pt" --device cuda --no-fallback --json
    check "inspect FILE --device cuda --no-fallback: exit 1 naming cuda:0 and no fallback, nothing on stdout" \
        '[ $rc -eq 1 ] && err_has "cuda:0: .+no fallback" && [ ! -s "$tmp/out" ]'
else
    echo "skip: inspect fallback checks (a usable GPU here)"
fi

# ---- train (1 epoch, imgsz 64, 4 images) ----------------------------------------------------
train=(train --model "$pt" --data "$tmp/data.yaml" --project "$tmp/runs" --epochs 1 --imgsz 64 --batch 4 --no-val)
if [ $cuda_usable = 0 ]; then
    run "${train[@]}" --name c --device cuda
    check "train --device cuda: exit 0, the warning before the run, weights saved" \
        '[ $rc -eq 0 ] && err_has "^hotyolo train: $FALLBACK_WARN" && [ -s "$tmp/runs/c/weights/last.safetensors" ]'
    run "${train[@]}" --name a --device auto
    check "train --device auto: exit 0, no warning" '[ $rc -eq 0 ] && ! err_has warning'
    run "${train[@]}" --name n --device cuda --no-fallback
    check "train --device cuda --no-fallback: exit 1 naming cuda:0 and no fallback" \
        '[ $rc -eq 1 ] && err_has "cuda:0: .+no fallback"'
else
    echo "skip: train fallback checks (a usable GPU here)"
fi
run train --resume "$tmp/runs/none" --no-fallback --device cpu
check "train --resume takes --no-fallback (exit 1: the error is about the missing run, not the option)" \
    '[ $rc -eq 1 ] && err_has "no training state"'

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
