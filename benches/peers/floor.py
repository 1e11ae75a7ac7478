"""The floor: ONNX Runtime's own time for the two models on the clip, nothing else timed.

Runs YuNet on every frame's padded working-size tensor and SFace on every face it finds (the
same pre- and post-processing as yunet_sface_ort.py, untimed), and times only the session runs
(wall clock and process CPU). Every YuNet input of a clip has the same size and every SFace input
is 112x112, so the fastest call of each model is its cost when nothing else competes for the
cores; frames x fastest YuNet + faces x fastest SFace is the least time any program running
these models on these frames could take at this thread budget, even on a busy machine.
Prints one JSON line: {"frames", "fps", "faces", "detector_s", "embedder_s" (sums),
"detector_min_s", "embedder_min_s", "detector_median_s", "embedder_median_s" (per call),
"detector_cpu_s", "embedder_cpu_s" (sums)}.
"""

import json
import statistics
import time

import numpy as np

import common
import yunet_sface_ort as peer


def timed(fn):
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w, time.process_time() - c


def main():
    args = common.parse_args(__doc__.splitlines()[0], enrol=False)
    models = common.models_dir()
    det = peer.session(str(models / "yunet_2023mar_dynamic.onnx"), args.threads)
    emb = peer.session(str(models / "sface_2021dec.onnx"), args.threads)
    # One untimed run of each first: the first run allocates buffers.
    emb.run(["fc1"], {"data": np.zeros((1, 3, 112, 112), np.float32)})
    warm = False
    n = faces = 0
    fps = 0.0
    det_s = emb_s = det_cpu = emb_cpu = 0.0
    det_calls, emb_calls = [], []
    for frame, fps in common.frames(args.clip):
        h, w = frame.shape[:2]
        blob, (sw, sh) = peer.detector_input(frame)
        if not warm:
            det.run(peer.OUTPUTS, {"input": blob})
            warm = True
        outs, t, c = timed(lambda: det.run(peer.OUTPUTS, {"input": blob}))
        det_s, det_cpu, n = det_s + t, det_cpu + c, n + 1
        det_calls.append(t)
        boxes, marks = peer.decode(outs, blob.shape[3], blob.shape[2])
        marks[:, :, 0] *= w / sw
        marks[:, :, 1] *= h / sh
        kept = []
        for i in np.argsort(-boxes[:, 4], kind="stable"):
            if all(peer.iou(boxes[k], boxes[i]) <= peer.NMS_THRESHOLD for k in kept):
                kept.append(i)
        for i in kept:
            m = peer.similarity_transform(marks[i], peer.ARCFACE_112)
            crop = peer.cv2.warpAffine(frame, m, (112, 112), flags=peer.cv2.INTER_LINEAR)
            x = np.ascontiguousarray(crop[:, :, ::-1].transpose(2, 0, 1)[None], dtype=np.float32)
            _, t, c = timed(lambda: emb.run(["fc1"], {"data": x}))
            emb_s, emb_cpu, faces = emb_s + t, emb_cpu + c, faces + 1
            emb_calls.append(t)
    if not det_calls:
        raise SystemExit(f"no frames in {args.clip}")
    emb_calls = emb_calls or [0.0]
    print(
        json.dumps(
            {
                "frames": n,
                "fps": fps,
                "faces": faces,
                "detector_s": det_s,
                "embedder_s": emb_s,
                "detector_min_s": min(det_calls),
                "embedder_min_s": min(emb_calls),
                "detector_median_s": statistics.median(det_calls),
                "embedder_median_s": statistics.median(emb_calls),
                "detector_cpu_s": det_cpu,
                "embedder_cpu_s": emb_cpu,
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
