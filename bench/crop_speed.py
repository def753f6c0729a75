#!/usr/bin/env python3
"""Speed of `crop` as the user feels it: the whole command against the teams' loop, side by side, repeated.

Both sides run as whole processes from start to exit, in turns (ours, anchor, ours, anchor, ...) on the
same photos, each into a fresh output folder: ``python -m facecurate crop SAMPLE --out ...`` (default
settings) against ``../shared/anchors/naive_crop.py SAMPLE/images ...`` (PIL + facenet MTCNN per photo,
its default 2 torch threads). Reported per side: wall seconds and photos/s as min / median / max over
``--repeat`` turns, and the ratio anchor / ours of each turn (min / median / max): the machine's speed
drifts, so a pair's ratio is what holds. Ours also reports its own in-process rate and how many photos
took which path. The photos: a competition-layout sample rendered by ``curate.synth`` from
../shared/data/utkface (masks drawn on), with ``--backdrops`` street photos behind the people (e.g.
../shared/data/facemask-voc/images, full of other faces), unless ``--sample`` names one.
With CUDA present, ours also runs once on the GPU. Prints one JSON line.

  .venv/bin/python bench/crop_speed.py --people 300 --backdrops ../shared/data/facemask-voc/images --repeat 3
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

ANCHOR = ROOT.parent / "shared" / "anchors" / "naive_crop.py"
FACES = ROOT.parent / "shared" / "data" / "utkface"


def _backdrops(sample: Path) -> str:
    """What is behind the sample's people: synth's --backdrops folder (and share), else painted walls."""
    meta = sample / "synth.json"
    params = json.loads(meta.read_text()).get("params", {}) if meta.is_file() else {}
    if not params:
        return "unknown (not a synth output)"
    return f"{params['backdrops']} (share {params.get('backdrop_share')})" if params.get("backdrops") else "painted"


def build_sample(out: Path, people: int, seed: int = 1, backdrops: Path | None = None) -> Path:
    """A competition-layout folder of ``people`` x 7 photos 384x512 rendered from UTKFace faces (masks drawn on)."""
    from facecurate.curate.synth import synthesize

    extra = {"backdrops": backdrops} if backdrops else {}
    synthesize(FACES, out, people=people, seed=seed, **extra)
    return out


def spread(values: list[float], digits: int = 2) -> dict:
    return {"min": round(min(values), digits), "median": round(statistics.median(values), digits),
            "max": round(max(values), digits)}


def timed(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--people", type=int, default=300, help="people in the built sample (7 photos each)")
    ap.add_argument("--sample", type=Path, default=None, help="an existing competition-layout folder to use instead")
    ap.add_argument("--backdrops", type=Path, default=None, help="photos to use as backdrops when building the sample")
    ap.add_argument("--repeat", type=int, default=3, help="turns of each side")
    ap.add_argument("--threads", type=int, default=2, help="torch threads of the naive loop")
    ap.add_argument("--work", type=Path, default=None, help="keep the sample here (reused when it exists)")
    a = ap.parse_args()

    work = a.work or Path(tempfile.mkdtemp(prefix="crop_speed_"))
    sample = a.sample or work / "sample"
    if a.sample is None and not (sample / "train.csv").is_file():
        build_sample(sample, a.people, backdrops=a.backdrops)
    n = sum(1 for p in (sample / "images").rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    ours_s, naive_s = [], []
    for t in range(a.repeat):
        for d in (work / "ours", work / "naive"):
            shutil.rmtree(d, ignore_errors=True)
        ours_s.append(timed([sys.executable, "-m", "facecurate", "crop", str(sample), "--out", str(work / "ours")]))
        naive_s.append(timed([sys.executable, str(ANCHOR), str(sample / "images"), str(work / "naive"),
                              "--threads", str(a.threads)]))
    meta = json.loads((work / "ours" / "meta.json").read_text())
    from facecurate.curate.cache import load_cache

    m = load_cache(work / "ours", verify="off").manifest
    cuda: dict | str = "unmeasured (no CUDA on this machine)"
    import torch

    if torch.cuda.is_available():
        shutil.rmtree(work / "ours_cuda", ignore_errors=True)
        gs = timed([sys.executable, "-m", "facecurate", "crop", str(sample), "--out", str(work / "ours_cuda"), "--device", "cuda"])
        cuda = {"device": torch.cuda.get_device_name(0), "photos": n, "wall_s": round(gs, 2), "photos_per_s": round(n / gs, 1)}
    print(json.dumps({
        "bench": "crop_speed", "photos": n, "photo_size": "384x512", "cpu_cores": os.cpu_count(), "repeat": a.repeat,
        "sample": str(sample), "backdrops": _backdrops(sample),
        "ours": {"wall_s": spread(ours_s), "photos_per_s": spread([n / s for s in ours_s], 1),
                 "in_process_photos_per_s": round(n / meta["seconds"], 1) if meta.get("seconds") else None,
                 "detector": meta["detector"], "counts": meta["counts"], "usable": int((m["error"] == "").sum())},
        "naive": {"wall_s": spread(naive_s), "photos_per_s": spread([n / s for s in naive_s], 1)},
        "ratio_naive_over_ours": spread([b / o for o, b in zip(ours_s, naive_s)]),
        "cuda": cuda,
    }))


if __name__ == "__main__":
    main()
