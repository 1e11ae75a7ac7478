#!/usr/bin/env bash
# Sets up what is missing and runs every test against the real models and photos.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --tests
cargo test --release --locked --workspace "$@"
