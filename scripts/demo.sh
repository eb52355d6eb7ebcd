#!/usr/bin/env bash
# Runs hotyolo on the two classic demo images and writes annotated JPEGs + JSON Lines.
#
#   scripts/demo.sh [BUILD_CLI] [ASSETS]
#     BUILD_CLI  the hotyolo binary (default: build/hotyolo)
#     ASSETS     the shared assets folder (default: ../shared/assets)
#
# Weights: models/yolov8n.pt, else ASSETS/weights/yolov8n.pt, else downloaded into models/
# by scripts/get-weights.sh. Paths models/ and runs/demo/ are relative to the repository root.
set -euo pipefail

root="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)"
abspath() { case "$1" in /*) printf '%s\n' "$1" ;; *) printf '%s\n' "$PWD/$1" ;; esac; }
cli="$(abspath "${1:-$root/build/hotyolo}")"
assets="$(abspath "${2:-$root/../shared/assets}")"

die() { echo "demo: error: $*" >&2; exit 1; }
[ -x "$cli" ] || die "hotyolo binary '$cli' not found or not executable (build it with 'make')"
for img in bus.jpg zidane.jpg; do
    [ -f "$assets/images/$img" ] || die "'$assets/images/$img' not found (give the assets folder as 2nd argument)"
done

cd -- "$root"
if [ -f models/yolov8n.pt ]; then
    weights="models/yolov8n.pt"
elif [ -f "$assets/weights/yolov8n.pt" ]; then
    weights="$assets/weights/yolov8n.pt"
else
    echo "demo: no yolov8n.pt in models/ or $assets/weights/; downloading it"
    bash scripts/get-weights.sh "" models/yolov8n.pt || die "could not get the weights"
    weights="models/yolov8n.pt"
fi

mkdir -p runs/demo
echo "demo: $cli detect $weights bus.jpg zidane.jpg"
status=0
"$cli" detect "$weights" "$assets/images/bus.jpg" "$assets/images/zidane.jpg" \
    --save-dir runs/demo --json runs/demo/predictions.jsonl || status=$?
echo
echo "demo: annotated images: $root/runs/demo/bus.jpg $root/runs/demo/zidane.jpg"
echo "demo: predictions (JSON Lines): $root/runs/demo/predictions.jsonl"
exit "$status"
