#!/usr/bin/env bash
# Runs an aarch64 program of this build under qemu-user: `qemu-run.sh PROGRAM ARGS...`. The cargo
# runner for the aarch64 target (.cargo/config.toml), and what scripts/check-arm64.sh runs the
# arm64 dolbom with. The sysroot (scripts/arm64/sysroot.sh) is the -L prefix: the guest's ELF
# interpreter, libraries and /proc/cpuinfo come from it; everything else is the host's.
set -euo pipefail
ARM64_WHO=qemu-run
# shellcheck source=scripts/arm64/lib.sh
. "$(dirname "$0")/lib.sh"
command -v qemu-aarch64 >/dev/null || arm64_die "qemu-aarch64 is missing: apt-get install qemu-user"
[ $# -ge 1 ] || arm64_die "usage: qemu-run.sh PROGRAM [ARGS...]"
libdirs=$(arm64_libdirs)
# LD_LIBRARY_PATH is set for the guest only (-E): the host's qemu must not see arm64 libraries.
exec qemu-aarch64 -L "$ARM64_SYSROOT" -E "LD_LIBRARY_PATH=$libdirs" "$@"
