#!/usr/bin/env bash
# libhotyolo.so exports the public API and nothing else: every dynamic symbol it defines is a
# hy_ name (no hy__ internals, no dependency's symbols), every HY_API declaration of the public
# headers is exported, every function those headers declare carries HY_API, and the soname is
# libhotyolo.so.MAJOR.
# Usage: bash test_symbols.sh CLI_PATH ASSETS_DIR SOURCE_DIR (the library lies beside the CLI)
set -u
build="$(dirname "$1")"
src="$3"
lib="$build/libhotyolo.so"
[ -e "$lib" ] || { echo "skip: $lib not built (HY_BUILD_SHARED=OFF)"; exit 77; }
for t in nm readelf; do
    command -v "$t" >/dev/null || { echo "skip: $t not installed"; exit 77; }
done
pass=0
fail=0
tmp="$(mktemp -d)"
trap 'rm -rf -- "$tmp"' EXIT
check() {
    if eval "$2"; then pass=$((pass + 1)); echo "ok   $1"; else
        fail=$((fail + 1)); echo "FAIL $1"; [ -s "$tmp/why" ] && head -n 40 "$tmp/why"; fi
    : >"$tmp/why"
}

nm -D --defined-only "$lib" | awk '{print $NF}' | sort -u >"$tmp/exported"
echo "exported symbols: $(wc -l <"$tmp/exported")"
grep -vE '^hy_[a-z0-9]' "$tmp/exported" >"$tmp/why"
check "every exported symbol is a hy_ name (no hy__ internals, no dependency's symbols)" '[ ! -s "$tmp/why" ]'

# HY_API declarations: "HY_API <type> hy_name(" at the start of a line of a public header
headers=("$src/include/hotyolo.h" "$src"/include/hotyolo/*.h)
grep -hoE '^HY_API [^(]*\bhy_[a-z0-9_]+\(' "${headers[@]}" | grep -oE 'hy_[a-z0-9_]+\($' | tr -d '(' |
    sort -u >"$tmp/declared"
echo "HY_API declarations: $(wc -l <"$tmp/declared")"
check "the headers declare some HY_API functions" '[ "$(wc -l <"$tmp/declared")" -gt 50 ]'
comm -23 "$tmp/declared" "$tmp/exported" >"$tmp/why"
check "every HY_API declaration is exported (defined in the library)" '[ ! -s "$tmp/why" ]'
comm -13 "$tmp/declared" "$tmp/exported" >"$tmp/why"
check "nothing is exported that the headers do not declare" '[ ! -s "$tmp/why" ]'
# a function declared at file scope without HY_API would be hidden: users' links would fail
grep -nE '^[A-Za-z][A-Za-z0-9_ *]*\bhy_[a-z0-9_]+ *\(' "${headers[@]}" |
    grep -vE ':(HY_API|typedef|static|extern|#)' >"$tmp/why"
check "every function the public headers declare carries HY_API" '[ ! -s "$tmp/why" ]'

major="$(sed -nE 's/^#define HY_VERSION_MAJOR ([0-9]+).*/\1/p' "$src/include/hotyolo.h")"
version="$(sed -nE 's/^#define HY_VERSION_STRING "([^"]+)".*/\1/p' "$src/include/hotyolo.h")"
soname="$(readelf -d "$lib" | sed -nE 's/.*\(SONAME\).*\[(.*)\]/\1/p')"
echo "soname: $soname, file: $(basename "$(readlink -f "$lib")")"
check "soname libhotyolo.so.$major" '[ "$soname" = "libhotyolo.so.$major" ]'
check "libhotyolo.so -> libhotyolo.so.$version" '[ "$(basename "$(readlink -f "$lib")")" = "libhotyolo.so.$version" ]'
readelf -d "$lib" | grep -E 'TEXTREL' >"$tmp/why"
check "no text relocations (every object linked in is PIC)" '[ ! -s "$tmp/why" ]'

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
