#!/usr/bin/env bash
# Runs the benchmarks (docs/bench.md says what every number means):
#   1. per-layer conv kernels (bench_ops)
#   2. end-to-end detection latency (bench_e2e: load, first frame, steady state)
#   3. load time per weights format (bench_load)
#   4. hotyolo vs ONNX Runtime (onnxruntime-node, CPU EP) side by side: steady forward latency
#      at 640x640, 1 and 2 threads, the two engines alternating in blocks (yolov8n, yolov8s, and
#      yolov5n when weights/yolov5n.pt is there: ORT on its `hotyolo export` ONNX); GFLOP/s against the
#      measured FMA peak (bench_peak); then cold start: process start -> first result.
#   5. throughput: images/s at batch 1, 4, 8 (2 threads); two 1-thread contexts vs one
#      2-thread context on one model (hotyolo bench --batch / --contexts; HY_BENCH_TP_RUNS);
#      video: hotyolo bench --video on a 640x480 H.264 clip made from coco128 (fps end to end,
#      first frame against the steady median; needs ffmpeg with libx264)
#   6. serving: latency (bench-serve.sh), RSS with 1 and 2 workers (bench-serve-rss.sh); val
#   scripts/bench.sh [BUILD] [ASSETS]
# Environment: HY_BENCH_ROUNDS (alternation rounds, default 5), HY_BENCH_RUNS (timed runs per
# block, default 10), HY_BENCH_WARMUP (3), HY_BENCH_COLD (fresh hotyolo processes, default 10;
# ORT gets half), HY_BENCH_QUICK=1 (only section 4), HOTYOLO_CACHE (see scripts/ort-setup.sh).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${1:-build}"
assets="${2:-../shared/assets}"
rounds="${HY_BENCH_ROUNDS:-5}"
runs="${HY_BENCH_RUNS:-10}"
warmup="${HY_BENCH_WARMUP:-3}"
cold_k="${HY_BENCH_COLD:-10}"
for b in bench_ops bench_e2e bench_load bench_infer bench_peak bench_spawn hotyolo; do
    [ -x "$build/$b" ] || { echo "bench: $build/$b is not built (make build)" >&2; exit 1; }
done
for f in weights/yolov8n.pt weights/yolov8s_random.pt weights/yolov8n.onnx images/bus.jpg \
    reference/bus_letterbox_640_input.npy; do
    [ -f "$assets/$f" ] || { echo "bench: $assets/$f not found" >&2; exit 1; }
done
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
# the fastest-loading form of each network: hotyolo safetensors, BN folded (same weights)
"$build/hotyolo" convert "$assets/weights/yolov8n.pt" "$tmp/yolov8n_fused.safetensors" --fuse >/dev/null
"$build/hotyolo" convert "$assets/weights/yolov8s_random.pt" "$tmp/yolov8s_fused.safetensors" --fuse >/dev/null
# YOLOv5n (optional): hotyolo on its fused safetensors, ORT on the ONNX `hotyolo export` writes
v5_pt="$assets/weights/yolov5n.pt" v5_model="" v5_onnx="" v5_why=""
if [ ! -f "$v5_pt" ]; then
    v5_why="$v5_pt not found"
elif ! "$build/hotyolo" convert "$v5_pt" "$tmp/yolov5n_fused.safetensors" --fuse >/dev/null 2>"$tmp/v5.err"; then
    v5_why="convert failed: $(tail -n 1 "$tmp/v5.err")"
else
    v5_model="$tmp/yolov5n_fused.safetensors"
    if "$build/hotyolo" export "$v5_pt" --format onnx -o "$tmp/yolov5n.onnx" >/dev/null 2>"$tmp/v5.err"; then
        v5_onnx="$tmp/yolov5n.onnx"
    else
        v5_why="hotyolo export failed: $(tail -n 1 "$tmp/v5.err")"
    fi
fi

if [ "${HY_BENCH_QUICK:-0}" != 1 ]; then
    echo "== conv kernels (bench_ops) =="
    "$build/bench_ops"
    echo
    for img in bus.jpg zidane.jpg; do
        echo "== end to end: yolov8n, $img =="
        "$build/bench_e2e" "$assets/weights/yolov8n.pt" "$assets/images/$img" 50
        echo
    done
    echo "== load time: .pt vs hotyolo safetensors (fused, packed) vs ONNX =="
    "$build/hotyolo" convert "$assets/weights/yolov8n.pt" "$tmp/yolov8n.safetensors" >/dev/null
    "$build/bench_load" "$assets/weights/yolov8n.pt" "$tmp/yolov8n_fused.safetensors" "$tmp/yolov8n.safetensors" \
        "$assets/weights/yolov8n.onnx" -n 30
    echo
fi

# ---- helpers --------------------------------------------------------------------------
# jnum FILE KEY: a number field of a one-line JSON object ("" when absent)
jnum() { sed -n "s/.*\"$2\": *\([-0-9.eE+]*\).*/\1/p" "$1" | head -n 1; }
# stats FILE (one number per line) -> "median p90 min stddev n"; the definitions of
# bench_infer.c / ort_bench.js: median = mean of the middle two, p90 nearest rank, sample stddev
stats() {
    sort -g "$1" | awk '{ a[NR] = $1; s += $1 }
        END { n = NR; if (n == 0) { print "nan nan nan nan 0"; exit }
              m = s / n; for (i = 1; i <= n; i++) v += (a[i] - m) ^ 2
              r = 0.9 * n; k = int(r); if (k < r) k++
              sd = 0; if (n > 1) sd = sqrt(v / (n - 1))
              printf "%.2f %.2f %.2f %.2f %d\n", (a[int((n - 1) / 2) + 1] + a[int(n / 2) + 1]) / 2, a[k], a[1], sd, n }'
}
# calc EXPR: floating-point arithmetic, "n/a" when an operand is missing
calc() { awk "BEGIN { x = $1; printf \"%.${2:-2}f\", x }" 2>/dev/null || echo n/a; }
maxof() { sort -g | tail -n 1; }

echo "== hotyolo vs onnxruntime (CPU) =="
cpu="$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -n 1)"
echo "machine: ${cpu:-unknown CPU}, $(nproc) online cores; $(date -u '+%Y-%m-%d %H:%M UTC')"

# ---- the peer ---------------------------------------------------------------------------
peer=""
if ! command -v node >/dev/null; then
    peer="node is not installed"
elif ! ortdir="$("$here/scripts/ort-setup.sh" 2>"$tmp/ort-setup.log")"; then
    peer="$(tail -n 1 "$tmp/ort-setup.log")"
fi
ort_js="$here/bench/ort/ort_bench.js"
if [ -z "$peer" ]; then
    export NODE_PATH="$ortdir/node_modules"
    echo "peer: onnxruntime-node 1.30.0, CPU execution provider ($ortdir)"
else
    echo "peer unavailable: ${peer:-unknown reason}"
fi

# ---- FMA peak -----------------------------------------------------------------------------
"$build/bench_peak" --threads 2 --json >"$tmp/peak.json"
peak1="$(jnum "$tmp/peak.json" gflops_t1)"
peak2="$(jnum "$tmp/peak.json" gflops_t2)"
echo "fp32 FMA peak (bench_peak, $(sed -n 's/.*"isa": *"\([a-z0-9]*\)".*/\1/p' "$tmp/peak.json")): 1 thread $peak1 GFLOP/s, 2 threads $peak2 GFLOP/s"

# ---- steady state: alternating blocks ---------------------------------------------------------
npy="$assets/reference/bus_letterbox_640_input.npy"
echo "steady state: input $npy (bus.jpg letterboxed, 1x3x640x640 f32); per cell $rounds rounds of"
echo "  [hotyolo block | ORT block] (order flipped every round), each block a fresh process:"
echo "  load, $warmup warm-up runs, $runs timed runs; statistics over all $((rounds * runs)) timed runs per engine"
ort_bench() { node "$ort_js" "$@"; }
# cell NAME THREADS HY_MODEL [ONNX] -> one table row in $tmp/rows
cell() {
    local name="$1" t="$2" hm="$3" om="${4:-}" key="$1_$2" r
    local hs="$tmp/hy_$key.txt" os="$tmp/ort_$key.txt" oerr=""
    : >"$hs"
    : >"$os"
    for r in $(seq 1 "$rounds"); do
        local order="hy ort"
        [ $((r % 2)) -eq 0 ] && order="ort hy"
        for e in $order; do
            if [ "$e" = hy ]; then
                "$build/bench_infer" "$hm" --threads "$t" --runs "$runs" --warmup "$warmup" --input "$npy" \
                    --samples "$hs" --json >"$tmp/hy_${key}_$r.json"
            elif [ -n "$om" ] && [ -z "$peer" ] && [ -z "$oerr" ]; then
                ort_bench "$om" --threads "$t" --runs "$runs" --warmup "$warmup" --input "$npy" \
                    --samples "$os" --json >"$tmp/ort_${key}_$r.json" 2>"$tmp/ort_err" ||
                    oerr="$(tail -n 1 "$tmp/ort_err")"
            fi
        done
    done
    [ -n "$oerr" ] && echo "peer failed on $name, $t threads: $oerr" >&2
    local gflop peak hm_ med hp90 hmin hsd hn om_med op90 omin osd on
    gflop="$(jnum "$tmp/hy_${key}_1.json" gflop)"
    peak="$peak1"
    [ "$t" = 2 ] && peak="$peak2"
    read -r hm_med hp90 hmin hsd hn < <(stats "$hs")
    local hrss ratio="n/a" ogf="n/a" opct="" orss="n/a"
    hrss="$(for f in "$tmp"/hy_"${key}"_*.json; do jnum "$f" peak_rss_kb; done | maxof)"
    local hgf hpct
    hgf="$(calc "$gflop / ($hm_med / 1000)" 1)"
    hpct="$(calc "100 * $hgf / $peak" 0)"
    if [ -s "$os" ] && [ -z "$oerr" ]; then
        read -r om_med op90 omin osd on < <(stats "$os")
        ratio="$(calc "$hm_med / $om_med" 2)"
        ogf="$(calc "$gflop / ($om_med / 1000)" 1)"
        opct="($(calc "100 * $ogf / $peak" 0)%)"
        orss="$(calc "$(for f in "$tmp"/ort_"${key}"_*.json; do jnum "$f" peak_rss_kb; done | maxof) / 1024" 0)"
    else
        om_med=n/a op90=n/a omin=n/a osd=n/a
    fi
    printf "%-8s %4s %3s  %7s %7s %7s %6s   %7s %7s %7s %6s  %6s   %-13s %-13s %5s %5s\n" \
        "$name" 640 "$t" "$hm_med" "$hp90" "$hmin" "$hsd" "$om_med" "$op90" "$omin" "$osd" "$ratio" \
        "$hgf ($hpct%)" "$ogf $opct" "$(calc "$hrss / 1024" 0)" "$orss" >>"$tmp/rows"
    eval "steady_hy_${key}=$hm_med steady_ort_${key}=$om_med"
}
: >"$tmp/rows"
cell yolov8n 1 "$tmp/yolov8n_fused.safetensors" "$assets/weights/yolov8n.onnx"
cell yolov8n 2 "$tmp/yolov8n_fused.safetensors" "$assets/weights/yolov8n.onnx"
cell yolov8s 1 "$tmp/yolov8s_fused.safetensors"
cell yolov8s 2 "$tmp/yolov8s_fused.safetensors"
if [ -n "$v5_model" ]; then
    cell yolov5n 1 "$v5_model" "$v5_onnx"
    cell yolov5n 2 "$v5_model" "$v5_onnx"
fi
echo
printf "%-17s  %-30s   %-30s  %6s   %-27s %-11s\n" "" "--------- hotyolo (ms) --------" \
    "------- onnxruntime (ms) ------" "hy/ORT" "GFLOP/s (% of FMA peak)" "peak RSS MiB"
printf "%-8s %4s %3s  %7s %7s %7s %6s   %7s %7s %7s %6s  %6s   %-13s %-13s %5s %5s\n" model size thr \
    median p90 min stddev median p90 min stddev median hotyolo ORT hy ORT
cat "$tmp/rows"
echo "(yolov8n: hotyolo on the fused safetensors converted from weights/yolov8n.pt, ORT on weights/yolov8n.onnx,"
echo " the same network exported by Ultralytics; yolov8s: weights/yolov8s_random.pt, no ONNX export: ORT n/a."
if [ -n "$v5_onnx" ]; then
    echo " yolov5n: hotyolo on the fused safetensors converted from weights/yolov5n.pt, ORT on the ONNX that"
    echo " \`hotyolo export --format onnx\` wrote from the same file (YOLOv5's export layout: output0 (1, 25200, 85),"
    echo " anchor decoding as ONNX ops); conv FLOPs $(jnum "$tmp/hy_yolov5n_1_1.json" gflop) GFLOP."
elif [ -n "$v5_model" ]; then
    echo " yolov5n: hotyolo on the fused safetensors from weights/yolov5n.pt; ORT n/a: $v5_why."
else
    echo " yolov5n: not run: $v5_why."
fi
echo " hy/ORT < 1: hotyolo faster. GFLOP/s = conv FLOPs ($(jnum "$tmp/hy_yolov8n_1_1.json" gflop) / $(jnum "$tmp/hy_yolov8s_1_1.json" gflop) GFLOP) / median.)"

# ---- cold start -----------------------------------------------------------------------------
echo
echo "== cold start: process start -> first result, yolov8n, 2 threads, fresh processes =="
# in-process steady latency of the same detect call: one block before and one after the fresh
# processes, statistics over both
detect_block() {
    "$build/bench_infer" "$tmp/yolov8n_fused.safetensors" --threads 2 --runs 10 --warmup "$warmup" \
        --image "$assets/images/bus.jpg" --samples "$tmp/detect_steady.txt" --json >/dev/null
}
: >"$tmp/detect_steady.txt"
detect_block
c_fused=("$build/hotyolo" detect "$tmp/yolov8n_fused.safetensors" "$assets/images/bus.jpg" --json "$tmp/c.jsonl" --quiet --threads 2)
c_pt=("$build/hotyolo" detect "$assets/weights/yolov8n.pt" "$assets/images/bus.jpg" --json "$tmp/c.jsonl" --quiet --threads 2)
c_pt_nc=("${c_pt[@]}" --no-cache)
export HOTYOLO_CACHE_DIR="$tmp/pcache" # the packed-weights cache, empty before the first .pt run
c_api=("$build/bench_infer" "$tmp/yolov8n_fused.safetensors" --cold --threads 2 --input "$npy" --json)
c_ort=(node "$ort_js" "$assets/weights/yolov8n.onnx" --cold --threads 2 --input "$npy" --out "$tmp/ort_cold.json")
sp() { "$build/bench_spawn" -n 1 --samples "$1" --json -- "${@:2}" >/dev/null; }
# the first .pt run fills the packed-weights cache: timed on its own
: >"$tmp/c_pt_fill.txt"
sp "$tmp/c_pt_fill.txt" "${c_pt[@]}"
# page cache warm for every file involved, untimed
for c in c_fused c_pt c_pt_nc c_api; do
    eval "sp \"\$tmp/warm.txt\" \"\${$c[@]}\""
done
[ -z "$peer" ] && { sp "$tmp/warm.txt" "${c_ort[@]}" || peer="ort_bench.js --cold failed"; }
: >"$tmp/c_fused.txt" && : >"$tmp/c_pt.txt" && : >"$tmp/c_pt_nc.txt" && : >"$tmp/c_api.txt" && : >"$tmp/c_ort.txt"
for i in $(seq 1 "$cold_k"); do # interleaved: every engine sees the same machine state
    sp "$tmp/c_fused.txt" "${c_fused[@]}"
    sp "$tmp/c_pt.txt" "${c_pt[@]}"
    sp "$tmp/c_pt_nc.txt" "${c_pt_nc[@]}"
    sp "$tmp/c_api.txt" "${c_api[@]}"
    if [ -z "$peer" ] && [ $((i % 2)) -eq 1 ]; then
        sp "$tmp/c_ort.txt" "${c_ort[@]}" || echo "bench: an ORT cold run failed (left out)" >&2
    fi
done
detect_block
detect_steady="$(stats "$tmp/detect_steady.txt" | cut -d' ' -f1)"
# crow LABEL SAMPLES STEADY_MS KEY
crow() {
    local med p90 min sd n rss
    if [ ! -s "$2" ]; then
        printf "%-48s %4s %8s %8s %8s %10s %8s\n" "$1" 0 n/a n/a n/a n/a n/a
        return
    fi
    read -r med p90 min sd n < <(cut -d' ' -f1 "$2" >"$2.wall" && stats "$2.wall")
    rss="$(cut -d' ' -f2 "$2" | maxof)"
    printf "%-48s %4s %8s %8s %8s %10s %8s\n" "$1" "$n" "$med" "$min" "$(calc "$rss / 1024" 0)" "$3" \
        "$(calc "$med / $3" 1)"
    eval "cold_med_$4=$med"
}
printf "%-48s %4s %8s %8s %8s %10s %8s\n" "process" runs median min RSS_MiB steady_ms cold/st
crow "hotyolo detect bus.jpg (fused safetensors)" "$tmp/c_fused.txt" "$detect_steady" fused
crow "hotyolo detect bus.jpg (.pt, cache warm)" "$tmp/c_pt.txt" "$detect_steady" pt
crow "hotyolo detect bus.jpg (.pt, --no-cache)" "$tmp/c_pt_nc.txt" "$detect_steady" pt_nc
crow "hotyolo detect bus.jpg (.pt, fills the cache)" "$tmp/c_pt_fill.txt" "$detect_steady" pt_fill
crow "bench_infer --cold (fused, 640x640 tensor)" "$tmp/c_api.txt" "${steady_hy_yolov8n_2}" api
if [ -z "$peer" ]; then
    crow "node ort_bench.js --cold (.onnx, 640x640 tensor)" "$tmp/c_ort.txt" "${steady_ort_yolov8n_2}" ort
    echo "cold start hotyolo/ORT: tensor -> output $(calc "$cold_med_api / $cold_med_ort" 2)," \
        "JPEG -> boxes (fused) vs tensor -> output $(calc "$cold_med_fused / $cold_med_ort" 2)"
    echo "(last ORT cold run: node start -> script $(jnum "$tmp/ort_cold.json" node_boot_ms) ms, require" \
        "$(jnum "$tmp/ort_cold.json" require_ms) ms, session create $(jnum "$tmp/ort_cold.json" session_create_ms) ms," \
        "run $(jnum "$tmp/ort_cold.json" run_ms) ms)"
else
    echo "node ort_bench.js --cold: peer unavailable: $peer"
fi
echo "(wall = bench_spawn: posix_spawn -> wait4, RSS = the child's ru_maxrss; steady_ms: hotyolo detect rows ="
echo " in-process hy_detect on bus.jpg (letterbox+forward+NMS, no decode), tensor rows = the 2-thread medians above)"

echo
echo "== zero cold start: hotyolo bench (engine lifecycle, jitter, one-shot process), yolov8n fused, 2 threads =="
# The acceptance figures of docs/bench.md: first inference after prepare + warm-up (median of 5
# engines), stddev over 200 runs beside the machine's own reference loops, time to ready, and
# fresh `hotyolo detect` processes alternated with in-process decode + detect of bus.jpg.
"$build/hotyolo" bench "$tmp/yolov8n_fused.safetensors" --threads 2 --runs 200 \
    --image "$assets/images/bus.jpg" --cold-process "$((cold_k * 2))" || echo "hotyolo bench failed"

echo
echo "== throughput: batches and contexts (hotyolo bench, yolov8n fused, 640x640) =="
# images/s at batch 1, 4 and 8 on 2 threads (one forward pass of N images), then two 1-thread
# contexts on one model, each driven by its own thread, against one 2-thread context (same
# code path: hotyolo bench --contexts K, the contexts started together, images/s over the wall)
tp_runs="${HY_BENCH_TP_RUNS:-20}"
tp_model="$tmp/yolov8n_fused.safetensors"
# jlast FILE KEY: the last occurrence of a number field (a nested object's, in bench's JSON)
jlast() { sed -n "s/.*\"$2\": *\([-0-9.eE+]*\).*/\1/p" "$1" | tail -n 1; }
printf "%-44s %10s %10s %9s\n" "run" "ms/pass" "img/s" "peak MiB"
for n in 1 4 8; do
    if "$build/hotyolo" bench "$tp_model" --threads 2 --batch "$n" --runs "$tp_runs" --engines 1 --warmup 2 \
        --json >"$tmp/tp_b$n.json"; then
        printf "%-44s %10.1f %10.2f %9.0f\n" "batch $n, 2 threads" "$(jnum "$tmp/tp_b$n.json" median_ms)" \
            "$(jnum "$tmp/tp_b$n.json" images_per_s)" "$(calc "$(jnum "$tmp/tp_b$n.json" peak_rss_kb) / 1024" 0)"
    else
        echo "batch $n: hotyolo bench failed"
    fi
done
for cfg in "2 1" "1 2"; do # contexts, threads each
    read -r k t <<<"$cfg"
    if "$build/hotyolo" bench "$tp_model" --threads "$t" --contexts "$k" --runs "$tp_runs" --engines 1 --warmup 2 \
        --json >"$tmp/tp_c$k.json"; then
        printf "%-44s %10s %10.2f %9s\n" "$k context(s) x $t thread(s) on one model" "" \
            "$(jlast "$tmp/tp_c$k.json" images_per_s)" ""
        eval "tp_ctx_$k=$(jlast "$tmp/tp_c$k.json" images_per_s)"
    else
        echo "$k contexts x $t threads: hotyolo bench failed"
    fi
done
[ -n "${tp_ctx_2:-}" ] && [ -n "${tp_ctx_1:-}" ] &&
    echo "two 1-thread contexts / one 2-thread context: $(calc "$tp_ctx_2 / $tp_ctx_1" 2)x the images/s"

echo
echo "== video: hotyolo bench --video, yolov8n fused, 2 threads, 640x480 H.264 (coco128 + sensor noise, 30 fps) =="
# 8 coco128 images letterboxed to 640x480, 0.5 s each, with temporal noise as a camera sensor
# gives (every frame costs a real decode): 120 frames, x264 defaults (B-frames);
# a frame's time = its decode (the stream's thread) + hy_detect; first = frame 0
vid_imgs="$assets/datasets/coco128/images/train2017"
vid_clip() { # the clip at $tmp/vid.mp4, from 640x480 PNGs (the images differ in size)
    local k=0 f
    for f in $(ls "$vid_imgs"/*.jpg | head -n 8); do
        ffmpeg -hide_banner -loglevel error -nostdin -i "$f" -frames:v 1 \
            -vf "scale=640:480:force_original_aspect_ratio=decrease,pad=640:480:(ow-iw)/2:(oh-ih)/2" \
            "$tmp/vid$k.png" || return 1
        k=$((k + 1))
    done
    ffmpeg -hide_banner -loglevel error -nostdin -framerate 2 -i "$tmp/vid%d.png" -vf fps=30,noise=alls=8:allf=t -c:v libx264 \
        -pix_fmt yuv420p "$tmp/vid.mp4"
}
if ! command -v ffmpeg >/dev/null || ! ffmpeg -hide_banner -encoders 2>/dev/null | grep libx264 >/dev/null; then
    echo "video: skipped (ffmpeg with libx264 not found)"
elif ! vid_clip; then
    echo "video: skipped (could not make the clip from $vid_imgs)"
else
    "$build/hotyolo" bench "$tmp/yolov8n_fused.safetensors" --threads 2 --video "$tmp/vid.mp4" ||
        echo "hotyolo bench --video failed"
fi

echo
echo "== serving (hotyolo serve) =="
"$(dirname "$0")/bench-serve.sh" "$build" "$assets"

echo
echo "== serving memory: hotyolo serve RSS, 1 vs 2 workers on one model (weights once) =="
"$(dirname "$0")/bench-serve-rss.sh" "$build" "$assets" "$assets/weights/yolov8s_random.pt" 640 ||
    echo "bench-serve-rss failed"

echo
echo "== validation: hotyolo val on coco128 (yolov8n.pt, imgsz 640, batch 8) =="
t0=$(date +%s.%N)
"$build/hotyolo" val "$assets/weights/yolov8n.pt" --data "$assets/datasets/coco128/data.yaml" --imgsz 640 --batch 8 \
    2>/dev/null | grep -E "^ +all|Class" || echo "val failed"
t1=$(date +%s.%N)
awk -v a="$t0" -v b="$t1" 'BEGIN {w = b - a; printf "wall time %.1f s (Ultralytics 8.0.172 took 71 s on this 2-core machine: %.1fx faster)\n", w, 71 / w}'
