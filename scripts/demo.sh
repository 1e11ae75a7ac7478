#!/usr/bin/env bash
# The main job on sample input: sets up what is missing, builds dolbom, enrols two people from
# registry photos, identifies faces in other photos, then runs the kiosk daemon on a sample clip
# (the photos walking up to a simulated door) against the local MQTT broker and prints every
# message it publishes.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --release --locked --quiet

bin=target/release/dolbom
photos=.dolbom/testdata
rm -rf .dolbom/demo
mkdir -p .dolbom/demo

echo "== enrol (config/sample.toml) =="
"$bin" enroll --config config/sample.toml --person obama --role guardian --name "Barack Obama" \
    "$photos/face_recognition/obama.jpg" "$photos/face_recognition/obama2.jpg"
"$bin" enroll --config config/sample.toml --person biden --role staff --name "Joe Biden" \
    "$photos/face_recognition/biden.jpg"
"$bin" gallery list --config config/sample.toml

echo "== identify photos: Obama in two new photos; the group photo is all strangers =="
"$bin" identify --config config/sample.toml \
    "$photos/face_recognition/obama3.jpg" \
    "$photos/face_recognition/obama_partial_face.jpg" \
    "$photos/insightface/t1.jpg"

echo "== sample clip: Obama, Biden, a stranger, Obama again walk up to the door =="
"$bin" sim walk-up --out .dolbom/demo/walkup.avi \
    "$photos/face_recognition/obama.jpg" "$photos/face_recognition/biden.jpg" \
    "$photos/unknowns/Female_42_7.jpg" "$photos/face_recognition/obama3.jpg"

echo "== kiosk daemon on the clip (config/sample-clip.toml); MQTT messages as they arrive =="
mosquitto_sub -h 127.0.0.1 -p 1883 -V mqttv5 -v -t 'dolbom/v1/sunshine/door-1/#' &
sub=$!
trap 'kill $sub 2>/dev/null || true' EXIT
sleep 0.3
"$bin" kiosk --config config/sample-clip.toml
sleep 0.5
echo "== dolbom status =="
"$bin" status --config config/sample-clip.toml || true
