"""Runs dolbom and its peers on one clip, each as a child process measured the same way, and
prints one table. Standard library only: it runs under any python3, the peers under the venv's.

Each run of each program is a fresh child process, measured from spawn to exit (model loading
included): wall time with a monotonic clock, CPU user+system and peak RSS (ru_maxrss) from the
child's own rusage, as os.wait4 returns it. Runs are interleaved (dolbom twice, peer B, peer A,
floor, then again) so a change in the machine's load hits every program alike; the table shows medians.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
# dlib and NumPy may link a BLAS with its own thread pool; OpenCV and ONNX Runtime are set apart.
THREAD_ENV = {"OMP_NUM_THREADS": "2", "OPENBLAS_NUM_THREADS": "2", "MKL_NUM_THREADS": "2"}


def log(msg):
    print(f"bench-peers: {msg}", file=sys.stderr, flush=True)


def measure(cmd, stdout_path, stderr_path, env=None):
    """Runs cmd to completion; returns (exit status, wall s, CPU s, peak RSS MiB)."""
    with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
        started = time.monotonic()
        child = subprocess.Popen(cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.monotonic() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    return child.returncode, wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024.0


def last_json(path):
    for line in reversed(Path(path).read_text(errors="replace").splitlines()):
        line = line.strip()
        if line.startswith("{"):
            return json.loads(line)
    raise ValueError(f"{path} has no JSON result line")


def fail(msg, *logs):
    for p in logs:
        if Path(p).exists():
            tail = Path(p).read_text(errors="replace").splitlines()[-15:]
            log(f"--- last lines of {p}:\n" + "\n".join(tail))
    raise SystemExit(f"bench-peers: {msg}")


class Dolbom:
    """dolbom kiosk at pace "fast" on the clip, against the local broker; identities are the people
    it published attendance events for, as a subscriber receives them.

    As shipped, the daemon reads every frame but runs the detector on every third once all faces
    in view are settled (`recognition.settled_detect_interval`) and not at all on still frames
    with nobody tracked (`recognition.motion_threshold`); `every_frame` turns both off, so it
    detects on every frame as the peers do."""

    def __init__(self, args, work, every_frame):
        self.bin, self.work, self.args, self.every_frame = args.bin, work, args, every_frame
        self.key = "dolbom-every" if every_frame else "dolbom"
        self.name = "dolbom kiosk, detector on every frame" if every_frame else "dolbom kiosk (as shipped)"
        self.sample = Path(args.repo, "config/sample-clip.toml").read_text()
        self.enrolled = work / f"{self.key}-gallery.json"
        self.enrolled.unlink(missing_ok=True)
        config = self.config("enrol", self.enrolled)
        for ident, photos in args.people:
            cmd = [self.bin, "enroll", "--config", str(config), "--person", ident, "--role", "child", "--name", ident]
            done = subprocess.run(cmd + photos, capture_output=True, text=True)
            if done.returncode != 0:
                raise SystemExit(f"bench-peers: dolbom enroll {ident} failed:\n{done.stderr}")

    def config(self, tag, gallery):
        """config/sample-clip.toml with absolute paths, this clip, pace fast, its own center id."""
        repo = Path(self.args.repo).resolve()
        text = self.sample.replace('"../.dolbom/', f'"{repo}/.dolbom/')
        text = text.replace(f'"{repo}/.dolbom/demo/walkup.avi"', json.dumps(str(Path(self.args.clip).resolve())))
        text = text.replace(f'"{repo}/.dolbom/demo/gallery.json"', json.dumps(str(gallery)))
        text = text.replace(f'"{repo}/.dolbom/demo/state"', json.dumps(str(self.work / f"{self.key}-state-{tag}")))
        text = text.replace('center_id = "sunshine"', f'center_id = "peers{os.getpid()}{self.key}{tag}"')
        text = text.replace('pace = "realtime"', 'pace = "fast"')
        for must in ('pace = "fast"', 'at_end = "exit"', "threads = 2", str(gallery)):
            if must not in text:
                raise SystemExit(f"bench-peers: config/sample-clip.toml changed shape: cannot set {must!r}")
        if self.every_frame:
            if "[recognition]" in text:
                raise SystemExit("bench-peers: config/sample-clip.toml has a [recognition] section; set it here")
            text += "\n[recognition]\nsettled_detect_interval = 1\nmotion_threshold = 0.0\n"
        path = self.work / f"{self.key}-{tag}.toml"
        path.write_text(text)
        return path

    def run(self, tag):
        # Every run starts from the enrolled gallery: the daemon may add a template as faces grow.
        gallery = self.work / f"{self.key}-gallery-{tag}.json"
        shutil.copyfile(self.enrolled, gallery)
        config = self.config(tag, gallery)
        state = self.work / f"{self.key}-state-{tag}"
        shutil.rmtree(state, ignore_errors=True)
        root = f"dolbom/v1/peers{os.getpid()}{self.key}{tag}/door-1"
        events = self.work / f"{self.key}-{tag}.events"
        sub = subscribe(f"{root}/event/#", events)
        try:
            out, err = self.work / f"{self.key}-{tag}.out", self.work / f"{self.key}-{tag}.log"
            env = dict(os.environ, DOLBOM_LOG="info", **THREAD_ENV)
            code, wall, cpu, rss = measure([self.bin, "kiosk", "--config", str(config)], out, err, env)
            if code != 0:
                fail(f"dolbom kiosk exited {code}", err)
            time.sleep(0.5)  # QoS 1 deliveries still in flight to the subscriber
        finally:
            sub.terminate()
            sub.wait()
        status = json.loads((state / "status.json").read_text())
        found = {}
        for line in events.read_text(errors="replace").splitlines():
            topic, _, payload = line.partition(" ")
            if topic.endswith("/event/attendance"):
                who = json.loads(payload)["person"]["id"]
                found[who] = found.get(who, 0) + 1
        frames = status["health"]["frames_processed"]
        return {"wall": wall, "cpu": cpu, "rss": rss, "frames": frames, "found": found}


def subscribe(topic, path):
    """mosquitto_sub writing `topic payload` lines to path; returns once it provably receives."""
    sub = subprocess.Popen(
        ["mosquitto_sub", "-h", "127.0.0.1", "-p", "1883", "-q", "1", "-v", "-t", topic],
        stdout=open(path, "wb"),
        stderr=subprocess.DEVNULL,
    )
    probe = topic.replace("#", "probe")
    until = time.monotonic() + 15
    while time.monotonic() < until:
        subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", "1883", "-t", probe, "-m", "{}"], check=False)
        time.sleep(0.2)
        if path.exists() and probe in path.read_text(errors="replace"):
            return sub
        if sub.poll() is not None:
            break
    sub.kill()
    raise SystemExit("bench-peers: cannot subscribe on the broker at 127.0.0.1:1883 (run scripts/setup.sh)")


class Peer:
    """A Python peer: benches/peers/<script> in the venv; it reports frames and matches itself."""

    def __init__(self, name, script, args, work):
        self.name, self.script, self.args, self.work = name, script, args, work

    def run(self, tag):
        cmd = [self.args.python, str(HERE / self.script), "--clip", self.args.clip, "--threads", "2"]
        for ident, photos in self.args.people:
            cmd += ["--enrol", f"{ident}={':'.join(photos)}"]
        stem = self.work / f"{Path(self.script).stem}-{tag}"
        code, wall, cpu, rss = measure(cmd, f"{stem}.out", f"{stem}.log", dict(os.environ, **THREAD_ENV))
        if code != 0:
            fail(f"{self.name} exited {code}", f"{stem}.log")
        result = last_json(f"{stem}.out")
        # A person counts as found when matched in at least one frame: the peers have no tracker.
        return {"wall": wall, "cpu": cpu, "rss": rss, "frames": result["frames"], "found": result["matched"]}


class Floor:
    """ONNX Runtime's time for the two models alone (benches/peers/floor.py)."""

    name = "floor"

    def __init__(self, args, work):
        self.args, self.work = args, work

    def run(self, tag):
        stem = self.work / f"floor-{tag}"
        cmd = [self.args.python, str(HERE / "floor.py"), "--clip", self.args.clip, "--threads", "2"]
        code, _, _, _ = measure(cmd, f"{stem}.out", f"{stem}.log", dict(os.environ, **THREAD_ENV))
        if code != 0:
            fail(f"floor.py exited {code}", f"{stem}.log")
        return last_json(f"{stem}.out")


def clip_info(python, clip):
    code = "import cv2,json,sys;c=cv2.VideoCapture(sys.argv[1]);print(json.dumps([c.get(7),c.get(5),c.get(3),c.get(4)]))"
    n, fps, w, h = json.loads(subprocess.run([python, "-c", code, clip], check=True, capture_output=True, text=True).stdout)
    return int(n), fps, int(w), int(h)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repo", required=True)
    p.add_argument("--bin", required=True, help="the dolbom binary to measure")
    p.add_argument("--python", required=True, help="the peers' venv python")
    p.add_argument("--clip", required=True)
    p.add_argument("--enrol", action="append", required=True, metavar="ID=PHOTO[:PHOTO...]")
    p.add_argument("--expect", required=True, help="comma-separated ids of the enrolled people the clip shows")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--work", required=True, help="directory for configs, logs and results (emptied first)")
    p.add_argument("--programs", default="dolbom,dolbom-every,ort,dlib", help="which to run (all for the table)")
    args = p.parse_args()
    args.people = [(s.partition("=")[0], [str(Path(x).resolve()) for x in s.partition("=")[2].split(":")]) for s in args.enrol]
    expected = sorted(x for x in args.expect.split(",") if x)
    work = Path(args.work).resolve()
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)

    n_frames, fps, width, height = clip_info(args.python, args.clip)
    video_s = n_frames / fps
    log(f"clip {args.clip}: {width}x{height}, {n_frames} frames at {fps:.2f} fps = {video_s:.1f} s; expected {expected}")
    chosen = set(args.programs.split(","))
    programs = [
        make()
        for key, make in [
            ("dolbom", lambda: Dolbom(args, work, every_frame=False)),
            ("dolbom-every", lambda: Dolbom(args, work, every_frame=True)),
            ("ort", lambda: Peer("Python onnxruntime + OpenCV, same YuNet + SFace", "yunet_sface_ort.py", args, work)),
            ("dlib", lambda: Peer("face_recognition (dlib HOG + ResNet)", "facerec_dlib.py", args, work)),
        ]
        if key in chosen
    ]
    floor = Floor(args, work)
    results = {p.name: [] for p in programs}
    floors = []
    load_before = os.getloadavg()
    for r in range(1, args.runs + 1):
        for prog in programs:
            log(f"run {r}/{args.runs}: {prog.name}")
            res = prog.run(str(r))
            log(
                f"  {res['frames']} frames, wall {res['wall']:.1f} s, CPU {res['cpu']:.1f} s, "
                f"peak RSS {res['rss']:.0f} MiB, matched {res['found']}"
            )
            if res["frames"] != n_frames:
                log(f"  warning: {res['frames']} frames processed, the clip has {n_frames}")
            results[prog.name].append(res)
        log(f"run {r}/{args.runs}: ONNX Runtime floor")
        floors.append(floor.run(str(r)))
    load_after = os.getloadavg()

    rows = []
    for prog in programs:
        runs = results[prog.name]
        found = sorted(set().union(*(set(x["found"]) for x in runs)))
        # Identities are reported per run; a program that varies between runs shows each outcome.
        outcomes = sorted({",".join(sorted(x["found"])) for x in runs})
        hits = [len(set(x["found"]) & set(expected)) for x in runs]
        wrong = sorted(set(found) - set(expected))
        ident = f"{statistics.median(hits):g}/{len(expected)} ({', '.join(sorted(set(found) & set(expected))) or 'none'})"
        if wrong:
            ident += f"; wrong: {', '.join(wrong)}"
        if len(outcomes) > 1:
            ident += f"; varies: {' | '.join(o or 'none' for o in outcomes)}"
        rows.append(
            {
                "program": prog.name,
                "fps": statistics.median(x["frames"] / x["wall"] for x in runs),
                "cpu_per_min": statistics.median(x["cpu"] * 60 / video_s for x in runs),
                "rss": statistics.median(x["rss"] for x in runs),
                "identities": ident,
                "runs": runs,
            }
        )
    # The floor: the fastest call of each model times the calls needed (see floor.py); its CPU
    # column is the CPU the model runs took.
    best = [f["frames"] * f["detector_min_s"] + f["faces"] * f["embedder_min_s"] for f in floors]
    rows.append(
        {
            "program": "floor: ONNX Runtime, YuNet every frame + SFace every face",
            "fps": statistics.median(f["frames"] / b for f, b in zip(floors, best)),
            "cpu_per_min": statistics.median((f["detector_cpu_s"] + f["embedder_cpu_s"]) * 60 / video_s for f in floors),
            "rss": None,
            "identities": "—",
            "runs": floors,
        }
    )
    rows.append(
        {
            "program": "floor: ONNX Runtime, YuNet every frame only",
            "fps": statistics.median(1 / f["detector_min_s"] for f in floors),
            "cpu_per_min": statistics.median(f["detector_cpu_s"] * 60 / video_s for f in floors),
            "rss": None,
            "identities": "—",
            "runs": [],
        }
    )

    lines = [
        f"clip: {Path(args.clip).name}, {width}x{height}, {n_frames} frames at {fps:.2f} fps ({video_s:.1f} s); "
        f"enrolled: {', '.join(i for i, _ in args.people)}; expected: {', '.join(expected)}",
        f"medians of {args.runs} runs; machine: {os.cpu_count()} cores, load average {load_before[0]:.1f} before, "
        f"{load_after[0]:.1f} after",
        "",
        "| program | frames/s | CPU s per min of video | peak RSS MiB | identities found / expected |",
        "|---|---:|---:|---:|---|",
    ]
    for row in rows:
        rss = "—" if row["rss"] is None else f"{row['rss']:.0f}"
        lines.append(
            f"| {row['program']} | {row['fps']:.1f} | {row['cpu_per_min']:.1f} | {rss} | {row['identities']} |"
        )
    faces = statistics.median(f["faces"] for f in floors)

    def ms(key):
        return statistics.median(f[key] * 1000 for f in floors)

    lines += [
        "",
        f"floor detail (medians over runs): YuNet fastest {ms('detector_min_s'):.1f} ms, median "
        f"{ms('detector_median_s'):.1f} ms per frame; SFace fastest {ms('embedder_min_s'):.1f} ms, median "
        f"{ms('embedder_median_s'):.1f} ms per face; {faces:g} faces in {n_frames} frames",
    ]
    table = "\n".join(lines)
    (work / "results.md").write_text(table + "\n")
    (work / "results.json").write_text(json.dumps({"rows": rows, "expected": expected}, indent=1, default=str))
    print(table)


if __name__ == "__main__":
    main()
