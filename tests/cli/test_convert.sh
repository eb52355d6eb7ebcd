#!/usr/bin/env bash
# hotyolo convert / verify and detect's --transfer, --nc, --map, --verify.
# Usage: bash test_convert.sh CLI_PATH ASSETS_DIR SOURCE_DIR
# Expected values come from shared/assets: yolov8n.pt's sha256 (MANIFEST.md), tensor names and
# shapes of YOLOv8n with 80 and 3 classes (reference/yolov8n{,_nc3}_state_dict_keys.tsv),
# Ultralytics' YOLOv8n parameter counts (3,157,200; fused 3,151,904), and the detections of
# the .pt itself (a converted file must give the same).
set -u
cli="$1"
assets="$2"
[ -d "$assets" ] || { echo "skip: shared assets not found at $assets"; exit 77; }
pt="$assets/weights/yolov8n.pt"
onnx="$assets/weights/yolov8n.onnx"
v5="$assets/weights/yolov5n.pt"
bus="$assets/images/bus.jpg"
keys80="$assets/reference/yolov8n_state_dict_keys.tsv"
keys3="$assets/reference/yolov8n_nc3_state_dict_keys.tsv"
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
# detection rows of a detect run ("  class conf  [x1, y1, x2, y2]")
rows() { grep -E '^  [a-z]' "${1:-$tmp/out}"; }
# same classes in the same order, confidence within 0.002, boxes within 0.5 px
rows_close() {
    paste -d'|' <(rows "$1" | tr -d '[],') <(rows "$2" | tr -d '[],') | awk -F'|' '
        { n++; split($1, a, " +"); split($2, b, " +"); if (a[2] != b[2]) bad = 1
          for (i = 3; i <= 7; i++) { d = a[i] - b[i]; if (d < 0) d = -d; if (d > (i == 3 ? 0.002 : 0.5)) bad = 1 } }
        END { exit (bad || n == 0) }' &&
        [ "$(rows "$1" | wc -l)" -eq "$(rows "$2" | wc -l)" ]
}
# "name<TAB>shape" of an inspect --tensors table, sorted
tensor_table() { sed -n '/^tensors (/,$p' "$tmp/out" | tail -n +3 | awk '{ print $1 "\t" $2 }' | sort; }
ref_table() { tail -n +2 "$1" | cut -f1,2 | sort; }
# Only the files named remain in $tmp/w (no temporary files left by a write).
only_files() { [ "$(cd "$tmp/w" && ls -A | sort | xargs)" = "$*" ]; }
mkdir "$tmp/w"

# ---- reference: detections of the .pt itself -------------------------------------------
run detect "$pt" "$bus"
cp "$tmp/out" "$tmp/pt_detect"
check "detect .pt: exit 0, model line names the format, bus found" \
    '[ $rc -eq 0 ] && out_has "^model .*yolov8n\.pt \(pt\): YOLOv8n, 80 classes" && rows | grep -q "^  bus "'
check "detect strict: no transfer report" '! err_has "transferred"'

# ---- help and usage errors (exit 2) ----------------------------------------------------
run convert --help
check "convert --help documents every option" \
    '[ $rc -eq 0 ] && out_has "Usage: hotyolo convert IN OUT" && out_has "^  --dtype T .*f32 or f16" &&
     out_has "^  --fuse " && out_has "^  --transfer " && out_has "^  --nc N " && out_has "^  --map OLD=NEW " &&
     out_has "^  --force "'
run verify --help
check "verify --help" '[ $rc -eq 0 ] && out_has "Usage: hotyolo verify FILE"'
run detect --help
check "detect --help documents --transfer, --nc, --map, --verify" \
    '[ $rc -eq 0 ] && out_has "^  --transfer " && out_has "^  --nc N " && out_has "^  --map OLD=NEW " && out_has "^  --verify "'
run --help
check "hotyolo --help lists convert and verify" 'out_has "^  convert " && out_has "^  verify "'
run convert "$pt" "$tmp/w/x.bin"
check "OUT without .safetensors: exit 2, nothing written" '[ $rc -eq 2 ] && err_has "\.safetensors" && only_files'
run convert "$pt" "$tmp/w/.safetensors"
check "OUT named only '.safetensors': exit 2" '[ $rc -eq 2 ]'
run convert "$pt"
check "missing OUT: exit 2" '[ $rc -eq 2 ] && err_has "missing OUT"'
run convert "$pt" "$tmp/w/a.safetensors" --dtype f8
check "--dtype f8: exit 2, named" '[ $rc -eq 2 ] && err_has "--dtype: .f8. is not f32 or f16"'
run convert "$pt" "$tmp/w/a.safetensors" --nc 0
check "--nc 0: exit 2, named" '[ $rc -eq 2 ] && err_has "--nc"'
run convert "$pt" "$tmp/w/a.safetensors" --map =model.
check "--map with empty OLD: exit 2, named" '[ $rc -eq 2 ] && err_has "--map"'
run detect "$pt" "$bus" --map model.
check "detect --map without '=': exit 2, named" '[ $rc -eq 2 ] && err_has "--map"'
run detect "$pt" "$bus" --nc x
check "detect --nc x: exit 2, named" '[ $rc -eq 2 ] && err_has "--nc"'
check "usage errors wrote nothing" 'only_files'

# ---- convert .pt -> safetensors (f16, unfused) -------------------------------------------
a="$tmp/w/a.safetensors"
run convert "$pt" "$a" --dtype f16
check "convert pt f16: exit 0" '[ $rc -eq 0 ] && [ -s "$a" ]'
check "convert pt f16: the line says what was written" \
    'out_has "^converted .*yolov8n\.pt \(pt\) -> .*a\.safetensors: safetensors, unfused, f16(\+i64)?, 355 tensors, [0-9.]+ MB, data sha256 [0-9a-f]{64}$"'
data_sha="$(sed -n 's/.*data sha256 \([0-9a-f]*\)$/\1/p' "$tmp/out")"
check "convert: no temporary file left" 'only_files a.safetensors'
run inspect "$a"
check "inspect converted: format safetensors, yolov8 n, nc 80, unfused, valid" \
    '[ $rc -eq 0 ] && out_has "^format: +safetensors$" && out_has "^variant: +n$" && out_has "^nc: +80$" &&
     out_has "^fused: +no$" && out_has "^valid: +yes$"'
check "inspect converted: parameters 3,157,200, float16" \
    'out_has "^parameters: +3,157,200$" && out_has "^dtypes: .*float16"'
check "inspect converted: hotyolo.* metadata (arch, variant, nc, names, source and data sha256)" \
    'out_has "^  hotyolo\.arch: yolov8$" && out_has "^  hotyolo\.variant: n$" && out_has "^  hotyolo\.nc: 80$" &&
     out_has "^  hotyolo\.names: \[\"person\",\"bicycle\"" && out_has "^  hotyolo\.source_sha256: $pt_sha$" &&
     out_has "^  hotyolo\.data_sha256: $data_sha$"'
run inspect "$a" --tensors
check "converted tensors: names and shapes equal reference/yolov8n_state_dict_keys.tsv" \
    '[ $rc -eq 0 ] && cmp -s <(tensor_table) <(ref_table "$keys80")'
run detect "$a" "$bus"
cp "$tmp/out" "$tmp/a_detect"
check "detect converted: model line says safetensors" '[ $rc -eq 0 ] && out_has "^model .*a\.safetensors \(safetensors\): YOLOv8n, 80 classes"'
check "detect converted: the same table as the .pt" \
    '[ "$(rows "$tmp/pt_detect" | wc -l)" -ge 4 ] && [ "$(rows "$tmp/a_detect")" = "$(rows "$tmp/pt_detect")" ]'
run verify "$a"
check "verify converted: exit 0, OK with the data sha256 of the convert line" \
    '[ $rc -eq 0 ] && [ "$(cat "$tmp/out")" = "$a: OK (data sha256 $data_sha)" ]'
run detect "$a" "$bus" --verify
check "detect --verify on an intact file: exit 0, same table" \
    '[ $rc -eq 0 ] && [ "$(rows)" = "$(rows "$tmp/pt_detect")" ]'

# ---- existing OUT: refused without --force, byte-identical; --force replaces ------------------
cp "$a" "$tmp/a.orig"
run convert "$pt" "$a" --fuse
check "existing OUT without --force: exit 1, says so" '[ $rc -eq 1 ] && err_has "exists" && err_has "--force"'
check "existing OUT left byte-identical" 'cmp -s "$a" "$tmp/a.orig"'
run convert "$a" "$a" --force
check "OUT == IN: refused even with --force (exit 2), file untouched" \
    '[ $rc -eq 2 ] && err_has "input file" && cmp -s "$a" "$tmp/a.orig"'
ln -s "$a" "$tmp/w/link.safetensors"
run convert "$a" "$tmp/w/link.safetensors" --force
check "OUT a symlink to IN: refused, file untouched" '[ $rc -eq 2 ] && cmp -s "$a" "$tmp/a.orig"'
rm -f "$tmp/w/link.safetensors"
run convert "$pt" "$a" --fuse --force
check "--force replaces OUT with a fused file" \
    '[ $rc -eq 0 ] && out_has ": safetensors, fused, " && ! cmp -s "$a" "$tmp/a.orig" && only_files a.safetensors'

# ---- --fuse -------------------------------------------------------------------------------
run inspect "$a"
check "fused file: fused yes, valid" '[ $rc -eq 0 ] && out_has "^fused: +yes$" && out_has "^valid: +yes$"'
check "fused file: parameters 3,151,904 (Ultralytics' fused YOLOv8n count)" 'out_has "^parameters: +3,151,904$"'
run verify "$a"
check "verify fused: OK" '[ $rc -eq 0 ] && out_has ": OK \(data sha256 [0-9a-f]{64}\)$"'
run detect "$a" "$bus"
check "detect fused: same detections as the .pt (conf +-0.002, box +-0.5 px)" \
    '[ $rc -eq 0 ] && rows_close "$tmp/out" "$tmp/pt_detect"'

# ---- onnx -> safetensors ------------------------------------------------------------------
o="$tmp/w/o.safetensors"
run convert "$onnx" "$o"
check "convert onnx: exit 0, fused" \
    '[ $rc -eq 0 ] && out_has "^converted .*yolov8n\.onnx \(onnx\) -> .*o\.safetensors: safetensors, fused, "'
run detect "$o" "$bus"
check "detect onnx-converted: same detections as the .pt" '[ $rc -eq 0 ] && rows_close "$tmp/out" "$tmp/pt_detect"'
run verify "$o"
check "verify onnx-converted: OK" '[ $rc -eq 0 ] && out_has ": OK "'

# ---- convert failures ----------------------------------------------------------------------
# another family that says it is YOLOv8 (yolov5n.pt converted, its hotyolo.arch patched)
"$cli" convert "$v5" "$tmp/v5.safetensors" >/dev/null 2>&1
/usr/bin/python3 - "$tmp/v5.safetensors" <<'PY'
import struct, sys
b = bytearray(open(sys.argv[1], "rb").read())
n = struct.unpack("<Q", b[:8])[0]
i = b.index(b'"hotyolo.arch":"yolov5"', 8, 8 + n)
b[i + len('"hotyolo.arch":"yolov')] = ord("8")
open(sys.argv[1], "wb").write(b)
PY
run convert "$tmp/v5.safetensors" "$tmp/w/v5.safetensors"
check "convert a mislabelled file: exit 1, named, nothing written" \
    '[ $rc -eq 1 ] && err_has "v5\.safetensors: does not match YOLOv8" && [ ! -e "$tmp/w/v5.safetensors" ] && only_files a.safetensors o.safetensors'
run convert "$tmp/missing.pt" "$tmp/w/m.safetensors"
check "convert a missing IN: exit 1, named" '[ $rc -eq 1 ] && err_has "missing\.pt"'

# ---- verify failures -----------------------------------------------------------------------
c="$tmp/c.safetensors"
cp "$a" "$c"
size=$(stat -c %s "$c")
orig=$(od -An -tu1 -j $((size - 100)) -N1 "$c" | tr -d ' ')
printf "\\$(printf '%03o' $(((orig + 1) % 256)))" | dd of="$c" bs=1 seek=$((size - 100)) conv=notrunc 2>/dev/null
run verify "$c"
check "verify one flipped data byte: exit 1, mismatch" \
    '! cmp -s "$c" "$a" && [ $rc -eq 1 ] && err_has "mismatch" && [ ! -s "$tmp/out" ]'
run detect "$c" "$bus" --verify
check "detect --verify on the modified file: exit 1, mismatch" '[ $rc -eq 1 ] && err_has "mismatch"'
head -c $((size / 2)) "$a" >"$tmp/t.safetensors"
run verify "$tmp/t.safetensors"
check "verify a truncated copy: exit 1 (no crash), named" '[ $rc -eq 1 ] && err_has "t\.safetensors"'
run verify "$pt"
check "verify a .pt: exit 1, not a safetensors file" '[ $rc -eq 1 ] && err_has "not a \.safetensors file"'
# a valid safetensors file without hotyolo.data_sha256: 8-byte length + header + 4 bytes
hdr='{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}'
{ printf "\\$(printf '%03o' ${#hdr})\\0\\0\\0\\0\\0\\0\\0"; printf '%s' "$hdr"; printf '\0\0\200\77'; } >"$tmp/nohash.safetensors"
run verify "$tmp/nohash.safetensors"
check "verify a file without a recorded hash: exit 1, says so" '[ $rc -eq 1 ] && err_has "no data sha256|records no"'
run verify "$tmp/none.safetensors"
check "verify a missing file: exit 1, named" '[ $rc -eq 1 ] && err_has "none\.safetensors"'
run verify
check "verify without FILE: exit 2" '[ $rc -eq 2 ]'

# ---- detect --transfer --nc 3 --------------------------------------------------------------
# Expected from the references: tensors whose shape differs between 80 and 3 classes are
# initialised, the rest transferred.
diff <(cut -f1,2 "$keys80") <(cut -f1,2 "$keys3") | sed -n 's/^> \([^\t]*\)\t.*/\1/p' | sort >"$tmp/init.want"
n_all=$(($(wc -l <"$keys3") - 1))
n_init=$(wc -l <"$tmp/init.want")
run detect "$pt" "$bus" --transfer --nc 3
check "transfer nc 3: exit 0, model has 3 classes" '[ $rc -eq 0 ] && out_has "^model .*: YOLOv8n, 3 classes"'
check "transfer nc 3: 'transferred $((n_all - n_init))/$n_all' on stderr (319/355)" \
    '[ $((n_all - n_init)) -eq 319 ] && [ $n_all -eq 355 ] && err_has "^transferred 319/355 tensors" && ! out_has "transferred"'
grep -E '^  initialised ' "$tmp/err" | awk '{ sub(":", "", $2); print $2 }' | sort >"$tmp/init.got"
check "transfer nc 3: initialised = the model.22.cv3 tensors whose shape changes" \
    'cmp -s "$tmp/init.got" "$tmp/init.want" && grep -q "^model\.22\.cv3\.0\.2\.weight$" "$tmp/init.got"'
# each reason names the file's shape and the model's, as in the two references
sed -n 's/^  initialised \([^:]*\): file has \([^,]*\), model needs \(.*\)$/\1\t\2\t\3/p' "$tmp/err" | sort >"$tmp/why.got"
join -t "$(printf '\t')" <(tail -n +2 "$keys80" | cut -f1,2 | sort) <(tail -n +2 "$keys3" | cut -f1,2 | sort) |
    awk -F'\t' '$2 != $3' >"$tmp/why.want"
check "transfer nc 3: each reason gives the file's and the model's shape (e.g. 80x80x1x1 vs 3x64x1x1)" \
    '[ -s "$tmp/why.want" ] && cmp -s "$tmp/why.got" "$tmp/why.want" &&
     grep -q "^model\.22\.cv3\.0\.2\.weight	80x80x1x1	3x64x1x1$" "$tmp/why.got"'
check "transfer nc 3: the file's 80-class head tensors listed as ignored" \
    'err_has "^  ignored +model\.22\.cv3\.0\.2\.weight"'
run detect "$pt" "$bus" --transfer --nc 3 --quiet
check "transfer --quiet: no report" '[ $rc -eq 0 ] && [ ! -s "$tmp/err" ] && [ ! -s "$tmp/out" ]'
run detect "$pt" "$bus" --nc 3
check "--nc 3 without --transfer: exit 1, wrong shape" '[ $rc -eq 1 ] && err_has "wrong shape"'
run detect "$pt" "$bus" --transfer
check "--transfer on a matching file: all 355 transferred, same table" \
    '[ $rc -eq 0 ] && err_has "^transferred 355/355 tensors" && [ "$(rows)" = "$(rows "$tmp/pt_detect")" ]'

# ---- --map -----------------------------------------------------------------------------------
run detect "$pt" "$bus" --map bogus.prefix.=model.
check "--map with a prefix nothing has: works as without" \
    '[ $rc -eq 0 ] && [ "$(rows)" = "$(rows "$tmp/pt_detect")" ]'
run detect "$pt" "$bus" --map model.=net. --map x=y
check "--map renaming every tensor away: strict load fails (exit 1)" '[ $rc -eq 1 ] && err_has "missing"'

# ---- convert --transfer --nc 3 -----------------------------------------------------------------
run convert "$pt" "$tmp/w/n3.safetensors" --transfer --nc 3
check "convert --transfer --nc 3: exit 0" '[ $rc -eq 0 ] && out_has ", 355 tensors, "'
run inspect "$tmp/w/n3.safetensors" --tensors
check "nc 3 file: nc 3, names and shapes equal reference/yolov8n_nc3_state_dict_keys.tsv" \
    '[ $rc -eq 0 ] && out_has "^nc: +3$" && cmp -s <(tensor_table) <(ref_table "$keys3")'
run detect "$tmp/w/n3.safetensors" "$bus"
check "nc 3 file loads strictly" '[ $rc -eq 0 ] && out_has "3 classes"'

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
