#!/usr/bin/env bash
# hotyolo export: usage errors (exit 2), refusal to overwrite, the .pt pickle's globals all in
# torch 1.13's weights_only allow-list (stdlib pickletools; torch.load itself when torch is
# installed), a training checkpoint's record carried over, and detect on the exported ONNX
# giving the same JSON as on the .pt. Usage: test_export.sh CLI ASSETS SRCDIR
set -u
cli="$1"; assets="$2"
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
fail=0
check() { if "$@"; then :; else echo "FAIL: $*"; fail=1; fi; }
expect_rc() { local want="$1"; shift; "$@" >"$tmp/out" 2>"$tmp/err"; local rc=$?
    if [ "$rc" != "$want" ]; then echo "FAIL (rc $rc, want $want): $*"; cat "$tmp/err"; fail=1; fi; }
w="$assets/weights/yolov8n.pt"
[ -f "$w" ] || { echo "skip: no $w"; exit 77; }

expect_rc 2 "$cli" export
expect_rc 2 "$cli" export "$w"
expect_rc 2 "$cli" export "$w" --format tflite -o "$tmp/x"
check grep -q "unknown format 'tflite'" "$tmp/err"
expect_rc 2 "$cli" export "$w" --format onnx --imgsz 100 -o "$tmp/x.onnx"
expect_rc 2 "$cli" export "$w" --format onnx --half -o "$tmp/x.onnx"
expect_rc 2 "$cli" export "$w" --format pt -o "$w"          # OUT is the input
expect_rc 1 "$cli" export "$tmp/missing.pt" --format pt -o "$tmp/m.pt"

# pt: written, then refused unless --force (the file kept byte for byte)
expect_rc 0 "$cli" export "$w" --format pt --half -o "$tmp/n.pt"
sum="$(sha256sum <"$tmp/n.pt")"
expect_rc 1 "$cli" export "$w" --format pt -o "$tmp/n.pt"
check grep -q "already exists" "$tmp/err"
check [ "$(sha256sum <"$tmp/n.pt")" = "$sum" ]
expect_rc 0 "$cli" export "$w" --format pt --half -o "$tmp/n.pt" --force
check [ -z "$(ls "$tmp" | grep tmp-)" ]                       # no temporary left behind

# every GLOBAL of data.pkl in torch 1.13's weights_only allow-list
globals_ok() {
/usr/bin/python3 - "$1" <<'PY'
import sys, zipfile, pickletools
allowed = {"collections OrderedDict", "torch._utils _rebuild_tensor_v2", "torch._utils _rebuild_parameter",
           "torch.nn.parameter Parameter", "torch Size", "torch Tensor"} | {
           "torch " + s for s in ("FloatStorage", "HalfStorage", "BFloat16Storage", "DoubleStorage", "LongStorage",
                                  "IntStorage", "ShortStorage", "CharStorage", "ByteStorage", "BoolStorage")}
z = zipfile.ZipFile(sys.argv[1])
names = z.namelist()
assert names[0] == "archive/data.pkl" and names[-1] == "archive/version", names[:2]
seen = set()
for op, arg, pos in pickletools.genops(z.read("archive/data.pkl")):
    if op.name in ("GLOBAL", "STACK_GLOBAL", "INST", "OBJ", "NEWOBJ", "NEWOBJ_EX", "EXT1", "EXT2", "EXT4"):
        assert op.name == "GLOBAL", op.name
        seen.add(arg)
bad = seen - allowed
print("  globals:", ", ".join(sorted(seen)))
sys.exit(1 if bad else 0)
PY
}
check globals_ok "$tmp/n.pt"
if /usr/bin/python3 -c 'import torch' 2>/dev/null; then
    check /usr/bin/python3 -c "
import torch, sys
c = torch.load(sys.argv[1], weights_only=True)
sd = c['state_dict']
assert len(sd) == 355 and sd['model.0.conv.weight'].dtype == torch.float16, len(sd)
assert c['yaml']['nc'] == 80 and c['yaml']['yaml_file'] == 'yolov8n.yaml' and c['names'][5] == 'bus'
" "$tmp/n.pt"
else
    echo "skip: torch is not installed (torch.load(weights_only=True) not run; globals checked with pickletools)"
fi

# onnx: hotyolo loads it back and detects as from the .pt (timings aside)
expect_rc 0 "$cli" export "$w" --format onnx -o "$tmp/n.onnx"
"$cli" detect "$w" "$assets/images/bus.jpg" --json "$tmp/a.jsonl" >/dev/null
"$cli" detect "$tmp/n.onnx" "$assets/images/bus.jpg" --json "$tmp/b.jsonl" >/dev/null
check /usr/bin/python3 -c "
import json, sys
a, b = (json.loads(open(f).readline()) for f in sys.argv[1:])
for x in (a, b): x.pop('timings_ms', None)
assert a == b and len(a['detections']) >= 4, (a, b)
" "$tmp/a.jsonl" "$tmp/b.jsonl"

# a training checkpoint: its record becomes train_args / train_metrics / train_results
if [ -d "$assets/datasets/coco8" ]; then
    sed -e "s#^train:.*#train: $assets/datasets/coco8/images/train#" \
        -e "s#^val:.*#val: $assets/datasets/coco8/images/val#" "$assets/datasets/coco8/data.yaml" >"$tmp/data.yaml"
    check "$cli" train --model "$w" --data "$tmp/data.yaml" --epochs 1 --imgsz 64 --batch 4 --no-val \
        --project "$tmp/runs" --name r -q
    ck="$tmp/runs/r/weights/best.safetensors"
    if [ -f "$ck" ]; then
        expect_rc 0 "$cli" export "$ck" --format pt -o "$tmp/best.pt"
        check globals_ok "$tmp/best.pt"
        check /usr/bin/python3 - "$tmp/best.pt" <<'PY'
import sys, zipfile, pickle, collections, io
class U(pickle.Unpickler):
    def find_class(self, m, n):
        if (m, n) == ("collections", "OrderedDict"): return collections.OrderedDict
        if (m, n) == ("torch._utils", "_rebuild_tensor_v2"): return lambda *a: a[2]
        if m == "torch": return n
        raise pickle.UnpicklingError(m + "." + n)
    def persistent_load(self, pid): return pid
c = U(io.BytesIO(zipfile.ZipFile(sys.argv[1]).read("archive/data.pkl"))).load()
assert c["train_args"]["epochs"] == 1 and c["epoch"] == 1, c.get("train_args")
assert isinstance(c["train_results"], list) and len(c["train_results"]) == 1
assert "model.0.bn.running_mean" in c["state_dict"] and not c["fused"]
PY
        if /usr/bin/python3 -c 'import torch' 2>/dev/null; then
            check /usr/bin/python3 -c "
import torch, sys
c = torch.load(sys.argv[1], weights_only=True)
assert c['train_args']['epochs'] == 1 and c['state_dict']['model.0.bn.running_var'].dtype == torch.float32
" "$tmp/best.pt"
        fi
        expect_rc 0 "$cli" export "$ck" --format onnx -o "$tmp/best.onnx"
        expect_rc 0 "$cli" inspect "$tmp/best.onnx"
    fi
fi
[ "$fail" = 0 ] && echo "ok: export"
exit "$fail"
