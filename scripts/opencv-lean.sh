#!/usr/bin/env bash
# Builds a lean, static OpenCV 4.6.0 (core, imgproc, imgcodecs, videoio; V4L2, JPEG, PNG, WebP,
# PNM; no FFmpeg, GStreamer, GDAL, GDCM ...) for the kiosk daemon, and prints the environment the
# opencv crate needs to link it instead of Debian's shared OpenCV. See docs/memory.md, "A lean OpenCV
# without FFmpeg". scripts/setup.sh runs it and links the result at .dolbom/opencv, where
# .cargo/config.toml points the default build (docs/memory.md, "The lean OpenCV is the default").
#
#   scripts/opencv-lean.sh              build once (a second run does nothing), print the env
#   . "$(scripts/opencv-lean.sh --env-file)"     ... or source the file it writes
#   scripts/opencv-lean.sh --arch arm64 the same OpenCV cross-built for aarch64 (Debian's
#                                       aarch64-linux-gnu-g++) against the sysroot of
#                                       scripts/arm64/sysroot.sh, which holds the arm64 JPEG, PNG,
#                                       WebP and zlib headers and libraries; its env is for a cargo
#                                       build --target aarch64-unknown-linux-gnu only
#                                       (scripts/build-arm64.sh sources it)
#
# Cache: ${XDG_CACHE_HOME:-$HOME/.cache}/dolbom/
#   opencv-python-headless-4.6.0.66.tar.gz   the pinned sdist (sha256 checked); its opencv/ tree
#                                            is OpenCV 4.6.0
#   opencv-4.6.0-lean-<hash>/                the install prefix; <hash> is a sha256 of the sdist's
#                                            hash, the options, link libraries, triplet, compiler
#                                            (so amd64 and arm64 builds never share a prefix)
#   opencv-4.6.0-lean-<hash>/env.sh          the OPENCV_* environment, ready to source
#
# About 6 CPU minutes on x86_64 (356 s measured). Run it under `nice` on a shared machine;
# JOBS sets ninja's -j.
set -euo pipefail

log() { printf 'opencv-lean: %s\n' "$*" >&2; }

mode=print
arch=native
while [ $# -gt 0 ]; do
    case "$1" in
        --env-file) mode="file"; shift ;;
        --arch)
            case "${2:-}" in
                arm64|aarch64) arch=arm64 ;;
                amd64|x86_64|native) arch=native ;;
                *) log "--arch must be arm64 (or amd64, the default)"; exit 2 ;;
            esac
            shift 2 ;;
        *) log "unknown option $1"; exit 2 ;;
    esac
done

SDIST_NAME=opencv-python-headless
SDIST_VERSION=4.6.0.66
SDIST_SHA256=d5291d7e10aa2c19cab6fd86f0d61af8617290ecd2d7ffcb051e446868d04cc5
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/dolbom"
SDIST="$CACHE/$SDIST_NAME-$SDIST_VERSION.tar.gz"

# The documented lean options (docs/memory.md), with FFmpeg off, and PNM and WebP on: dolbom
# enroll/identify take JPEG, PNG, BMP, WebP and PNM photos (crates/face/src/image.rs), as with
# Debian's OpenCV. Changing any option changes the prefix, so new options never reuse an old build.
OPTIONS=(
    -DCMAKE_BUILD_TYPE=Release -DBUILD_LIST=core,imgproc,imgcodecs,videoio
    -DBUILD_SHARED_LIBS=OFF -DCMAKE_POSITION_INDEPENDENT_CODE=ON
    -DBUILD_TESTS=OFF -DBUILD_PERF_TESTS=OFF -DBUILD_EXAMPLES=OFF -DBUILD_opencv_apps=OFF
    -DBUILD_opencv_python3=OFF -DBUILD_JAVA=OFF -DBUILD_DOCS=OFF
    -DBUILD_ZLIB=OFF -DBUILD_PNG=OFF -DBUILD_JPEG=OFF -DBUILD_ITT=OFF -DWITH_ITT=OFF
    -DWITH_IPP=OFF -DWITH_ADE=OFF -DWITH_GTK=OFF -DWITH_QT=OFF -DWITH_GSTREAMER=OFF
    -DWITH_GDAL=OFF -DWITH_GDCM=OFF -DWITH_OPENEXR=OFF -DWITH_TIFF=OFF -DWITH_WEBP=ON -DBUILD_WEBP=OFF
    -DWITH_JASPER=OFF -DWITH_OPENJPEG=OFF -DWITH_OPENCL=OFF -DWITH_LAPACK=OFF -DWITH_EIGEN=OFF
    -DWITH_PROTOBUF=OFF -DWITH_1394=OFF -DWITH_VTK=OFF -DWITH_OPENGL=OFF -DWITH_VA=OFF
    -DWITH_TBB=OFF -DWITH_OPENMP=OFF -DWITH_QUIRC=OFF -DWITH_CAROTENE=OFF
    -DWITH_IMGCODEC_HDR=OFF -DWITH_IMGCODEC_SUNRASTER=OFF -DWITH_IMGCODEC_PXM=ON -DWITH_IMGCODEC_PFM=OFF
    -DWITH_V4L=ON -DWITH_FFMPEG=OFF -DWITH_JPEG=ON -DWITH_PNG=ON -DVIDEOIO_ENABLE_PLUGINS=OFF
)
# What the static libraries need from the system, in link order (libjpeg62-turbo, libpng16,
# libwebp7, zlib).
SYSTEM_LIBS=(jpeg png webp z)

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
        log "need root to run: $*"; return 1
    fi
}

apt_install() {
    log "installing $*"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

need_tools() {
    local missing=()
    for p in cmake ninja-build g++ libjpeg62-turbo-dev libpng-dev libwebp-dev zlib1g-dev; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    if [ "${#missing[@]}" -gt 0 ]; then apt_install "${missing[@]}"; fi
}

sha_ok() { [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]; }

fetch_sdist() {
    sha_ok "$SDIST" "$SDIST_SHA256" && return 0
    mkdir -p "$CACHE"
    # python3 may come from elsewhere than apt: judge it by what it can do.
    python3 -c 'import pip' 2>/dev/null || apt_install python3 python3-pip
    log "fetching $SDIST_NAME==$SDIST_VERSION (sdist)"
    # `pip download --no-binary :all:` fetches it and then fails building the sdist's metadata,
    # so use pip's own resolver and HTTP session (its index, proxy and certificate settings).
    python3 - "$SDIST_NAME" "$SDIST_VERSION" "$SDIST.part" <<'EOF'
import sys
from pip._internal.commands import create_command
from pip._vendor.packaging.specifiers import SpecifierSet

name, version, dest = sys.argv[1:4]
cmd = create_command("download")
opts, _ = cmd.parse_args(["--no-binary", ":all:", "--no-deps", f"{name}=={version}"])
with cmd.main_context():
    session = cmd.get_default_session(opts)
    finder = cmd._build_package_finder(options=opts, session=session)
    best = finder.find_best_candidate(name, SpecifierSet("==" + version)).best_candidate
    if best is None or not best.link.filename.endswith(".tar.gz"):
        sys.exit(f"no sdist found for {name}=={version}")
    with session.get(best.link.url, stream=True) as r:
        r.raise_for_status()
        with open(dest, "wb") as f:
            for chunk in r.iter_content(1 << 20):
                f.write(chunk)
EOF
    if ! sha_ok "$SDIST.part" "$SDIST_SHA256"; then
        log "sha256 mismatch for $SDIST.part (want $SDIST_SHA256); not using it"
        exit 1
    fi
    mv "$SDIST.part" "$SDIST"
}

CROSS=()
if [ "$arch" = arm64 ]; then
    # The cross build: Debian's cross compilers, and the sysroot (made here if missing) for the
    # arm64 codec libraries. Their headers and .so links are named explicitly and CMake searches
    # only the target's directories, so nothing of this x86 machine's /usr is picked up.
    # shellcheck disable=SC2034 # read by the arm64_* helpers of lib.sh
    ARM64_WHO=opencv-lean
    # shellcheck source=scripts/arm64/lib.sh
    . "$(dirname "$0")/arm64/lib.sh"
    arm64_need_apt cmake cmake ninja ninja-build aarch64-linux-gnu-gcc gcc-aarch64-linux-gnu \
        aarch64-linux-gnu-g++ g++-aarch64-linux-gnu
    "$(dirname "$0")/arm64/sysroot.sh"
    multiarch=$ARM64_MULTIARCH
    CXX_VERSION="$(aarch64-linux-gnu-g++ --version | head -1)"
    S=$ARM64_SYSROOT
    L="$S/usr/lib/$multiarch"
    # Options of the cross build, in the key; the sysroot's place is not (it may move).
    OPTIONS+=(-DCMAKE_SYSTEM_NAME=Linux -DCMAKE_SYSTEM_PROCESSOR=aarch64
        -DCMAKE_C_COMPILER=aarch64-linux-gnu-gcc -DCMAKE_CXX_COMPILER=aarch64-linux-gnu-g++
        -DCMAKE_FIND_ROOT_PATH_MODE_PROGRAM=NEVER -DCMAKE_FIND_ROOT_PATH_MODE_LIBRARY=ONLY
        -DCMAKE_FIND_ROOT_PATH_MODE_INCLUDE=ONLY -DCMAKE_FIND_ROOT_PATH_MODE_PACKAGE=ONLY)
    CROSS=(-DCMAKE_FIND_ROOT_PATH="$S;/usr/$multiarch"
        -DJPEG_INCLUDE_DIR="$S/usr/include" -DJPEG_LIBRARY="$L/libjpeg.so"
        -DPNG_PNG_INCLUDE_DIR="$S/usr/include" -DPNG_LIBRARY="$L/libpng.so"
        -DZLIB_INCLUDE_DIR="$S/usr/include" -DZLIB_LIBRARY="$L/libz.so"
        -DWEBP_INCLUDE_DIR="$S/usr/include" -DWEBP_LIBRARY="$L/libwebp.so"
        # jconfig.h (libjpeg62-turbo-dev) is in the multiarch include directory.
        -DCMAKE_C_FLAGS="-isystem $S/usr/include/$multiarch" -DCMAKE_CXX_FLAGS="-isystem $S/usr/include/$multiarch")
    for f in "$S/usr/include/jpeglib.h" "$S/usr/include/$multiarch/jconfig.h" "$S/usr/include/png.h" \
        "$S/usr/include/zlib.h" "$S/usr/include/webp/decode.h" "$L/libjpeg.so" "$L/libpng.so" "$L/libz.so" "$L/libwebp.so"; do
        [ -e "$f" ] || { log "the arm64 sysroot lacks $f (scripts/arm64/sysroot.sh)"; exit 1; }
    done
else
    need_tools # dpkg-query only, unless something is missing; the key below needs the compiler
    multiarch="$(gcc -print-multiarch 2>/dev/null || dpkg-architecture -qDEB_HOST_MULTIARCH)"
    CXX_VERSION="$(c++ --version 2>/dev/null | head -1)"
fi
# (The native key is what it was before --arch existed, so the x86 prefix built then is reused.)
key="$(printf '%s\n' "$SDIST_SHA256" "${OPTIONS[@]}" "${SYSTEM_LIBS[@]}" "$multiarch" \
    "$CXX_VERSION" | sha256sum | cut -c1-16)"
PREFIX="$CACHE/opencv-4.6.0-lean-$key"
ENV_FILE="$PREFIX/env.sh"

# One build at a time per cache (setup.sh runs this; the demo and the tests may start together):
# a second caller waits, then finds the build complete.
mkdir -p "$CACHE"
exec 9>"$CACHE/opencv-lean.lock"
flock 9
if [ ! -f "$PREFIX/.complete" ]; then
    fetch_sdist
    work="$CACHE/opencv-4.6.0-lean-$key.build"
    rm -rf "$work" "$PREFIX"
    mkdir -p "$work"
    log "unpacking the sdist's opencv/ tree"
    tar -xzf "$SDIST" -C "$work" --strip-components=1 "$SDIST_NAME-$SDIST_VERSION/opencv"
    log "configuring into $PREFIX"
    cmake -S "$work/opencv" -B "$work/build" -G Ninja "${OPTIONS[@]}" "${CROSS[@]}" -DCMAKE_INSTALL_PREFIX="$PREFIX" \
        >"$work/cmake.log" 2>&1 || { log "cmake failed, see $work/cmake.log"; exit 1; }
    grep -qE 'FFMPEG: *YES' "$work/cmake.log" && { log "cmake enabled FFmpeg; refusing"; exit 1; }
    # Every codec found, and (cross) found in the sysroot, not on this machine.
    for c in JPEG PNG WEBP; do
        line="$(grep -E "^-- +$c: " "$work/cmake.log" || true)"
        case "$line" in
            *NO*|"") log "cmake did not enable $c: ${line:-no line}, see $work/cmake.log"; exit 1 ;;
        esac
        if [ "$arch" = arm64 ] && grep -q "/usr/lib/x86_64" <<<"$line"; then
            log "cmake took the host's $c: $line"; exit 1
        fi
    done
    grep -qE 'v4l/v4l2: *YES' "$work/cmake.log" || { log "cmake did not enable V4L2, see $work/cmake.log"; exit 1; }
    log "building (log: $work/build.log)"
    if ! /usr/bin/time -v -o "$work/time.txt" ninja -C "$work/build" -j "${JOBS:-$(nproc)}" >"$work/build.log" 2>&1; then
        log "build failed, see $work/build.log"; exit 1
    fi
    ninja -C "$work/build" install >"$work/install.log" 2>&1
    cp "$work/cmake.log" "$work/time.txt" "$PREFIX/"
    for m in core imgproc imgcodecs videoio; do
        [ -f "$PREFIX/lib/libopencv_$m.a" ] || { log "missing $PREFIX/lib/libopencv_$m.a"; exit 1; }
    done
    link_libs="static=opencv_videoio,static=opencv_imgcodecs,static=opencv_imgproc,static=opencv_core"
    link_paths="$PREFIX/lib"
    # Static third-party pieces OpenCV built itself (none with these options; kept for safety).
    if [ -d "$PREFIX/lib/opencv4/3rdparty" ]; then
        link_paths="$link_paths,$PREFIX/lib/opencv4/3rdparty"
        for a in "$PREFIX"/lib/opencv4/3rdparty/lib*.a; do
            [ -e "$a" ] || continue
            n="$(basename "$a" .a)"; link_libs="$link_libs,static=${n#lib}"
        done
    fi
    for l in "${SYSTEM_LIBS[@]}"; do link_libs="$link_libs,$l"; done
    # OPENCV_DISABLE_PROBES: without it the crate may find Debian's OpenCV through pkg-config or
    # cmake. $PREFIX/lib comes first: libopencv-dev ships .a files of its own in the multiarch
    # directory, and rustc would bundle those silently if ours were missing.
    cat >"$ENV_FILE.tmp" <<EOF
# Lean static OpenCV 4.6.0 without FFmpeg, built by scripts/opencv-lean.sh. Source this file.
export OPENCV_DISABLE_PROBES=pkg_config,cmake,vcpkg_cmake,vcpkg
export OPENCV_INCLUDE_PATHS=$PREFIX/include/opencv4
export OPENCV_LINK_PATHS=$link_paths,${L:-/usr/lib/$multiarch}
export OPENCV_LINK_LIBS=$link_libs
EOF
    mv "$ENV_FILE.tmp" "$ENV_FILE"
    rm -rf "$work"
    touch "$PREFIX/.complete"
    log "built; $(grep -E 'User time|System time|Elapsed|Maximum resident' "$PREFIX/time.txt" | sed 's/^\s*//' | paste -sd';')"
else
    log "already built: $PREFIX"
fi

if [ "$mode" = file ]; then
    echo "$ENV_FILE"
else
    cat "$ENV_FILE"
fi
