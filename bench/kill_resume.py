"""kill -9 `crop`, `train`, `synth`, `tune` and `embed` at random moments, resume each until it finishes, compare with
an uninterrupted run.

Every command runs as a real process (``python -m facecurate ...``), killed with SIGKILL after a random
delay drawn over the length of an uninterrupted run, then started again with the same arguments
(``train --resume``) until one exits 0. A trial is "identical" when the result equals the uninterrupted
one: the cache (images.npy bytes and manifest); the run (metrics.csv without timing columns, every
fold's best and last weights); every file synth wrote (synth.json without its timing and resume
count); embeddings.npy and embeddings.parquet byte for byte; for tune, the completed trials' scores
(a killed trial is run again first, and the sampler's seed counts the trials before it, so later
trials may draw other values: "identical" is then not expected, "complete" is: --trials trials
completed, study.db sound, best.yaml written). Prints one JSON line.

  .venv/bin/python bench/kill_resume.py --people 30 --kills 20
  .venv/bin/python bench/kill_resume.py --people 6 --synth-people 20 --kills 4 --commands synth,tune,embed --tune-trials 2 --embed-photos 40
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


def synth_digest(path: Path) -> str:
    """Every file synth wrote (synth.json without its run-specific seconds and resumed_blocks)."""
    h = hashlib.sha256()
    for p in sorted(path.rglob("*")):
        if not p.is_file() or p.name == ".lock":
            continue
        data = p.read_bytes()
        if p.name == "synth.json":
            meta = {k: v for k, v in json.loads(data).items() if k not in ("seconds", "resumed_blocks")}
            data = json.dumps(meta, sort_keys=True).encode()
        h.update(str(p.relative_to(path)).encode() + b"\0" + data)
    return h.hexdigest()


def embed_digest(path: Path) -> str:
    return hashlib.sha256(b"".join((path / f).read_bytes() for f in ("embeddings.npy", "embeddings.parquet"))).hexdigest()


def tune_digest(path: Path) -> str:
    """The completed trials' scores, sorted (rounded to 1e-9)."""
    t = pd.read_csv(path / "trials.csv")
    done = t[t["state"] == "COMPLETE"]
    return json.dumps(sorted(round(float(v), 9) for v in done["value"]))


def tune_complete(path: Path, trials: int) -> bool:
    t = pd.read_csv(path / "trials.csv")
    return int((t["state"] == "COMPLETE").sum()) == trials and (path / "best.yaml").is_file()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--people", type=int, default=30, help="synthesized people (7 photos each) for the crop side")
    ap.add_argument("--kills", type=int, default=20, help="trials per command (one random kill each, sometimes two)")
    ap.add_argument("--commands", default="crop,train,synth,tune,embed", help="which commands to kill, comma-separated")
    ap.add_argument("--synth-people", type=int, default=None, help="people the synth side writes (default --people)")
    ap.add_argument("--tune-trials", type=int, default=3, help="tune's --trials")
    ap.add_argument("--embed-photos", type=int, default=60, help="photos of the cache embedded by the embed side")
    ap.add_argument("--faces", type=Path, default=FACES, help="UTKFace-named photos synth draws people from")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", type=Path, default=None, help="keep the files here instead of a temporary folder")
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    names = [n.strip() for n in a.commands.split(",") if n.strip()]
    work = a.work or Path(tempfile.mkdtemp(prefix="kill_resume_"))
    from facecurate.curate.cache import load_cache, save_cache
    from facecurate.curate.synth import synthesize

    sample = work / "sample"
    if not (sample / "train.csv").is_file():
        synthesize(a.faces, sample, people=a.people, seed=a.seed, detector="mediapipe")
    crop_args = ("crop", sample, "--detector", "mediapipe", "--chunk", "16", "--size", "128")
    ref_cache = work / "cache_ref"
    if not (ref_cache / "meta.json").is_file():
        run_once(command(*crop_args, "--out", ref_cache))
    src = load_cache(ref_cache)
    meta = {k: v for k, v in src.meta.items() if k not in ("checksums", "embeddings")}
    embed_src = (np.asarray(src.images[:a.embed_photos]), src.manifest.iloc[:a.embed_photos])
    train_args = ("train", ref_cache, "--model", "mobilenetv3_small_050", "--img-size", "64", "--epochs", "3", "--folds", "2",
                  "--batch-size", "16", "--threads", "1", "--patience", "0")
    tune_args = ("tune", ref_cache, "--trials", a.tune_trials, "--epochs", "1", "--models", "mobilenetv3_small_050",
                 "--img-sizes", "64", "--folds", "2", "--batch-size", "16", "--threads", "1", "--samplers", "none",
                 "--losses", "ce", "--pruner", "none", "--quiet")
    synth_args = ("--people", a.synth_people or a.people, "--seed", a.seed + 1, "--detector", "mediapipe", "--block", "16", "--quiet")

    def fresh_cache(target: Path) -> None:
        save_cache(target, *embed_src, meta)

    sides = {  # name: (command for a target folder, digest, prepare a target before its first start)
        "crop": (lambda t: command(*crop_args, "--out", t), cache_digest, None),
        "train": (lambda t: command(*train_args, "--resume", "--out", t), run_digest, None),
        "synth": (lambda t: command("synth", a.faces, t, *synth_args), synth_digest, None),
        "tune": (lambda t: command(*tune_args, "--out", t), tune_digest, None),
        "embed": (lambda t: command("embed", t, "--chunk", "16", "--quiet"), embed_digest, fresh_cache),
    }
    out = {"bench": "kill_resume", "photos": 7 * a.people, "synth_people": a.synth_people or a.people, "kills_per_command": a.kills, "uninterrupted_s": {},
           "load_before": round(os.getloadavg()[0], 2)}
    for name in names:
        make, digest, prepare = sides[name]
        ref = work / f"{name}_ref"
        shutil.rmtree(ref, ignore_errors=True)
        if prepare:
            prepare(ref)
        total = run_once(make(ref))
        out["uninterrupted_s"][name] = round(total, 1)
        want = digest(ref)
        identical, complete, landed, trials = 0, 0, 0, []
        for t in range(a.kills):
            target = work / f"{name}_{t}"
            shutil.rmtree(target, ignore_errors=True)
            if prepare:
                prepare(target)
            delays = list(rng.uniform(0.3, total, size=1 if rng.random() < 0.7 else 2))
            log: list = []
            landed += killed_until_done(make(target), delays, log)
            same = digest(target) == want
            whole = tune_complete(target, a.tune_trials) if name == "tune" else same
            if name == "embed":
                whole = whole and load_cache(target).embeddings is not None
            identical += same
            complete += whole
            trials.append({"delays": log, "identical": bool(same), "complete": bool(whole)})
            shutil.rmtree(target, ignore_errors=True)
        out[name] = {"trials": a.kills, "kills_landed": landed, "identical": identical, "complete": complete, "log": trials}
    out["all_identical"] = all(out[n]["identical"] == out[n]["trials"] for n in names if n != "tune")
    out["all_complete"] = all(out[n]["complete"] == out[n]["trials"] for n in names)
    out["load_after"] = round(os.getloadavg()[0], 2)
    out["cpu_cores"] = os.cpu_count()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
