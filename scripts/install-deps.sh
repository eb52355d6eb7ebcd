#!/usr/bin/env bash
# Installs every Debian package hotyolo needs to build, test and run. Idempotent:
# packages already present are skipped, and apt-get runs only when something is missing.
#   scripts/install-deps.sh [--demo | --bench]
# --demo installs only what `make demo` needs: the build tools and the libraries hotyolo
# builds against and runs with (PKGS); without it the test, benchmark and fuzzing tools
# (TEST_PKGS: Chromium, Prometheus, Node.js, clang, ...) come too, as CI needs.
# --bench also installs the PyTorch peer of the training benchmark (bench/train_peer.py, make
# bench): Debian's python3-torch 1.13.1, the PyTorch the Ultralytics references were made with,
# and python3-numpy (large, with their dependencies: not in the default install, CI does not
# need them).
set -euo pipefail
bench=0
demo=0
for a in "$@"; do
  case "$a" in
    --bench) bench=1 ;;
    --demo) demo=1 ;;
    *) echo "usage: $0 [--demo | --bench]" >&2; exit 2 ;;
  esac
done
PKGS=(
  build-essential cmake pkg-config ca-certificates curl
  zlib1g-dev            # inflate for .pt (zip) entries
  libjpeg62-turbo-dev   # JPEG decode/encode (libjpeg-turbo)
  libspng-dev           # PNG decode
  libexif-dev           # JPEG EXIF orientation (as OpenCV imread applies it)
  libjson-c-dev         # JSON output / reference parsing
  libfreetype-dev fonts-dejavu-core  # labels on annotated images
  nettle-dev            # sha256 for weight-file integrity
  libxxhash-dev         # XXH3 checksum of packed-weights cache entries
  libyaml-dev           # data.yaml of datasets (hotyolo val)
  libmicrohttpd-dev     # HTTP server (hotyolo serve)
  libsqlite3-dev        # model registry catalogue (hotyolo registry)
  libcurl4-openssl-dev  # OCI registry push / pull (hotyolo registry push|pull)
  libavformat-dev libavcodec-dev libavutil-dev libswscale-dev libavdevice-dev  # video (FFmpeg)
)
# Tests, benchmarks and fuzzing only (make test, CI): left out by --demo.
TEST_PKGS=(
  wrk                   # serving benchmark (make bench)
  ffmpeg                # the ffmpeg CLI: makes and checks the test videos and live streams
  libsystemd-dev        # sd_notify test (hotyolo serve opens libsystemd.so.0 at run time)
  python3-yaml          # parses deploy/kubernetes.yaml in the sd_notify test
  docker-registry       # Distribution (OCI registry) for the push / pull integration test
  chromium              # headless browser for the `serve` web page test
  prometheus            # scrapes /metrics in the `serve` Prometheus test
  nodejs                # drives Chromium in the web page test; ONNX Runtime peer in make bench
  clang libclang-rt-dev # libFuzzer + ASan/UBSan runtimes for make fuzz (docs/fuzzing.md)
  python3-numpy python3-pip python3-setuptools python3-wheel python3-venv  # Python package (make python, docs/python.md)
)
[ "$demo" -eq 1 ] || PKGS+=("${TEST_PKGS[@]}")
[ "$bench" -eq 1 ] && PKGS+=(python3-torch python3-numpy)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PKGS[@]} packages present"
  exit 0
fi
echo "install-deps: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
