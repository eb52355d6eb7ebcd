#!/usr/bin/env bash
# hotyolo inspect --json and convert on checkpoints whose train_args shares sub-objects
# (issue 14): a 3 KB .pt whose train_args is a DAG (each list holds the previous one 16
# times, 32 levels: 16^32 values if expanded) plus a list and a dict containing themselves,
# and yolov8n.pt with that train_args. Each run must finish within 256 MB peak RSS and 2 s
# with output that parses as JSON, the shared lists written once then as {"$ref": path}.
# Usage: bash test_inspect_shared.sh CLI_PATH ASSETS_DIR SOURCE_DIR
set -u
cli="$1"
assets="$2"
[ -d "$assets" ] || { echo "skip: shared assets not found at $assets"; exit 77; }
py=/usr/bin/python3
[ -x "$py" ] || { echo "skip: no $py"; exit 77; }
tmp="$(mktemp -d)"
trap 'rm -rf -- "$tmp"' EXIT
"$py" - "$cli" "$assets/weights/yolov8n.pt" "$tmp" <<'PY'
import json, os, resource, struct, subprocess, sys, time, zipfile
cli, real, tmp = sys.argv[1:4]
sanitized = os.environ.get("HY_TEST_SANITIZED", "0") not in ("", "0")
LEVELS, FAN = 32, 16

def u32(op, v): return op + struct.pack("<I", v)
def s(x): b = x.encode(); return u32(b"X", len(b)) + b

def train_args(base):
    p = b"}(" + s("task") + s("detect") + s("dag") + b"]" + u32(b"r", base)
    for k in range(1, LEVELS + 1):
        p += b"0](" + u32(b"j", base + k - 1) * FAN + b"e" + u32(b"r", base + k)
    p += s("loop") + b"]" + u32(b"r", base + LEVELS + 1) + u32(b"j", base + LEVELS + 1) + b"a"
    p += s("self") + b"}" + u32(b"r", base + LEVELS + 2) + s("me") + u32(b"j", base + LEVELS + 2) + b"s"
    return p + b"u"

def tensor():
    i = lambda v: b"\x8a\x08" + struct.pack("<q", v)
    return (b"ctorch._utils\n_rebuild_tensor_v2\n((" + s("storage") + b"ctorch\nFloatStorage\n" +
            s("0") + s("cpu") + i(24) + b"tQ" + i(0) + b"(" + i(2) + i(3) + i(2) + i(2) + b"t(" +
            i(12) + i(4) + i(2) + i(1) + b"t\x89NtR")

tiny = os.path.join(tmp, "dag.pt")
with zipfile.ZipFile(tiny, "w") as z:
    z.writestr("archive/data.pkl", b"\x80\x02}(" + s("model") + b"}(" + s("model.0.conv.weight") +
               tensor() + b"u" + s("train_args") + train_args(100) + b"u.")
    z.writestr("archive/data/0", bytes(96))
big = os.path.join(tmp, "dag_yolov8n.pt")
with zipfile.ZipFile(real) as zi, zipfile.ZipFile(big, "w") as zo:
    for info in zi.infolist():
        d = zi.read(info)
        if info.filename.endswith("data.pkl"):  # root dict stays on the stack; set train_args
            d = d[:-1] + s("train_args") + train_args(len(d)) + b"s."
        zo.writestr(info.filename, d)

npass = nfail = 0
def check(name, ok, detail=""):
    global npass, nfail
    if ok: npass += 1; print("ok   " + name)
    else: nfail += 1; print("FAIL " + name + ("\n     " + detail[:1500] if detail else ""))

def run(args):
    def cap():
        if not sanitized:
            lim = 2 << 30  # address space: RSS is measured below; this only stops a runaway
            resource.setrlimit(resource.RLIMIT_AS, (lim, lim))
    t0 = time.monotonic()
    r = subprocess.run([cli] + args, capture_output=True, timeout=60, preexec_fn=cap)
    dt = time.monotonic() - t0
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0  # max over children
    return r, dt, rss

tmax, mmax = (20.0, 768) if sanitized else (2.0, 256)
for label, path in (("3 KB DAG .pt", tiny), ("yolov8n.pt + DAG train_args", big)):
    r, dt, rss = run(["inspect", path, "--json"])
    print("  inspect --json %s (%d bytes): %.3f s, peak RSS %.1f MB" % (label, os.path.getsize(path), dt, rss))
    try:
        ta = json.loads(r.stdout)["metadata"]["train_args"]
    except Exception as e:
        ta = None
    check("inspect --json %s: exit 0, JSON, within %.0f s / %d MB" % (label, tmax, mmax),
          r.returncode == 0 and ta is not None and dt < tmax and rss < mmax, r.stderr.decode()[-800:])
    ok = ta is not None and ta.get("task") == "detect"
    v, want, levels = (ta or {}).get("dag"), "train_args.dag[0]", 0
    while ok and isinstance(v, list) and len(v) == FAN and isinstance(v[0], list):
        ok = all(x == {"$ref": want} for x in v[1:])
        v, want, levels = v[0], want + "[0]", levels + 1
    check("inspect --json %s: shared lists once, then {\"$ref\": path} (%d levels)" % (label, levels),
          ok and levels >= 20)
    check("inspect --json %s: cycles are references" % label,
          ta is not None and ta.get("loop") == [{"$ref": "train_args.loop"}] and
          ta.get("self") == {"me": {"$ref": "train_args.self"}})
    r, dt, rss = run(["inspect", path])
    check("inspect (text) %s: exit 0 within bounds" % label, r.returncode == 0 and dt < tmax and rss < mmax)

out = os.path.join(tmp, "out.safetensors")
r, dt, rss = run(["convert", big, out])
print("  convert yolov8n.pt + DAG train_args: %.3f s, peak RSS %.1f MB" % (dt, rss))
check("convert yolov8n.pt + DAG train_args: exit 0 within bounds, summary printed",
      r.returncode == 0 and dt < tmax and rss < mmax and b"converted " in r.stdout, r.stderr.decode()[-800:])
r, dt, rss = run(["inspect", out, "--json"])
try: meta = json.loads(r.stdout)["metadata"]; names = json.loads(meta["hotyolo.names"])
except Exception: names = None
check("converted file: metadata is JSON, names intact", names is not None and len(names) == 80 and names[0] == "person")
print("%d passed, %d failed" % (npass, nfail))
sys.exit(1 if nfail else 0)
PY
