#!/usr/bin/env bash
# Fine-tuning benchmark of issue 17 on datasets/bccd (3 classes, 205 train / 87 val): pretrained
# yolov8n.pt with --freeze 10, the same architecture from scratch, and staged unfreezing
# (--freeze 10 --unfreeze-at 10:0), each imgsz 320, batch 16, seed 0, EPOCHS (20) epochs; then
# the mAP50 per epoch of the three runs beside Ultralytics 8.0.172's
# (reference/train/ultralytics_bccd_finetune.txt), the epochs the pretrained run needs to reach
# the scratch run's final mAP50, and wall times against Ultralytics'.
#
# Usage: bench/finetune.sh [CLI] [ASSETS] [OUTDIR]    (build/hotyolo, ../shared/assets, a temp dir)
#        bench/finetune.sh --report-only OUTDIR [ASSETS]   (only read OUTDIR/{pretrained,scratch,
#                                                           staged}/results.csv and wall_s)
# Env: EPOCHS (20), THREADS (0: all cores), RUNS ("pretrained scratch staged": a subset).
# Exit status: 0 when every acceptance check passed, 1 when one failed or a run failed, 2 usage.
set -u

here="$(cd "$(dirname "$0")/.." && pwd)"
report_only=0
if [ "${1:-}" = "--report-only" ]; then
    report_only=1
    out="${2:?usage: $0 --report-only OUTDIR [ASSETS]}"
    assets="${3:-$here/../shared/assets}"
else
    cli="${1:-$here/build/hotyolo}"
    assets="${2:-$here/../shared/assets}"
    out="${3:-}"
fi
epochs="${EPOCHS:-20}"
runs="${RUNS:-pretrained scratch staged}"
ref="$assets/reference/train/ultralytics_bccd_finetune.txt"
data="$assets/datasets/bccd/data.yaml"
weights="$assets/weights/yolov8n.pt"

# --- runs ----------------------------------------------------------------------------------------

if [ "$report_only" = 0 ]; then
    [ -x "$cli" ] || { echo "finetune.sh: $cli: not an executable (build it: make)" >&2; exit 2; }
    [ -f "$data" ] || { echo "finetune.sh: $data: missing (ASSETS=$assets)" >&2; exit 2; }
    [ -f "$weights" ] || { echo "finetune.sh: $weights: missing" >&2; exit 2; }
    [ -n "$out" ] || out="$(mktemp -d "${TMPDIR:-/tmp}/hy_finetune.XXXXXX")"
    mkdir -p "$out" || exit 2
    common=(--data "$data" --imgsz 320 --batch 16 --epochs "$epochs" --seed 0
            --threads "${THREADS:-0}" --project "$out" --exist-ok -q)
    for r in $runs; do
        case "$r" in
        pretrained) args=(--model "$weights" --freeze 10) ;;
        scratch) args=(--arch yolov8n) ;;
        staged) args=(--model "$weights" --freeze 10 --unfreeze-at 10:0) ;;
        *) echo "finetune.sh: unknown run '$r'" >&2; exit 2 ;;
        esac
        echo "== $r: hotyolo train ${args[*]} (${epochs} epochs)"
        t0=$(date +%s.%N)
        if [ -x /usr/bin/time ]; then # peak RSS too
            /usr/bin/time -f "%M" -o "$out/$r.rss_kb" "$cli" train "${args[@]}" "${common[@]}" --name "$r" >"$out/$r.log" 2>&1
        else
            "$cli" train "${args[@]}" "${common[@]}" --name "$r" >"$out/$r.log" 2>&1
        fi
        rc=$?
        t1=$(date +%s.%N)
        mkdir -p "$out/$r"
        awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f\n", b - a }' >"$out/$r/wall_s"
        echo "$rc" >"$out/$r/exit_status"
        [ "$rc" = 0 ] || { echo "   exit status $rc (log: $out/$r.log):"; tail -5 "$out/$r.log"; }
        echo "   $(cat "$out/$r/wall_s") s"
    done
fi

# --- report --------------------------------------------------------------------------------------

# column COL (1-based: 7 = mAP50, 8 = mAP50-95) of OUT/RUN/results.csv, one value per line
col() {
    local f="$out/$1/results.csv"
    [ -f "$f" ] || return 0
    awk -F, -v c="$2" 'NR > 1 && NF >= c { v = $c; gsub(/ /, "", v); print v }' "$f"
}
# the reference file's value for KEY (the rest of its line)
refval() { [ -f "$ref" ] && awk -v k="$1" '$1 == k { $1 = ""; sub(/^ /, ""); print; exit }' "$ref"; }
# wall time of a run that ended with status 0 (nothing for a failed run)
wall() {
    [ -f "$out/$1/exit_status" ] && [ "$(cat "$out/$1/exit_status")" != 0 ] && return 0
    [ -f "$out/$1/wall_s" ] && cat "$out/$1/wall_s"
}
# last line of stdin, or "-"
last() { awk 'END { print (NR ? $0 : "-") }'; }

fail=0
for r in $runs; do
    if [ -f "$out/$r/exit_status" ] && [ "$(cat "$out/$r/exit_status")" != 0 ]; then
        echo "run $r failed (exit status $(cat "$out/$r/exit_status"); log: $out/$r.log)"
        fail=1
    fi
done
declare -A m50 m5095
for r in pretrained scratch staged; do
    m50[$r]="$(col "$r" 7 | tr '\n' ' ')"
    m5095[$r]="$(col "$r" 8 | tr '\n' ' ')"
done
u_pre="$(refval pretrained_freeze10_map50_by_epoch)"
u_scr="$(refval scratch_map50_by_epoch)"

echo
echo "Fine-tuning on bccd: imgsz 320, batch 16, seed 0, $epochs epochs ($out)"
echo "machine: $(lscpu 2>/dev/null | awk -F: '/^Model name/ { gsub(/^ +/, "", $2); print $2; exit }'), $(nproc) cores"
echo
echo "mAP50 (val) per epoch"
printf '%6s | %10s | %10s | %10s | %12s | %12s\n' epoch pretrained scratch staged "Ultr. pre." "Ultr. scr."
printf -- '-------+------------+------------+------------+--------------+-------------\n'
awk -v a="${m50[pretrained]}" -v b="${m50[scratch]}" -v c="${m50[staged]}" -v d="$u_pre" \
    -v e="$u_scr" 'BEGIN {
    na = split(a, A, " "); nb = split(b, B, " "); nc = split(c, C, " ")
    nd = split(d, D, " "); ne = split(e, E, " ")
    n = na; if (nb > n) n = nb; if (nc > n) n = nc; if (nd > n) n = nd; if (ne > n) n = ne
    for (i = 1; i <= n; i++)
        printf "%6d | %10s | %10s | %10s | %12s | %12s\n", i, f(A, i, na), f(B, i, nb),
               f(C, i, nc), f(D, i, nd), f(E, i, ne)
}
function f(X, i, nx) { return i <= nx ? sprintf("%.3f", X[i]) : "-" }'
echo "(epochs 1-based; results.csv's epoch column is 0-based, as Ultralytics 8.0.172 writes it)"

echo
echo "final mAP50 / mAP50-95"
for r in pretrained scratch staged; do
    printf '  %-11s %s / %s\n' "$r" "$(echo "${m50[$r]}" | tr ' ' '\n' | grep . | last)" \
        "$(echo "${m5095[$r]}" | tr ' ' '\n' | grep . | last)"
done
printf '  %-11s %s / %s\n' "Ultr. pre." "$(refval pretrained_freeze10_e20_map50)" \
    "$(refval pretrained_freeze10_e20_map50_95)"
printf '  %-11s %s / %s\n' "Ultr. scr." "$(refval scratch_e20_map50)" "$(refval scratch_e20_map50_95)"

echo
# first epoch where pretrained >= scratch's final, and that as a share of the epochs
# sets V to PASS / FAIL (and fail=1); called in this shell, not in $(...)
verdict() { if [ "$1" = 1 ]; then V=PASS; else V=FAIL; fail=1; fi; }
if [ -n "${m50[pretrained]// /}" ] && [ -n "${m50[scratch]// /}" ]; then
    read -r first n pct sfinal < <(awk -v a="${m50[pretrained]}" -v b="${m50[scratch]}" 'BEGIN {
        na = split(a, A, " "); nb = split(b, B, " "); s = B[nb]; f = 0
        for (i = 1; i <= na; i++) if (A[i] + 0 >= s + 0) { f = i; break }
        printf "%d %d %.0f %s\n", f, na, (f ? 100 * f / na : 100), s }')
    if [ "$first" -gt 0 ]; then
        ok=$(awk -v f="$first" -v n="$n" 'BEGIN { print (f <= 0.4 * n) ? 1 : 0 }')
        verdict "$ok"
        echo "pretrained reaches scratch's final mAP50 $sfinal at epoch $first of $n ($pct%; <= 40%): $V"
    else
        verdict 0
        echo "pretrained never reaches scratch's final mAP50 $sfinal: $V"
    fi
    echo "  (Ultralytics: $(refval pretrained_epochs_to_reach_scratch_final))"
else
    verdict 0
    echo "epochs saved: needs both the pretrained and the scratch results.csv: $V"
fi

pfinal="$(echo "${m50[pretrained]}" | tr ' ' '\n' | grep . | last)"
if [ "$pfinal" != "-" ]; then
    ok=$(awk -v v="$pfinal" 'BEGIN { print (v + 0 >= 0.71) ? 1 : 0 }')
    verdict "$ok"
    echo "pretrained --freeze 10 final mAP50 $pfinal (>= 0.71; Ultralytics $(refval pretrained_freeze10_e20_map50)): $V"
else
    verdict 0
    echo "pretrained --freeze 10: no results.csv: $V"
fi

sfin="$(echo "${m50[staged]}" | tr ' ' '\n' | grep . | last)"
if [ "$sfin" != "-" ] && [ "$pfinal" != "-" ]; then
    echo "staged (--unfreeze-at 10:0) final mAP50 $sfin vs plain freeze $pfinal: $(awk -v a="$sfin" -v b="$pfinal" 'BEGIN { printf "%+.3f", a - b }') (reported, no threshold)"
fi

echo
echo "wall time (hotyolo train, validation every epoch)"
for r in pretrained scratch staged; do
    w="$(wall "$r")"
    case "$r" in
    pretrained) u="$(refval pretrained_freeze10_e20_wall_s)" ;;
    scratch) u="$(refval scratch_e20_wall_s)" ;;
    *) u="" ;;
    esac
    if [ -z "$w" ]; then
        printf '  %-11s -\n' "$r"
        if [ "$r" = pretrained ]; then
            verdict 0
            echo "  pretrained wall time missing: $V"
        fi
        continue
    fi
    if [ -n "$u" ]; then
        # Ultralytics' figure is for 20 epochs: scaled to EPOCHS when they differ
        read -r us x < <(awk -v u="$u" -v e="$epochs" -v w="$w" 'BEGIN { s = u * e / 20; printf "%.1f %.2f\n", s, s / w }')
        line="$(printf '  %-11s %8.1f s   Ultralytics %s s%s: %sx faster' "$r" "$w" "$us" \
            "$([ "$epochs" = 20 ] || echo " (scaled to $epochs epochs)")" "$x")"
        if [ "$r" = pretrained ]; then
            ok=$(awk -v x="$x" 'BEGIN { print (x >= 1.5) ? 1 : 0 }')
            verdict "$ok"
            line="$line (>= 1.5x): $V"
        fi
        echo "$line"
    else
        printf '  %-11s %8.1f s\n' "$r" "$w"
    fi
    [ -s "$out/$r.rss_kb" ] && printf '  %-11s peak RSS %s MiB\n' "" "$(awk '{ printf "%.0f", $1 / 1024 }' "$out/$r.rss_kb")"
done
echo "  (Ultralytics: $(head -1 "$ref" 2>/dev/null))"
# one plot of the mAP50 curves: our runs and Ultralytics' (hotyolo train --compare)
if [ "$report_only" = 0 ] || [ -n "${cli:-}" ]; then
    series=()
    for r in pretrained scratch staged; do [ -f "$out/$r/weights/last.safetensors" ] && series+=("$r=$out/$r"); done
    [ -n "$u_pre" ] && series+=("Ultralytics pretrained=$(echo $u_pre | tr ' ' ',')")
    [ -n "$u_scr" ] && series+=("Ultralytics scratch=$(echo $u_scr | tr ' ' ',')")
    if [ ${#series[@]} -gt 0 ] && "${cli:-$here/build/hotyolo}" train --compare "$out/map50.png" "${series[@]}" >/dev/null; then
        echo "curves: $out/map50.png"
    fi
fi
[ -d "$out" ] && echo "results: $out/{pretrained,scratch,staged}/results.csv, results.png"
[ "$fail" = 0 ] && echo "finetune: all checks passed" || echo "finetune: FAILED checks above"
exit "$fail"
