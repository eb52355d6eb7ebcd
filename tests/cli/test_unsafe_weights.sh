#!/usr/bin/env bash
# Untrusted weights files through the CLI (issue 14): a real yolov8n.pt whose data.pkl first
# calls a code-running global (then loads normally, as a real attack would) must be refused
# by inspect, detect and convert, naming the global, and never be called valid. Also a
# duplicate data.pkl hidden behind the clean one, and a bool storage.
# Usage: bash test_unsafe_weights.sh CLI_PATH ASSETS_DIR SOURCE_DIR
# Files are built here with CPython's zipfile (no torch needed); nothing is ever unpickled.
set -u
cli="$1"
assets="$2"
[ -d "$assets" ] || { echo "skip: shared assets not found at $assets"; exit 77; }
pt="$assets/weights/yolov8n.pt"
img="$assets/images/bus.jpg"
py=/usr/bin/python3
if [ ! -x "$py" ]; then
    echo "skip: $py not found"
    exit 77
fi

pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok   $1"; }
bad() {
    fail=$((fail + 1))
    echo "FAIL $1"
    [ $# -gt 1 ] && printf '     check: %s\n' "$2"
    printf '     rc=%s\n     stdout: %s\n     stderr: %s\n' "$rc" "$(head -c 1500 "$tmp/out")" "$(head -c 1500 "$tmp/err")"
}
check() { if eval "$2"; then ok "$1"; else bad "$1" "$2"; fi; }

tmp="$(mktemp -d)"
trap 'rm -rf -- "$tmp"' EXIT
run() { "$cli" "$@" >"$tmp/out" 2>"$tmp/err"; rc=$?; }
out_has() { grep -qE -- "$1" "$tmp/out"; }
err_has() { grep -qF -- "$1" "$tmp/err"; }

# mk.py OUT MODE [MODULE NAME]: a copy of yolov8n.pt (entries stored, same names) where
#   MODE=clean   data.pkl unchanged
#   MODE=global  data.pkl starts with GLOBAL 'MODULE NAME' + REDUCE('echo pwned') + POP
#   MODE=stack   the same with STACK_GLOBAL (protocol 4 opcodes)
#   MODE=dup     clean entries, then a second <archive>/data.pkl with the GLOBAL payload
#   MODE=bool    torch.HalfStorage renamed torch.BoolStorage
cat >"$tmp/mk.py" <<'EOF'
import sys, zipfile
src, out, mode = sys.argv[1], sys.argv[2], sys.argv[3]
mod, name = (sys.argv[4], sys.argv[5]) if len(sys.argv) > 5 else ("", "")
arg = b"X\x0a\x00\x00\x00echo pwned\x85R0"  # ('echo pwned',) REDUCE POP
def su(s):  # SHORT_BINUNICODE
    b = s.encode(); return b"\x8c" + bytes([len(b)]) + b
def evil(pkl, stack):
    assert pkl[:2] == b"\x80\x02"
    call = su(mod) + su(name) + b"\x93" if stack else b"c" + mod.encode() + b"\n" + name.encode() + b"\n"
    return b"\x80\x02" + call + arg + pkl[2:]
zin = zipfile.ZipFile(src)
with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as z:
    pkl_name = None
    for info in zin.infolist():
        data = zin.read(info.filename)
        if info.filename.endswith("/data.pkl"):
            pkl_name = info.filename
            if mode in ("global", "stack"):
                data = evil(data, mode == "stack")
            elif mode == "bool":
                assert data.count(b"ctorch\nHalfStorage\n") == 1
                data = data.replace(b"ctorch\nHalfStorage\n", b"ctorch\nBoolStorage\n")
        z.writestr(zipfile.ZipInfo(info.filename, date_time=(1980, 1, 1, 0, 0, 0)), data)
    if mode == "dup":
        import warnings; warnings.simplefilter("ignore")  # zipfile warns on duplicate names
        z.writestr(zipfile.ZipInfo(pkl_name, date_time=(1980, 1, 1, 0, 0, 0)), evil(zin.read(pkl_name), False))
EOF
mk() { "$py" "$tmp/mk.py" "$pt" "$@" || { echo "FAIL building $*"; exit 1; }; }

# ---- control: the rebuilt clean file is valid --------------------------------------------
mk "$tmp/clean.pt" clean
run inspect "$tmp/clean.pt"
check "control: rebuilt clean yolov8n.pt is valid" '[ $rc -eq 0 ] && out_has "^valid: +yes"'

# ---- every global of the issue and more, GLOBAL and STACK_GLOBAL -------------------------
globals="pydoc.pipepager _osx_support._read_output imaplib.IMAP4_stream uuid._get_command_stdout
torch.fx.graph_module._forward_from_src functools.partial os.system posix.system nt.system
subprocess.Popen builtins.eval builtins.exec builtins.getattr builtins.__import__ builtins.open
runpy._run_code code.InteractiveInterpreter numpy.testing._private.utils.runstring torch.load
torch.hub.load torch.serialization.load ultralytics.utils.checks.check_requirements
ultralytics.nn.tasks.attempt_load_weights zzz.yyy ultralytics.nn.tasks.DetectionModel"
n=0
for g in $globals; do
    mod="${g%.*}" name="${g##*.}"
    for form in global stack; do
        f="$tmp/evil.pt"
        mk "$f" "$form" "$mod" "$name"
        want="refusing pickle global '$g' ("
        run inspect "$f"
        check "inspect $g ($form): refused, named, never valid" \
            '[ $rc -ne 0 ] && err_has "$want" && ! out_has "valid: +yes" && ! out_has "safe: +yes"'
        run inspect "$f" --json
        check "inspect --json $g ($form): refused" '[ $rc -ne 0 ] && ! out_has "\"valid\": *true"'
        run detect "$f" "$img"
        check "detect $g ($form): exit 1, named" '[ $rc -eq 1 ] && err_has "$want"'
        run convert "$f" "$tmp/out.safetensors"
        check "convert $g ($form): exit 1, named, no output" \
            '[ $rc -eq 1 ] && err_has "$want" && [ ! -e "$tmp/out.safetensors" ]'
        n=$((n + 1))
    done
done
echo "  $n malicious checkpoints tried"

# ---- a second data.pkl behind the clean one ----------------------------------------------
mk "$tmp/dup.pt" dup os system
for cmd in inspect detect convert; do
    case $cmd in
    inspect) run inspect "$tmp/dup.pt" ;;
    detect) run detect "$tmp/dup.pt" "$img" ;;
    convert) run convert "$tmp/dup.pt" "$tmp/dup.safetensors" ;;
    esac
    check "$cmd: duplicate data.pkl refused, named" \
        '[ $rc -eq 1 ] && err_has "dup.pt: zip archive has duplicate entries '"'"'yolov8n/data.pkl'"'"'" && ! out_has "valid: +yes"'
done

# ---- a conv weight stored as bool ----------------------------------------------------------
mk "$tmp/bool.pt" bool
run inspect "$tmp/bool.pt"
check "inspect bool storage: valid: no, names tensor and dtype" \
    '[ $rc -eq 0 ] && out_has "^valid: +no" && out_has "model.0.conv.weight: dtype bool, expected a floating type"'
run detect "$tmp/bool.pt" "$img"
check "detect bool storage: exit 1, named" \
    '[ $rc -eq 1 ] && err_has "model.0.conv.weight: dtype bool, expected a floating type"'

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
