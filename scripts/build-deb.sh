#!/usr/bin/env bash
# Builds dolbom's Debian packages with plain dpkg-deb (no cargo-deb, no debhelper): the files
# are staged in a directory tree, DEBIAN/ is filled from packaging/, and dpkg-deb packs it.
#
#   scripts/build-deb.sh [--arch amd64|arm64] [--package NAME]... [--binary PATH] [--assets DIR]
#                        [--version V] [--revision N] [--out DIR]
#
#   --arch      amd64 (default: this machine's) or arm64
#   --package   dolbom, dolbom-models or dolbom-relay; repeatable (default: dolbom dolbom-models)
#   --binary    the dolbom executable. Default for dolbom: target/release/dolbom (amd64) or
#               target/aarch64-unknown-linux-gnu/release/dolbom (arm64). dolbom-relay has no
#               default: give it a `--no-default-features --features relay` build
#   --assets    a scripts/fetch_assets.py --dest DIR for the architecture (lib/, models/).
#               Default: .dolbom (amd64), .dolbom/arm64 (arm64: what scripts/build-arm64.sh fetches)
#   --version   upstream version (default: the workspace version in Cargo.toml)
#   --revision  Debian revision (default 1); the package version is VERSION-REVISION
#   --out       where the .deb files go (default: target/deb)
#
# Depends are derived, not listed: the NEEDED entries of the binary (and of ONNX Runtime) are
# mapped to the Debian packages that ship those libraries on this machine (dpkg -S); Debian
# names them the same on every architecture, so an arm64 package gets the same names.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PKGDIR="$ROOT/packaging"

log() { printf 'build-deb: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

arch="$(dpkg --print-architecture)"
packages=()
binary=""
assets=""
version=""
revision=1
out="$ROOT/target/deb"

while [ $# -gt 0 ]; do
    case "$1" in
        --arch) arch="${2:?--arch needs a value}"; shift 2 ;;
        --package) packages+=("${2:?--package needs a value}"); shift 2 ;;
        --binary) binary="${2:?--binary needs a value}"; shift 2 ;;
        --assets) assets="${2:?--assets needs a value}"; shift 2 ;;
        --version) version="${2:?--version needs a value}"; shift 2 ;;
        --revision) revision="${2:?--revision needs a value}"; shift 2 ;;
        --out) out="${2:?--out needs a value}"; shift 2 ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
done
[ ${#packages[@]} -gt 0 ] || packages=(dolbom dolbom-models)

case "$arch" in
    amd64) elf_machine="Advanced Micro Devices X86-64"; triple=x86_64-unknown-linux-gnu
           default_binary="$ROOT/target/release/dolbom"; default_assets="$ROOT/.dolbom"
           fetch_arch=x86_64 ;;
    arm64) elf_machine="AArch64"; triple=aarch64-unknown-linux-gnu
           default_binary="$ROOT/target/$triple/release/dolbom"; default_assets="$ROOT/.dolbom/arm64"
           fetch_arch=aarch64 ;;
    *) die "--arch must be amd64 or arm64, not $arch" ;;
esac
assets="${assets:-$default_assets}"

for tool in dpkg-deb dpkg-query readelf python3 md5sum gzip; do
    command -v "$tool" >/dev/null || die "$tool is missing (apt-get install dpkg binutils python3)"
done

if [ -z "$version" ]; then
    version="$(python3 -c 'import sys, tomllib; print(tomllib.load(open(sys.argv[1], "rb"))["workspace"]["package"]["version"])' "$ROOT/Cargo.toml")"
fi
[[ "$version" =~ ^[0-9][A-Za-z0-9.+~]*$ ]] || die "version '$version' is not a Debian upstream version"
[[ "$revision" =~ ^[A-Za-z0-9.+~]+$ ]] || die "revision '$revision' is not a Debian revision"
deb_version="$version-$revision"
# File dates and the changelog date come from the last commit, so a rebuild is byte-identical.
export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-$(git -C "$ROOT" log -1 --format=%ct 2>/dev/null || date +%s)}"
commit="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"

# ---- helpers ---------------------------------------------------------------------------------

elf_machine_of() { readelf -h "$1" 2>/dev/null | sed -n 's/^ *Machine: *//p'; }

check_elf() { # FILE WHAT
    local got
    got="$(elf_machine_of "$1")"
    [ "$got" = "$elf_machine" ] || die "$2 $1 is for '${got:-not an ELF file}', not $arch ($elf_machine)"
}

needed() { readelf -d "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'; }

host_multiarch() {
    case "$(dpkg --print-architecture)" in
        amd64) echo x86_64-linux-gnu ;;
        arm64) echo aarch64-linux-gnu ;;
        *) die "cannot map libraries to packages on a $(dpkg --print-architecture) build machine" ;;
    esac
}

# The Debian package that ships a library, found by its soname on this machine.
package_of_soname() {
    local soname="$1" dir owner ma
    case "$soname" in
        # The dynamic loader's name differs per architecture; libc6 ships it on each.
        ld-linux*.so.*) echo libc6; return ;;
    esac
    ma="$(host_multiarch)"
    for dir in "/lib/$ma" "/usr/lib/$ma" /lib /usr/lib; do
        owner="$(dpkg -S "$dir/$soname" 2>/dev/null | head -n1 | cut -d: -f1)" || true
        if [ -n "$owner" ]; then echo "$owner"; return; fi
    done
    die "no installed package ships $soname, which the binary needs: install its runtime package on this machine (scripts/setup.sh installs those of the default build) so that its name can be looked up"
}

# Depends for a set of ELF files: one entry per package, libc6 versioned by the newest GLIBC_
# symbol version they use.
derive_depends() {
    local f lib glibc pkgs=()
    for f in "$@"; do
        while read -r lib; do
            [ -n "$lib" ] && pkgs+=("$(package_of_soname "$lib")")
        done < <(needed "$f")
    done
    glibc="$(for f in "$@"; do readelf -V --wide "$f"; done | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -V | tail -n1)"
    printf '%s\n' "${pkgs[@]}" | sort -u | while read -r p; do
        if [ "$p" = libc6 ] && [ -n "$glibc" ]; then echo "libc6 (>= $glibc)"; else echo "$p"; fi
    done | paste -sd, - | sed 's/,/, /g'
}

strip_into() { # SRC DEST: a stripped copy (symbols kept for readable panic backtraces)
    local tool
    for tool in "${triple%%-*}-linux-gnu-strip" llvm-strip strip; do
        if command -v "$tool" >/dev/null && "$tool" --strip-debug --remove-section=.comment -o "$2" "$1" 2>/dev/null; then
            check_elf "$2" "stripped binary"
            return
        fi
    done
    die "no strip tool handles $arch ELF files (apt-get install binutils-${triple%%-*}-linux-gnu)"
}

fill() { # TEMPLATE VARS-FILE -> stdout: @NAME@ replaced by the values of VARS-FILE and the env
    python3 - "$@" <<'PY'
import os, re, shlex, sys
text = open(sys.argv[1]).read()
values = dict(os.environ)
if len(sys.argv) > 2:
    for tok in shlex.split(open(sys.argv[2]).read(), comments=True):
        k, _, v = tok.partition("=")
        values[k] = v
common = os.path.join(os.path.dirname(sys.argv[1]), "common.sh")
if "#COMMON#" in text:
    text = text.replace("#COMMON#", open(common).read())
def sub(m):
    if m.group(1) not in values:
        sys.exit(f"build-deb: {sys.argv[1]} uses @{m.group(1)}@, which has no value")
    return values[m.group(1)]
sys.stdout.write(re.sub(r"@([A-Z_]+)@", sub, text))
PY
}

new_stage() { # PACKAGE -> path of an empty staging root
    local stage="$out/.stage/$1_$2"
    rm -rf "$stage"
    mkdir -p "$stage/DEBIAN"
    echo "$stage"
}

install_docs() { # STAGE PACKAGE COPYRIGHT-FILE
    local doc="$1/usr/share/doc/$2"
    install -d "$doc"
    install -m 0644 "$3" "$doc/copyright"
    { printf '%s (%s) unstable; urgency=medium\n\n' "$2" "$deb_version"
      printf '  * Built by scripts/build-deb.sh from dolbom commit %s.\n\n' "$commit"
      printf ' -- dolbom developers <dev@dolbom.invalid>  %s\n' "$(date -u -R -d "@$SOURCE_DATE_EPOCH")"
    } | gzip -9n > "$doc/changelog.Debian.gz"
    chmod 0644 "$doc/changelog.Debian.gz"
}

lintian_overrides() { # STAGE PACKAGE: deliberate exceptions, each with its reason in the file
    local src="$PKGDIR/lintian/$2"
    [ -f "$src" ] || return 0
    install -d "$1/usr/share/lintian/overrides"
    install -m 0644 "$src" "$1/usr/share/lintian/overrides/$2"
}

maintainer_scripts() { # STAGE PACKAGE
    local s
    for s in postinst prerm postrm; do
        PACKAGE="$2" fill "$PKGDIR/maint/$s.in" "$PKGDIR/maint/$2.vars" > "$1/DEBIAN/$s"
        chmod 0755 "$1/DEBIAN/$s"
        sh -n "$1/DEBIAN/$s" || die "$2 $s is not valid sh"
    done
}

finish() { # STAGE PACKAGE ARCH DEPENDS
    local stage="$1" pkg="$2" pkg_arch="$3" deb size compress=xz
    if [ -d "$stage/etc" ]; then
        (cd "$stage" && find etc -type f | sort | sed 's|^|/|') > "$stage/DEBIAN/conffiles"
    fi
    (cd "$stage" && find . -path ./DEBIAN -prune -o -type f -print0 | sort -z | xargs -0 md5sum | sed 's| \./| |') \
        > "$stage/DEBIAN/md5sums"
    size="$(du -sk --exclude=DEBIAN "$stage" | cut -f1)"
    VERSION="$deb_version" UPSTREAM_VERSION="$version" ARCH="$pkg_arch" INSTALLED_SIZE="$size" DEPENDS="$4" \
        fill "$PKGDIR/control/$pkg.control" > "$stage/DEBIAN/control"
    chmod 0644 "$stage/DEBIAN/control" "$stage/DEBIAN/md5sums"
    [ ! -f "$stage/DEBIAN/conffiles" ] || chmod 0644 "$stage/DEBIAN/conffiles"
    find "$stage" -depth -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
    deb="$out/${pkg}_${deb_version}_${pkg_arch}.deb"
    # ONNX weights are floats that xz shrinks by 0.5% in 80 s where gzip takes 5 s; the binary
    # and ONNX Runtime shrink 3.4x with xz. --root-owner-group: owned by root whoever builds.
    [ "$pkg" != dolbom-models ] || compress=gzip
    dpkg-deb --root-owner-group -Z"$compress" --threads-max="$(nproc)" --build "$stage" "$deb" >/dev/null
    rm -rf "$stage"
    log "built $deb ($(du -h "$deb" | cut -f1), installed $((size / 1024)) MiB)"
    echo "$deb"
}

# ---- the packages ----------------------------------------------------------------------------

# In every build with the kiosk wing (crates/kiosk/src/doctor.rs), whichever OpenCV it links.
KIOSK_MARK='no [camera] section / [camera]'

# The binary, checked for the architecture and for which build it is.
staged_binary() { # STAGE WANT-KIOSK(yes|no)
    local bin="${binary:-}"
    if [ -z "$bin" ]; then
        [ "$2" = yes ] || die "dolbom-relay needs --binary: a cargo build --no-default-features --features relay"
        bin="$default_binary"
    fi
    [ -f "$bin" ] || die "no binary at $bin (build it first: $( [ "$arch" = amd64 ] && echo 'cargo build --release' || echo 'scripts/build-arm64.sh'), or pass --binary)"
    check_elf "$bin" "binary"
    # The kiosk wing, told by a string only it embeds (its doctor's camera check), not by
    # libopencv_core: a kiosk built against the lean static OpenCV (scripts/opencv-lean.sh) links
    # no OpenCV library at all. The messages still say OpenCV: the kiosk wing is what needs it.
    if grep -qaF "$KIOSK_MARK" "$bin"; then
        [ "$2" = yes ] || die "$bin links OpenCV: it is the kiosk build, not a relay-only one"
    else
        [ "$2" = no ] || die "$bin does not link OpenCV: it is not a kiosk build (a relay-only binary goes in --package dolbom-relay)"
    fi
    # The console (a default feature) ships its unit and config in dolbom: its binary must have it.
    # (A string of its accounts file, not running the binary: an arm64 one does not run here.)
    if [ "$2" = yes ] && ! grep -qaF 'dolbom staff console accounts' "$bin"; then
        die "$bin has no staff console: build it with the default features (cargo build --release)"
    fi
    install -d "$1/usr/bin"
    strip_into "$bin" "$1/usr/bin/dolbom"
    chmod 0755 "$1/usr/bin/dolbom"
}

config_files() { # STAGE NAME... : conffiles in /etc/dolbom and pristine copies to compare with
    local stage="$1" name
    shift
    install -d "$stage/etc/dolbom" "$stage/usr/share/dolbom/examples"
    for name in "$@"; do
        install -m 0644 "$ROOT/config/$name" "$stage/etc/dolbom/$name"
        install -m 0644 "$ROOT/config/$name" "$stage/usr/share/dolbom/examples/$name"
    done
}

build_dolbom() {
    local stage depends ort="$assets/lib/libonnxruntime.so.1.32.0"
    stage="$(new_stage dolbom "$arch")"
    staged_binary "$stage" yes
    [ -f "$ort" ] || die "no ONNX Runtime at $ort: python3 scripts/fetch_assets.py --arch $fetch_arch --dest $assets"
    check_elf "$ort" "ONNX Runtime"
    install -d "$stage/usr/lib/dolbom"
    install -m 0644 "$ort" "$stage/usr/lib/dolbom/"
    install -d "$stage/lib/systemd/system"
    # The staff console is in the default features, so in this binary (not in dolbom-relay's).
    install -m 0644 "$ROOT/systemd/dolbom-kiosk.service" "$ROOT/systemd/dolbom-console.service" \
        "$ROOT/systemd/dolbom-relay.service" "$stage/lib/systemd/system/"
    install -d "$stage/lib/udev/rules.d" "$stage/usr/lib/sysusers.d"
    install -m 0644 "$PKGDIR/udev/70-dolbom.rules" "$stage/lib/udev/rules.d/"
    install -m 0644 "$PKGDIR/sysusers/dolbom.conf" "$stage/usr/lib/sysusers.d/dolbom.conf"
    config_files "$stage" kiosk.toml console.toml relay.toml directory.toml
    # The installer copies this one to /etc/udev/rules.d and names the sensors' ports in it.
    install -m 0644 "$PKGDIR/udev/71-dolbom-site.rules" "$stage/usr/share/dolbom/examples/"
    lintian_overrides "$stage" dolbom
    install_docs "$stage" dolbom "$PKGDIR/copyright/dolbom"
    install -d "$stage/usr/share/doc/dolbom/docs"
    install -m 0644 "$ROOT/README.md" "$stage/usr/share/doc/dolbom/"
    install -m 0644 "$ROOT"/docs/*.md "$stage/usr/share/doc/dolbom/docs/"
    maintainer_scripts "$stage" dolbom
    # A separate assignment, so that a library no package ships stops the build.
    depends="$(derive_depends "$stage/usr/bin/dolbom" "$stage/usr/lib/dolbom/libonnxruntime.so.1.32.0")"
    finish "$stage" dolbom "$arch" "$depends"
}

build_relay() {
    local stage depends
    stage="$(new_stage dolbom-relay "$arch")"
    staged_binary "$stage" no
    install -d "$stage/lib/systemd/system" "$stage/usr/lib/sysusers.d"
    install -m 0644 "$ROOT/systemd/dolbom-relay.service" "$stage/lib/systemd/system/"
    install -m 0644 "$PKGDIR/sysusers/dolbom-relay.conf" "$stage/usr/lib/sysusers.d/dolbom.conf"
    config_files "$stage" relay.toml directory.toml
    install_docs "$stage" dolbom-relay "$PKGDIR/copyright/dolbom-relay"
    install -d "$stage/usr/share/doc/dolbom/docs"
    install -m 0644 "$ROOT/README.md" "$stage/usr/share/doc/dolbom/"
    install -m 0644 "$ROOT/docs/relay.md" "$ROOT/docs/mqtt.md" "$stage/usr/share/doc/dolbom/docs/"
    lintian_overrides "$stage" dolbom-relay
    maintainer_scripts "$stage" dolbom-relay
    depends="$(derive_depends "$stage/usr/bin/dolbom")"
    finish "$stage" dolbom-relay "$arch" "$depends"
}

build_models() {
    local stage
    stage="$(new_stage dolbom-models all)"
    install -d "$stage/usr/lib/dolbom/models"
    # Only the models the manifest pins, each checked against its install_sha256.
    python3 - "$ROOT/models/manifest.toml" "$assets" "$stage/usr/lib/dolbom/models" <<'PY' || die "models in $assets do not match models/manifest.toml (python3 scripts/fetch_assets.py --dest $assets)"
import hashlib, shutil, sys, tomllib
from pathlib import Path
manifest, assets, dest = tomllib.load(open(sys.argv[1], "rb")), Path(sys.argv[2]), Path(sys.argv[3])
for m in manifest["model"]:
    src = assets / m["install"]
    if not src.is_file():
        sys.exit(f"build-deb: no model at {src}")
    got = hashlib.sha256(src.read_bytes()).hexdigest()
    if got != m["install_sha256"]:
        sys.exit(f"build-deb: {src} has sha256 {got}, the manifest says {m['install_sha256']}")
    shutil.copyfile(src, dest / src.name)
    (dest / src.name).chmod(0o644)
PY
    install_docs "$stage" dolbom-models "$PKGDIR/copyright/dolbom-models"
    finish "$stage" dolbom-models all ""
}

mkdir -p "$out"
# Staging trees are scratch, also when a check stops the build half-way.
trap 'rm -rf "$out/.stage"' EXIT
start=$(date +%s)
for pkg in "${packages[@]}"; do
    case "$pkg" in
        dolbom) build_dolbom ;;
        dolbom-models) build_models ;;
        dolbom-relay) build_relay ;;
        *) die "unknown package $pkg (dolbom, dolbom-models or dolbom-relay)" ;;
    esac
done
log "done in $(( $(date +%s) - start )) s"
