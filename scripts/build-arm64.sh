#!/usr/bin/env bash
# Cross-builds dolbom for aarch64 kiosks (Raspberry Pi 4/5, RK3588 boards running Debian 12 arm64)
# on a Debian 12 x86_64 machine, without Docker:
#
#   scripts/build-arm64.sh [CARGO BUILD ARGS...]
#
# Installs what is missing (Debian's aarch64 cross compilers, the Rust target), builds the arm64
# sysroot in ${XDG_CACHE_HOME:-~/.cache}/dolbom/arm64 (scripts/arm64/sysroot.sh) and the lean
# static aarch64 OpenCV without FFmpeg (scripts/opencv-lean.sh --arch arm64, on first use, about
# as long as on x86), fetches the aarch64 ONNX Runtime with the models and test photos into
# .dolbom/arm64, and builds
#
#   target/aarch64-unknown-linux-gnu/release/dolbom
#
# Copy that binary and .dolbom/arm64/{lib,models} to the board (or install the .deb of
# scripts/build-deb.sh); it needs libjpeg62-turbo, libpng16-16, libwebp7 and zlib1g there, no
# libopencv_* (see docs/arm64.md).
#
#   DOLBOM_OPENCV=debian scripts/build-arm64.sh
#
# links Debian 12's shared arm64 OpenCV instead (with FFmpeg: H.264 files and url cameras); the
# board then needs libopencv-core406, -imgproc406, -imgcodecs406 and -videoio406. See docs/memory.md.
# Idempotent: a second run downloads nothing and cargo rebuilds nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
ARM64_WHO=build-arm64
# shellcheck source=scripts/arm64/lib.sh
. scripts/arm64/lib.sh

started=$SECONDS
arm64_need_apt aarch64-linux-gnu-gcc gcc-aarch64-linux-gnu aarch64-linux-gnu-g++ g++-aarch64-linux-gnu \
    dpkg-deb dpkg clang clang pkg-config pkg-config python3 python3
command -v cargo >/dev/null || arm64_die "cargo is missing: install the Rust toolchain with rustup"
# The opencv crate's binding generator parses the headers with the host's libclang.
dpkg-query -W -f='${Status}' libclang-dev 2>/dev/null | grep -q "install ok installed" || {
    arm64_log "libclang-dev is missing: run scripts/setup.sh (or apt-get install libclang-dev)"
    exit 1
}
if ! rustup target list --installed 2>/dev/null | grep -qx "$ARM64_TRIPLE"; then
    arm64_log "adding the Rust target $ARM64_TRIPLE"
    rustup target add "$ARM64_TRIPLE"
fi

scripts/arm64/sysroot.sh
arm64_log "aarch64 ONNX Runtime, models and test photos into $ARM64_ASSETS"
python3 scripts/fetch_assets.py --arch aarch64 --dest "$ARM64_ASSETS" >&2

arm64_cargo_env
arm64_log "cargo build --release --locked --target $ARM64_TRIPLE $* ($(arm64_opencv) OpenCV)"
cargo build --release --locked --target "$ARM64_TRIPLE" --bin dolbom "$@"

[ -x "$ARM64_BIN" ] || arm64_die "the build finished but $ARM64_BIN is missing"
file_type=$(od -An -tx1 -j18 -N2 "$ARM64_BIN" | tr -d ' ')
[ "$file_type" = "b700" ] || arm64_die "$ARM64_BIN is not an aarch64 ELF (e_machine $file_type)"
arm64_log "done in $((SECONDS - started)) s: $ARM64_BIN and $ARM64_ASSETS/{lib,models}"
