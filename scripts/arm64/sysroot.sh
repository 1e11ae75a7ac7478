#!/usr/bin/env bash
# Builds the aarch64 sysroot that the cross build links against and qemu-aarch64 runs in: the
# runtime closure of what the arm64 binary links, resolved by apt itself and unpacked with
# `dpkg -x`, and the headers it is built against. Which OpenCV (DOLBOM_OPENCV, lib.sh) decides
# what that is: for the lean static OpenCV (the default) the image codecs (JPEG, PNG, WebP, zlib)
# and the C++ runtime, against which scripts/opencv-lean.sh --arch arm64 cross-builds OpenCV; for
# Debian's, also Debian 12's arm64 OpenCV headers (core, imgproc, imgcodecs, videoio) and the
# runtime closure of those four libraries (258 packages).
#
# arm64 -dev packages often cannot be installed beside the amd64 ones, so apt runs here with a
# private configuration (architecture arm64, an empty dpkg status, lists and .debs in the cache):
# the machine's own dpkg architectures, package lists and installed packages are never touched,
# and no `dpkg --add-architecture` is needed. The package sources are the machine's own.
#
# Idempotent: when the sysroot for this package set is complete, nothing is downloaded (not even
# the package lists). Prints nothing on stdout.
set -euo pipefail
ARM64_WHO=sysroot
# shellcheck source=scripts/arm64/lib.sh
. "$(dirname "$0")/lib.sh"

# Runtime: the libraries the binary links; apt adds libc6 and everything else they need. ONNX
# Runtime needs only libc and libstdc++. Headers and the unversioned .so links come from the -dev
# packages, unpacked without their dependencies (other -dev packages).
runtime=(libjpeg62-turbo libpng16-16 libwebp7 zlib1g libstdc++6)
dev=(libjpeg62-turbo-dev libpng-dev libwebp-dev zlib1g-dev)
# The sonames whose closure must be complete, and files that must be there.
roots=(libjpeg.so.62 libpng16.so.16 libwebp.so.7 libz.so.1 libstdc++.so.6 libgcc_s.so.1 libm.so.6 libc.so.6)
expect=(lib/ld-linux-aarch64.so.1 usr/include/jpeglib.h usr/include/png.h usr/include/webp/decode.h
    usr/include/zlib.h "usr/lib/$ARM64_MULTIARCH/libjpeg.so" "usr/lib/$ARM64_MULTIARCH/libpng.so"
    "usr/lib/$ARM64_MULTIARCH/libwebp.so" "usr/lib/$ARM64_MULTIARCH/libz.so")
if [ "$(arm64_opencv)" = debian ]; then
    # The libraries the opencv crate links (their soname is Debian 12's 4.6 -> 406).
    runtime+=(libopencv-core406 libopencv-imgproc406 libopencv-imgcodecs406 libopencv-videoio406)
    dev+=(libopencv-core-dev libopencv-imgproc-dev libopencv-imgcodecs-dev libopencv-videoio-dev)
    roots+=(libopencv_core.so.406 libopencv_imgproc.so.406 libopencv_imgcodecs.so.406 libopencv_videoio.so.406)
    expect+=(usr/include/opencv4/opencv2/core.hpp "usr/include/$ARM64_MULTIARCH/opencv4/opencv2/cvconfig.h"
        "usr/lib/$ARM64_MULTIARCH/libopencv_videoio.so")
fi
# Bump when the layout below changes, so that an old sysroot is rebuilt.
layout=3
key="layout=$layout runtime=${runtime[*]} dev=${dev[*]}"

# qemu-user reads /proc/cpuinfo from the prefix when it is there. ONNX Runtime's CPU detection
# crashes on the x86 host's file, so the guest gets a plain one: Cortex-A72 cores (Raspberry
# Pi 4), as many as the host has (sysfs, which is not remapped, says how many CPUs exist).
write_cpuinfo() {
    local out="$ARM64_SYSROOT/proc/cpuinfo" n i tmp
    n=$(nproc --all)
    mkdir -p "$(dirname "$out")"
    tmp="$out.part"
    : >"$tmp"
    for ((i = 0; i < n; i++)); do
        printf 'processor\t: %d\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm crc32 cpuid\nCPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: 0xd08\nCPU revision\t: 3\n\n' "$i" >>"$tmp"
    done
    if cmp -s "$tmp" "$out" 2>/dev/null; then rm -f "$tmp"; else mv "$tmp" "$out"; fi
}

if [ -f "$ARM64_SYSROOT/.complete" ] && [ "$(cat "$ARM64_SYSROOT/.complete")" = "$key" ]; then
    write_cpuinfo
    arm64_log "sysroot ready at $ARM64_SYSROOT (cached)"
    exit 0
fi

command -v dpkg-deb >/dev/null || arm64_die "dpkg-deb is missing: this needs a Debian system"
apt_dir="$ARM64_CACHE/apt"
mkdir -p "$apt_dir/lists/partial" "$apt_dir/archives/partial"
: >"$apt_dir/status"
cat >"$apt_dir/apt.conf" <<CONF
APT::Architecture "arm64";
APT::Architectures { "arm64"; };
Dir::State "$apt_dir";
Dir::State::Lists "$apt_dir/lists";
Dir::State::status "$apt_dir/status";
Dir::Cache "$apt_dir";
Dir::Cache::Archives "$apt_dir/archives";
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
// No root-owned lock files or dpkg runs: this apt only resolves and downloads.
Debug::NoLocking "true";
// The download sandbox user cannot write into a home directory's cache.
APT::Sandbox::User "root";
APT::Install-Recommends "false";
Acquire::Languages "none";
Acquire::IndexTargets::deb::DEP-11::DefaultEnabled "false";
Acquire::IndexTargets::deb::DEP-11-icons::DefaultEnabled "false";
Acquire::IndexTargets::deb::DEP-11-icons-small::DefaultEnabled "false";
Acquire::IndexTargets::deb::DEP-11-icons-hidpi::DefaultEnabled "false";
CONF
export APT_CONFIG="$apt_dir/apt.conf"

arm64_log "updating the arm64 package lists (private to $apt_dir)"
apt-get update -qq || arm64_die "apt-get update for arm64 failed (see above)"

# The closure as apt resolves it on an empty arm64 system: "name version" per package.
plan=$(apt-get install -s -qq -y "${runtime[@]}" 2>&1) ||
    arm64_die "apt cannot resolve the arm64 runtime packages: $plan"
mapfile -t closure < <(awk '$1 == "Inst" { v = $3; gsub(/[()\[\]]/, "", v); print $2, v }' <<<"$plan")
[ ${#closure[@]} -gt 0 ] || arm64_die "apt resolved no packages for ${runtime[*]}"
mapfile -t devs < <(apt-cache policy "${dev[@]}" | awk '/^[^ ]/ { p = $1; sub(/:$/, "", p) } /Candidate:/ { print p, $2 }')
[ ${#devs[@]} -eq ${#dev[@]} ] || arm64_die "not every one of ${dev[*]} has an arm64 candidate"

arm64_log "downloading ${#closure[@]} runtime packages and ${#devs[@]} -dev packages (kept in $apt_dir/archives)"
apt-get install -qq -y --download-only "${runtime[@]}" >/dev/null
(cd "$apt_dir/archives" && apt-get download -qq "${dev[@]}")

# A .deb's file name: name_version_arch.deb, the version's epoch colon escaped.
deb_of() {
    local name=$1 version=${2//:/%3a} f
    for f in "$apt_dir/archives/${name}_${version}_arm64.deb" "$apt_dir/archives/${name}_${version}_all.deb"; do
        [ -f "$f" ] && { echo "$f"; return 0; }
    done
    arm64_die "downloaded package $name $2 not found in $apt_dir/archives"
}

staging="$ARM64_SYSROOT.part"
rm -rf "$staging"
mkdir -p "$staging"
arm64_log "unpacking into $ARM64_SYSROOT"
for entry in "${closure[@]}" "${devs[@]}"; do
    # shellcheck disable=SC2086 # "name version"
    deb_of $entry
done | xargs -P "$(nproc)" -n 8 sh -c 'for d; do dpkg -x "$d" "$0" || exit 255; done' "$staging"

# Absolute symlinks (/lib/ld-linux-aarch64.so.1 -> /lib/aarch64-linux-gnu/...) would lead out of
# the sysroot, into the host's x86 files: point them inside it.
find "$staging" -type l -lname '/*' -print0 | while IFS= read -r -d '' link; do
    ln -sfn --relative "$staging$(readlink "$link")" "$link"
done

# The runtime closure, checked: every library that the roots need, transitively, must be found
# in the sysroot. Its directories, in the guest's terms, become .libdirs: the multiarch pair, and
# for Debian's OpenCV also /lib and /usr/lib (armadillo, ogdi and hdf4 live there) and the
# subdirectories Debian's alternatives point into (blas/, lapack/), which stay unlinked because
# `dpkg -x` runs no maintainer scripts.
command -v aarch64-linux-gnu-readelf >/dev/null || arm64_die "aarch64-linux-gnu-readelf is missing: apt-get install binutils-aarch64-linux-gnu"
search=("/lib/$ARM64_MULTIARCH" "/usr/lib/$ARM64_MULTIARCH" /lib /usr/lib)
while IFS= read -r dir; do search+=("$dir"); done < <(cd "$staging" && find "usr/lib/$ARM64_MULTIARCH" -mindepth 1 -maxdepth 1 -type d | sed 's|^|/|' | sort)
declare -A found=() used=()
queue=("${roots[@]}")
missing=()
while [ ${#queue[@]} -gt 0 ]; do
    lib=${queue[0]}
    queue=("${queue[@]:1}")
    [ -z "${found[$lib]:-}" ] || continue
    path=
    for dir in "${search[@]}"; do
        if [ -e "$staging$dir/$lib" ]; then path="$staging$dir/$lib"; used[$dir]=1; break; fi
    done
    if [ -z "$path" ]; then missing+=("$lib"); found[$lib]=missing; continue; fi
    found[$lib]=$path
    while IFS= read -r need; do queue+=("$need"); done < <(aarch64-linux-gnu-readelf -d "$path" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
done
[ ${#missing[@]} -eq 0 ] || arm64_die "the arm64 runtime closure is incomplete, not in the sysroot: ${missing[*]}"
libdirs=
for dir in "${search[@]}"; do
    [ -n "${used[$dir]:-}" ] && libdirs="${libdirs:+$libdirs:}$dir"
done
printf '%s\n' "$libdirs" >"$staging/.libdirs"

for f in "${expect[@]}"; do
    [ -e "$staging/$f" ] || arm64_die "the unpacked sysroot lacks $f"
done

rm -rf "$ARM64_SYSROOT"
mv "$staging" "$ARM64_SYSROOT"
write_cpuinfo
printf '%s\n' "$key" >"$ARM64_SYSROOT/.complete"
arm64_log "sysroot ready at $ARM64_SYSROOT: ${#closure[@]} + ${#devs[@]} packages, $(du -sh "$ARM64_SYSROOT" | cut -f1); ${#found[@]} libraries in the closure, in $libdirs"
