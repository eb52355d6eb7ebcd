#!/usr/bin/env bash
# Runs the benchmarks: per-layer conv kernels (bench_ops) and end-to-end detection latency
# (bench_e2e: load, first frame, steady state).
#   scripts/bench.sh [BUILD] [ASSETS]
set -euo pipefail
build="${1:-build}"
assets="${2:-../shared/assets}"
for b in bench_ops bench_e2e bench_load hotyolo; do
    [ -x "$build/$b" ] || { echo "bench: $build/$b is not built (make build)" >&2; exit 1; }
done
[ -f "$assets/weights/yolov8n.pt" ] || { echo "bench: $assets/weights/yolov8n.pt not found" >&2; exit 1; }
echo "== conv kernels (bench_ops) =="
"$build/bench_ops"
echo
for img in bus.jpg zidane.jpg; do
    echo "== end to end: yolov8n, $img =="
    "$build/bench_e2e" "$assets/weights/yolov8n.pt" "$assets/images/$img" 50
    echo
done
echo "== load time: .pt vs hotyolo safetensors (fused, packed) vs ONNX =="
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
"$build/hotyolo" convert "$assets/weights/yolov8n.pt" "$tmp/yolov8n_fused.safetensors" --fuse >/dev/null
"$build/hotyolo" convert "$assets/weights/yolov8n.pt" "$tmp/yolov8n.safetensors" >/dev/null
"$build/bench_load" "$assets/weights/yolov8n.pt" "$tmp/yolov8n_fused.safetensors" "$tmp/yolov8n.safetensors" \
    "$assets/weights/yolov8n.onnx" -n 30
