"""Peer B: the same YuNet and SFace models as dolbom, in Python ONNX Runtime with OpenCV.

Every frame: decode (OpenCV), scale so the longest side is at most 640 px, pad to multiples of 32,
YuNet, decode its outputs and suppress overlaps exactly as crates/face/src/yunet.rs does (score
0.9, NMS 0.3), then for every face: five-point similarity alignment onto the ArcFace 112x112
template (cv2.warpAffine), SFace, and dolbom's matcher rule (best cosine similarity over a
person's photos at least 0.40 and at least 0.05 ahead of the runner-up). No tracking: every face
in every frame is embedded, as a straightforward script would do.
"""

import math
import time

import cv2
import numpy as np
import onnxruntime as ort

import common

MAX_INPUT_SIDE = 640
SCORE_THRESHOLD = 0.9
NMS_THRESHOLD = 0.3
MATCH_THRESHOLD = 0.40
MATCH_MARGIN = 0.05
STRIDES = (8, 16, 32)
OUTPUTS = [f"{k}_{s}" for k in ("cls", "obj", "bbox", "kps") for s in STRIDES]
ARCFACE_112 = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]]
)


def session(path, threads):
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    # As dolbom: no spinning threads between the detector's and the embedder's runs.
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(path, sess_options=opts, providers=["CPUExecutionProvider"])


def working_size(w, h):
    scale = min(MAX_INPUT_SIDE / max(w, h), 1.0)
    if scale >= 1.0:
        return w, h
    # Rust's f32::round rounds halves away from zero.
    return max(1, math.floor(w * scale + 0.5)), max(1, math.floor(h * scale + 0.5))


def detector_input(image):
    """The padded planar float tensor YuNet takes, and the working size inside it."""
    h, w = image.shape[:2]
    sw, sh = working_size(w, h)
    small = image if (sw, sh) == (w, h) else cv2.resize(image, (sw, sh), interpolation=cv2.INTER_LINEAR)
    pw, ph = -(-sw // 32) * 32, -(-sh // 32) * 32
    blob = np.zeros((1, 3, ph, pw), np.float32)
    blob[0, :, :sh, :sw] = small.transpose(2, 0, 1)
    return blob, (sw, sh)


def decode(outs, pw, ph):
    """Candidates above the score threshold: (x1, y1, x2, y2, score) and five landmarks each."""
    boxes, marks = [], []
    for i, s in enumerate(STRIDES):
        cols = pw // s
        cls, obj = outs[i].reshape(-1), outs[3 + i].reshape(-1)
        bbox, kps = outs[6 + i].reshape(-1, 4), outs[9 + i].reshape(-1, 10)
        score = np.sqrt(np.clip(cls, 0, 1) * np.clip(obj, 0, 1))
        idx = np.nonzero(score >= SCORE_THRESHOLD)[0]
        if idx.size == 0:
            continue
        r, c = (idx // cols).astype(np.float32), (idx % cols).astype(np.float32)
        b = bbox[idx]
        cx, cy = (c + b[:, 0]) * s, (r + b[:, 1]) * s
        bw, bh = np.exp(b[:, 2]) * s, np.exp(b[:, 3]) * s
        boxes.append(np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2, score[idx]], axis=1))
        k = kps[idx].reshape(-1, 5, 2)
        marks.append(np.stack([(k[:, :, 0] + c[:, None]) * s, (k[:, :, 1] + r[:, None]) * s], axis=2))
    if not boxes:
        return np.zeros((0, 5), np.float32), np.zeros((0, 5, 2), np.float32)
    return np.concatenate(boxes), np.concatenate(marks)


def iou(a, b):
    iw = max(min(a[2], b[2]) - max(a[0], b[0]), 0.0)
    ih = max(min(a[3], b[3]) - max(a[1], b[1]), 0.0)
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def detect(det, image):
    h, w = image.shape[:2]
    blob, (sw, sh) = detector_input(image)
    outs = det.run(OUTPUTS, {"input": blob})
    boxes, marks = decode(outs, blob.shape[3], blob.shape[2])
    fx, fy = w / sw, h / sh
    boxes[:, [0, 2]] *= fx
    boxes[:, [1, 3]] *= fy
    marks[:, :, 0] *= fx
    marks[:, :, 1] *= fy
    kept = []
    for i in np.argsort(-boxes[:, 4], kind="stable"):
        if all(iou(boxes[k], boxes[i]) <= NMS_THRESHOLD for k in kept):
            kept.append(i)
    return [(boxes[i], marks[i]) for i in kept]


def similarity_transform(src, dst):
    """The least-squares similarity (as crates/face/src/align.rs and OpenCV's FaceRecognizerSF)."""
    src, dst = src.astype(np.float64), dst.astype(np.float64)
    sm, dm = src.mean(axis=0), dst.mean(axis=0)
    s, d = src - sm, dst - dm
    var = (s**2).sum()
    if var <= np.finfo(np.float64).eps:
        return np.array([[1.0, 0.0, dm[0] - sm[0]], [0.0, 1.0, dm[1] - sm[1]]])
    a = (s * d).sum() / var
    b = (s[:, 0] * d[:, 1] - s[:, 1] * d[:, 0]).sum() / var
    return np.array([[a, -b, dm[0] - (a * sm[0] - b * sm[1])], [b, a, dm[1] - (b * sm[0] + a * sm[1])]])


def embed(emb, image, landmarks):
    m = similarity_transform(landmarks, ARCFACE_112)
    crop = cv2.warpAffine(image, m, (112, 112), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    blob = np.ascontiguousarray(crop[:, :, ::-1].transpose(2, 0, 1)[None], dtype=np.float32)
    v = emb.run(["fc1"], {"data": blob})[0].reshape(-1)
    return v / np.linalg.norm(v)


def best_match(gallery, v):
    scores = sorted(((max(float(t @ v) for t in templates), ident) for ident, templates in gallery), reverse=True)
    if not scores or scores[0][0] < MATCH_THRESHOLD:
        return None
    if len(scores) > 1 and scores[0][0] - scores[1][0] < MATCH_MARGIN:
        return None
    return scores[0][1]


def main():
    args = common.parse_args(__doc__.splitlines()[0])
    models = common.models_dir()
    det = session(str(models / "yunet_2023mar_dynamic.onnx"), args.threads)
    emb = session(str(models / "sface_2021dec.onnx"), args.threads)
    gallery = []
    for ident, photos in args.people:
        templates = []
        for photo in photos:
            image = cv2.imread(photo, cv2.IMREAD_COLOR)
            if image is None:
                raise SystemExit(f"cannot read enrolment photo {photo}")
            faces = detect(det, image)
            if len(faces) != 1:
                raise SystemExit(f"{photo}: {len(faces)} faces found, enrolment needs exactly one")
            templates.append(embed(emb, image, faces[0][1]))
        gallery.append((ident, templates))

    matched, n, faces, fps = {}, 0, 0, 0.0
    started = time.perf_counter()
    for frame, fps in common.frames(args.clip):
        n += 1
        for _, landmarks in detect(det, frame):
            faces += 1
            who = best_match(gallery, embed(emb, frame, landmarks))
            if who is not None:
                matched[who] = matched.get(who, 0) + 1
    common.log(f"{n} frames in {time.perf_counter() - started:.1f} s after loading")
    common.report("yunet_sface_ort", n, fps, faces, matched)


if __name__ == "__main__":
    main()
