#!/usr/bin/env bash
# Tests the dolbom Debian packages for real on this machine, as root: builds dolbom + dolbom-models
# (amd64) at version V, installs them with dpkg, checks files, modes, the user, the units (kiosk,
# staff console, relay), udev rules and the installed binary; adds a console staff account as the
# dolbom user; edits the config, upgrades to V+1 and checks that the edit, the state, the account
# and the admin's `systemctl enable` survive; purges and checks that nothing is left; does
# it again without systemd-sysusers; swaps a kiosk for dolbom-relay (Conflicts/Replaces). Then,
# when an arm64 binary exists, builds the arm64 packages and checks their contents.
#
#   scripts/test-deb.sh              (root; cheapest after scripts/check_wings.sh, whose builds it reuses)
#   DOLBOM_BINARY=PATH               the amd64 kiosk build (kiosk + relay + console) to package
#                                    (default: cargo build --release here, Debian's shared OpenCV);
#                                    e.g. a build against the lean static OpenCV of
#                                    scripts/opencv-lean.sh, which links no libopencv_*
#   DOLBOM_RELAY_BINARY=PATH         the relay-only amd64 build to package (default: built here)
#   DOLBOM_ARM64_BINARY=PATH         the arm64 kiosk build (default: target/aarch64-unknown-linux-gnu/release/dolbom)
#   DOLBOM_RELAY_ARM64_BINARY=PATH   also build and check an arm64 dolbom-relay around that binary
#
# Leaves nothing behind, also when a check fails: a trap purges whatever it installed. It never
# touches a dolbom it did not install itself: it refuses to run instead.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"

log() { printf 'test-deb: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root: it installs and purges packages"
[ "$(dpkg --print-architecture)" = amd64 ] || die "the install test builds amd64 packages; this machine is $(dpkg --print-architecture)"

PACKAGES=(dolbom dolbom-models dolbom-relay)
MARKER=/var/tmp/dolbom-test-deb.owned   # says: installed packages are this test's leftovers
PROBE_RULES=/run/udev/rules.d/71-dolbom-site.rules
passed=0 failed=0 skipped=0
t0=$(date +%s)

pass() { passed=$((passed + 1)); log "ok    $*"; }
fail() { failed=$((failed + 1)); log "FAIL  $*"; }
skip() { skipped=$((skipped + 1)); log "skip  $*"; }
check() { # DESCRIPTION COMMAND...: passes when the command succeeds
    local what="$1"
    shift
    if "$@" >/dev/null 2>&1; then pass "$what"; else fail "$what"; fi
}

installed() { [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true)" = installed ]; }
known_to_dpkg() { dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null | grep -q '^[a-z][a-zA-Z]'; }

# dpkg with its lock waited for: other jobs on this machine may be installing packages.
dpkg_run() {
    local out tries=0
    out="$(mktemp)"
    while :; do
        if dpkg "$@" </dev/null >"$out" 2>&1; then cat "$out"; rm -f "$out"; return 0; fi
        if grep -q 'lock' "$out" && [ $tries -lt 100 ]; then
            tries=$((tries + 1)); sleep 3; continue
        fi
        cat "$out" >&2; rm -f "$out"; return 1
    done
}

mode_is() { [ "$(stat -c '%a %U:%G' "$1")" = "$2" ]; }

# ---- set-up ----------------------------------------------------------------------------------

for p in "${PACKAGES[@]}"; do
    if known_to_dpkg "$p" && [ ! -f "$MARKER" ]; then
        die "$p is already on this machine and was not installed by this test: it would be purged (with its gallery); remove it yourself first"
    fi
done

user_existed=no
getent passwd dolbom >/dev/null && user_existed=yes
[ -f "$MARKER" ] && user_existed="$(cat "$MARKER")"
work="$(mktemp -d /tmp/dolbom-test-deb.XXXXXX)"

cleanup() {
    local rc=$?
    set +e
    log "cleaning up"
    local left=()
    for p in "${PACKAGES[@]}"; do known_to_dpkg "$p" && left+=("$p"); done
    if [ ${#left[@]} -gt 0 ]; then
        dpkg_run --purge "${left[@]}" >/dev/null || log "could not purge ${left[*]}: dpkg --purge ${left[*]}"
    fi
    rm -f "$PROBE_RULES"
    if [ "$user_existed" = no ] && getent passwd dolbom >/dev/null; then
        # The packages keep the user on purge (Debian policy); this test made it, so it goes.
        userdel dolbom 2>/dev/null
        getent group dolbom >/dev/null && groupdel dolbom 2>/dev/null
    fi
    rm -rf "$work"
    rm -f "$MARKER"
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# Earlier leftovers (a run killed before its trap ran) go first.
for p in "${PACKAGES[@]}"; do known_to_dpkg "$p" && dpkg_run --purge "$p" >/dev/null; done
echo "$user_existed" > "$MARKER"

# Tools: lintian and udevadm come from Debian when missing.
need=()
command -v lintian >/dev/null || need+=(lintian)
command -v udevadm >/dev/null || need+=(udev)
if [ ${#need[@]} -gt 0 ]; then
    log "installing ${need[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 update -qq || log "apt-get update failed; trying the install anyway"
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "${need[@]}" >/dev/null ||
        log "could not install ${need[*]}: those checks are skipped"
fi

# The relay-only build first, copied away, then the default one (kiosk + relay): after
# scripts/check_wings.sh both are in target/ already and each step only links.
relay_bin="${DOLBOM_RELAY_BINARY:-}"
if [ -z "$relay_bin" ]; then
    log "building the relay-only binary (cargo build --release --no-default-features --features relay)"
    cargo build --release --locked --quiet --no-default-features --features relay --bin dolbom
    relay_bin="$work/dolbom-relay-only"
    cp target/release/dolbom "$relay_bin"
fi
kiosk_bin="${DOLBOM_BINARY:-}"
if [ -z "$kiosk_bin" ]; then
    log "building the default binary (kiosk + relay) and fetching the assets"
    cargo build --release --locked --quiet
    kiosk_bin=target/release/dolbom
else
    [ -f "$kiosk_bin" ] || die "DOLBOM_BINARY=$kiosk_bin: no such file"
    # A copy: the relay-only build above may be writing target/release/dolbom.
    cp "$kiosk_bin" "$work/dolbom-kiosk"
    kiosk_bin="$work/dolbom-kiosk"
    log "packaging the given kiosk binary $DOLBOM_BINARY; fetching the assets"
fi
python3 scripts/fetch_assets.py >/dev/null

version="$(python3 -c 'import tomllib; print(tomllib.load(open("Cargo.toml", "rb"))["workspace"]["package"]["version"])')"
v1="$version"
v2="$version+debtest1"

b0=$(date +%s)
scripts/build-deb.sh --arch amd64 --binary "$kiosk_bin" --version "$v1" --out "$work/v1" >/dev/null
build_s=$(( $(date +%s) - b0 ))
deb1="$work/v1/dolbom_${v1}-1_amd64.deb"
models1="$work/v1/dolbom-models_${v1}-1_all.deb"
[ -f "$deb1" ] && [ -f "$models1" ] || die "build-deb.sh did not make $deb1 and $models1"
log "built version $v1 in $build_s s: $(du -h "$deb1" | cut -f1) dolbom, $(du -h "$models1" | cut -f1) dolbom-models"

# ---- the packages themselves -----------------------------------------------------------------

if command -v lintian >/dev/null; then
    lintian --tag-display-limit 0 "$deb1" "$models1" >"$work/lintian.txt" 2>&1 || true
    grep -v 'running with root privileges' "$work/lintian.txt" | sed 's/^/test-deb: lintian: /' >&2 || true
    check "lintian reports no errors" bash -c "! grep -q '^E: ' '$work/lintian.txt'"
else
    skip "lintian (not installable)"
fi
# Depends covers what the packaged binary links: every NEEDED library's package (as this machine
# names it), Debian's OpenCV runtime when it links OpenCV, and no libopencv at all when it does
# not (a build against the lean static OpenCV links only libjpeg, libpng, libwebp and the C/C++
# runtime).
depends_cover_links() { # DEB
    local x="$work/links-x" depends lib owner ok=0
    rm -rf "$x"
    dpkg-deb -x "$1" "$x"
    depends="$(dpkg-deb -f "$1" Depends | sed 's/ ([^)]*)//g; s/, */\n/g')"
    while read -r lib; do
        case "$lib" in ld-linux*) owner=libc6 ;;
            *) owner="$( (dpkg -S "/lib/x86_64-linux-gnu/$lib" || dpkg -S "/usr/lib/x86_64-linux-gnu/$lib") 2>/dev/null |
                head -n1 | cut -d: -f1)" ;; esac
        if [ -z "$owner" ] || ! grep -qx "$owner" <<<"$depends"; then
            log "  $lib (package ${owner:-unknown}) is not in Depends"; ok=1
        fi
    done < <(readelf -d "$x/usr/bin/dolbom" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
    if readelf -d "$x/usr/bin/dolbom" | grep -q 'NEEDED.*\[libopencv_core'; then
        grep -qx libopencv-core406 <<<"$depends" && grep -qx libopencv-videoio406 <<<"$depends" || ok=1
    else
        ! grep -q opencv <<<"$depends" || { log "  links no OpenCV, yet Depends names it"; ok=1; }
    fi
    rm -rf "$x"
    return $ok
}
if readelf -d "$kiosk_bin" | grep -q 'NEEDED.*\[libopencv_core'; then opencv_kind="Debian's shared OpenCV"; else opencv_kind="no OpenCV library (static)"; fi
log "the kiosk binary links $opencv_kind"
check "control: dolbom depends on the OpenCV runtime it links (here: $opencv_kind), and on all it links" \
    depends_cover_links "$deb1"
check "control: dolbom depends on dolbom-models (>= $v1)" bash -c "dpkg-deb -f '$deb1' Depends | grep -qF 'dolbom-models (>= $v1)'"
check "control: dolbom-models is Architecture: all" bash -c "[ \"\$(dpkg-deb -f '$models1' Architecture)\" = all ]"
check "conffiles: the four configs" bash -c "dpkg-deb --ctrl-tarfile '$deb1' | tar -xOf - ./conffiles | sort | tr '\n' ' ' | grep -qx '/etc/dolbom/console.toml /etc/dolbom/directory.toml /etc/dolbom/kiosk.toml /etc/dolbom/relay.toml '"

# ---- install ---------------------------------------------------------------------------------

log "installing $v1"
dpkg_run -i "$models1" "$deb1" >"$work/install.log" || die "dpkg -i failed"
sed 's/^/test-deb: dpkg: /' "$work/install.log" >&2
check "both packages installed" bash -c "[ \"\$(dpkg-query -W -f='\${db:Status-Status}' dolbom dolbom-models)\" = installedinstalled ]"
check "dpkg --verify: installed files match the packages" dpkg --verify dolbom dolbom-models
check "/usr/bin/dolbom 0755 root" mode_is /usr/bin/dolbom "755 root:root"
check "ONNX Runtime 0644 in /usr/lib/dolbom" mode_is /usr/lib/dolbom/libonnxruntime.so.1.32.0 "644 root:root"
for m in yunet_2023mar_dynamic.onnx sface_2021dec.onnx; do
    check "model $m 0644" mode_is "/usr/lib/dolbom/models/$m" "644 root:root"
done
for c in kiosk.toml console.toml relay.toml directory.toml; do
    check "/etc/dolbom/$c 0640 root:dolbom" mode_is "/etc/dolbom/$c" "640 root:dolbom"
done
check "/var/lib/dolbom 0700 dolbom" mode_is /var/lib/dolbom "700 dolbom:dolbom"
check "/var/lib/dolbom-console 0700 dolbom" mode_is /var/lib/dolbom-console "700 dolbom:dolbom"
for u in dolbom-kiosk.service dolbom-console.service dolbom-relay.service; do
    check "$u installed, as in systemd/" cmp "/lib/systemd/system/$u" "systemd/$u"
done
check "udev rules in /lib/udev/rules.d" test -f /lib/udev/rules.d/70-dolbom.rules
check "sysusers.d file" test -f /usr/lib/sysusers.d/dolbom.conf
check "user dolbom is a system user" bash -c "[ \"\$(getent passwd dolbom | cut -d: -f3)\" -lt 1000 ]"
check "user dolbom cannot log in" bash -c "getent passwd dolbom | cut -d: -f7 | grep -q nologin"
for g in video dialout dolbom; do
    check "user dolbom is in group $g" bash -c "id -nG dolbom | tr ' ' '\n' | grep -qx $g"
done
check "kiosk not enabled while its config is the example" test ! -e /etc/systemd/system/multi-user.target.wants/dolbom-kiosk.service
check "console not enabled while its config is the example" test ! -e /etc/systemd/system/multi-user.target.wants/dolbom-console.service
check "postinst says how to start the console (accounts first)" bash -c \
    "grep -q 'systemctl enable --now dolbom-console.service' '$work/install.log' && grep -q 'dolbom console passwd --config /etc/dolbom/console.toml' '$work/install.log'"
check "relay not enabled" test ! -e /etc/systemd/system/multi-user.target.wants/dolbom-relay.service
check "postinst says how to start the kiosk" grep -q 'systemctl enable --now dolbom-kiosk.service' "$work/install.log"
check "dolbom --version from /usr/bin" bash -c "/usr/bin/dolbom --version | grep -qx 'dolbom $v1'"
check "dolbom doctor --help from /usr/bin" /usr/bin/dolbom doctor --help

# The units, checked offline by systemd itself: only messages about these files count (on a
# machine without systemd as PID 1 it also complains about the host, which is not ours to judge).
if systemd-analyze --version >/dev/null 2>&1; then
    for u in dolbom-kiosk.service dolbom-console.service dolbom-relay.service; do
        systemd-analyze verify --man=no "/lib/systemd/system/$u" >"$work/verify-$u.txt" 2>&1 || true
        grep -E "dolbom-(kiosk|console|relay)\.service" "$work/verify-$u.txt" | sed 's/^/test-deb: systemd-analyze: /' >&2 || true
        check "systemd-analyze verify $u: no findings" bash -c "! grep -qE 'dolbom-(kiosk|console|relay)\.service' '$work/verify-$u.txt'"
    done
else
    skip "systemd-analyze (not installed)"
fi

# udev has no offline `verify` before systemd 253; `udevadm test` parses every rules file and
# names the file and line of each error. Our rules do not match a non-USB tty, so no link is made.
if command -v udevadm >/dev/null && [ -n "$(ls /sys/class/tty 2>/dev/null)" ]; then
    # The site example too, with its example lines switched on.
    mkdir -p "$(dirname "$PROBE_RULES")"
    sed 's/^#SUBSYSTEM/SUBSYSTEM/' /usr/share/dolbom/examples/71-dolbom-site.rules > "$PROBE_RULES"
    tty_dev="/sys/class/tty/$(ls /sys/class/tty | head -n1)"
    udevadm test "$tty_dev" >"$work/udev.txt" 2>&1 || true
    rm -f "$PROBE_RULES"
    # (/lib is /usr/lib on a merged-/usr system; udevadm names the latter.)
    check "udevadm read both dolbom rules files" bash -c "grep -qE 'Reading rules file: (/usr)?/lib/udev/rules.d/70-dolbom.rules' '$work/udev.txt' && grep -q 'Reading rules file: $PROBE_RULES' '$work/udev.txt'"
    grep -E "^[^ ]*7[01]-dolbom[^ :]*\.rules:[0-9]+ " "$work/udev.txt" | sed 's/^/test-deb: udev: /' >&2 || true
    check "udev rules parse without errors" bash -c "! grep -qE '^[^ ]*7[01]-dolbom[^ :]*\.rules:[0-9]+ ' '$work/udev.txt'"
else
    skip "udev rules syntax (no udevadm or no tty device)"
fi

# ---- configure as an installer would, then run as the kiosk user -----------------------------

# Loopback only: the example names no reachable broker (broker.invalid); the test uses its own.
sed -i -e 's/^host = "[^"]*"/host = "127.0.0.1"/' -e 's/^kiosk_id = .*/kiosk_id = "deb-test"   # edited by test-deb/' \
    /etc/dolbom/kiosk.toml
check "the edit took (broker on loopback)" grep -q '^host = "127.0.0.1"' /etc/dolbom/kiosk.toml
# As systemd runs the kiosk (User=dolbom, Group=video): initgroups("dolbom", video) gives video
# and the groups whose member lists name dolbom, not its passwd group; setpriv --init-groups
# would add that one, so the list is built here the way systemd builds it.
kiosk_groups="$(getent group | awk -F: '{ n = split($4, m, ","); for (i = 1; i <= n; i++) if (m[i] == "dolbom") print $1 }' | paste -sd, -)"
as_kiosk=(setpriv --reuid=dolbom --regid=video --groups="video${kiosk_groups:+,$kiosk_groups}" --)
timeout 120 "${as_kiosk[@]}" /usr/bin/dolbom doctor --config /etc/dolbom/kiosk.toml --json >"$work/doctor.json" 2>&1 || true
for c in config runtime models state_dir; do
    check "doctor as the kiosk user: $c ok (installed paths)" grep -q "\"check\":\"$c\",\"status\":\"ok\"" "$work/doctor.json"
done
# A staff account as docs/console.md has the director make it (sudo -u dolbom): the console
# runs as dolbom and must read what the command wrote, so the file must be dolbom's.
as_dolbom=(setpriv --reuid=dolbom --regid=dolbom --init-groups --)
echo 'deb-test-password' | "${as_dolbom[@]}" /usr/bin/dolbom console passwd --config /etc/dolbom/console.toml \
    deb-test --name 'Deb Test' >"$work/passwd.txt" 2>&1 || sed 's/^/test-deb: console passwd: /' "$work/passwd.txt" >&2
check "console passwd as the dolbom user: accounts file 0600 dolbom in /var/lib/dolbom-console" \
    mode_is /var/lib/dolbom-console/console-users.toml "600 dolbom:dolbom"
check "console users as the dolbom user lists the account, no hash" bash -c \
    "${as_dolbom[*]} /usr/bin/dolbom console users --config /etc/dolbom/console.toml >'$work/users.txt' && grep -q '^deb-test' '$work/users.txt' && ! grep -q argon2 '$work/users.txt'"
echo '{"version":1,"people":[]}' > "$work/gallery-marker.json"
install -o dolbom -g dolbom -m 0600 "$work/gallery-marker.json" /var/lib/dolbom/test-deb-marker.json
# The admin enables the kiosk (offline: systemctl only makes the links).
systemctl enable dolbom-kiosk.service >/dev/null 2>&1 || deb-systemd-helper enable dolbom-kiosk.service
check "admin enabled the kiosk" test -L /etc/systemd/system/multi-user.target.wants/dolbom-kiosk.service
inode_before="$(stat -c %i /usr/bin/dolbom)"

# ---- upgrade ---------------------------------------------------------------------------------

b0=$(date +%s)
scripts/build-deb.sh --arch amd64 --binary "$kiosk_bin" --version "$v2" --out "$work/v2" >/dev/null
log "built version $v2 in $(( $(date +%s) - b0 )) s"
log "upgrading to $v2"
dpkg_run -i "$work/v2/dolbom-models_${v2}-1_all.deb" "$work/v2/dolbom_${v2}-1_amd64.deb" >"$work/upgrade.log" ||
    { cat "$work/upgrade.log" >&2; die "dpkg -i (upgrade) failed"; }
sed 's/^/test-deb: dpkg: /' "$work/upgrade.log" >&2
check "upgraded: dolbom $v2-1" bash -c "[ \"\$(dpkg-query -W -f='\${Version}' dolbom)\" = '$v2-1' ]"
check "upgraded: dolbom-models $v2-1" bash -c "[ \"\$(dpkg-query -W -f='\${Version}' dolbom-models)\" = '$v2-1' ]"
check "new /usr/bin/dolbom unpacked (new inode)" bash -c "[ \"\$(stat -c %i /usr/bin/dolbom)\" != '$inode_before' ]"
check "dpkg --verify after the upgrade" dpkg --verify dolbom dolbom-models
check "dolbom --version runs after the upgrade" /usr/bin/dolbom --version
check "the edited kiosk.toml survived" grep -q 'kiosk_id = "deb-test"' /etc/dolbom/kiosk.toml
check "no config prompt, no .dpkg-dist/.dpkg-old" bash -c "! ls /etc/dolbom | grep -q dpkg-"
check "kiosk.toml still 0640 root:dolbom" mode_is /etc/dolbom/kiosk.toml "640 root:dolbom"
check "state in /var/lib/dolbom survived" test -f /var/lib/dolbom/test-deb-marker.json
check "the console's staff accounts survived" grep -q 'deb-test' /var/lib/dolbom-console/console-users.toml
check "the admin's enable survived" test -L /etc/systemd/system/multi-user.target.wants/dolbom-kiosk.service

# ---- purge -----------------------------------------------------------------------------------

log "purging"
dpkg_run --purge dolbom dolbom-models >"$work/purge.log" || { cat "$work/purge.log" >&2; die "dpkg --purge failed"; }
sed 's/^/test-deb: dpkg: /' "$work/purge.log" >&2
check "dpkg -l knows neither package" bash -c "! dpkg -l dolbom dolbom-models 2>/dev/null | grep -q '^[a-z][a-z] '"
for path in /usr/bin/dolbom /usr/lib/dolbom /etc/dolbom /var/lib/dolbom /usr/share/dolbom /usr/share/doc/dolbom \
    /lib/systemd/system/dolbom-kiosk.service /lib/systemd/system/dolbom-relay.service \
    /lib/systemd/system/dolbom-console.service /var/lib/dolbom-console \
    /etc/systemd/system/multi-user.target.wants/dolbom-console.service /etc/systemd/system/dolbom-console.service \
    /var/lib/systemd/deb-systemd-helper-enabled/dolbom-console.service.dsh-also \
    /var/lib/systemd/deb-systemd-helper-masked/dolbom-console.service \
    /lib/udev/rules.d/70-dolbom.rules /usr/lib/sysusers.d/dolbom.conf \
    /etc/systemd/system/multi-user.target.wants/dolbom-kiosk.service /etc/systemd/system/dolbom-kiosk.service \
    /var/lib/systemd/deb-systemd-helper-enabled/dolbom-kiosk.service.dsh-also \
    /var/lib/systemd/deb-systemd-helper-enabled/multi-user.target.wants/dolbom-kiosk.service \
    /var/lib/systemd/deb-systemd-helper-masked/dolbom-kiosk.service \
    /var/lib/systemd/deb-systemd-helper-enabled/dolbom-relay.service.dsh-also \
    /var/lib/systemd/deb-systemd-helper-masked/dolbom-relay.service /etc/systemd/system/dolbom-relay.service; do
    check "purged: $path" test ! -e "$path" -a ! -L "$path"
done
check "purged: no dpkg-statoverride left" bash -c "! dpkg-statoverride --list | grep -q /etc/dolbom"
check "purge keeps the system user (Debian policy)" getent passwd dolbom

# ---- a system without systemd-sysusers: the postinst falls back to useradd -------------------

if [ "$user_existed" = no ]; then
    userdel dolbom && { ! getent group dolbom >/dev/null || groupdel dolbom; }
    # PATH without systemd-sysusers: every other command of /usr/bin stays reachable.
    mkdir -p "$work/nosysusers"
    for f in /usr/bin/*; do [ "${f##*/}" = systemd-sysusers ] || ln -s "$f" "$work/nosysusers/"; done
    PATH="$work/nosysusers:/usr/sbin:/sbin" dpkg_run -i "$models1" "$deb1" >"$work/fallback.log" ||
        { cat "$work/fallback.log" >&2; die "dpkg -i without systemd-sysusers failed"; }
    check "without systemd-sysusers: postinst made the user itself" grep -q 'creating the system user dolbom' "$work/fallback.log"
    check "without systemd-sysusers: a system user without login" bash -c \
        "[ \"\$(getent passwd dolbom | cut -d: -f3)\" -lt 1000 ] && getent passwd dolbom | cut -d: -f7 | grep -q nologin"
    for g in video dialout dolbom; do
        check "without systemd-sysusers: dolbom in group $g" bash -c "getent group $g | cut -d: -f4 | tr ',' '\n' | grep -qx dolbom"
    done
    check "without systemd-sysusers: /var/lib/dolbom 0700 dolbom" mode_is /var/lib/dolbom "700 dolbom:dolbom"
    dpkg_run --purge dolbom dolbom-models >/dev/null || die "dpkg --purge failed"
    check "purged again" bash -c "! dpkg -l dolbom dolbom-models 2>/dev/null | grep -q '^[a-z][a-z] ' && [ ! -e /var/lib/dolbom ] && [ ! -e /var/lib/dolbom-console ] && [ ! -e /etc/dolbom ]"
else
    skip "the useradd fallback (a dolbom user existed before this test; it is left alone)"
fi

# ---- a kiosk machine turned relay server: dolbom-relay replaces dolbom -----------------------

if [ -f "$relay_bin" ]; then
    scripts/build-deb.sh --arch amd64 --package dolbom-relay --binary "$relay_bin" --version "$v1" --out "$work/relay" >/dev/null
    relay1="$work/relay/dolbom-relay_${v1}-1_amd64.deb"
    if command -v lintian >/dev/null; then
        lintian --tag-display-limit 0 "$relay1" 2>&1 | grep -v 'running with root privileges' >"$work/lintian-relay.txt" || true
        sed 's/^/test-deb: lintian: /' "$work/lintian-relay.txt" >&2
        check "lintian: dolbom-relay has no errors" bash -c "! grep -q '^E: ' '$work/lintian-relay.txt'"
    fi
    check "dolbom-relay depends on no OpenCV" bash -c "! dpkg-deb -f '$relay1' Depends | grep -q opencv"
    dpkg_run -i "$models1" "$deb1" >/dev/null || die "dpkg -i dolbom failed"
    echo "# edited by test-deb" >> /etc/dolbom/relay.toml
    install -o dolbom -g dolbom -m 0600 "$work/gallery-marker.json" /var/lib/dolbom/test-deb-marker.json
    # dpkg removes a package that the new one both Conflicts with and Replaces.
    dpkg_run -i "$relay1" >"$work/relay.log" || { cat "$work/relay.log" >&2; die "dpkg -i dolbom-relay failed"; }
    sed 's/^/test-deb: dpkg: /' "$work/relay.log" >&2
    check "dolbom-relay installed, dolbom removed (config kept)" bash -c \
        "[ \"\$(dpkg-query -W -f='\${db:Status-Status}' dolbom-relay)\" = installed ] && [ \"\$(dpkg-query -W -f='\${db:Status-Status}' dolbom)\" = config-files ]"
    check "/usr/bin/dolbom is the relay build" bash -c "/usr/bin/dolbom relay --help && ! /usr/bin/dolbom kiosk --help"
    check "relay.toml taken over with the edit" bash -c "grep -q 'edited by test-deb' /etc/dolbom/relay.toml && dpkg -S /etc/dolbom/relay.toml | grep -q '^dolbom-relay:'"
    check "relay unit present, not masked" bash -c "[ -f /lib/systemd/system/dolbom-relay.service ] && [ ! -L /etc/systemd/system/dolbom-relay.service ]"
    check "relay enabled on install: its config was already edited (provisioned)" \
        test -L /etc/systemd/system/multi-user.target.wants/dolbom-relay.service
    check "the kiosk's state stays until dolbom is purged" test -f /var/lib/dolbom/test-deb-marker.json
    dpkg_run --purge dolbom >/dev/null || die "dpkg --purge dolbom (config-files) failed"
    check "purging dolbom erased the kiosk's and the console's state and config" bash -c \
        "[ ! -e /var/lib/dolbom ] && [ ! -e /etc/dolbom/kiosk.toml ] && [ ! -e /var/lib/dolbom-console ] && [ ! -e /etc/dolbom/console.toml ] && [ ! -e /var/lib/systemd/deb-systemd-helper-masked/dolbom-console.service ]"
    check "purging dolbom left dolbom-relay's config and its mode" bash -c \
        "grep -q 'edited by test-deb' /etc/dolbom/relay.toml && [ \"\$(stat -c '%a %U:%G' /etc/dolbom/relay.toml)\" = '640 root:dolbom' ]"
    check "purging dolbom left the relay unit alone (file, enable link, no mask)" bash -c \
        "[ -f /lib/systemd/system/dolbom-relay.service ] && [ -L /etc/systemd/system/multi-user.target.wants/dolbom-relay.service ] && [ ! -L /etc/systemd/system/dolbom-relay.service ]"
    dpkg_run --purge dolbom-relay >/dev/null || die "dpkg --purge dolbom-relay failed"
    check "dolbom-relay purged: nothing left" bash -c \
        "! dpkg -l dolbom dolbom-relay 2>/dev/null | grep -q '^[a-z][a-z] ' && [ ! -e /etc/dolbom ] && [ ! -e /usr/bin/dolbom ] && [ ! -e /lib/systemd/system/dolbom-relay.service ] && [ ! -L /etc/systemd/system/multi-user.target.wants/dolbom-relay.service ] && ! dpkg-statoverride --list | grep -q /etc/dolbom"
else
    skip "dolbom-relay: no relay-only binary at $relay_bin"
fi

# ---- arm64 contents --------------------------------------------------------------------------

# What an arm64 package must hold: the same files as amd64, the binary and ONNX Runtime AArch64.
check_arm64() { # DEB AMD64-DEB-OR-EMPTY
    local deb="$1" ref="$2" x="$work/x-$(basename "$1")" f
    check "arm64 $(basename "$deb"): Architecture arm64" bash -c "[ \"\$(dpkg-deb -f '$deb' Architecture)\" = arm64 ]"
    dpkg-deb -x "$deb" "$x"
    for f in usr/bin/dolbom usr/lib/dolbom/libonnxruntime.so.1.32.0; do
        [ -e "$x/$f" ] || continue
        check "arm64 $(basename "$deb"): /$f is AArch64" bash -c "readelf -h '$x/$f' | grep -q 'Machine: *AArch64'"
    done
    check "arm64 $(basename "$deb"): Depends names libc6" bash -c "dpkg-deb -f '$deb' Depends | grep -q 'libc6 (>= '"
    if [ -n "$ref" ]; then
        check "arm64 $(basename "$deb"): same file list as amd64" bash -c \
            "diff <(dpkg-deb -c '$deb' | awk '{print \$1, \$6}') <(dpkg-deb -c '$ref' | awk '{print \$1, \$6}')"
        # Modulo zlib1g: the aarch64 link (GNU ld) keeps the lean OpenCV's -lz, the x86 one
        # (rust-lld) drops it as unused; libpng16-16 depends on zlib1g anyway (docs/memory.md).
        local names='s/ ([^)]*)//g; s/\(, \)\?zlib1g//; s/^, //'
        check "arm64 $(basename "$deb"): same Depends as amd64 (but zlib1g)" bash -c \
            "[ \"\$(dpkg-deb -f '$deb' Depends | sed '$names')\" = \"\$(dpkg-deb -f '$ref' Depends | sed '$names')\" ]"
        check "arm64 $(basename "$deb"): ONNX Runtime present" test -f "$x/usr/lib/dolbom/libonnxruntime.so.1.32.0"
    fi
}

arm64_bin="${DOLBOM_ARM64_BINARY:-target/aarch64-unknown-linux-gnu/release/dolbom}"
arm64_assets=".dolbom/arm64"
if [ -f "$arm64_bin" ] || [ -n "${DOLBOM_RELAY_ARM64_BINARY:-}" ]; then
    log "fetching the aarch64 ONNX Runtime into $arm64_assets"
    python3 scripts/fetch_assets.py --arch aarch64 --dest "$arm64_assets" >/dev/null
fi
if [ -f "$arm64_bin" ]; then
    scripts/build-deb.sh --arch arm64 --package dolbom --binary "$arm64_bin" --version "$v1" --assets "$arm64_assets" \
        --out "$work/arm64" >/dev/null
    check_arm64 "$work/arm64/dolbom_${v1}-1_arm64.deb" "$deb1"
else
    skip "arm64 dolbom: no $arm64_bin (scripts/build-arm64.sh builds it)"
fi
if [ -n "${DOLBOM_RELAY_ARM64_BINARY:-}" ]; then
    scripts/build-deb.sh --arch arm64 --package dolbom-relay --binary "$DOLBOM_RELAY_ARM64_BINARY" --version "$v1" \
        --out "$work/arm64" >/dev/null
    relay_deb="$work/arm64/dolbom-relay_${v1}-1_arm64.deb"
    check_arm64 "$relay_deb" ""
    check "arm64 dolbom-relay: no OpenCV, no ONNX Runtime" bash -c \
        "! dpkg-deb -f '$relay_deb' Depends | grep -q opencv && ! dpkg-deb -c '$relay_deb' | grep -q onnxruntime"
    check "arm64 dolbom-relay: conflicts with and replaces dolbom" bash -c \
        "dpkg-deb -f '$relay_deb' Conflicts | grep -qx dolbom && dpkg-deb -f '$relay_deb' Replaces | grep -qx dolbom"
fi

log "took $(( $(date +%s) - t0 )) s"
echo "test-deb: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
