#!/usr/bin/env bash
# The main job on sample input: sets up what is missing, builds dolbom, enrols two people from
# registry photos into a fresh demo gallery, and identifies the faces in other photos, including
# a group of strangers. Output: one JSON line per face.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --release --locked --quiet

bin=target/release/dolbom
cfg=config/sample.toml
photos=.dolbom/testdata
rm -f .dolbom/demo/gallery.json

echo "== enrol =="
"$bin" enroll --config "$cfg" --person obama --role guardian --name "Barack Obama" \
    "$photos/face_recognition/obama.jpg" "$photos/face_recognition/obama2.jpg"
"$bin" enroll --config "$cfg" --person biden --role staff --name "Joe Biden" \
    "$photos/face_recognition/biden.jpg"
echo "== gallery =="
"$bin" gallery list --config "$cfg"
echo "== identify (obama3 and a half face: Obama; the group photo and another photo: strangers) =="
"$bin" identify --config "$cfg" \
    "$photos/face_recognition/obama3.jpg" \
    "$photos/face_recognition/obama_partial_face.jpg" \
    "$photos/insightface/t1.jpg" \
    "$photos/unknowns/Female_41_1_1_1.jpg"
