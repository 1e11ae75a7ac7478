#!/usr/bin/env python3
"""Write tests/data/opencv_reference.json: what OpenCV's own FaceDetectorYN and FaceRecognizerSF say
about the test photos, for tests/opencv_parity.rs to compare dolbom's detector, aligner and embedder with.

Run once (the output is checked in), after scripts/fetch_assets.py:

    python3 -m venv /tmp/golden && /tmp/golden/bin/pip install opencv-python-headless==4.10.0.84
    /tmp/golden/bin/python scripts/make_golden.py

It uses the original, unconverted models from the cache, so it also checks that the conversion in
models/convert.py changed nothing that matters. The images are scaled exactly as dolbom scales them
(longest side to MAX_SIDE, bilinear) because YuNet's output depends on the input scale.
"""

import json
import os
from pathlib import Path

import cv2

ROOT = Path(__file__).resolve().parent.parent
ASSETS = ROOT / ".dolbom" / "testdata"
RAW = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "dolbom" / "raw-models"
MAX_SIDE = 640
SCORE, NMS, TOP_K = 0.9, 0.3, 5000
IMAGES = [
    "face_recognition/obama.jpg",
    "face_recognition/obama2.jpg",
    "face_recognition/obama3.jpg",
    "face_recognition/biden.jpg",
    "insightface/t1.jpg",
    "unknowns/Female_40_1_1_1.jpg",
    "unknowns/Male_24_1_1_1.jpg",
]


def main() -> None:
    assert tuple(int(p) for p in cv2.__version__.split(".")[:2]) >= (4, 8), "YuNet 2023mar needs OpenCV 4.8 or later"
    det = cv2.FaceDetectorYN.create(str(RAW / "face_detection_yunet_2023mar.onnx"), "", (320, 320), SCORE, NMS, TOP_K)
    rec = cv2.FaceRecognizerSF.create(str(RAW / "face_recognition_sface_2021dec.onnx"), "")
    out = {"opencv": cv2.__version__, "max_side": MAX_SIDE, "score_threshold": SCORE, "nms_threshold": NMS, "images": []}
    for rel in IMAGES:
        img = cv2.imread(str(ASSETS / rel))
        h, w = img.shape[:2]
        scale = min(1.0, MAX_SIDE / max(w, h))
        sw, sh = round(w * scale), round(h * scale)
        small = cv2.resize(img, (sw, sh), interpolation=cv2.INTER_LINEAR) if scale < 1.0 else img
        det.setInputSize((sw, sh))
        _, faces = det.detect(small)
        entries = []
        for f in faces if faces is not None else []:
            # Back to full-resolution coordinates, as dolbom reports them.
            sx, sy = w / sw, h / sh
            row = f.copy()
            row[0:14:2] *= sx
            row[1:14:2] *= sy
            aligned = rec.alignCrop(img, row)
            feat = rec.feature(aligned).flatten()
            x, y, bw, bh = (float(v) for v in row[:4])
            entries.append({
                "box": [round(x, 2), round(y, 2), round(x + bw, 2), round(y + bh, 2)],
                "score": round(float(f[14]), 5),
                "landmarks": [[round(float(row[4 + 2 * i]), 2), round(float(row[5 + 2 * i]), 2)] for i in range(5)],
                "embedding": [round(float(v), 5) for v in feat],
            })
        out["images"].append({"image": rel, "faces": entries})
        print(rel, len(entries), "faces")
    dest = ROOT / "tests" / "data" / "opencv_reference.json"
    dest.write_text(json.dumps(out, indent=1) + "\n")
    print("wrote", dest)


if __name__ == "__main__":
    main()
