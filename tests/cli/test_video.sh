#!/usr/bin/env bash
# hotyolo detect on video files (issue 21): every frame's detections equal single-image
# detection on the same pixels (the ffmpeg CLI's decode of the test video), frame indices and
# timestamps, --vid-stride, --max-frames, the annotated MP4 (--save-dir), bad sources, a corrupt
# frame mid-stream, SIGINT. The video is made here from datasets/coco128 images letterboxed to
# 640x480 (H.264, 10 fps). Usage: bash test_video.sh CLI_PATH ASSETS_DIR SOURCE_DIR
set -u
cli="$1"
assets="$2"
[ -d "$assets" ] || { echo "skip: shared assets not found at $assets"; exit 77; }
for t in ffmpeg ffprobe; do
    command -v "$t" >/dev/null || { echo "skip: $t not installed"; exit 77; }
done
ffmpeg -hide_banner -encoders 2>/dev/null | grep -q libx264 || { echo "skip: ffmpeg has no libx264"; exit 77; }
py=/usr/bin/python3
[ -x "$py" ] || py=python3
model="$assets/weights/yolov8n.pt"
coco="$assets/datasets/coco128/images/train2017"
[ -f "$model" ] && [ -d "$coco" ] || { echo "skip: $model or $coco missing"; exit 77; }
N=10 # frames of the test video

pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok   $1"; }
bad() {
    fail=$((fail + 1))
    echo "FAIL $1"
    [ $# -gt 1 ] && printf '     check: %s\n' "$2"
    printf '     rc=%s\n     stdout: %s\n     stderr: %s\n' "$rc" "$(head -c 1500 "$tmp/out")" "$(head -c 2500 "$tmp/err")"
}
check() { if eval "$2"; then ok "$1"; else bad "$1" "$2"; fi; }

tmp="$(mktemp -d)"
pid=
trap '[ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; rm -rf -- "$tmp"' EXIT
run() { "$cli" "$@" >"$tmp/out" 2>"$tmp/err"; rc=$?; cat "$tmp/err" >>"$tmp/all_err"; }
err_has() { grep -qiE -- "$1" "$tmp/err"; }
ff() { ffmpeg -nostdin -hide_banner -v error -y "$@"; }

# ---- the test video: N coco128 images letterboxed to 640x480 (grey 114 bars), 10 fps ------
mkdir -p "$tmp/lb" "$tmp/png"
i=0
for f in $(ls "$coco"/*.jpg | sort | head -n $N); do
    ff -i "$f" -vf "scale=640:480:force_original_aspect_ratio=decrease,pad=640:480:(ow-iw)/2:(oh-ih)/2:color=0x727272" \
        "$tmp/lb/$(printf %03d $i).png" || { echo "FAIL: ffmpeg could not letterbox $f"; exit 1; }
    i=$((i + 1))
done
vid="$tmp/video.mp4"
ff -framerate 10 -i "$tmp/lb/%03d.png" -c:v libx264 -pix_fmt yuv420p -r 10 "$vid" ||
    { echo "FAIL: ffmpeg could not encode the test video"; exit 1; }
# the same pixels as FFmpeg's decoder gives, as PNGs (001.png = frame 0)
ff -i "$vid" -pix_fmt rgb24 "$tmp/png/%03d.png" || { echo "FAIL: ffmpeg could not decode"; exit 1; }
check "ffmpeg decoded $N frames of the test video" '[ "$(ls "$tmp/png" | wc -l)" -eq $N ]'

# compare VIDEO_JSONL PNG_JSONL EXPECTED_FRAMES(comma list): each video record equals the PNG
# record of its frame (class, confidence, box), frame indices as expected, pts = frame / 10.
compare() {
    "$py" - "$1" "$2" "$3" "$vid" <<'EOF'
import json, sys
vid_recs = [json.loads(l) for l in open(sys.argv[1])]
png_recs = [json.loads(l) for l in open(sys.argv[2])]
want = [int(x) for x in sys.argv[3].split(",")]
def dets(r): return [(d["class_id"], d["confidence"], d["box"]) for d in r["detections"]]
got = [r.get("frame") for r in vid_recs]
if got != want: sys.exit("frames %s, want %s" % (got, want))
n_dets = 0
for r in vid_recs:
    i = r["frame"]
    if r["image"] != sys.argv[4]: sys.exit("record names %r, not the video" % r["image"])
    if abs(r["pts"] - i / 10) > 1e-3: sys.exit("frame %d: pts %r, want %.3f" % (i, r["pts"], i / 10))
    if (r["width"], r["height"]) != (640, 480): sys.exit("frame %d: size %sx%s" % (i, r["width"], r["height"]))
    if not isinstance(r.get("latency_ms"), (int, float)) or "decode" not in r["timings_ms"]:
        sys.exit("frame %d: no latency_ms / timings_ms.decode" % i)
    p = png_recs[i]
    if not p["image"].endswith("%03d.png" % (i + 1)): sys.exit("png record %d is %s" % (i, p["image"]))
    if dets(r) != dets(p): sys.exit("frame %d: video %s != png %s" % (i, dets(r), dets(p)))
    n_dets += len(dets(r))
if n_dets == 0: sys.exit("no detections at all: nothing compared")
print("     (%d frames, %d detections equal)" % (len(vid_recs), n_dets))
EOF
}
all_frames=$(seq -s, 0 $((N - 1)))

run detect "$model" "$tmp/png" --json "$tmp/png.jsonl" --quiet
check "detect on the decoded PNGs: exit 0, $N records" '[ $rc -eq 0 ] && [ "$(wc -l <"$tmp/png.jsonl")" -eq $N ]'
run detect "$model" "$vid" --json "$tmp/v.jsonl"
check "detect on the video: exit 0, a table per frame titled with frame and pts, a summary" \
    '[ $rc -eq 0 ] && grep -qE "video\.mp4 frame 9 \(pts 0\.900 s\): 640x480" "$tmp/out" &&
     err_has "video\.mp4: $N frames in .* fps\), dropped 0, corrupt 0, reconnects 0"'
check "every frame equals single-image detection on the same pixels; frame 0..$((N - 1)), pts i/10" \
    'compare "$tmp/v.jsonl" "$tmp/png.jsonl" "$all_frames"'
run detect "$model" "$vid" --json "$tmp/s3.jsonl" --vid-stride 3 --quiet
check "--vid-stride 3: frames 0,3,6,9, same detections" \
    '[ $rc -eq 0 ] && compare "$tmp/s3.jsonl" "$tmp/png.jsonl" "0,3,6,9"'
run detect "$model" "$vid" --json "$tmp/m4.jsonl" --max-frames 4 --quiet
check "--max-frames 4: frames 0..3" '[ $rc -eq 0 ] && compare "$tmp/m4.jsonl" "$tmp/png.jsonl" "0,1,2,3"'
run detect "$model" "$vid" --json "$tmp/m2.jsonl" --max-frames 2 --vid-stride 3 --quiet
check "--max-frames 2 --vid-stride 3: frames 0,3" '[ $rc -eq 0 ] && compare "$tmp/m2.jsonl" "$tmp/png.jsonl" "0,3"'
mkdir -p "$tmp/dirsrc"
cp "$vid" "$tmp/dirsrc/clip.MP4"
cp "$tmp/png/001.png" "$tmp/dirsrc/a.png"
run detect "$model" "$tmp/dirsrc" --json "$tmp/dir.jsonl" --max-frames 2 --quiet
check "a directory: its image, then its video (as Ultralytics' LoadImagesAndVideos)" \
    '[ $rc -eq 0 ] && [ "$(cut -c1-200 "$tmp/dir.jsonl" | sed -e "s/^{\"image\":\"\([^\"]*\)\".*/\1/" | tr "\n" " ")" = "$tmp/dirsrc/a.png $tmp/dirsrc/clip.MP4 $tmp/dirsrc/clip.MP4 " ]'
run detect "$model" "$vid" --vid-stride 0
check "--vid-stride 0: usage error" '[ $rc -eq 2 ] && err_has "--vid-stride: 0 is out of range"'
run detect "$model" "$vid" --max-frames -1
check "--max-frames -1: usage error" '[ $rc -eq 2 ] && err_has "--max-frames: -1 is out of range"'

# ---- --save-dir: an annotated H.264 MP4 at the source's rate and size ------------------
run detect "$model" "$vid" --save-dir "$tmp/save" --quiet
mp4="$tmp/save/video.mp4"
probe() { ffprobe -v error -select_streams v:0 -count_frames \
    -show_entries stream=codec_name,width,height,r_frame_rate,nb_read_frames -of default=nw=1 "$1" 2>&1; }
check "--save-dir: exit 0, DIR/video.mp4 written" '[ $rc -eq 0 ] && [ -s "$mp4" ]'
p="$(probe "$mp4")"
check "the MP4: h264, 640x480, 10/1 fps, $N frames (ffprobe)" \
    'echo "$p" | grep -qx "codec_name=h264" && echo "$p" | grep -qx "width=640" &&
     echo "$p" | grep -qx "height=480" && echo "$p" | grep -qx "r_frame_rate=10/1" &&
     echo "$p" | grep -qx "nb_read_frames=$N"'
echo "     (ffprobe: $(echo $p))"
check "the MP4 decodes without a message (ffmpeg -v error)" \
    '[ -z "$(ffmpeg -nostdin -v error -i "$mp4" -f null - 2>&1)" ]'
sum0="$(cksum <"$mp4")"
run detect "$model" "$vid" --save-dir "$tmp/save" --quiet
check "a second run refuses to overwrite the MP4: exit 1, named; the file unchanged" \
    '[ $rc -eq 1 ] && [ -s "$mp4" ] && err_has "save/video\.mp4.*exists" && [ "$(cksum <"$mp4")" = "$sum0" ]'

# ---- bad sources: a clear error naming each, exit 1, the others still processed -------------
cp "$assets/images/bus.jpg" "$tmp/notvideo.mp4"
head -c $(($(stat -c %s "$vid") / 2)) "$vid" >"$tmp/trunc.mp4"
ff -f lavfi -i "sine=d=1" "$tmp/audio.mp4" || echo "     (could not make an audio-only file)"
port=$("$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
t0=$(date +%s%N)
run detect "$model" "$tmp/missing.mp4" "$tmp/notvideo.mp4" "$tmp/trunc.mp4" "tcp://127.0.0.1:$port" \
    "$tmp/audio.mp4" "$vid" --json "$tmp/bad.jsonl" --max-frames 3 --quiet
t1=$(date +%s%N)
echo "     (6 sources, 5 bad, in $(( (t1 - t0) / 1000000 )) ms)"
check "bad sources: exit 1, the good video still processed (3 records: --max-frames 3)" \
    '[ $rc -eq 1 ] && [ "$(wc -l <"$tmp/bad.jsonl")" -eq 3 ]'
check "missing file: named, says so" 'err_has "^hotyolo detect: .*missing\.mp4.*(no such file|not found|does not exist)"'
check "a JPEG named .mp4: named, not a video" 'err_has "^hotyolo detect: .*notvideo\.mp4.*(not a video|invalid data|unknown format|format)"'
check "truncated MP4: named" 'err_has "^hotyolo detect: .*trunc\.mp4"'
check "unreachable tcp:// URL: named" 'err_has "^hotyolo detect: .*tcp://127\.0\.0\.1:$port.*(unreachable|refused|connect)"'
[ -s "$tmp/audio.mp4" ] &&
    check "audio-only file: named, no video stream" 'err_has "^hotyolo detect: .*audio\.mp4.*no video"'
check "bad sources: no crash" '! grep -qiE "sanitizer|segmentation|core dumped" "$tmp/err"'

# ---- a corrupt frame mid-stream: MPEG-TS with packet payloads overwritten in the middle -----
ff -i "$vid" -c copy -f mpegts "$tmp/v.ts"
"$py" - "$tmp/v.ts" <<'EOF'
import random, sys
b = bytearray(open(sys.argv[1], "rb").read())
rnd = random.Random(21)
n = len(b) // 188
for k in range(n // 2, n // 2 + 6):  # 6 TS packets: keep each 4-byte header, garble the payload
    for j in range(k * 188 + 4, k * 188 + 188):
        b[j] = rnd.randrange(256)
open(sys.argv[1], "wb").write(bytes(b))
EOF
run detect "$model" "$tmp/v.ts" --json "$tmp/ts.jsonl" --quiet
nts=$(wc -l 2>/dev/null <"$tmp/ts.jsonl" || echo 0)
echo "     (corrupt TS: $nts of $N frames detected)"
check "corrupt frame: a warning on stderr, exit 0, the other frames still detected" \
    '[ $rc -eq 0 ] && err_has "warning: .*v\.ts: frame [0-9]+: corrupt" && [ "$nts" -ge $((N / 2)) ] && [ "$nts" -le $N ]'

# ---- SIGINT mid-file with --save-dir: exit 130, a playable MP4 with fewer frames ----------
ff -stream_loop 5 -i "$vid" -c:v libx264 -pix_fmt yuv420p -r 10 "$tmp/long.mp4"
"$cli" detect "$model" "$tmp/long.mp4" --save-dir "$tmp/int" --json "$tmp/int.jsonl" --quiet \
    >"$tmp/out" 2>"$tmp/err" &
pid=$!
for _ in $(seq 1 1200); do # up to 120 s (sanitizer builds are slow)
    [ "$(wc -l 2>/dev/null <"$tmp/int.jsonl" || echo 0)" -ge 3 ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
done
kill -INT "$pid" 2>/dev/null
wait "$pid"
rc=$?
pid=
nint=$(ffprobe -v error -select_streams v:0 -count_frames -show_entries stream=nb_read_frames \
    -of default=nw=1:nk=1 "$tmp/int/long.mp4" 2>/dev/null)
echo "     (interrupted after ${nint:-?} of 60 frames)"
check "SIGINT: exit 130, the MP4 decodes without a message, fewer than 60 frames" \
    '[ $rc -eq 130 ] && [ -z "$(ffmpeg -nostdin -v error -i "$tmp/int/long.mp4" -f null - 2>&1)" ] &&
     [ "${nint:-0}" -ge 1 ] && [ "${nint:-0}" -lt 60 ] && err_has "interrupted"'

cat "$tmp/err" >>"$tmp/all_err"
check "no sanitizer report in any run" '! grep -qE "runtime error|AddressSanitizer|LeakSanitizer" "$tmp/all_err"'

echo "passed $pass, failed $fail"
[ $fail -eq 0 ]
