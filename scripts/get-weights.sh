#!/usr/bin/env bash
# Downloads the official Ultralytics yolov8n.pt and installs it only after its SHA-256 checks.
#
#   scripts/get-weights.sh [URL] [DEST]
#     URL   default: the Ultralytics v8.1.0 release asset
#     DEST  default: models/yolov8n.pt
#   env HY_WEIGHTS_SHA256 overrides the expected hash (tests use a local file:// URL).
#
# The file goes to a temporary name next to DEST and is renamed into place only when the hash
# matches, so DEST is never left half-written. On any failure the temporary file is removed,
# an existing DEST is left untouched, and the exit status is 1. A DEST that already has the
# expected hash is kept as is (no download).
set -euo pipefail

DEFAULT_URL="https://github.com/ultralytics/assets/releases/download/v8.1.0/yolov8n.pt"
DEFAULT_SHA256="f59b3d833e2ff32e194b5bb8e08d211dc7c5bdf144b90d2c8412c47ccfc83b36"

url="${1:-$DEFAULT_URL}"
dest="${2:-models/yolov8n.pt}"
want="${HY_WEIGHTS_SHA256:-$DEFAULT_SHA256}"
want="$(printf '%s' "$want" | tr 'A-F' 'a-f')"

die() { echo "get-weights: error: $*" >&2; exit 1; }

case "$want" in
    *[!0-9a-f]* | "") die "expected SHA-256 '$want' is not 64 hex digits" ;;
esac
[ "${#want}" -eq 64 ] || die "expected SHA-256 '$want' is not 64 hex digits"
command -v curl >/dev/null 2>&1 || die "curl is not installed"

sha256_of() {
    if command -v sha256sum >/dev/null 2>&1; then
        sha256sum -- "$1" | cut -d' ' -f1
    else
        shasum -a 256 -- "$1" | cut -d' ' -f1
    fi
}

if [ -d "$dest" ]; then
    die "destination '$dest' is a directory; give a file path such as '$dest/yolov8n.pt'"
fi
if [ -f "$dest" ] && [ "$(sha256_of "$dest")" = "$want" ]; then
    echo "get-weights: $dest is already present and verified (sha256 $want)"
    exit 0
fi

dir="$(dirname -- "$dest")"
mkdir -p -- "$dir" || die "cannot create directory '$dir'"
tmp="$(mktemp "$dir/.$(basename -- "$dest").part.XXXXXX")" || die "cannot create a temporary file in '$dir'"
trap 'rm -f -- "$tmp"' EXIT
trap 'exit 1' INT TERM HUP

echo "get-weights: downloading $url"
if ! curl --fail --location --silent --show-error --retry 2 --connect-timeout 20 \
        --output "$tmp" "$url"; then
    die "download of '$url' failed; '$dest' was not changed"
fi

got="$(sha256_of "$tmp")"
if [ "$got" != "$want" ]; then
    die "checksum mismatch for '$url': expected sha256 $want, got $got; download discarded, '$dest' was not changed"
fi

chmod 0644 -- "$tmp"
if [ -e "$dest" ]; then
    echo "get-weights: replacing '$dest' (its checksum did not match)"
fi
mv -f -- "$tmp" "$dest" || die "cannot move the download to '$dest'"
trap - EXIT
echo "get-weights: saved $dest (sha256 $got)"
