"""What the peer programs share: their command line, reading the clip, and the result line.

Every peer is run as `python3 PEER.py --clip CLIP --enrol ID=PHOTO[:PHOTO...] ...` and prints one
JSON object as its last line of standard output, which scripts/bench-peers.sh reads:
  {"program", "frames", "fps", "faces", "matched": {id: frames in which that person was matched}}
"""

import argparse
import json
import sys


def parse_args(description, enrol=True):
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--clip", required=True, help="video file; every frame is processed")
    p.add_argument(
        "--enrol",
        action="append",
        required=enrol,
        default=[],
        metavar="ID=PHOTO[:PHOTO...]",
        help="a person and their enrolment photos; repeat for each person",
    )
    p.add_argument("--threads", type=int, default=2, help="ONNX Runtime intra-op threads (where settable)")
    args = p.parse_args()
    people = []
    for spec in args.enrol:
        ident, sep, photos = spec.partition("=")
        if not sep or not ident or not photos:
            p.error(f"--enrol {spec!r}: expected ID=PHOTO[:PHOTO...]")
        people.append((ident, photos.split(":")))
    args.people = people
    return args


def frames(clip):
    """Yields every frame of the clip as 8-bit BGR, as OpenCV decodes it; (frame, fps) pairs."""
    import cv2

    cap = cv2.VideoCapture(clip)
    if not cap.isOpened():
        sys.exit(f"cannot open clip {clip}")
    fps = cap.get(cv2.CAP_PROP_FPS)
    while True:
        ok, frame = cap.read()
        if not ok or frame is None:
            break
        yield frame, fps
    cap.release()


def report(program, n_frames, fps, faces, matched):
    print(
        json.dumps(
            {"program": program, "frames": n_frames, "fps": fps, "faces": faces, "matched": dict(sorted(matched.items()))}
        ),
        flush=True,
    )


def models_dir():
    """dolbom's model files (scripts/fetch_assets.py puts them there): the very same .onnx files."""
    import os
    from pathlib import Path

    return Path(os.environ.get("DOLBOM_MODELS", Path(__file__).resolve().parents[2] / ".dolbom" / "models"))


def log(msg):
    print(msg, file=sys.stderr, flush=True)
