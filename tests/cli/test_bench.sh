#!/usr/bin/env bash
# hotyolo bench: runs, reports every phase, JSON fields, usage errors.
# Usage: bash test_bench.sh CLI_PATH ASSETS_DIR SOURCE_DIR
set -u
cli="$1"
assets="$2"
[ -d "$assets" ] || { echo "skip: shared assets not found at $assets"; exit 77; }
pass=0
fail=0
tmp="$(mktemp -d)"
trap 'rm -rf -- "$tmp"' EXIT
run() { "$cli" "$@" >"$tmp/out" 2>"$tmp/err"; rc=$?; }
check() {
    if eval "$2"; then pass=$((pass + 1)); echo "ok   $1"; else
        fail=$((fail + 1)); echo "FAIL $1"; echo "     rc=$rc"; head -c 1500 "$tmp/out"; head -c 1500 "$tmp/err"; fi
}
out_has() { grep -qE -- "$1" "$tmp/out"; }
err_has() { grep -qE -- "$1" "$tmp/err"; }

run bench --help
check "bench --help documents the options" '[ $rc -eq 0 ] && out_has "--cold-process" && out_has "--no-warmup"'
run bench
check "no MODEL: exit 2" '[ $rc -eq 2 ] && err_has "missing MODEL"'
run bench "$assets/weights/yolov8n.pt" --imgsz 100
check "--imgsz 100: exit 2 naming it" '[ $rc -eq 2 ] && err_has "imgsz"'
run bench "$assets/weights/yolov8n.pt" --cold-process 2
check "--cold-process without --image: exit 2" '[ $rc -eq 2 ] && err_has "needs --image"'
run bench /nonexistent.pt --runs 1
check "missing model: exit 1 naming it" '[ $rc -eq 1 ] && err_has "/nonexistent.pt"'

run bench "$assets/weights/yolov8n.pt" --imgsz 320 --runs 5 --warmup 2
check "table has every phase" 'out_has "^  load " && out_has "time to ready" && out_has "first inference, no warm-up" &&
    out_has "first inference after warm-up" && out_has "steady median" && out_has "peak RSS" &&
    out_has "time to ready <= 4x steady \\+ 50 ms .*(met|not met)$" && out_has "stddev <= 5% of the median"'
run bench "$assets/weights/yolov8n.pt" --imgsz 320 --runs 5 --json --image "$assets/images/bus.jpg" --cold-process 2
check "--json has the measurements" '[ $rc -eq 0 ] && out_has "\"time_to_ready_ms\"" &&
    out_has "\"first_inference_after_warmup_ms\"" && out_has "\"stddev_ms\"" && out_has "\"cold_process_runs\": 2" &&
    out_has "\"peak_rss_kb\""'
cp "$tmp/out" "$tmp/bench.json"
# JSON written (the record read from the child's pipe) comes before the child exits; the
# reference loops and the K engines are reported (node: installed by install-deps.sh)
check "--json: JSON-written <= exit, reference loops, round trip (runs split near/far), engines" 'node -e "
  const b = JSON.parse(require(\"fs\").readFileSync(process.argv[1], \"utf8\"));
  const ok = b.cold_process.median_ms > 0 && b.cold_process.median_ms <= b.cold_process_exit.median_ms &&
    b.reference_compute_loop.median_ms > 0 && b.reference_memory_loop.median_ms > 0 && b.engines === 5 &&
    (b.threads < 2 || (b.reference_round_trip.min_ns > 0 &&
      b.reference_round_trip.median_ns >= b.reference_round_trip.min_ns &&
      b.reference_round_trip.runs_within_2x_min >= 1 &&
      b.reference_round_trip.runs_within_2x_min + b.reference_round_trip.runs_over_2x_min === b.runs)) &&
    b.first_inference_after_warmup_ms > 0 && b.first_inference_after_warmup_max_ms >= b.first_inference_after_warmup_ms &&
    b.first_after_warmup_over_next_runs > 0;
  process.exit(ok ? 0 : 1);" "$tmp/bench.json"'
run bench "$assets/weights/yolov8n.pt" --imgsz 320 --runs 3 --engines 0
check "--engines 0: exit 2" '[ $rc -eq 2 ] && err_has "engines"'
run bench "$assets/weights/yolov8n.pt" --imgsz 320 --runs 3 --no-warmup --json
check "--no-warmup: zero warm-up passes" '[ $rc -eq 0 ] && out_has "\"warmup_runs\": 0"'
run bench "$assets/weights/yolov8n.pt" --imgsz 320 --runs 2 --cold-idle 10
check "--cold-idle without --cold-process: exit 2" '[ $rc -eq 2 ] && err_has "needs --cold-process"'
run bench "$assets/weights/yolov8n.pt" --imgsz 320 --runs 2 --engines 1 --image "$assets/images/bus.jpg" \
    --cold-process 1 --cold-idle 300 --json
check "--cold-idle: recorded, and the process still timed" '[ $rc -eq 0 ] && out_has "\"cold_idle_ms\": 300" &&
    out_has "\"cold_process_runs\": 1"'

# page size: HY_HUGE_PAGES forces it either way, and the table says which was used
HY_HUGE_PAGES=0 run bench "$assets/weights/yolov8n.pt" --imgsz 320 --runs 2 --engines 1 --json
check "HY_HUGE_PAGES=0: 4 KiB pages reported, no probe" '[ $rc -eq 0 ] && out_has "\"huge_pages\": false" &&
    out_has "\"huge_page_probe_ms\": null"'
HY_HUGE_PAGES=1 run bench "$assets/weights/yolov8n.pt" --imgsz 320 --runs 2 --engines 1
check "HY_HUGE_PAGES=1: huge pages reported" '[ $rc -eq 0 ] && out_has "prepare .*2 MiB huge pages"'
# probe: the 640 arena has whole 2 MiB chunks; the table names the page size and the probe time
HY_HUGE_PAGES=probe run bench "$assets/weights/yolov8n.pt" --runs 2 --engines 1
check "HY_HUGE_PAGES=probe: page size and probe time reported" '[ $rc -eq 0 ] &&
    out_has "prepare .*(2 MiB huge|4 KiB) pages: a 2 MiB huge page took [0-9.]+ ms"'

# ---- --batch, --contexts, --device ------------------------------------------------------------
run bench --help
check "--help documents --batch, --contexts and --device" 'out_has "--batch N" && out_has "--contexts K" && out_has "--device NAME"'
run bench "$assets/weights/yolov8n.pt" --imgsz 320 --runs 2 --batch 0
check "--batch 0: exit 2 naming it" '[ $rc -eq 2 ] && err_has "--batch"'
run bench "$assets/weights/yolov8n.pt" --imgsz 320 --runs 2 --engines 1 --device nope
check "--device nope: exit 2, the accepted forms named" '[ $rc -eq 2 ] && err_has "nope" && err_has "expected cpu, ref, cuda"'
run bench "$assets/weights/yolov8n.pt" --imgsz 320 --runs 3 --engines 1 --warmup 1 --batch 3 --threads 2 --json
cp "$tmp/out" "$tmp/batch.json"
check "--batch 3 --json: batch recorded, images/s = 3 / steady median" '[ $rc -eq 0 ] && node -e "
  const b = JSON.parse(require(\"fs\").readFileSync(process.argv[1], \"utf8\"));
  const want = 3000 / b.steady.median_ms;
  process.exit(b.batch === 3 && b.device === \"cpu\" && Math.abs(b.images_per_s - want) < 1e-6 * want ? 0 : 1);" "$tmp/batch.json"'
run bench "$assets/weights/yolov8n.pt" --imgsz 320 --runs 3 --engines 1 --warmup 1 --batch 2
check "--batch 2: a throughput line in img/s" '[ $rc -eq 0 ] && out_has "batch 2," && out_has "^  throughput +[0-9.]+ img/s"'
run bench "$assets/weights/yolov8n.pt" --imgsz 320 --runs 3 --engines 1 --warmup 1 --threads 1 --contexts 2 --json
cp "$tmp/out" "$tmp/ctx.json"
check "--contexts 2 --threads 1: two 1-thread contexts measured" '[ $rc -eq 0 ] && node -e "
  const b = JSON.parse(require(\"fs\").readFileSync(process.argv[1], \"utf8\"));
  const c = b.contexts;
  process.exit(c && c.n === 2 && c.threads_each === 1 && c.runs_each === 3 && c.images_per_s > 0 &&
    Math.abs(c.images_per_s - 6000 / c.wall_ms) < 1e-6 * c.images_per_s ? 0 : 1);" "$tmp/ctx.json"'

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
