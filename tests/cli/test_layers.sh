#!/usr/bin/env bash
# Layering check (docs/design.md, "Layers and what each may include"): every #include "..." in
# src/ and tools/ is resolved to a file (next to the includer, then src/, include/, tools/) and
# checked against the table below; each violation is printed as file:line. A planted tree is
# checked first, so the checker itself is known to catch what it should.
# Usage: test_layers.sh CLI ASSETS SRCDIR (only SRCDIR is used).
set -u

# Layer (a folder under src/, a backend folder under src/ops/, or tools) and what its files may
# include besides their own layer and the public headers (include/hotyolo.h, include/hotyolo/):
# layers or single headers. Low to high: core < tensor < ops < backend < io < image < data <
# model < video < val < train < registry < server < tools. The backends' kernels (ops/cpu, ops/ref, ops/cuda) are included by no
# other layer: everything above reaches them through the backend vtable.
RULES='
core    :
tensor  : core ops/op.h
ops     : core tensor
ops/cpu : core tensor ops backend/backend_impl.h
ops/ref : core tensor ops backend/backend_impl.h
ops/cuda: core tensor ops backend/backend_impl.h
backend : core tensor ops
io      : core tensor ops backend
image   : core tensor ops backend io
data    : core tensor ops backend io image
model   : core tensor ops backend io image data
video   : core tensor ops backend io image data model
val     : core tensor ops backend io image data model video
train   : core tensor ops backend io image data model video val
registry: core tensor ops backend io image data model video val train
server  : core tensor ops backend io image data model video val train registry
tools   : core tensor ops backend io image data model video val train registry server
'

src="${3:-$(cd "$(dirname "$0")/../.." && pwd)}"
declare -A allow=()
while IFS=: read -r layer deps; do
    layer="${layer// /}"
    [ -n "$layer" ] && allow[$layer]=" $deps "
done <<<"$RULES"

# layer of a path relative to the tree root: src/ops/<backend>/... -> ops/<backend>,
# src/<dir>/... -> <dir>, tools/... -> tools, include/... -> public
layer_of() {
    local p="$1" rest
    case "$p" in
    include/*) echo public ;;
    tools/*) echo tools ;;
    src/ops/*/*) rest="${p#src/ops/}"; echo "ops/${rest%%/*}" ;;
    src/*/*) rest="${p#src/}"; echo "${rest%%/*}" ;;
    *) echo "?" ;;
    esac
}

# check_tree ROOT: prints one line per violation, returns their count (capped at 255)
check_tree() {
    local root="$1" n=0 f rel line num text inc dir target from to
    while IFS= read -r f; do
        rel="${f#"$root"/}"
        from="$(layer_of "$rel")"
        if [ -z "${allow[$from]+x}" ]; then
            echo "$rel: layer '$from' has no row in the table (tests/cli/test_layers.sh)"
            n=$((n + 1))
            continue
        fi
        while IFS= read -r line; do
            num="${line%%:*}"
            text="${line#*:}"
            [[ "$text" =~ ^[[:space:]]*#[[:space:]]*include[[:space:]]*\"([^\"]+)\" ]] || continue
            inc="${BASH_REMATCH[1]}"
            dir="$(dirname "$rel")"
            target=""
            for cand in "$dir/$inc" "src/$inc" "include/$inc" "tools/$inc"; do
                if [ -f "$root/$cand" ]; then target="$(realpath -m --relative-to="$root" "$root/$cand")"; break; fi
            done
            if [ -z "$target" ]; then
                echo "$rel:$num: #include \"$inc\" not found under src/, include/ or tools/"
                n=$((n + 1))
                continue
            fi
            to="$(layer_of "$target")"
            [ "$to" = public ] || [ "$to" = "$from" ] && continue
            case "${allow[$from]}" in
            *" $to "* | *" ${target#src/} "*) continue ;;
            esac
            echo "$rel:$num: layer $from includes \"$inc\" (layer $to): not allowed"
            n=$((n + 1))
        done < <(grep -n '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$f")
    done < <(find "$root/src" "$root/tools" -type f \( -name '*.c' -o -name '*.h' -o -name '*.cu' -o -name '*.cuh' \) | LC_ALL=C sort)
    [ $n -gt 255 ] && n=255
    return $n
}

fail=0
tmp="$(mktemp -d)"
trap 'rm -rf -- "$tmp"' EXIT

# 1. a planted tree: three violations, two allowed includes of each special kind
mkdir -p "$tmp/t/src/core" "$tmp/t/src/tensor" "$tmp/t/src/ops/cpu" "$tmp/t/src/model" \
    "$tmp/t/src/backend" "$tmp/t/src/data" "$tmp/t/include" "$tmp/t/tools"
touch "$tmp/t/src/core/core.h" "$tmp/t/src/ops/op.h" "$tmp/t/include/hotyolo.h" "$tmp/t/tools/cli.h"
printf '#include "core/core.h"\n#include "backend/backend_impl.h"\n' >"$tmp/t/src/ops/cpu/k.h"
printf '#include "core/core.h"\n' >"$tmp/t/src/backend/backend_impl.h"
printf '#include "core/core.h"\n#include "ops/op.h"\n#include "model/m.h"\n' >"$tmp/t/src/tensor/graph.h"
printf '#include "hotyolo.h"\n#include "tensor/graph.h"\n' >"$tmp/t/src/model/m.h"
printf '/* x */\n#include "m.h"\n  #  include "ops/cpu/k.h"\n#include <stdio.h>\n' >"$tmp/t/src/model/m.c"
printf '#include "cli.h"\n#include "data/gone.h"\n' >"$tmp/t/tools/main.c"
out="$(check_tree "$tmp/t")"
got=$?
want="src/model/m.c:3: layer model includes \"ops/cpu/k.h\" (layer ops/cpu): not allowed
src/tensor/graph.h:3: layer tensor includes \"model/m.h\" (layer model): not allowed
tools/main.c:2: #include \"data/gone.h\" not found under src/, include/ or tools/"
if [ "$got" -eq 3 ] && [ "$out" = "$want" ]; then echo "ok   planted tree: its 3 violations found, nothing else"; else
    fail=1
    echo "FAIL planted tree: $got violations"
    printf '%s\n' "$out" | sed 's/^/  /'
fi

# 2. this tree
out="$(check_tree "$src")"
got=$?
if [ "$got" -eq 0 ]; then echo "ok   src/ and tools/ follow the layer table"; else
    fail=1
    echo "FAIL src/ and tools/: $got layer violations"
    printf '%s\n' "$out" | sed 's/^/  /'
fi
[ $fail -eq 0 ]
