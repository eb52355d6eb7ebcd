#!/usr/bin/env bash
# Packed-weights cache (docs/formats.md): a .pt/.onnx load fills an entry, the next maps it
# with the same detections; --no-cache and cache clear; a corrupt entry is rebuilt and the
# rebuild logged; HOTYOLO_CACHE_MAX evicts the least recently used entry; concurrent fills.
# bash tests/cli/test_cache.sh CLI ASSETS SRCDIR
set -euo pipefail
cli="$1"; assets="$2"
pt="$assets/weights/yolov8n.pt"; onnx="$assets/weights/yolov8n.onnx"; img="$assets/images/bus.jpg"
for f in "$pt" "$onnx" "$img"; do [ -f "$f" ] || { echo "skip: $f not found"; exit 77; }; done
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
export HOTYOLO_CACHE_DIR="$tmp/cache"
unset HOTYOLO_NO_CACHE HOTYOLO_CACHE_MAX HOTYOLO_CACHE_VERIFY
fail() { echo "FAIL: $*"; exit 1; }
entries() { ls "$HOTYOLO_CACHE_DIR" 2>/dev/null | grep -c '^[0-9a-f]\{64\}\.safetensors$' || true; }
det() { # detections of $img as JSON, timings cut (each call its own file: runs may overlap)
    local j; j="$(mktemp "$tmp/det.XXXXXX")"
    "$cli" detect "$@" "$img" --json "$j" -q && sed 's/"timings_ms".*//' "$j"
}

# 1. --no-cache writes nothing; the direct result is the reference
det "$pt" --no-cache > "$tmp/direct.txt"
[ "$(entries)" = 0 ] || fail "--no-cache wrote an entry"
# 2. first load fills, second maps: same detections, one entry, listed
det "$pt" > "$tmp/cold.txt"
[ "$(entries)" = 1 ] || fail "no entry after the first load"
det "$pt" > "$tmp/warm.txt"
cmp -s "$tmp/direct.txt" "$tmp/cold.txt" || fail "cold result differs from the direct load"
cmp -s "$tmp/direct.txt" "$tmp/warm.txt" || fail "warm (cached) result differs from the direct load"
"$cli" cache list | grep -q "yolov8n nc=80" || fail "cache list does not show the entry"
det "$onnx" --no-cache > "$tmp/onnx_direct.txt"
det "$onnx" > /dev/null; det "$onnx" > "$tmp/onnx_warm.txt"
cmp -s "$tmp/onnx_direct.txt" "$tmp/onnx_warm.txt" || fail "cached ONNX result differs"
[ "$(entries)" = 2 ] || fail "expected 2 entries (pt, onnx), have $(entries)"
# 3. a copy of the source (another path) is its own entry; touching the source re-keys it
cp "$pt" "$tmp/copy.pt"
det "$tmp/copy.pt" > /dev/null
[ "$(entries)" = 3 ] || fail "a copy did not get its own entry"
# 4. corrupt entry (the newest, the copy's): a flipped byte in the data is caught with
#    HOTYOLO_CACHE_VERIFY=1; truncation on any load; both are rebuilt and logged (-v)
e="$(ls -t "$HOTYOLO_CACHE_DIR"/*.safetensors | head -n 1)"
size=$(stat -c %s "$e")
printf '\xff\xff\xff\xff' | dd of="$e" bs=1 seek=$((size - 4096)) conv=notrunc status=none
HOTYOLO_CACHE_VERIFY=1 "$cli" detect "$tmp/copy.pt" "$img" -v --json "$tmp/out.json" >/dev/null 2>"$tmp/log" ||
    fail "a corrupt entry failed the load"
grep -q "packed-weights cache: .*sha256 mismatch.*rebuilding it" "$tmp/log" || { cat "$tmp/log"; fail "no rebuild log"; }
sed 's/"timings_ms".*//' "$tmp/out.json" | cmp -s - "$tmp/direct.txt" || fail "result after rebuild differs"
HOTYOLO_CACHE_VERIFY=1 det "$tmp/copy.pt" > /dev/null # the rebuilt entry verifies
truncate -s $((size / 2)) "$e"
"$cli" detect "$tmp/copy.pt" "$img" -v -q 2>"$tmp/log" || fail "a truncated entry failed the load"
grep -q "packed-weights cache: .*rebuilding it" "$tmp/log" || { cat "$tmp/log"; fail "no rebuild log (truncated)"; }
[ "$(stat -c %s "$e")" = "$size" ] || fail "truncated entry not rebuilt"
# 5. size bound: room for two entries -> the least recently used (the .onnx one) goes
det "$pt" > /dev/null; sleep 0.05; det "$tmp/copy.pt" > /dev/null  # pt, copy now most recent
cp "$pt" "$tmp/third.pt"
HOTYOLO_CACHE_MAX=$((size * 2 + size / 2)) det "$tmp/third.pt" > /dev/null
[ "$(entries)" = 2 ] || fail "HOTYOLO_CACHE_MAX: expected 2 entries, have $(entries)"
"$cli" cache list | grep -q "$(sha256sum "$onnx" | cut -c1-64)" && fail "the LRU (onnx) entry was not evicted"
# 6. concurrent processes filling the same key: every run succeeds, one whole entry
"$cli" cache clear | grep -q "removed 2 entries" || fail "cache clear"
[ "$(entries)" = 0 ] || fail "entries left after clear"
pids=()
for i in 1 2 3 4; do det "$pt" > "$tmp/conc$i.txt" & pids+=($!); done
for p in "${pids[@]}"; do wait "$p" || fail "a concurrent load failed"; done
for i in 1 2 3 4; do cmp -s "$tmp/direct.txt" "$tmp/conc$i.txt" || fail "concurrent run $i differs"; done
[ "$(entries)" = 1 ] || fail "concurrent fills: $(entries) entries"
ls "$HOTYOLO_CACHE_DIR" | grep -q tmp && fail "temporary files left behind"
HOTYOLO_CACHE_VERIFY=1 det "$pt" > /dev/null
echo "test_cache: ok"
