#!/usr/bin/env bash
# Skip status end to end: a test that cannot run exits 77 and CTest counts it as
# "Not Run (Skipped)" (SKIP_RETURN_CODE 77 on every registered test), never as passed.
# The runner's own logic (partial skips, failures) is tests/test_runner.c.
# Usage: test_skip_status.sh CLI ASSETS SRCDIR (the build folder is the CLI's folder).
set -u
cli="$1"
src="$3"
build="$(cd "$(dirname "$cli")" && pwd)"
py=/usr/bin/python3
[ -x "$py" ] || { echo "skip: no $py"; exit 77; }
none=/nonexistent/hy_assets

pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; [ $# -gt 1 ] && printf '     %s\n' "$2"; }
tmp="$(mktemp -d)"
trap 'rm -rf -- "$tmp"' EXIT

# 1. every test CTest knows has SKIP_RETURN_CODE 77
if (cd "$build" && ctest --show-only=json-v1) >"$tmp/tests.json" 2>"$tmp/err"; then
    lacking="$("$py" - "$tmp/tests.json" <<'PY'
import json, sys
tests = json.load(open(sys.argv[1]))["tests"]
print(len(tests))
for t in tests:
    props = {p["name"]: p["value"] for p in t.get("properties", [])}
    if props.get("SKIP_RETURN_CODE") != 77:
        print(t["name"])
PY
)"
    n="$(head -n 1 <<<"$lacking")"
    rest="$(tail -n +2 <<<"$lacking")"
    if [ "${n:-0}" -gt 10 ] && [ -z "$rest" ]; then ok "all $n CTest tests have SKIP_RETURN_CODE 77"; else
        bad "every CTest test has SKIP_RETURN_CODE 77" "$n tests; without it: $rest"; fi
else
    bad "ctest --show-only=json-v1 in $build" "$(head -c 500 "$tmp/err")"
fi

# 2. each shell test that reads the assets exits 77 with a skip line when they are missing
for t in "$src"/tests/cli/test_*.sh; do
    name="$(basename "$t")"
    [ "$name" = test_skip_status.sh ] && continue
    grep -q '\$assets' "$t" || continue
    timeout 20 bash "$t" "$cli" "$none" "$src" >"$tmp/out" 2>&1
    rc=$?
    if [ $rc -eq 77 ] && grep -q '^skip: ' "$tmp/out"; then ok "$name without assets: exit 77"; else
        bad "$name without assets: exit 77 (got $rc)" "$(head -c 500 "$tmp/out")"; fi
done

# 3. a C suite whose every case needs the assets exits 77; a mixed one passes and counts skips
if [ -x "$build/test_val_coco128" ]; then
    HY_ASSETS=$none "$build/test_val_coco128" >"$tmp/out" 2>&1
    rc=$?
    if [ $rc -eq 77 ] && grep -q '^0 passed, 0 failed, 2 skipped$' "$tmp/out"; then
        ok "test_val_coco128 without assets: exit 77, 2 skipped"
    else bad "test_val_coco128 without assets: exit 77 (got $rc)" "$(tail -c 500 "$tmp/out")"; fi
else
    bad "test_val_coco128 is built in $build"
fi
if [ -x "$build/test_val_dataset" ]; then
    HY_ASSETS=$none "$build/test_val_dataset" >"$tmp/out" 2>&1
    rc=$?
    if [ $rc -eq 0 ] && grep -qE '^[1-9][0-9]* passed, 0 failed, [1-9][0-9]* skipped$' "$tmp/out"; then
        ok "test_val_dataset without assets: passes, $(tail -n 1 "$tmp/out")"
    else bad "test_val_dataset without assets: exit 0 with skips counted (got $rc)" "$(tail -c 500 "$tmp/out")"; fi
else
    bad "test_val_dataset is built in $build"
fi

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
