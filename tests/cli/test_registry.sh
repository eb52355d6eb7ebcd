#!/usr/bin/env bash
# hotyolo registry (issue 18): every subcommand, the reference forms (registry:NAME@V,
# registry:NAME@alias, registry:PROJECT) in detect / inspect / val giving what the file itself
# gives, idempotent add (one blob), the rm refusal rules and --force, verify catching a
# corrupted blob, gc, export byte for byte, a real `hotyolo train` checkpoint imported with its
# record shown, two concurrent adds with a reader, and the usage errors.
# Expected values come from the files (sha256sum, their __metadata__ read by python), not from
# our own output.
# Usage: bash test_registry.sh CLI_PATH ASSETS_DIR SOURCE_DIR
set -u
cli="$1"
assets="$2"
[ -d "$assets" ] || { echo "skip: shared assets not found at $assets"; exit 77; }
py=/usr/bin/python3
[ -x "$py" ] || { echo "skip: no $py"; exit 77; }
pt="$assets/weights/yolov8n.pt"
coco8="$assets/datasets/coco8"
bus="$assets/images/bus.jpg"

pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok   $1"; }
bad() {
    fail=$((fail + 1))
    echo "FAIL $1"
    [ $# -gt 1 ] && printf '     check: %s\n' "$2"
    printf '     rc=%s\n     stdout: %s\n     stderr: %s\n' "$rc" "$(tail -c 2000 "$tmp/out")" "$(head -c 1500 "$tmp/err")"
}
check() { if eval "$2"; then ok "$1"; else bad "$1" "$2"; fi; }

tmp="$(mktemp -d)"
trap 'kill -9 $(jobs -p) 2>/dev/null; rm -rf -- "$tmp"' EXIT
unset HOTYOLO_REGISTRY
reg="$tmp/reg"
run() { "$cli" "$@" >"$tmp/out" 2>"$tmp/err"; rc=$?; }
R() { run registry --registry "$reg" "$@"; }
out_has() { grep -qE -- "$1" "$tmp/out"; }
err_has() { grep -qE -- "$1" "$tmp/err"; }
sha() { sha256sum "$1" | cut -d' ' -f1; }
nblobs() { find "$1/blobs" -type f 2>/dev/null | grep -c .; }
# meta FILE KEY: a __metadata__ value of a safetensors file
meta() {
    "$py" -c 'import json, struct, sys
f = open(sys.argv[1], "rb"); n = struct.unpack("<Q", f.read(8))[0]
print(json.loads(f.read(n))["__metadata__"].get(sys.argv[2], ""))' "$1" "$2"
}
# jtrue E: the python expression E is true of the JSON in $tmp/out (as d; A, B: the sha256 of
# the two test files)
jtrue() {
    A="$(sha "$a")" B="$(sha "$b")" "$py" -c 'import json, os, sys
d = json.load(open(sys.argv[1])); A = os.environ["A"]; B = os.environ["B"]
sys.exit(0 if eval(sys.argv[2]) else 1)' "$tmp/out" "$1" 2>/dev/null
}
# detections of a `detect --json -` output, without the timings
dets() { "$py" -c 'import json, sys
for l in open(sys.argv[1]):
    o = json.loads(l); print(o["image"].rsplit("/", 1)[-1], json.dumps(o["detections"]))' "$1"; }

a="$tmp/a.safetensors" # f16
b="$tmp/b.safetensors" # f32: another content
"$cli" convert "$pt" "$a" --dtype f16 >/dev/null 2>&1 && "$cli" convert "$pt" "$b" --dtype f32 >/dev/null 2>&1 || {
    echo "FAIL cannot convert $pt"
    exit 1
}
{
    echo "path: $coco8"
    echo "train: images/train"
    echo "val: images/train"
    sed -n '/^names:/,$p' "$coco8/data.yaml"
} >"$tmp/data.yaml"

# ---- usage errors ----------------------------------------------------------------------------
run registry
check "no subcommand: exit 2" '[ $rc -eq 2 ] && err_has "missing SUBCOMMAND"'
run registry --help
check "--help: exit 0, every subcommand listed" '[ $rc -eq 0 ] && out_has "^Usage: hotyolo registry" && out_has "  add FILE --name NAME" && out_has "  pull oci://" && out_has "  verify"'
run registry add --help
check "add --help: exit 0, its usage" '[ $rc -eq 0 ] && out_has "add FILE --name NAME" && ! out_has "  gc$"'
run registry list
check "no --registry and no HOTYOLO_REGISTRY: exit 2" '[ $rc -eq 2 ] && err_has "give --registry DIR or set HOTYOLO_REGISTRY"'
R frob
check "unknown subcommand: exit 2 naming it" '[ $rc -eq 2 ] && err_has "unknown subcommand .frob."'
R add "$a"
check "add without --name: exit 2" '[ $rc -eq 2 ] && err_has "\-\-name NAME is required"'
R add "$a" --name "bad name"
check "add --name with a space: exit 2" '[ $rc -eq 2 ] && err_has "\-\-name .bad name. is not valid"'
R add "$a" --name pcb --metric mAP50
check "--metric without =: exit 2" '[ $rc -eq 2 ] && err_has "\-\-metric: .mAP50. is not KEY=VALUE"'
R add "$a" --name pcb --metric mAP50=high
check "--metric with a non-number: exit 2" '[ $rc -eq 2 ] && err_has "not a finite number"'
R add "$a" --name pcb --version 0
check "--version 0: exit 2" '[ $rc -eq 2 ] && err_has "\-\-version"'
R list --force
check "an option of another subcommand: exit 2" '[ $rc -eq 2 ] && err_has "\-\-force does not apply to .list."'
R show
check "show without REF: exit 2" '[ $rc -eq 2 ] && err_has "missing arguments"'
R alias pcb production
check "alias NAME (no version): exit 2" '[ $rc -eq 2 ] && err_has "not NAME@VERSION"'
R alias pcb@1 123
check "all-digit alias: exit 2" '[ $rc -eq 2 ] && err_has "ALIAS .123. is not valid"'
R rm pcb@latest
check "rm NAME@alias: exit 2 (rm takes a version number)" '[ $rc -eq 2 ]'
R push pcb@1 http://127.0.0.1/x
check "push to a non-oci:// address: exit 2" '[ $rc -eq 2 ] && err_has "oci://HOST"'
R pull oci://127.0.0.1:1/x
check "pull without --name: exit 2" '[ $rc -eq 2 ] && err_has "\-\-name NAME is required"'
R pull oci://127.0.0.1:1/x --name p --user u --password-env HY_NO_SUCH_VARIABLE_SET
check "--password-env naming an unset variable: exit 2" '[ $rc -eq 2 ] && err_has "HY_NO_SUCH_VARIABLE_SET. is not set"'
check "no usage error created the registry" '[ ! -e "$reg" ]'

# ---- init, add, idempotent add ---------------------------------------------------------------
R init
check "init: exit 0, registry.db created" '[ $rc -eq 0 ] && [ -f "$reg/registry.db" ]'
R init
check "init again: exit 0 (no-op)" '[ $rc -eq 0 ]'
R add "$a" --name pcb --scenario "line 3 solder joints" --metric mAP50=0.61 --metric mAP50-95=0.45 --tag line3 --tag f16
check "add: pcb@1 with the file's sha256" '[ $rc -eq 0 ] && out_has "pcb@1 sha256:$(sha "$a")"'
R add "$a" --name pcb
check "same file again: pcb@2, same digest, still one blob" \
    '[ $rc -eq 0 ] && out_has "pcb@2 sha256:$(sha "$a")" && [ "$(nblobs "$reg")" = 1 ]'
R add "$b" --name pcb
check "another file: pcb@3, two blobs" '[ $rc -eq 0 ] && out_has "pcb@3 sha256:$(sha "$b")" && [ "$(nblobs "$reg")" = 2 ]'
blob_a="$(find "$reg/blobs" -type f -name "*$(sha "$a")*")"
check "blob stored under blobs/sha256/ab/<hex>, read-only, equal to the file" \
    '[ "$blob_a" = "$reg/blobs/sha256/$(sha "$a" | cut -c1-2)/$(sha "$a")" ] && cmp -s "$blob_a" "$a" && [ ! -w "$blob_a" -o "$(id -u)" = 0 ] && [ -z "$(find "$blob_a" -perm /222)" ]'
R add "$b" --name pcb --version 3
check "--version taken: exit 1" '[ $rc -eq 1 ] && err_has "3"'
R add "$tmp/none.safetensors" --name pcb
check "add a missing file: exit 1 naming it" '[ $rc -eq 1 ] && err_has "none.safetensors"'
printf 'not weights' >"$tmp/junk.safetensors"
R add "$tmp/junk.safetensors" --name pcb
check "add a file that is not weights: exit 1, nothing added" '[ $rc -eq 1 ] && err_has "junk.safetensors" && [ "$(nblobs "$reg")" = 2 ]'

# ---- list, show -------------------------------------------------------------------------------
R list
check "list: the three versions" '[ $rc -eq 0 ] && out_has "^pcb@1 " && out_has "^pcb@2 " && out_has "^pcb@3 "'
R list --json
e='[(x["name"], x["version"], x["digest"]) for x in d] == [("pcb", 1, "sha256:" + A), ("pcb", 2, "sha256:" + A), ("pcb", 3, "sha256:" + B)]'
check "list --json: a JSON array of the 3 entries with their digests" '[ $rc -eq 0 ] && jtrue "$e"'
R show pcb@1
check "show: name@version, digest, size, format, variant, nc, names, scenario, metrics, tags" \
    '[ $rc -eq 0 ] && out_has "^model: +pcb@1$" && out_has "^digest: +sha256:$(sha "$a")$" && out_has "\($(stat -c %s "$a" | sed -E ":a;s/([0-9])([0-9]{3})($|,)/\1,\2\3/;ta") bytes\)" && out_has "^format: +safetensors" && out_has "^variant: +n$" && out_has "^nc: +80$" && out_has "^names: +person, bicycle" && out_has "^scenario: +line 3 solder joints$" && out_has "^metrics: .*mAP50=0.61" && out_has "mAP50-95=0.45" && out_has "^tags: +line3, f16$"'
R show pcb@1 --json
e='(d["name"], d["version"], d["digest"], d["nc"], d["scenario"], d["metrics"]["mAP50"], sorted(d["tags"])) == ("pcb", 1, "sha256:" + A, 80, "line 3 solder joints", 0.61, ["f16", "line3"])'
check "show --json: the entry" '[ $rc -eq 0 ] && jtrue "$e"'
R show pcb
check "show NAME: the latest version" '[ $rc -eq 0 ] && out_has "^model: +pcb@3$"'
R show pcb@9
check "show an unknown version: exit 1 naming it" '[ $rc -eq 1 ] && err_has "pcb@9"'

# ---- alias, bind, bindings ---------------------------------------------------------------------
R alias pcb@1 production
check "alias: exit 0" '[ $rc -eq 0 ]'
R show pcb@production
check "show NAME@alias: that version, alias listed" '[ $rc -eq 0 ] && out_has "^model: +pcb@1$" && out_has "^aliases: +production$"'
R alias pcb@9 staging
check "alias to a missing version: exit 1" '[ $rc -eq 1 ]'
R bind line3 pcb@3
check "bind: exit 0" '[ $rc -eq 0 ]'
R bindings
check "bindings: line3 -> pcb@3" '[ $rc -eq 0 ] && out_has "^line3 +pcb@3 +sha256:$(sha "$b")"'
R bindings --json
e='[(x["project"], x["name"], x["version"], x["digest"]) for x in d] == [("line3", "pcb", 3, "sha256:" + B)]'
check "bindings --json" '[ $rc -eq 0 ] && jtrue "$e"'
R show line3
check "show PROJECT: its bound version, bound by listed" '[ $rc -eq 0 ] && out_has "^model: +pcb@3$" && out_has "^bound by: +line3$"'

# ---- references in detect, inspect, val ----------------------------------------------------------
"$cli" detect "$a" "$bus" --json - --imgsz 320 -q >"$tmp/file.jsonl" 2>/dev/null
"$cli" detect "$b" "$bus" --json - --imgsz 320 -q >"$tmp/fileb.jsonl" 2>/dev/null
dets "$tmp/file.jsonl" >"$tmp/file.dets"
dets "$tmp/fileb.jsonl" >"$tmp/fileb.dets"
run detect "registry:pcb@1" "$bus" --registry "$reg" --json - --imgsz 320 -q
dets "$tmp/out" >"$tmp/ref.dets" 2>/dev/null
check "detect registry:NAME@1 --registry DIR: same detections as the file" \
    '[ $rc -eq 0 ] && [ -s "$tmp/file.dets" ] && grep -q class_id "$tmp/file.dets" && cmp -s "$tmp/file.dets" "$tmp/ref.dets"'
HOTYOLO_REGISTRY="$reg" run detect "registry:pcb@production" "$bus" --json - --imgsz 320 -q
dets "$tmp/out" >"$tmp/ref.dets" 2>/dev/null
check "detect registry:NAME@production (HOTYOLO_REGISTRY): same detections as the file" \
    '[ $rc -eq 0 ] && cmp -s "$tmp/file.dets" "$tmp/ref.dets"'
HOTYOLO_REGISTRY="$reg" run detect "registry:line3" "$bus" --json - --imgsz 320 -q
dets "$tmp/out" >"$tmp/ref.dets" 2>/dev/null
check "detect registry:PROJECT: same detections as its bound file" \
    '[ $rc -eq 0 ] && [ -s "$tmp/fileb.dets" ] && cmp -s "$tmp/fileb.dets" "$tmp/ref.dets"'
run detect "registry:pcb@9" "$bus" --registry "$reg"
check "detect registry:NAME@9: exit 1 naming it" '[ $rc -eq 1 ] && err_has "pcb@9"'
run detect "registry:pcb@1" "$bus"
check "detect registry:REF with no registry: exit 2" '[ $rc -eq 2 ] && err_has "HOTYOLO_REGISTRY"'
run inspect "registry:pcb@3" --registry "$reg" --json
check "inspect registry:NAME@3: the file's sha256" '[ $rc -eq 0 ] && jtrue "d[\"sha256\"] == B"'
HOTYOLO_REGISTRY="$reg" run inspect "registry:pcb@production"
check "inspect registry:NAME@production (text)" '[ $rc -eq 0 ] && out_has "^sha256: +$(sha "$a")$"'
"$cli" val "$a" --data "$tmp/data.yaml" --imgsz 64 -q --threads 2 2>/dev/null | grep -v "^Speed" >"$tmp/val.file"
run val "registry:pcb@production" --registry "$reg" --data "$tmp/data.yaml" --imgsz 64 -q --threads 2
grep -v "^Speed" "$tmp/out" >"$tmp/val.ref"
check "val registry:NAME@production: the same table as the file" \
    '[ $rc -eq 0 ] && grep -q "^ *all " "$tmp/val.file" && cmp -s "$tmp/val.file" "$tmp/val.ref"'

# ---- rm refusal rules, --force, gc --------------------------------------------------------------
R rm pcb@1
check "rm while an alias points at it: exit 1 naming the alias" '[ $rc -eq 1 ] && err_has "production" && err_has "\-\-force"'
R rm pcb@3
check "rm while a project is bound to it: exit 1 naming the project" '[ $rc -eq 1 ] && err_has "line3"'
R list
check "refused rm kept both" '[ $rc -eq 0 ] && out_has "^pcb@1 " && out_has "^pcb@3 "'
R rm pcb@1 --force
check "rm --force: removed" '[ $rc -eq 0 ]'
R show pcb@production
check "... with its alias" '[ $rc -eq 1 ]'
R rm pcb@2
check "rm an unreferenced version: exit 0" '[ $rc -eq 0 ]'
R rm pcb@2
check "rm it again: exit 1" '[ $rc -eq 1 ]'
check "blobs stay until gc" '[ "$(nblobs "$reg")" = 2 ]'
R gc
check "gc: removes the one unreferenced blob" '[ $rc -eq 0 ] && out_has "removed 1 unreferenced blob" && [ "$(nblobs "$reg")" = 1 ] && [ ! -e "$blob_a" ]'
R gc
check "gc again: nothing to remove" '[ $rc -eq 0 ] && out_has "removed 0 unreferenced blobs"'

# ---- export ---------------------------------------------------------------------------------------
R export pcb@3 "$tmp/out.safetensors"
check "export: the same bytes" '[ $rc -eq 0 ] && cmp -s "$b" "$tmp/out.safetensors"'
printf 'keep me' >"$tmp/keep.safetensors"
R export pcb@3 "$tmp/keep.safetensors"
check "export over an existing file: exit 1, file kept" '[ $rc -eq 1 ] && [ "$(cat "$tmp/keep.safetensors")" = "keep me" ]'
R export pcb@3 "$tmp/keep.safetensors" --force
check "export --force: replaced" '[ $rc -eq 0 ] && cmp -s "$b" "$tmp/keep.safetensors"'
R export line3 "$tmp/proj.safetensors"
check "export PROJECT" '[ $rc -eq 0 ] && cmp -s "$b" "$tmp/proj.safetensors"'

# ---- verify ---------------------------------------------------------------------------------------
R verify
check "verify: exit 0, one blob checked" '[ $rc -eq 0 ] && out_has "checked 1 blob: 0 bad"'
reg2="$tmp/reg2"
run registry --registry "$reg2" add "$a" --name v
blob2="$reg2/blobs/sha256/$(sha "$a" | cut -c1-2)/$(sha "$a")"
chmod u+w "$blob2" && printf 'X' | dd of="$blob2" bs=1 seek=5000000 conv=notrunc status=none
run registry --registry "$reg2" verify
check "verify a corrupted blob: exit 1, the blob named" '[ $rc -eq 1 ] && out_has "$(sha "$a")" && err_has "1 of 1"'

# ---- a real `hotyolo train` checkpoint --------------------------------------------------------------
run train --model "$pt" --data "$tmp/data.yaml" --epochs 1 --imgsz 64 --batch 2 --nbs 2 --optimizer AdamW \
    --lr0 0.002 --warmup-epochs 0 --device cpu --threads 2 --seed 1 --project "$tmp/r" --name t -q
ck="$tmp/r/t/weights/last.safetensors"
if [ $rc -ne 0 ] || [ ! -s "$ck" ]; then
    bad "hotyolo train (1 epoch, imgsz 64, coco8) for the import test"
else
    R add "$ck" --name trained --scenario "coco8 smoke"
    check "add a train checkpoint" '[ $rc -eq 0 ] && out_has "trained@1 sha256:$(sha "$ck")"'
    R show trained
    m50="$("$py" -c 'import json, sys; r = json.loads(sys.argv[1])[-1]; print("%.6g" % r["metrics/mAP50(B)"])' "$(meta "$ck" hotyolo.train.results)")"
    check "show: the training record (args, last epoch's metrics, dataset_sha256, source_sha256)" \
        '[ $rc -eq 0 ] && out_has "^training record:" && out_has "^  args: .*epochs 1, imgsz 64, batch 2, freeze 0" && out_has "data .*data.yaml" && out_has "^  epoch: +1 of 1 \(finished\)" && out_has "^  metrics: .*mAP50\(B\) $m50" && out_has "^  dataset_sha256: +$(meta "$ck" hotyolo.train.dataset_sha256)$" && out_has "^  source_sha256: +$(sha "$pt")$"'
    R show trained --json
    check "show --json: the record's keys" \
        '[ $rc -eq 0 ] && grep -q "hotyolo.train.dataset_sha256" "$tmp/out" && grep -q "$(meta "$ck" hotyolo.train.dataset_sha256)" "$tmp/out"'
fi

# ---- concurrency: two adds and a reader at once ------------------------------------------------------
reg3="$tmp/reg3"
run registry --registry "$reg3" init
"$cli" registry --registry "$reg3" add "$a" --name con >"$tmp/c1.out" 2>"$tmp/c1.err" &
p1=$!
"$cli" registry --registry "$reg3" add "$b" --name con >"$tmp/c2.out" 2>"$tmp/c2.err" &
p2=$!
reads=0
read_fail=0
while kill -0 $p1 2>/dev/null || kill -0 $p2 2>/dev/null; do
    "$cli" registry --registry "$reg3" list >/dev/null 2>>"$tmp/reader.err" || read_fail=$((read_fail + 1))
    reads=$((reads + 1))
done
wait $p1
rc1=$?
wait $p2
rc2=$?
echo "     concurrent: $reads lists during the two adds, $read_fail failed"
rc="$rc1/$rc2"
cat "$tmp/c1.err" "$tmp/c2.err" "$tmp/reader.err" >"$tmp/err"
"$cli" registry --registry "$reg3" list --json >"$tmp/out" 2>>"$tmp/err"
e='sorted((x["version"], x["digest"]) for x in d if x["name"] == "con") in ([(1, "sha256:" + A), (2, "sha256:" + B)], [(1, "sha256:" + B), (2, "sha256:" + A)])'
check "two concurrent adds and a reader: all succeed, con@1 and con@2 present with both digests" \
    '[ $rc1 -eq 0 ] && [ $rc2 -eq 0 ] && [ $read_fail -eq 0 ] && [ $reads -gt 0 ] && jtrue "$e"'

# ---- push / pull (the OCI round trip is test_registry_oci.sh): a refused connection --------------
R push pcb@3 oci://127.0.0.1:1/hy/pcb:v3
check "push to a closed port: exit 1 with an error" '[ $rc -eq 1 ] && [ -s "$tmp/err" ]'
R pull oci://127.0.0.1:1/hy/pcb:v3 --name pulled
check "pull from a closed port: exit 1, nothing added" '[ $rc -eq 1 ] && [ -s "$tmp/err" ] && ! "$cli" registry --registry "$reg" show pulled >/dev/null 2>&1'

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
