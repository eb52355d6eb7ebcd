#!/usr/bin/env bash
# `cmake --install` into a temporary prefix, then examples/detect.c built out of tree against
# the installed copy, with `pkg-config --cflags --libs hotyolo` and with find_package(hotyolo)
# (shared, and static through hotyolo::hotyolo_static), each run on bus.jpg: the detections
# equal `hotyolo detect`'s.
# Usage: bash test_install.sh CLI_PATH ASSETS_DIR SOURCE_DIR (CLI_PATH's folder is the build)
set -u
cli="$1"
assets="$2"
src="$3"
build="$(dirname "$cli")"
[ -d "$assets" ] || { echo "skip: shared assets not found at $assets"; exit 77; }
[ -e "$build/libhotyolo.so" ] || { echo "skip: $build/libhotyolo.so not built (HY_BUILD_SHARED=OFF)"; exit 77; }
for t in cmake pkg-config cc readelf; do
    command -v "$t" >/dev/null || { echo "skip: $t not installed"; exit 77; }
done
pass=0
fail=0
tmp="$(mktemp -d)"
trap 'rm -rf -- "$tmp"' EXIT
check() {
    if eval "$2"; then pass=$((pass + 1)); echo "ok   $1"; else
        fail=$((fail + 1)); echo "FAIL $1"; [ -s "$tmp/why" ] && tail -n 30 "$tmp/why"; fi
    : >"$tmp/why"
}
model="$assets/weights/yolov8n.pt"
image="$assets/images/bus.jpg"
prefix="$tmp/prefix"
libdir="$(sed -nE 's/^CMAKE_INSTALL_LIBDIR:[A-Z]+=(.*)/\1/p' "$build/CMakeCache.txt")"
major="$(sed -nE 's/^#define HY_VERSION_MAJOR ([0-9]+).*/\1/p' "$src/include/hotyolo.h")"
version="$(sed -nE 's/^#define HY_VERSION_STRING "([^"]+)".*/\1/p' "$src/include/hotyolo.h")"

# A sanitized library needs its runtime loaded first (tests/hy_test.h: HY_TEST_SANITIZED=1).
preload=""
if readelf -d "$build/libhotyolo.so" | grep -q 'libasan'; then
    preload="$(cc -print-file-name=libasan.so)"
fi
static=ON
readelf -d "$build/libhotyolo.so" | grep -qE 'lib(asan|ubsan|tsan)' && static=OFF

cmake --install "$build" --prefix "$prefix" >"$tmp/why" 2>&1
check "cmake --install into $prefix" '[ $? -eq 0 ]'
missing=""
for f in include/hotyolo.h include/hotyolo/train.h "$libdir/libhotyolo.a" "$libdir/libhotyolo.so" \
    "$libdir/libhotyolo.so.$major" "$libdir/libhotyolo.so.$version" "$libdir/pkgconfig/hotyolo.pc" \
    "$libdir/cmake/hotyolo/hotyoloConfig.cmake" "$libdir/cmake/hotyolo/hotyoloConfigVersion.cmake" \
    "$libdir/cmake/hotyolo/hotyoloTargets.cmake"; do
    [ -e "$prefix/$f" ] || missing="$missing $f"
done
echo "missing:$missing" >"$tmp/why"
check "headers, both libraries, hotyolo.pc and the CMake package are installed" '[ -z "$missing" ]'
for h in "$src"/include/hotyolo/*.h; do
    cmp -s "$h" "$prefix/include/hotyolo/$(basename "$h")" || echo "differs: $h" >>"$tmp/why"
done
check "every public header is installed as is" '[ ! -s "$tmp/why" ]'

# The reference: the CLI's table rows "  NAME  CONF  [X1, Y1, X2, Y2]"
"$cli" detect "$model" "$image" >"$tmp/cli.out" 2>"$tmp/why"
grep -E '^  [a-z].*\]$' "$tmp/cli.out" >"$tmp/cli.rows"
check "hotyolo detect finds objects on bus.jpg" '[ -s "$tmp/cli.rows" ]'
# same rows, confidences within 0.002 and boxes within 0.2 px
same_rows() {
    awk 'function abs(x) { return x < 0 ? -x : x }
         { gsub(/[\[\],]/, " "); n = split($0, f, " ") }
         NR == FNR { ref[FNR] = $0; nref = FNR; next }
         { split(ref[FNR], g, " ");
           if (f[1] != g[1] || abs(f[2] - g[2]) > 0.002) bad = 1;
           for (i = 3; i <= 6; i++) if (abs(f[i] - g[i]) > 0.2) bad = 1; nrow = FNR }
         END { exit (bad || nrow != nref) }' "$tmp/cli.rows" "$1"
}
run_example() { # NAME BINARY
    LD_PRELOAD="$preload" "$2" "$model" "$image" >"$tmp/$1.out" 2>"$tmp/why"
    local rc=$?
    grep -E '^  [a-z].*\]$' "$tmp/$1.out" >"$tmp/$1.rows"
    { echo "--- hotyolo detect"; cat "$tmp/cli.rows"; echo "--- $1 (rc $rc)"; cat "$tmp/$1.out"; } >>"$tmp/why"
    [ $rc -eq 0 ] && same_rows "$tmp/$1.rows"
}
uses_installed() { # BINARY: the libhotyolo.so it loads is the installed one
    LD_LIBRARY_PATH="$prefix/$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" ldd "$1" >"$tmp/why" 2>&1
    grep -qE "libhotyolo\.so\.$major => $prefix/$libdir/libhotyolo\.so\.$major" "$tmp/why"
}

mkdir -p "$tmp/example"
cp "$src/examples/detect.c" "$src/examples/stream.c" "$src/examples/CMakeLists.txt" "$tmp/example/"

# 1. pkg-config
export PKG_CONFIG_PATH="$prefix/$libdir/pkgconfig"
check "pkg-config --modversion hotyolo = $version" '[ "$(pkg-config --modversion hotyolo)" = "$version" ]'
flags="$(pkg-config --cflags --libs hotyolo)"
echo "pkg-config --cflags --libs hotyolo: $flags"
# shellcheck disable=SC2086
cc -std=c11 -Wall -Wextra -Werror -o "$tmp/detect_pc" "$tmp/example/detect.c" $flags >"$tmp/why" 2>&1
check "example builds with pkg-config" '[ $? -eq 0 ]'
check "the pkg-config build links the installed libhotyolo.so.$major" 'uses_installed "$tmp/detect_pc"'
LD_LIBRARY_PATH="$prefix/$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" run_example pc "$tmp/detect_pc"
check "pkg-config build: same detections as hotyolo detect" '[ $? -eq 0 ]'
unset PKG_CONFIG_PATH

# 2. find_package(hotyolo)
cmake -S "$tmp/example" -B "$tmp/example-build" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=Release \
    -DHY_EXAMPLES_STATIC=$static >"$tmp/why" 2>&1 && cmake --build "$tmp/example-build" >>"$tmp/why" 2>&1
check "example builds with find_package(hotyolo)" '[ $? -eq 0 ]'
check "the find_package build links the installed libhotyolo.so.$major" 'uses_installed "$tmp/example-build/detect"'
run_example cmake "$tmp/example-build/detect"
check "find_package build: same detections as hotyolo detect" '[ $? -eq 0 ]'
if [ "$static" = ON ]; then
    readelf -d "$tmp/example-build/detect_static" | grep -q 'libhotyolo' && echo "detect_static needs libhotyolo.so" >"$tmp/why"
    check "hotyolo::hotyolo_static links libhotyolo.a" '[ ! -s "$tmp/why" ]'
    run_example static "$tmp/example-build/detect_static"
    check "static build: same detections as hotyolo detect" '[ $? -eq 0 ]'
else
    echo "skip: hotyolo::hotyolo_static (a sanitized libhotyolo.a needs the sanitizer's link flags)"
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
