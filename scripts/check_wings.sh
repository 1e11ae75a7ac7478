#!/usr/bin/env bash
# The wings build apart: the relay alone links neither OpenCV nor ONNX Runtime (a district
# server needs no clang or libopencv), the kiosk alone links no PostgreSQL client. Fails, naming
# the crate, when a dependency crosses over.
set -euo pipefail
cd "$(dirname "$0")/.."

fail=0
deps() { cargo tree --locked -e normal --prefix none --no-dedupe "$@" | awk '{print $1}' | sort -u; }

relay=$(deps --no-default-features --features relay)
for crate in opencv ort dolbom-face dolbom-kiosk; do
    if grep -qx "$crate" <<<"$relay"; then
        echo "check_wings: the relay build depends on $crate" >&2
        fail=1
    fi
done
kiosk=$(deps --no-default-features --features kiosk)
for crate in postgres tokio-postgres dolbom-relay; do
    if grep -qx "$crate" <<<"$kiosk"; then
        echo "check_wings: the kiosk build depends on $crate" >&2
        fail=1
    fi
done
[ "$fail" = 0 ] || exit 1
# And each wing compiles on its own (feature gates are easy to get wrong).
# Lints as strict as the default build's: a feature gate left open shows as unused code.
for wing in relay kiosk; do
    cargo build --release --locked --no-default-features --features "$wing" --bin dolbom
    cargo clippy --release --locked --no-default-features --features "$wing" --bin dolbom -- -D warnings
done
echo "check_wings: relay without opencv/ort, kiosk without postgres; both build alone"
