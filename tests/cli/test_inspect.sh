#!/usr/bin/env bash
# hotyolo inspect: summary of .pt / .onnx / not-YOLOv8 / non-weights files, --tensors, --json,
# usage errors. Usage: bash test_inspect.sh CLI_PATH ASSETS_DIR SOURCE_DIR
# Expected values come from shared/assets (MANIFEST.md, reference/): yolov8n.pt sha256 fc8af32c…,
# Ultralytics' YOLOv8n parameter count 3,157,200 (reference/yolov8_layers.txt) and 3,151,904
# fused (the .onnx export), tensor names/shapes from reference/yolov8n_state_dict_keys.tsv.
set -u
cli="$1"
assets="$2"
[ -d "$assets" ] || { echo "skip: shared assets not found at $assets"; exit 77; }
pt="$assets/weights/yolov8n.pt"
onnx="$assets/weights/yolov8n.onnx"
v5="$assets/weights/yolov5n.pt"
keys="$assets/reference/yolov8n_state_dict_keys.tsv"
pt_sha="fc8af32ca9a389f3864c7d06d868d51a501a17738d54674cf26c3538c5a578c5"

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

# ---- help and usage errors --------------------------------------------------------------
run inspect --help
check "inspect --help documents FILE, --tensors, --json" \
    '[ $rc -eq 0 ] && out_has "Usage: hotyolo inspect FILE" && out_has "^  --tensors " && out_has "^  --json "'
run --help
check "hotyolo --help lists inspect" '[ $rc -eq 0 ] && out_has "^  inspect "'
run inspect
check "no FILE: exit 2" '[ $rc -eq 2 ] && err_has "missing FILE"'
run inspect "$pt" --bogus
check "unknown option: exit 2, named" '[ $rc -eq 2 ] && err_has "unknown option .--bogus."'
run inspect "$pt" "$onnx"
check "two files: exit 2" '[ $rc -eq 2 ] && err_has "unexpected argument"'
run inspect "$pt" --json=1
check "--json=1: exit 2" '[ $rc -eq 2 ] && err_has "--json takes no value"'

# ---- yolov8n.pt ---------------------------------------------------------------------------
run inspect "$pt"
check "yolov8n.pt: exit 0" '[ $rc -eq 0 ]'
check "yolov8n.pt: format pt" 'out_has "^format: +pt$"'
check "yolov8n.pt: sha256 as in MANIFEST.md" 'out_has "^sha256: +$pt_sha$"'
check "yolov8n.pt: architecture yolov8, variant n, task detect" \
    'out_has "^architecture: +yolov8$" && out_has "^variant: +n$" && out_has "^task: +detect$"'
check "yolov8n.pt: nc 80 and the first COCO names" \
    'out_has "^nc: +80$" && out_has "^names: +person, bicycle, car, .*\.\.\. \(80\)$"'
check "yolov8n.pt: imgsz 640" 'out_has "^imgsz: +640$"'
check "yolov8n.pt: parameters 3,157,200 (Ultralytics YOLOv8n summary)" \
    'grep -q "YOLOv8n summary: .* 3157200 parameters" "$assets/reference/yolov8_layers.txt" &&
     out_has "^parameters: +3,157,200$"'
check "yolov8n.pt: 355 tensors, float16 and int64, unfused, valid" \
    'out_has "^tensors: +355 " && out_has "^dtypes: .*float16 \(298\)" && out_has "^dtypes: .*int64 \(57\)" &&
     out_has "^fused: +no$" && out_has "^valid: +yes$"'
check "yolov8n.pt: metadata date, version 8.0.172, train_args as one-line JSON" \
    'out_has "^metadata:$" && out_has "^  date: [0-9]{4}-[0-9]{2}-[0-9]{2}T" && out_has "^  version: 8\.0\.172$" &&
     out_has "^  train_args: \{\"task\":\"detect\",.*\}$" && out_has "^  epoch: -1$"'
check "yolov8n.pt: no tensor table without --tensors" '! out_has "^tensors \("'

# --tensors: every state_dict name and shape of the reference, dtype float16/int64
run inspect "$pt" --tensors
check "--tensors: exit 0, table header" '[ $rc -eq 0 ] && out_has "^tensors \(355\):$" && out_has "^  name +shape +dtype$"'
sed -n '/^tensors (/,$p' "$tmp/out" | tail -n +3 | awk '{ print $1 "\t" $2 }' | sort >"$tmp/got.tsv"
tail -n +2 "$keys" | cut -f1,2 | sort >"$tmp/want.tsv"
check "--tensors: names and shapes equal reference/yolov8n_state_dict_keys.tsv" \
    '[ "$(wc -l <"$tmp/want.tsv")" -eq 355 ] && cmp -s "$tmp/got.tsv" "$tmp/want.tsv"'
check "--tensors: model.0.conv.weight 16x3x3x3 float16; num_batches_tracked scalar int64" \
    'out_has "^  model\.0\.conv\.weight +16x3x3x3 +float16$" && out_has "^  model\.0\.bn\.num_batches_tracked +scalar +int64$"'

# ---- yolov8n.onnx --json -------------------------------------------------------------------
run inspect "$onnx" --json
check "onnx --json: exit 0, a JSON object" '[ $rc -eq 0 ] && [ "$(head -c 1 "$tmp/out")" = "{" ] && [ "$(tail -n 1 "$tmp/out")" = "}" ]'
check "onnx --json: format onnx" 'out_has "\"format\": \"onnx\""'
check "onnx --json: parameters 3151904 (Ultralytics fused YOLOv8n)" 'out_has "\"parameters\": 3151904"'
check "onnx --json: fused, 80 classes, opset 12 metadata" \
    'out_has "\"fused\": true" && out_has "\"nc\": 80" && out_has "\"opset\": 12"'
check "onnx --json: no tensors array without --tensors" '! out_has "\"tensors\":"'
run inspect "$onnx" --json --tensors
check "onnx --json --tensors: tensors array with model.0.conv.weight" \
    '[ $rc -eq 0 ] && out_has "\"tensors\": \[" && out_has "\"name\": \"model\.0\.conv\.weight\""'
run inspect "$onnx"
check "onnx summary: format onnx, parameters 3,151,904, fused yes" \
    '[ $rc -eq 0 ] && out_has "^format: +onnx$" && out_has "^parameters: +3,151,904$" && out_has "^fused: +yes$"'

# ---- YOLOv5: yolov5n.pt, its own family ------------------------------------------------------
run inspect "$v5"
check "yolov5n.pt: exit 0, architecture yolov5, valid, YOLOv5's parameter count" \
    '[ $rc -eq 0 ] && out_has "^architecture: +yolov5$" && out_has "^valid: +yes$" && out_has "^parameters: +1,872,157$"'
check "yolov5n.pt: metadata date 2022-02-08" 'out_has "^  date: 2022-02-08T"'

# ---- another family that says it is YOLOv8: the problems listed --------------------------------
"$cli" convert "$v5" "$tmp/v5.safetensors" >/dev/null 2>&1
/usr/bin/python3 - "$tmp/v5.safetensors" <<'PY'
import struct, sys
b = bytearray(open(sys.argv[1], "rb").read())
n = struct.unpack("<Q", b[:8])[0]
i = b.index(b'"hotyolo.arch":"yolov5"', 8, 8 + n)
b[i + len('"hotyolo.arch":"yolov')] = ord("8")
open(sys.argv[1], "wb").write(b)
PY
run inspect "$tmp/v5.safetensors"
check "mislabelled YOLOv5: exit 0, valid no with the problems" \
    '[ $rc -eq 0 ] && out_has "^valid: +no$" && out_has "^  .*v5\.safetensors: does not match YOLOv8" && out_has "wrong shape"'
check "mislabelled YOLOv5: problems listing cut short" 'out_has "^  \.\.\. \([0-9]+ more lines; see --json\)$"'

# ---- not weights ----------------------------------------------------------------------------
echo "just some text, not weights" >"$tmp/notes.txt"
run inspect "$tmp/notes.txt"
check "text file: exit 1, file named" '[ $rc -eq 1 ] && err_has "notes\.txt" && [ ! -s "$tmp/out" ]'
run inspect "$tmp/missing.pt"
check "missing file: exit 1, file named" '[ $rc -eq 1 ] && err_has "missing\.pt"'
: >"$tmp/empty.safetensors"
run inspect "$tmp/empty.safetensors"
check "empty file: exit 1, file named" '[ $rc -eq 1 ] && err_has "empty\.safetensors"'
head -c 100000 "$pt" >"$tmp/trunc.pt"
run inspect "$tmp/trunc.pt"
check "truncated .pt: exit 1, file named" '[ $rc -eq 1 ] && err_has "trunc\.pt"'
# a control character in a name is escaped, not sent to the terminal
ln -s "$pt" "$tmp/$(printf 'a\033b').pt"
run inspect "$tmp/$(printf 'a\033b').pt"
check "control characters escaped in the output" '[ $rc -eq 0 ] && out_has "a\\\\x1bb\.pt" && ! grep -q "$(printf "\033")" "$tmp/out"'

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
