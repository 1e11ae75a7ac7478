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

# OpenCV headers and libclang for the opencv crate's bindings; Python with venv for the model recipe;
# Mosquitto, the MQTT broker the demo and the tests talk to.
missing=()
for p in libopencv-dev clang libclang-dev pkg-config ca-certificates mosquitto mosquitto-clients; do
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

# The demo and tests expect a broker on 127.0.0.1:1883; start Debian's if nothing listens there.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
if ! port_open 1883; then
    log "starting mosquitto on 127.0.0.1:1883"
    if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
        as_root systemctl start mosquitto
    else
        as_root mosquitto -d -c /etc/mosquitto/mosquitto.conf
    fi
    for _ in $(seq 50); do port_open 1883 && break; sleep 0.1; done
    port_open 1883 || { log "mosquitto did not start on 127.0.0.1:1883"; exit 1; }
fi

python3 scripts/fetch_assets.py
