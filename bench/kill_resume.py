"""kill -9 `crop` and `train` at random moments, resume each until it finishes, compare with an uninterrupted run.

Both commands run as real processes (``python -m facecurate ...``), killed with SIGKILL after a random
delay drawn over the length of an uninterrupted run, then started again with the same arguments
(``train --resume``) until one exits 0. A trial is "identical" when the final cache (images.npy bytes
and manifest) or run (metrics.csv without timing columns, every fold's best and last weights) equals
the uninterrupted one. Prints one JSON line.

  .venv/bin/python bench/kill_resume.py --people 30 --kills 20
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
FACES = ROOT.parent / "shared" / "data" / "utkface"
TIMING = ["images_per_s", "epoch_s"]


def command(*args: object) -> list[str]:
    return [sys.executable, "-m", "facecurate", *map(str, args)]


def run_once(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def killed_until_done(cmd: list[str], delays: list[float], log: list) -> int:
    """Start ``cmd``; kill it after each delay in turn (if still running); then let it finish. Returns kills that landed."""
    landed = 0
    for d in delays:
        p = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            p.wait(timeout=d)
            if p.returncode == 0:
                log.append({"delay_s": round(d, 2), "killed": False, "finished_early": True})
                return landed
            raise RuntimeError(f"{cmd} failed: {p.stderr.read().decode()[-800:]}")
        except subprocess.TimeoutExpired:
            p.send_signal(signal.SIGKILL)
            p.wait()
            landed += 1
            log.append({"delay_s": round(d, 2), "killed": True})
    subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return landed


def cache_digest(path: Path) -> str:
    m = pd.read_parquet(path / "manifest.parquet")
    h = hashlib.sha256(Path(path / "images.npy").read_bytes())
    h.update(pd.util.hash_pandas_object(m.astype(str), index=False).to_numpy().tobytes())
    return h.hexdigest()


def run_digest(path: Path) -> str:
    from safetensors.torch import load_file

    m = pd.read_csv(path / "metrics.csv").drop(columns=TIMING).sort_values(["fold", "epoch"]).reset_index(drop=True)
    h = hashlib.sha256(pd.util.hash_pandas_object(m.round(10).astype(str), index=False).to_numpy().tobytes())
    for ck in sorted(path.glob("fold_*/*.safetensors")):
        for k, v in sorted(load_file(str(ck)).items()):
            h.update(k.encode() + v.numpy().tobytes())
    return h.hexdigest()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--people", type=int, default=30, help="synthesized people (7 photos each) for the crop side")
    ap.add_argument("--kills", type=int, default=20, help="trials per command (one random kill each, sometimes two)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", type=Path, default=None, help="keep the files here instead of a temporary folder")
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    work = a.work or Path(tempfile.mkdtemp(prefix="kill_resume_"))
    from facecurate.curate.synth import synthesize

    sample = work / "sample"
    if not (sample / "train.csv").is_file():
        synthesize(FACES, sample, people=a.people, seed=a.seed, detector="mediapipe")
    crop_args = ("crop", sample, "--detector", "mediapipe", "--chunk", "16", "--size", "128")
    ref_cache = work / "cache_ref"
    crop_s = run_once(command(*crop_args, "--out", ref_cache))
    want_cache = cache_digest(ref_cache)
    train_args = ("train", ref_cache, "--model", "mobilenetv3_small_050", "--img-size", "64", "--epochs", "3", "--folds", "2",
                  "--batch-size", "16", "--threads", "1", "--patience", "0")
    train_s = run_once(command(*train_args, "--out", work / "run_ref"))
    want_run = run_digest(work / "run_ref")

    out = {"bench": "kill_resume", "photos": 7 * a.people, "kills_per_command": a.kills,
           "uninterrupted_s": {"crop": round(crop_s, 1), "train": round(train_s, 1)}}
    for name, args, total, digest, want in (("crop", crop_args, crop_s, cache_digest, want_cache),
                                             ("train", train_args + ("--resume",), train_s, run_digest, want_run)):
        identical, landed, trials = 0, 0, []
        for t in range(a.kills):
            target = work / f"{name}_{t}"
            shutil.rmtree(target, ignore_errors=True)
            delays = list(rng.uniform(0.3, total, size=1 if rng.random() < 0.7 else 2))
            log: list = []
            landed += killed_until_done(command(*args, "--out", target), delays, log)
            same = digest(target) == want
            identical += same
            trials.append({"delays": log, "identical": bool(same)})
            shutil.rmtree(target, ignore_errors=True)
        out[name] = {"trials": a.kills, "kills_landed": landed, "identical": identical, "log": trials}
    out["all_identical"] = all(out[n]["identical"] == out[n]["trials"] for n in ("crop", "train"))
    out["cpu_cores"] = os.cpu_count()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
