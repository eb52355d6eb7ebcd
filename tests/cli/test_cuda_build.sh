#!/usr/bin/env bash
# The CUDA backend cannot rot (issue 22: "CI builds it"): on a machine with the CUDA toolkit
# (nvcc and cuDNN), the build under test has the CUDA backend, and the HY_CUDA option is
# accepted as ON / OFF and refused otherwise at configure time (throwaway build folders,
# configure only: ~3 s each). Skipped (77) without the toolkit or cmake.
# Usage: test_cuda_build.sh CLI ASSETS SRCDIR (CLI and SRCDIR are used).
set -u
cli="$1"
src="$3"
nvcc=/usr/local/cuda/bin/nvcc
cudnn=/usr/local/cuda/include/cudnn.h
if [ ! -x "$nvcc" ] || [ ! -f "$cudnn" ]; then
    echo "skip: no CUDA toolkit here ($nvcc and $cudnn needed)"
    exit 77
fi
py=/usr/bin/python3
[ -x "$py" ] || { echo "skip: no $py"; exit 77; }
command -v cmake >/dev/null || { echo "skip: no cmake"; exit 77; }

pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; [ $# -gt 1 ] && printf '     %s\n' "$2"; }
tmp="$(mktemp -d)"
trap 'rm -rf -- "$tmp"' EXIT

# has_cuda BIN: prints "yes METHOD" or "no METHOD". The binary's own answer first (inspect
# --devices --json: a "cuda" row that is "built"); for a CLI without that command, its symbol
# table (the backend's registry entry hy__backend_cuda); for a stripped one, the cuDNN soname
# only the CUDA backend's loader holds.
has_cuda() {
    local bin="$1" verdict
    if "$bin" inspect --devices --json >"$tmp/devices.json" 2>/dev/null &&
        verdict="$("$py" - "$tmp/devices.json" 2>/dev/null <<'PY'
import json, sys
rows = json.load(open(sys.argv[1]))
print("yes" if any(r.get("kind") == "cuda" and r.get("built") is True for r in rows) else "no")
PY
)"; then
        echo "$verdict inspect --devices --json"
    elif command -v nm >/dev/null && nm "$bin" >"$tmp/nm" 2>/dev/null && [ -s "$tmp/nm" ]; then
        if grep -q ' hy__backend_cuda$' "$tmp/nm"; then echo "yes nm"; else echo "no nm"; fi
    elif grep -aq 'libcudnn\.so\.' "$bin"; then
        echo "yes strings"
    else
        echo "no strings"
    fi
}

# 1. the detector on planted programs: a CLI listing a cuda row not built, one listing it
# built, and a program that is not ours
for built in false true; do
    printf '#!/bin/sh\necho %s\n' "'[{\"name\":\"cpu\",\"kind\":\"cpu\",\"built\":true},{\"name\":\"cuda\",\"kind\":\"cuda\",\"built\":$built}]'" \
        >"$tmp/fake_$built"
    chmod +x "$tmp/fake_$built"
done
want="no inspect --devices --json|yes inspect --devices --json|no strings"
got="$(has_cuda "$tmp/fake_false")|$(has_cuda "$tmp/fake_true")|$(has_cuda /bin/true)"
if [ "$got" = "$want" ]; then ok "detector on planted programs: $got"; else bad "detector on planted programs" "$got"; fi

# 2. the build under test has the CUDA backend, unless it was configured without on purpose
cache="$(dirname "$cli")/CMakeCache.txt"
got="$(has_cuda "$cli")"
if [ -f "$cache" ] && grep -qiE '^HY_CUDA:STRING=(OFF|FALSE|NO|0)$' "$cache"; then
    echo "skip: $cli was configured with -DHY_CUDA=OFF on purpose (${got%% *} CUDA backend)"
elif [ "${got%% *}" = yes ]; then ok "$cli has the CUDA backend (found by ${got#* })"; else
    bad "$cli has no CUDA backend although the toolkit is installed (checked by ${got#* })" \
        "configure with -DHY_CUDA=ON (or AUTO) so the CUDA code is compiled by every build here"
fi

# 3. HY_CUDA at configure time (throwaway folders; nothing is built)
conf() { # conf NAME VALUE: configure output in $tmp/NAME.log, returns cmake's status
    cmake -S "$src" -B "$tmp/$1" -DHY_CUDA="$2" -DHY_BUILD_TESTS=OFF -DHY_BUILD_BENCH=OFF -DHY_BUILD_SHARED=OFF \
        >"$tmp/$1.log" 2>&1
}
t0=$(date +%s%N)
if conf on ON && grep -q 'CUDA backend: on' "$tmp/on.log"; then ok "-DHY_CUDA=ON configures, backend on"; else
    bad "-DHY_CUDA=ON configures with the backend on" "$(grep -iE 'cuda|error' "$tmp/on.log" | head -5)"; fi
if conf off OFF && grep -q 'CUDA backend: on' "$tmp/off.log"; then
    bad "-DHY_CUDA=OFF leaves the backend out" "$(grep 'CUDA backend' "$tmp/off.log")"
elif [ -f "$tmp/off/CMakeCache.txt" ] && grep -q '^HY_CUDA:STRING=OFF' "$tmp/off/CMakeCache.txt"; then
    ok "-DHY_CUDA=OFF configures, backend left out"
else
    bad "-DHY_CUDA=OFF configures" "$(tail -5 "$tmp/off.log")"
fi
if conf bogus bogus; then bad "-DHY_CUDA=bogus fails configure" "it configured"
elif grep -q 'expected AUTO, ON or OFF' "$tmp/bogus.log"; then ok "-DHY_CUDA=bogus fails: expected AUTO, ON or OFF"
else bad "-DHY_CUDA=bogus names the accepted values" "$(grep -A2 'CMake Error' "$tmp/bogus.log" | head -5)"; fi
echo "     (3 configures in $((($(date +%s%N) - t0) / 1000000)) ms)"

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
