#!/usr/bin/env bash
# Installs what a fresh Debian 12 machine lacks to build, run and test dolbom, fetches the
# pinned ONNX Runtime library, models and test photos into .dolbom/ (see models/manifest.toml),
# and builds the lean OpenCV the kiosk links (scripts/opencv-lean.sh, once: about 6 CPU minutes).
# Idempotent: a second run installs nothing and only re-checks hashes.
#
#   scripts/setup.sh           what the demo needs
#   scripts/setup.sh --tests   and PostgreSQL with a `dolbom_test` role for the relay's scale-out tests,
#                              Chromium and its WebDriver for the door screen's browser tests
#                              (skipped when DOLBOM_TEST_POSTGRES names a server of your own)
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf 'setup: %s\n' "$*" >&2; }

with_tests=0
for arg in "$@"; do
    case "$arg" in
        --tests) with_tests=1 ;;
        *) log "unknown option $arg"; exit 2 ;;
    esac
done

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
        log "need root to run: $*"; return 1
    fi
}

apt_updated=
apt_install() {
    log "installing $*"
    # One package-list update per run, however many installs follow.
    [ -n "$apt_updated" ] || { as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq; apt_updated=1; }
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# libclang for the opencv crate's bindings (OpenCV itself is built below); Python with venv for
# the model recipe; Mosquitto, the MQTT broker the demo and the tests talk to.
missing=()
for p in clang libclang-dev pkg-config ca-certificates openssl mosquitto mosquitto-clients; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Judge Python by what it can do, not by package name: it may come from elsewhere than apt.
if ! command -v python3 >/dev/null; then
    missing+=(python3 python3-venv)
elif ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
    missing+=(python3-venv)
fi
if [ "${#missing[@]}" -gt 0 ]; then
    apt_install "${missing[@]}"
fi

if ! command -v cargo >/dev/null; then
    log "cargo is missing: install the Rust toolchain with rustup (Debian 12's cargo is too old)"
    exit 1
fi

# The demo and tests expect a broker on 127.0.0.1:1883; start Debian's if nothing listens there.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
if ! port_open 1883; then
    log "starting mosquitto on 127.0.0.1:1883"
    if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
        as_root systemctl start mosquitto
    else
        as_root mosquitto -d -c /etc/mosquitto/mosquitto.conf
    fi
    for _ in $(seq 50); do port_open 1883 && break; sleep 0.1; done
    port_open 1883 || { log "mosquitto did not start on 127.0.0.1:1883"; exit 1; }
fi

# The relay's scale-out tests: a PostgreSQL server on 127.0.0.1:5432 and a login role of their
# own that may create scratch databases. Password auth on loopback, so it works with Debian's
# default pg_hba.conf as well as with a trust-auth server. An existing role is never altered.
pg_role_ok() {
    PGPASSWORD=dolbom_test PGCONNECT_TIMEOUT=5 psql -w "host=127.0.0.1 port=5432 user=dolbom_test dbname=postgres" \
        -tAc 'SELECT 1' >/dev/null 2>&1
}
if [ "$with_tests" = 1 ] && [ -z "${DOLBOM_TEST_POSTGRES:-}" ]; then
    if ! port_open 5432; then
        dpkg-query -W -f='${Status}' postgresql 2>/dev/null | grep -q "install ok installed" || apt_install postgresql
        log "starting postgresql on 127.0.0.1:5432"
        if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
            as_root systemctl start postgresql
        else
            for conf in /etc/postgresql/*/main; do
                as_root pg_ctlcluster "$(basename "$(dirname "$conf")")" main start || true
            done
        fi
        for _ in $(seq 100); do port_open 5432 && break; sleep 0.1; done
        port_open 5432 || { log "postgresql did not start on 127.0.0.1:5432"; exit 1; }
    fi
    command -v psql >/dev/null || apt_install postgresql-client
    if ! pg_role_ok; then
        log "creating the PostgreSQL role dolbom_test for the tests"
        sql="DO \$\$ BEGIN
               IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'dolbom_test') THEN
                 CREATE ROLE dolbom_test LOGIN CREATEDB PASSWORD 'dolbom_test';
               END IF;
             END \$\$"
        # As the server's superuser: over the socket (Debian's peer auth), else over loopback
        # (a trust-auth server).
        as_root runuser -u postgres -- psql -w -q -d postgres -c "$sql" 2>/dev/null ||
            psql -w -q "host=127.0.0.1 port=5432 user=postgres dbname=postgres" -c "$sql" 2>/dev/null || true
        pg_role_ok || {
            log "cannot log in as dolbom_test on 127.0.0.1:5432: set DOLBOM_TEST_POSTGRES to a server you can use"
            exit 1
        }
    fi
fi

# The unit tests (tests/units.rs): systemd's own rating and syscall groups, and strace to see
# what the daemons call.
if [ "$with_tests" = 1 ]; then
    tools=()
    command -v systemd-analyze >/dev/null || tools+=(systemd)
    command -v strace >/dev/null || tools+=(strace)
    if [ "${#tools[@]}" -gt 0 ]; then apt_install "${tools[@]}"; fi
    # The door screen's browser tests (tests/door_screen.rs) drive Debian's Chromium through
    # its WebDriver; a missing browser fails those tests rather than skipping them.
    browser=()
    command -v chromium >/dev/null || browser+=(chromium)
    command -v chromedriver >/dev/null || browser+=(chromium-driver)
    # Korean type for the page and its screenshots (the kiosk needs the same: docs/door-screen.md).
    dpkg-query -W -f='${Status}' fonts-noto-cjk 2>/dev/null | grep -q "install ok installed" || browser+=(fonts-noto-cjk)
    if [ "${#browser[@]}" -gt 0 ]; then apt_install "${browser[@]}"; fi
fi

python3 scripts/fetch_assets.py

# The kiosk links a lean static OpenCV without FFmpeg (docs/memory.md: 106 MB peak instead of
# 166 MB with Debian's shared OpenCV), built once into the cache; .cargo/config.toml points the
# opencv crate at .dolbom/opencv. When the link moves to a new build (other options), the crate's
# bindings and link are redone, as cargo cannot see a symlink's target change.
lean_env=$(scripts/opencv-lean.sh --env-file) # (its own line: a failure stops setup here)
lean=$(dirname "$lean_env")
# .cargo/config.toml cannot read env.sh, so it repeats its library list: they must agree.
want=$(sed -n 's/^export OPENCV_LINK_LIBS=//p' "$lean_env")
have=$(sed -n 's/^OPENCV_LINK_LIBS = "\(.*\)"$/\1/p' .cargo/config.toml)
if [ "$want" != "$have" ]; then
    log "OPENCV_LINK_LIBS in .cargo/config.toml is '$have', but $lean_env says '$want': make them agree"
    exit 1
fi
if [ "$(readlink .dolbom/opencv 2>/dev/null)" != "$lean" ]; then
    if [ -L .dolbom/opencv ] && [ -d target ]; then
        log "OpenCV moved to $lean: cargo clean -p opencv (dev and release)"
        cargo clean --quiet -p opencv
        cargo clean --quiet -p opencv --release
    fi
    ln -sfn "$lean" .dolbom/opencv
fi
