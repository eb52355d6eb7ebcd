#!/usr/bin/env bash
# Runs the benchmarks that are built (placeholder: bench_ops only for now).
#   scripts/bench.sh [BUILD]   (default: build)
set -euo pipefail
build="${1:-build}"
if [ -x "$build/bench_ops" ]; then
    exec "$build/bench_ops"
fi
echo "bench: $build/bench_ops is not built (configure with -DHY_BUILD_BENCH=ON and build)" >&2
exit 1
