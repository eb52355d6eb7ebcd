#!/usr/bin/env bash
# Installs the benchmark peer, ONNX Runtime's Node binding (onnxruntime-node, pinned in
# bench/ort/package.json), into a cache folder OUTSIDE the repository, and prints that folder
# (its node_modules is what NODE_PATH needs). Idempotent: an install that loads is kept.
#   scripts/ort-setup.sh [DIR]      default ${HOTYOLO_CACHE:-$HOME/.cache/hotyolo}/ort
# --ignore-scripts: the CPU library ships inside the package (bin/napi-v6/linux/x64/
# libonnxruntime.so.1); the postinstall script only downloads CUDA/TensorRT providers.
# Messages go to stderr; stdout is the folder only. Exit 1 with the reason when it cannot.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
pkg="$here/bench/ort/package.json"
dir="${1:-${HOTYOLO_CACHE:-$HOME/.cache/hotyolo}/ort}"
want="$(sed -n 's/.*"onnxruntime-node": *"\([^"]*\)".*/\1/p' "$pkg")"
[ -n "$want" ] || { echo "ort-setup: no onnxruntime-node version in $pkg" >&2; exit 1; }
command -v node >/dev/null || { echo "ort-setup: node is not installed (apt-get install nodejs npm)" >&2; exit 1; }

# Loads the binding (this is what fails when the native library is missing) and checks the version.
probe() {
    NODE_PATH="$dir/node_modules" node -e '
        const o = require("onnxruntime-node");
        const v = require("onnxruntime-node/package.json").version;
        if (v !== process.argv[1]) { console.error(`have ${v}, want ${process.argv[1]}`); process.exit(1); }
        if (typeof o.InferenceSession?.create !== "function") process.exit(1);' "$want" 2>/dev/null
}

if [ -f "$dir/package.json" ] && cmp -s "$pkg" "$dir/package.json" && probe; then
    echo "ort-setup: onnxruntime-node $want already installed in $dir" >&2
    echo "$dir"
    exit 0
fi
command -v npm >/dev/null || { echo "ort-setup: npm is not installed (apt-get install npm)" >&2; exit 1; }
case "$dir" in
"$here" | "$here"/*) echo "ort-setup: $dir is inside the repository; pick a folder outside it" >&2; exit 1 ;;
esac
mkdir -p "$dir"
cp "$pkg" "$dir/package.json"
echo "ort-setup: installing onnxruntime-node $want into $dir (npm install --ignore-scripts)" >&2
to=""
command -v timeout >/dev/null && to="timeout 600"
if ! (cd "$dir" && $to npm install --ignore-scripts --no-audit --no-fund --fetch-retries=1 \
    --loglevel=error >"$dir/npm-install.log" 2>&1); then
    why="$(grep -m 1 -E 'reason:|404 Not Found|No matching version' "$dir/npm-install.log" ||
        grep -m 1 -E 'npm error code' "$dir/npm-install.log" ||
        grep -m 1 'npm error' "$dir/npm-install.log" || echo "npm exited with an error")"
    echo "ort-setup: npm install failed (log: $dir/npm-install.log): ${why#npm error }" >&2
    exit 1
fi
if ! probe; then
    echo "ort-setup: installed, but require('onnxruntime-node') fails in $dir" >&2
    exit 1
fi
echo "ort-setup: onnxruntime-node $want ready in $dir" >&2
echo "$dir"
