# Shared by the maintainer scripts of every dolbom package: scripts/build-deb.sh pastes this file
# into postinst, prerm and postrm in place of the #COMMON# line, after filling in the @...@ values
# from packaging/<package>.vars. Plain POSIX sh: dpkg runs these with /bin/sh.

PKG="@PACKAGE@"
# The package that also ships /usr/bin/dolbom (Conflicts/Replaces); shared paths are left to it.
OTHER="@OTHER@"
# unit:config:policy. auto = enabled and started by the package once the config is no longer
# the shipped example; manual = installed only, the admin enables it.
UNITS="@UNITS@"
# Configs (mode 0640 root:dolbom through dpkg-statoverride): only this package's, and shared
# with OTHER.
CONFIGS_OWN="@CONFIGS_OWN@"
CONFIGS_SHARED="@CONFIGS_SHARED@"
# Erased on purge: always, and only when OTHER is not installed.
PURGE_OWN="@PURGE_OWN@"
PURGE_SHARED="@PURGE_SHARED@"
# The state directory postinst creates (systemd's StateDirectory= would, but only when the unit
# starts; the CLI needs it before).
STATE_DIR="@STATE_DIR@"
# Other state directories made the same way (the first one is the user's home).
MORE_STATE_DIRS="@MORE_STATE_DIRS@"
USER_GROUPS="@USER_GROUPS@"
# The key the gallery is sealed with, made by postinst when absent; empty: this package has none.
GALLERY_KEY="@GALLERY_KEY@"
SYSUSERS=/usr/lib/sysusers.d/dolbom.conf
EXAMPLES=/usr/share/dolbom/examples

log() { echo "$PKG: $*"; }

systemd_running() { [ -d /run/systemd/system ]; }

other_installed() {
    [ -n "$OTHER" ] &&
        [ "$(dpkg-query -W -f='${db:Status-Status}' "$OTHER" 2>/dev/null || true)" = installed ]
}

# True while a config is byte for byte the example this package ships.
is_example() {
    [ -f "$EXAMPLES/$(basename "$1")" ] && cmp -s "$1" "$EXAMPLES/$(basename "$1")"
}

reload_udev() {
    # udevd may be absent (a container, a chroot, a relay server): then there is nothing to reload.
    if command -v udevadm >/dev/null 2>&1 && udevadm control --reload-rules 2>/dev/null; then
        udevadm trigger --action=add --subsystem-match=video4linux --subsystem-match=tty 2>/dev/null || true
    fi
}
