#!/usr/bin/env python3
"""Compares what the arm64 dolbom (under qemu) and the x86 one computed on the same photos.

    compare.py identify X86.jsonl ARM64.jsonl   # `dolbom identify` output, one face per line
    compare.py gallery X86.json ARM64.json      # the galleries `dolbom enroll` wrote

Exit 1 with every difference listed when they are not equal within the tolerances below.

Tolerances. Both builds run the same models through ONNX Runtime 1.32.0 and the same OpenCV 4.6
(Debian 12), but the convolution and GEMM kernels differ (NEON on aarch64, AVX2/FMA on x86), so
float32 sums are added in another order and round differently. Measured on the test photos: the
two builds' embeddings of the same photo have 1 - cosine 7e-7 and differ by at most 3e-4 in a
component (of a unit vector of 128); printed similarities differ by at most one step in the 4th
decimal. So: 1 - cosine at most 1e-5 and a component at most 1e-3 (the matcher only ever uses the
cosine, and its thresholds are 0.40 and 0.35: a 1e-5 drift moves no decision that is not already
on the knife's edge). `identify` prints similarities and detector scores rounded to 4 decimals and
pixel coordinates to 2, so one build can round up where the other rounds down: the tolerance
there is one step in the last printed digit plus 1e-5. Who is recognised (person, role, name)
and how many faces are found must be exactly equal. The largest differences are printed, so a
drift shows before it fails.
"""

import json
import math
import sys

SIM_TOL = 1e-4 + 1e-5  # printed with 4 decimals
SCORE_TOL = 1e-4 + 1e-5  # printed with 4 decimals
PX_TOL = 1e-2 + 1e-3  # printed with 2 decimals
COS_TOL = 1e-5  # 1 - cosine(x86 embedding, arm64 embedding); measured 7e-7
COMPONENT_TOL = 1e-3  # measured 3e-4; embeddings are unit vectors of 128 floats


def lines(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(l) for l in f if l.strip()]


def identify(x86_path, arm_path):
    x86, arm = lines(x86_path), lines(arm_path)
    problems = []
    if len(x86) != len(arm):
        return [f"{len(x86)} faces on x86, {len(arm)} on arm64"], {}
    worst = {"similarity": 0.0, "score": 0.0, "pixels": 0.0}
    for i, (a, b) in enumerate(zip(x86, arm)):
        where = f"face {i + 1} ({a.get('image')})"
        for key in ("image", "person", "role", "name"):
            if a.get(key) != b.get(key):
                problems.append(f"{where}: {key} {a.get(key)!r} on x86, {b.get(key)!r} on arm64")
        for key, tol in (("similarity", SIM_TOL), ("score", SCORE_TOL)):
            d = abs(a[key] - b[key])
            worst[key] = max(worst[key], d)
            if d > tol:
                problems.append(f"{where}: {key} {a[key]} on x86, {b[key]} on arm64 (|diff| {d:.2e} > {tol:.2e})")
        pa = a["box"] + [c for p in a["landmarks"] for c in p]
        pb = b["box"] + [c for p in b["landmarks"] for c in p]
        if len(pa) != len(pb):
            problems.append(f"{where}: box/landmarks of different shape")
            continue
        d = max(abs(u - v) for u, v in zip(pa, pb))
        worst["pixels"] = max(worst["pixels"], d)
        if d > PX_TOL:
            problems.append(f"{where}: box/landmarks differ by {d:.3f} px (> {PX_TOL} px)")
    return problems, worst


def gallery(x86_path, arm_path):
    def people(path):
        with open(path, encoding="utf-8") as f:
            g = json.load(f)["gallery"]
        return {p["id"]: p for p in g["people"]}

    x86, arm = people(x86_path), people(arm_path)
    if sorted(x86) != sorted(arm):
        return [f"people {sorted(x86)} on x86, {sorted(arm)} on arm64"], {}
    problems = []
    worst = {"1-cos": 0.0, "component": 0.0}
    for pid in sorted(x86):
        ea, eb = x86[pid]["embeddings"], arm[pid]["embeddings"]
        if len(ea) != len(eb):
            problems.append(f"{pid}: {len(ea)} embeddings on x86, {len(eb)} on arm64")
            continue
        for k, (u, v) in enumerate(zip(ea, eb)):
            if len(u) != len(v):
                problems.append(f"{pid} embedding {k}: length {len(u)} vs {len(v)}")
                continue
            dot = sum(x * y for x, y in zip(u, v))
            cos = dot / (math.sqrt(sum(x * x for x in u)) * math.sqrt(sum(y * y for y in v)))
            comp = max(abs(x - y) for x, y in zip(u, v))
            worst["1-cos"] = max(worst["1-cos"], 1 - cos)
            worst["component"] = max(worst["component"], comp)
            if 1 - cos > COS_TOL or comp > COMPONENT_TOL:
                problems.append(f"{pid} embedding {k}: 1-cos {1 - cos:.2e} (tol {COS_TOL:.0e}), max component diff {comp:.2e} (tol {COMPONENT_TOL:.0e})")
    return problems, worst


def main():
    if len(sys.argv) != 4 or sys.argv[1] not in ("identify", "gallery"):
        sys.exit(__doc__.split("\n\n")[1])
    kind, x86, arm = sys.argv[1:]
    problems, worst = (identify if kind == "identify" else gallery)(x86, arm)
    measured = ", ".join(f"{k} {v:.2e}" for k, v in worst.items())
    if problems:
        print(f"compare {kind}: x86 and arm64 differ (largest differences: {measured}):", file=sys.stderr)
        for p in problems:
            print(f"  {p}", file=sys.stderr)
        sys.exit(1)
    print(f"compare {kind}: equal within tolerance; largest differences: {measured}")


if __name__ == "__main__":
    main()
