# The image `cross` builds dolbom for aarch64-unknown-linux-gnu in (cross.toml points here; run
# with CROSS_CONFIG=cross.toml, see docs/arm64.md). Debian 12 like the kiosks, because cross's
# stock aarch64 images are Ubuntu, whose OpenCV the opencv crate cannot use here.
#
# The sysroot is made by the same script as the Docker-free path (scripts/arm64/sysroot.sh):
# Debian 12's arm64 OpenCV headers and the runtime closure of the four libraries dolbom links.
# The project's .cargo/config.toml then supplies the linker (scripts/arm64/link-gcc.sh) and the runner
# (scripts/arm64/qemu-run.sh) inside the container. Build context: the repository root.
#
# Not exercised in CI (no Docker engine there): scripts/build-arm64.sh is the tested path.
FROM debian:12

ARG DEBIAN_FRONTEND=noninteractive
# clang/libclang for the opencv crate's binding generator; the cross gcc and binutils (readelf
# checks the sysroot's closure); qemu-user so that `cross test` runs the tests.
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        ca-certificates clang libclang-dev pkg-config \
        gcc-aarch64-linux-gnu g++-aarch64-linux-gnu binutils-aarch64-linux-gnu libc6-dev-arm64-cross \
        qemu-user \
    && rm -rf /var/lib/apt/lists/*

# Debian's shared arm64 OpenCV in the image (the lean one is built by scripts/opencv-lean.sh,
# which this image does not run): the sysroot holds its headers and runtime closure.
ENV DOLBOM_ARM64_SYSROOT=/opt/dolbom-arm64/sysroot DOLBOM_OPENCV=debian
COPY scripts/arm64/lib.sh scripts/arm64/sysroot.sh /opt/dolbom-arm64/scripts/arm64/
# The private apt state and .debs go to a throw-away cache; only the sysroot stays in the image.
RUN XDG_CACHE_HOME=/tmp/dolbom-cache /opt/dolbom-arm64/scripts/arm64/sysroot.sh \
    && rm -rf /tmp/dolbom-cache \
    && chmod -R a+rX /opt/dolbom-arm64

# What scripts/arm64/lib.sh's arm64_cargo_env exports on the Docker-free path.
ENV OPENCV_LINK_LIBS=opencv_core,opencv_imgproc,opencv_imgcodecs,opencv_videoio \
    OPENCV_LINK_PATHS=/opt/dolbom-arm64/sysroot/usr/lib/aarch64-linux-gnu \
    OPENCV_INCLUDE_PATHS=/opt/dolbom-arm64/sysroot/usr/include/opencv4,/opt/dolbom-arm64/sysroot/usr/include/aarch64-linux-gnu/opencv4 \
    CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc \
    CXX_aarch64_unknown_linux_gnu=aarch64-linux-gnu-g++ \
    AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar
