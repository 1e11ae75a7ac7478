#!/usr/bin/env bash
# Installs what a fresh Debian 12 machine lacks to build, run and test dolbom, then fetches the
# pinned ONNX Runtime library, models and test photos into .dolbom/ (see models/manifest.toml).
# Idempotent: a second run installs nothing and only re-checks hashes.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf 'setup: %s\n' "$*" >&2; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
        log "need root to run: $*"; exit 1
    fi
}

# OpenCV headers and libclang for the opencv crate's bindings; Python with venv for the model recipe.
missing=()
for p in libopencv-dev clang libclang-dev pkg-config ca-certificates; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Judge Python by what it can do, not by package name: it may come from elsewhere than apt.
if ! command -v python3 >/dev/null; then
    missing+=(python3 python3-venv)
elif ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
    missing+=(python3-venv)
fi
if [ "${#missing[@]}" -gt 0 ]; then
    log "installing ${missing[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null; then
    log "cargo is missing: install the Rust toolchain with rustup (Debian 12's cargo is too old)"
    exit 1
fi

python3 scripts/fetch_assets.py
