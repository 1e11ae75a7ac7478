#!/usr/bin/env bash
# The linker for aarch64-unknown-linux-gnu (.cargo/config.toml): Debian's cross gcc, told where
# the OpenCV libraries' own dependencies (ffmpeg, gdal, blas, ...) are in the sysroot made by
# scripts/arm64/sysroot.sh. -rpath-link is used at link time only: nothing of this machine's
# paths ends up in the binary. A wrapper rather than rustflags, so that the sysroot's place
# (in the user's cache) is no part of cargo's fingerprints: moving it rebuilds nothing. The name
# ends in -gcc so that rustc passes gcc-style arguments (-Wl,...), as to aarch64-linux-gnu-gcc.
set -euo pipefail
ARM64_WHO=link-arm64
# shellcheck source=scripts/arm64/lib.sh
. "$(dirname "$0")/lib.sh"
rpath=
libdirs=$(arm64_libdirs)
for d in ${libdirs//:/ }; do rpath="${rpath:+$rpath:}$ARM64_SYSROOT$d"; done
exec aarch64-linux-gnu-gcc "$@" "-Wl,-rpath-link,$rpath"
