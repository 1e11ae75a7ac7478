# shellcheck shell=bash
# shellcheck disable=SC2034 # the variables are used by the scripts that source this file
# Shared by scripts/build-arm64.sh, scripts/check-arm64.sh and the helpers beside this file:
# where the aarch64 sysroot and assets live, and the environment a cross build of dolbom needs.
# Sourced, not run.

ARM64_TRIPLE=aarch64-unknown-linux-gnu
ARM64_MULTIARCH=aarch64-linux-gnu
ARM64_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# Downloaded .debs, the private apt state and the sysroot: kept across runs so that a second run
# downloads nothing. DOLBOM_ARM64_SYSROOT overrides the sysroot's place (the cross image uses it).
ARM64_CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/dolbom/arm64"
ARM64_SYSROOT="${DOLBOM_ARM64_SYSROOT:-$ARM64_CACHE/sysroot}"
# The aarch64 ONNX Runtime, models and test photos (scripts/fetch_assets.py --arch aarch64).
ARM64_ASSETS="$ARM64_ROOT/.dolbom/arm64"
ARM64_BIN="$ARM64_ROOT/target/$ARM64_TRIPLE/release/dolbom"
# The OpenCV modules the opencv crate's features (imgproc, imgcodecs, videoio; core always) bind.
ARM64_OPENCV_LIBS="opencv_core,opencv_imgproc,opencv_imgcodecs,opencv_videoio"

arm64_log() { printf '%s: %s\n' "${ARM64_WHO:-arm64}" "$*" >&2; }
arm64_die() { printf '%s: error: %s\n' "${ARM64_WHO:-arm64}" "$*" >&2; exit 1; }

# Library directories of the sysroot, as the guest sees them: the two multiarch ones and the
# subdirectories that Debian's alternatives point into (blas/, lapack/, ...), which stay
# unlinked because `dpkg -x` runs no maintainer scripts. Written by sysroot.sh.
arm64_libdirs() {
    [ -f "$ARM64_SYSROOT/.libdirs" ] || arm64_die "no sysroot at $ARM64_SYSROOT: run scripts/build-arm64.sh first"
    cat "$ARM64_SYSROOT/.libdirs"
}

# Which OpenCV the build links: DOLBOM_OPENCV=lean (the default: the lean static OpenCV without
# FFmpeg that scripts/opencv-lean.sh --arch arm64 cross-builds into the cache, built on first use;
# the board needs only libjpeg62-turbo, libpng16-16, libwebp7 and zlib1g) or DOLBOM_OPENCV=debian
# (Debian 12's shared arm64 OpenCV from the sysroot, with FFmpeg for H.264 files and url cameras;
# the board needs libopencv-*406 and 166 MB instead of 106: docs/memory.md).
arm64_opencv() {
    case "${DOLBOM_OPENCV:-lean}" in
        debian|lean) echo "${DOLBOM_OPENCV:-lean}" ;;
        *) arm64_die "DOLBOM_OPENCV must be lean (the default) or debian, not '$DOLBOM_OPENCV'" ;;
    esac
}

# Exports what `cargo build --target aarch64-unknown-linux-gnu` needs beyond .cargo/config.toml,
# which cannot name the cache directory. None of it reaches a native (x86_64) build's flags, but
# OPENCV_* would reach its opencv crate: set this only for aarch64 builds.
arm64_cargo_env() {
    arm64_libdirs >/dev/null
    if [ "$(arm64_opencv)" = lean ]; then
        local env_file
        env_file=$("$ARM64_ROOT/scripts/opencv-lean.sh" --arch arm64 --env-file) ||
            arm64_die "the lean arm64 OpenCV did not build (scripts/opencv-lean.sh --arch arm64)"
        # OPENCV_DISABLE_PROBES, OPENCV_INCLUDE_PATHS, OPENCV_LINK_PATHS, OPENCV_LINK_LIBS: the
        # static libraries in the cache, then the sysroot's codec libraries.
        # shellcheck source=/dev/null
        . "$env_file"
    else
        export OPENCV_LINK_LIBS="$ARM64_OPENCV_LIBS"
        export OPENCV_LINK_PATHS="$ARM64_SYSROOT/usr/lib/$ARM64_MULTIARCH"
        # cvconfig.h lives in the multiarch include directory, every other header in the plain one.
        export OPENCV_INCLUDE_PATHS="$ARM64_SYSROOT/usr/include/opencv4,$ARM64_SYSROOT/usr/include/$ARM64_MULTIARCH/opencv4"
    fi
    export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
    export CXX_aarch64_unknown_linux_gnu=aarch64-linux-gnu-g++
    export AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar
    # For the linker and the runner in .cargo/config.toml (scripts/arm64/link-gcc.sh, qemu-run.sh).
    export DOLBOM_ARM64_SYSROOT="$ARM64_SYSROOT"
}

# Installs the Debian packages named when their command is missing (root or sudo).
arm64_need_apt() {
    local missing=() cmd pkg
    while [ $# -gt 0 ]; do
        cmd=$1 pkg=$2
        shift 2
        command -v "$cmd" >/dev/null || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    local sudo=()
    [ "$(id -u)" -eq 0 ] || sudo=(sudo)
    arm64_log "installing ${missing[*]}"
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}
