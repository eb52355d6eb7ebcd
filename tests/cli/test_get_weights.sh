#!/usr/bin/env bash
# scripts/get-weights.sh: verified install from a file:// URL, wrong hash, unreachable URL,
# existing DEST kept. Usage: bash test_get_weights.sh CLI_PATH ASSETS_DIR SOURCE_DIR
set -u
assets="$2"
[ -d "$assets" ] || { echo "skip: shared assets not found at $assets"; exit 77; }
src="$3"
script="$src/scripts/get-weights.sh"
weights="$assets/weights/yolov8n.pt"
good_sha="fc8af32ca9a389f3864c7d06d868d51a501a17738d54674cf26c3538c5a578c5"
bad_sha="0000000000000000000000000000000000000000000000000000000000000000"

pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; [ $# -gt 1 ] && printf '     %s\n' "$2"; }
check() { if eval "$2"; then ok "$1"; else bad "$1" "$2"; fi; }

tmp="$(mktemp -d)"
trap 'rm -rf -- "$tmp"' EXIT
url="file://$(cd "$(dirname "$weights")" && pwd)/$(basename "$weights")"
# no temporary/partial files may be left next to DEST
no_leftovers() { [ -z "$(find "$1" -name '.*part*' 2>/dev/null)" ]; }

# 1. good hash: installed at DEST (nested dirs created), identical bytes
dest="$tmp/a/b/yolov8n.pt"
HY_WEIGHTS_SHA256="$good_sha" bash "$script" "$url" "$dest" >"$tmp/out1" 2>&1
rc=$?
check "good hash exits 0" '[ $rc -eq 0 ]'
check "good hash installs DEST" 'cmp -s "$dest" "$weights"'
check "good hash leaves no temp file" 'no_leftovers "$tmp/a/b"'

# 2. DEST already verified: no download, file not rewritten (same inode and mtime)
before="$(stat -c '%i %Y' "$dest")"
sleep 1
HY_WEIGHTS_SHA256="$good_sha" bash "$script" "file:///nonexistent/yolov8n.pt" "$dest" >"$tmp/out2" 2>&1
rc=$?
check "existing verified DEST exits 0 without downloading" '[ $rc -eq 0 ]'
check "existing verified DEST says so" 'grep -q "already present" "$tmp/out2"'
check "existing verified DEST not rewritten" '[ "$(stat -c "%i %Y" "$dest")" = "$before" ]'

# 3. wrong hash, DEST absent: fails, DEST still absent, temp removed, message clear
dest3="$tmp/c/yolov8n.pt"
HY_WEIGHTS_SHA256="$bad_sha" bash "$script" "$url" "$dest3" >"$tmp/out3" 2>&1
rc=$?
check "wrong hash exits 1" '[ $rc -eq 1 ]'
check "wrong hash: DEST absent" '[ ! -e "$dest3" ]'
check "wrong hash: temp file removed" 'no_leftovers "$tmp/c"'
check "wrong hash: message names the mismatch" 'grep -q "checksum mismatch" "$tmp/out3" && grep -q "$good_sha" "$tmp/out3"'

# 4. wrong hash, DEST exists with other content: DEST unchanged
dest4="$tmp/d/yolov8n.pt"
mkdir -p "$tmp/d"
echo "user data" >"$dest4"
HY_WEIGHTS_SHA256="$bad_sha" bash "$script" "$url" "$dest4" >"$tmp/out4" 2>&1
rc=$?
check "wrong hash over existing DEST exits 1" '[ $rc -eq 1 ]'
check "wrong hash: existing DEST unchanged" '[ "$(cat "$dest4")" = "user data" ]'
check "wrong hash over existing DEST: temp file removed" 'no_leftovers "$tmp/d"'

# 5. good hash over an existing wrong DEST: replaced by the verified file
HY_WEIGHTS_SHA256="$good_sha" bash "$script" "$url" "$dest4" >"$tmp/out5" 2>&1
rc=$?
check "good hash replaces a wrong DEST" '[ $rc -eq 0 ] && cmp -s "$dest4" "$weights"'

# 6. unreachable URLs: fail cleanly (exit 1, message, nothing written)
dest6="$tmp/e/yolov8n.pt"
HY_WEIGHTS_SHA256="$good_sha" bash "$script" "http://127.0.0.1:9/yolov8n.pt" "$dest6" >"$tmp/out6" 2>&1
rc=$?
check "unreachable http URL exits 1" '[ $rc -eq 1 ]'
check "unreachable http URL: message names the URL" 'grep -q "download of .http://127.0.0.1:9/yolov8n.pt. failed" "$tmp/out6"'
check "unreachable http URL: DEST absent, no temp" '[ ! -e "$dest6" ] && no_leftovers "$tmp/e"'
HY_WEIGHTS_SHA256="$good_sha" bash "$script" "file:///nonexistent/dir/yolov8n.pt" "$dest6" >"$tmp/out7" 2>&1
rc=$?
check "missing file:// URL exits 1" '[ $rc -eq 1 ] && [ ! -e "$dest6" ] && grep -q "failed" "$tmp/out7"'

# 7. bad arguments
HY_WEIGHTS_SHA256="xyz" bash "$script" "$url" "$tmp/f/y.pt" >"$tmp/out8" 2>&1
rc=$?
check "malformed HY_WEIGHTS_SHA256 exits 1" '[ $rc -eq 1 ] && grep -q "64 hex" "$tmp/out8" && [ ! -e "$tmp/f/y.pt" ]'
mkdir -p "$tmp/g"
HY_WEIGHTS_SHA256="$good_sha" bash "$script" "$url" "$tmp/g" >"$tmp/out9" 2>&1
rc=$?
check "DEST that is a directory exits 1" '[ $rc -eq 1 ] && grep -q "is a directory" "$tmp/out9"'

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
