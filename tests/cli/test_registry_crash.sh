#!/usr/bin/env bash
# Crash safety of `hotyolo registry add` (issue 18): 30 times, an add of a ~12.7 MB file (yolov8n
# converted to f32 safetensors; each round a different content, so every add copies, fsyncs and
# renames a new blob) is killed with SIGKILL after a delay spread over 0..300 ms (so kills land
# while copying, syncing, renaming and in the transaction). After each kill `registry verify`
# passes and `list` shows only complete entries: each listed version's blob exists and hashes to
# its digest. At the end `gc` leaves no temporary file and a final add works. Prints how many
# kills landed before / after the entry appeared (and how many adds had already finished).
# Usage: bash test_registry_crash.sh CLI_PATH ASSETS_DIR SOURCE_DIR
set -u
cli="$1"
assets="$2"
[ -d "$assets" ] || { echo "skip: shared assets not found at $assets"; exit 77; }
py=/usr/bin/python3
[ -x "$py" ] || { echo "skip: no $py"; exit 77; }
pt="$assets/weights/yolov8n.pt"
rounds=30

pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; [ $# -gt 1 ] && printf '     %s\n' "$2"; }

tmp="$(mktemp -d)"
trap 'kill -9 $(jobs -p) 2>/dev/null; rm -rf -- "$tmp"' EXIT
reg="$tmp/reg"
base="$tmp/base.safetensors"
"$cli" convert "$pt" "$base" --dtype f32 >/dev/null 2>"$tmp/err" || { bad "convert $pt" "$(cat "$tmp/err")"; exit 1; }
"$cli" registry --registry "$reg" init >/dev/null 2>"$tmp/err" || { bad "registry init" "$(cat "$tmp/err")"; exit 1; }

# variant I: the base file with its hotyolo.source_sha256 (64 hex digits in the header) replaced
# by another 64-digit value: same size and layout, loads the same, a different sha256
variant() {
    "$py" - "$base" "$tmp/v.safetensors" "$1" <<'PY'
import json, struct, sys
b = bytearray(open(sys.argv[1], "rb").read())
n = struct.unpack("<Q", b[:8])[0]
old = json.loads(b[8:8 + n])["__metadata__"]["hotyolo.source_sha256"].encode()
new = ("%064x" % (0xC0FFEE0000 + int(sys.argv[3]))).encode()
i = b.index(old, 8, 8 + n)
b[i:i + 64] = new
open(sys.argv[2], "wb").write(b)
PY
}

# consistent: verify passes, and every listed entry's blob exists with the listed digest
consistent() {
    "$cli" registry --registry "$reg" verify >"$tmp/verify.out" 2>&1 || { cat "$tmp/verify.out"; return 1; }
    "$cli" registry --registry "$reg" list --json >"$tmp/list.json" 2>"$tmp/list.err" || { cat "$tmp/list.err"; return 1; }
    "$py" - "$tmp/list.json" "$reg" <<'PY'
import hashlib, json, os, sys
bad = 0
for e in json.load(open(sys.argv[1])):
    hexd = e["digest"].split(":", 1)[1]
    p = os.path.join(sys.argv[2], "blobs", "sha256", hexd[:2], hexd)
    if not os.path.isfile(p):
        print("%s@%d: blob %s missing" % (e["name"], e["version"], p)); bad += 1; continue
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    if h.hexdigest() != hexd or os.path.getsize(p) != e["size"]:
        print("%s@%d: blob %s does not match" % (e["name"], e["version"], p)); bad += 1
sys.exit(1 if bad else 0)
PY
}
count() { "$py" -c 'import json, sys; print(len(json.load(open(sys.argv[1]))))' "$tmp/list.json"; }

ntmp() { find "$reg" -type f -name '*.tmp' | grep -c .; }
nblobs() { find "$reg/blobs" -type f 2>/dev/null | grep -c .; }

# the span of the delays: one uninterrupted add's time (x 1.5), at most 300 ms
variant 1000
t0=$(date +%s%N)
"$cli" registry --registry "$reg" add "$tmp/v.safetensors" --name crash >/dev/null 2>"$tmp/err" || { bad "first add" "$(cat "$tmp/err")"; exit 1; }
t_add=$((($(date +%s%N) - t0) / 1000000))
span=$((t_add * 3 / 2))
[ $span -gt 300 ] && span=300
[ $span -lt $rounds ] && span=$rounds
echo "     one add of $(stat -c %s "$base") bytes: $t_add ms; kills spread over 0..$span ms"

# where each kill landed, from what it left: nothing (before the copy), a temp file (copying /
# syncing), a blob without an entry (renamed, transaction not committed), the entry (committed)
early=0 writing=0 renamed=0 after=0 finished=0 broken=0
"$cli" registry --registry "$reg" list --json >"$tmp/list.json" 2>/dev/null
n_prev="$(count)"
t_prev="$(ntmp)"
b_prev="$(nblobs)"
t_start=$(date +%s%N)
for i in $(seq 0 $((rounds - 1))); do
    variant "$i"
    delay_ms=$((i * span / rounds + RANDOM % (span / rounds)))
    "$cli" registry --registry "$reg" add "$tmp/v.safetensors" --name crash >/dev/null 2>&1 &
    pid=$!
    sleep "$(printf '0.%03d' "$delay_ms")"
    if kill -9 "$pid" 2>/dev/null; then
        wait "$pid" 2>/dev/null
        st=$?
    else
        wait "$pid" 2>/dev/null
        st=done
    fi
    if ! consistent >"$tmp/why" 2>&1; then
        broken=$((broken + 1))
        bad "round $i (kill at ${delay_ms} ms): registry inconsistent" "$(head -c 1500 "$tmp/why")"
        continue
    fi
    n="$(count)" t="$(ntmp)" nb="$(nblobs)"
    if [ "$st" = done ] || [ "$st" = 0 ]; then
        finished=$((finished + 1))
    elif [ "$n" -gt "$n_prev" ]; then
        after=$((after + 1))
    elif [ "$nb" -gt "$b_prev" ]; then
        renamed=$((renamed + 1))
    elif [ "$t" -gt "$t_prev" ]; then
        writing=$((writing + 1))
    else
        early=$((early + 1))
    fi
    n_prev=$n t_prev=$t b_prev=$nb
done
t_ms=$((($(date +%s%N) - t_start) / 1000000))
before=$((early + writing + renamed))
echo "     $rounds kills: $before before the entry appeared ($early before the copy, $writing while" \
    "writing the temp file, $renamed after the rename before the commit), $after after it (committed," \
    "not yet exited), $finished adds already finished; ${t_ms} ms in all"
if [ $broken -eq 0 ]; then ok "after each of $rounds kill -9s: verify passes, list shows only complete entries"; fi
if [ $before -gt 0 ]; then ok "some kills landed before the entry appeared ($before)"; else bad "no kill landed before the entry appeared: the delays do not cover the add"; fi

# leftovers: temporary files of killed adds exist until gc; gc removes them (and unreferenced blobs)
tmp_before="$(find "$reg" -type f ! -path "$reg/blobs/sha256/*" ! -name 'registry.db*' ! -name '*.lock' | grep -c .)"
if "$cli" registry --registry "$reg" gc >"$tmp/gc.out" 2>&1; then ok "gc: $(cat "$tmp/gc.out")"; else bad "gc failed" "$(cat "$tmp/gc.out")"; fi
left="$(find "$reg" -type f ! -path "$reg/blobs/sha256/*" ! -name 'registry.db*' ! -name '*.lock' -o -type f -name '*tmp*')"
if [ -z "$left" ]; then ok "gc leaves no temporary file ($tmp_before file(s) besides blobs and the database before it)"; else bad "files left after gc" "$left"; fi
if consistent >"$tmp/why" 2>&1; then ok "consistent after gc"; else bad "inconsistent after gc" "$(head -c 1500 "$tmp/why")"; fi

variant 999
if "$cli" registry --registry "$reg" add "$tmp/v.safetensors" --name crash >"$tmp/add.out" 2>&1 && consistent >"$tmp/why" 2>&1; then
    ok "a final add works: $(cat "$tmp/add.out")"
else
    bad "final add" "$(cat "$tmp/add.out" "$tmp/why")"
fi

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
