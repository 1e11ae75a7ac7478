#!/usr/bin/env bash
# dolbom against its peers on the same clip, in one run (docs/benchmarks.md shows a result):
#   - dolbom kiosk, the release binary this checkout builds, at pace "fast" against the local broker,
#     as shipped and with its detector on every frame;
#   - the classic Python face_recognition (dlib) video loop (benches/peers/facerec_dlib.py);
#   - the same YuNet + SFace models in Python ONNX Runtime + OpenCV (benches/peers/yunet_sface_ort.py);
#   - the floor: ONNX Runtime's own time for the two models (benches/peers/floor.py).
# Each program is a child process measured the same way, 3 runs each, medians: frames/s, CPU
# seconds per minute of video, peak RSS, and the enrolled people it found against those expected.
#
#   scripts/bench-peers.sh                 the walk-up clip made from the test photos (a fresh clone)
#   scripts/bench-peers.sh --hamilton      the real video fixture ../shared/fixtures/faces/short_hamilton_clip.mp4
#   DOLBOM_CLIP=clip.mp4 DOLBOM_ENROL="lin=a.png,alex=b.png:c.png" [DOLBOM_EXPECT=lin] scripts/bench-peers.sh
#   scripts/bench-peers.sh --runs 1        fewer runs, for a quick look
#
# The peers install into a private venv from the package registry, once:
# ${XDG_CACHE_HOME:-$HOME/.cache}/dolbom/peers-venv (rebuilt only when benches/peers/requirements.txt
# or the Python version changes). How long, on a 2-core x86_64 machine shared with other builds:
# warm, 4.5-6 minutes for 3 rounds on either clip at load average 3-4, 13 minutes at load 9, three
# quarters of it the dlib peer; cold, first the venv: 37 minutes at load 9 (13.5 CPU-minutes
# compiling dlib from source). Not run in CI for that reason.
# Results: the table on standard output, and .dolbom/bench-peers/run/results.{md,json} with every
# run's numbers, logs and the dolbom configs used.
set -euo pipefail
cd "$(dirname "$0")/.."
# The peers are run from the source tree: keep it free of __pycache__.
export PYTHONDONTWRITEBYTECODE=1

log() { printf 'bench-peers: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

runs=3
hamilton=0
while [ $# -gt 0 ]; do
    case "$1" in
        --runs) runs=${2:?--runs needs a number}; shift 2 ;;
        --hamilton) hamilton=1; shift ;;
        -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
done
case "$runs" in ''|*[!0-9]*|0) die "--runs wants a positive number, got '$runs'" ;; esac

# What this needs from scripts/setup.sh: models, ONNX Runtime, test photos, the broker.
for f in .dolbom/lib/libonnxruntime.so .dolbom/models/yunet_2023mar_dynamic.onnx .dolbom/models/sface_2021dec.onnx \
         .dolbom/testdata/face_recognition/obama.jpg; do
    [ -e "$f" ] || die "$f is missing: run scripts/setup.sh first"
done
for tool in mosquitto_sub mosquitto_pub python3; do
    command -v "$tool" >/dev/null || die "$tool is missing: run scripts/setup.sh first"
done
(exec 3<>/dev/tcp/127.0.0.1/1883) 2>/dev/null ||
    die "no MQTT broker on 127.0.0.1:1883: run scripts/setup.sh (it starts mosquitto)"

# Whatever dolbom is now, never a stored figure.
log "building dolbom (cargo build --release --locked)"
cargo build --release --locked --quiet
bin=$PWD/target/release/dolbom

# --- the peers' venv ---------------------------------------------------------------------------
reqs=benches/peers/requirements.txt
venv=${XDG_CACHE_HOME:-$HOME/.cache}/dolbom/peers-venv
# The pins (not the comments) and the Python version decide whether the venv is current.
stamp="$(grep -Ev '^[[:space:]]*(#|$)' "$reqs" | sort | sha256sum | cut -d' ' -f1) $(python3 -c 'import sys; print(sys.version.split()[0])')"
if [ "$(cat "$venv/.dolbom-stamp" 2>/dev/null)" != "$stamp" ]; then
    # dlib compiles from its source package: it needs a C++ compiler (cmake comes from the registry
    # as a build dependency of the package; Debian's is installed too for machines without wheels).
    missing=()
    command -v g++ >/dev/null || missing+=(g++ make)
    command -v cmake >/dev/null || missing+=(cmake)
    if [ "${#missing[@]}" -gt 0 ]; then
        log "installing ${missing[*]} to build dlib"
        if [ "$(id -u)" -eq 0 ]; then sudo=(); else sudo=(sudo); fi
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            "${missing[@]}" >/dev/null
    fi
    log "creating the peers' venv in $venv (compiles dlib from source: 10-40 minutes on 2 cores, once)"
    rm -rf "$venv"
    mkdir -p "$(dirname "$venv")"
    python3 -m venv "$venv"
    if ! "$venv/bin/pip" install --no-input -r "$reqs" >"$venv.build.log" 2>&1; then
        tail -n 30 "$venv.build.log" >&2
        die "installing the peers failed; the whole log is $venv.build.log"
    fi
    # Only a complete install is stamped, so an interrupted one is redone next time.
    printf '%s\n' "$stamp" >"$venv/.dolbom-stamp"
else
    log "peers' venv is up to date: $venv"
fi
py=$venv/bin/python

# --- the clip and who is in it -----------------------------------------------------------------
out=.dolbom/bench-peers
mkdir -p "$out"
if [ "$hamilton" = 1 ]; then
    fx=../shared/fixtures/faces
    [ -e "$fx/short_hamilton_clip.mp4" ] || die "--hamilton: $fx/short_hamilton_clip.mp4 is not there"
    DOLBOM_CLIP=$fx/short_hamilton_clip.mp4
    DOLBOM_ENROL="lin=$fx/lin-manuel-miranda.png,alex=$fx/alex-lacamoire.png"
fi
if [ -n "${DOLBOM_CLIP:-}" ]; then
    [ -n "${DOLBOM_ENROL:-}" ] || die "DOLBOM_CLIP goes with DOLBOM_ENROL=id=photo[:photo...],..."
    [ -e "$DOLBOM_CLIP" ] || die "DOLBOM_CLIP=$DOLBOM_CLIP does not exist"
    clip=$DOLBOM_CLIP
    IFS=, read -r -a people <<<"$DOLBOM_ENROL"
    case "$clip" in
        *.avi) ;;
        *)
            # The kiosk's lean OpenCV has no FFmpeg and reads MJPEG AVI (docs/memory.md): every
            # contender gets the same frames, re-encoded once by the peers' OpenCV, which has it.
            mjpeg=$out/$(basename "${clip%.*}").avi
            if [ ! -s "$mjpeg" ] || [ "$clip" -nt "$mjpeg" ]; then
                log "re-encoding $clip as MJPEG AVI: $mjpeg"
                "$py" - "$clip" "$mjpeg" <<'EOF_PY'
import os, sys, cv2
src, dst = sys.argv[1:3]
cap = cv2.VideoCapture(src)
if not cap.isOpened():
    sys.exit(f"cannot open {src}")
fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
out, n = None, 0
while True:
    ok, frame = cap.read()
    if not ok:
        break
    if out is None:
        h, w = frame.shape[:2]
        out = cv2.VideoWriter(dst + ".part.avi", cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
        out.set(cv2.VIDEOWRITER_PROP_QUALITY, 95)
    out.write(frame)
    n += 1
if out is None:
    sys.exit(f"no frame in {src}")
out.release()
os.replace(dst + ".part.avi", dst)
print(f"{n} frames at {fps:.2f} fps", file=sys.stderr)
EOF_PY
            fi
            clip=$mjpeg
            ;;
    esac
else
    # The kiosk bench's walk-up clip: Obama, Biden, a stranger, Obama again (benches/kiosk.rs).
    t=.dolbom/testdata
    clip=$out/walkup.avi
    log "making the walk-up clip $clip (dolbom sim walk-up)"
    "$bin" sim walk-up --out "$clip" "$t/face_recognition/obama.jpg" "$t/face_recognition/biden.jpg" \
        "$t/unknowns/Female_42_7.jpg" "$t/face_recognition/obama3.jpg" >/dev/null
    people=("obama=$t/face_recognition/obama.jpg:$t/face_recognition/obama2.jpg" "biden=$t/face_recognition/biden.jpg")
fi
enrol=()
ids=()
for p in "${people[@]}"; do
    case "$p" in *=?*) ;; *) die "DOLBOM_ENROL entry '$p' is not id=photo[:photo...]" ;; esac
    IFS=: read -r -a photos <<<"${p#*=}"
    for ph in "${photos[@]}"; do [ -e "$ph" ] || die "enrolment photo $ph does not exist"; done
    enrol+=(--enrol "$p")
    ids+=("${p%%=*}")
done
# By default every enrolled person is expected to be found; DOLBOM_EXPECT narrows that.
expect=${DOLBOM_EXPECT:-$(IFS=,; echo "${ids[*]}")}

log "running $runs rounds of: dolbom as shipped and detecting every frame, Python ONNX Runtime peer, face_recognition peer, ONNX Runtime floor"
python3 benches/peers/harness.py --repo . --bin "$bin" --python "$py" --clip "$clip" "${enrol[@]}" \
    --expect "$expect" --runs "$runs" --work "$out/run"
log "every run's numbers and logs: $out/run/ (results.md, results.json)"
