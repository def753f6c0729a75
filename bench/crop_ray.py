#!/usr/bin/env python3
"""`crop` on Ray against a local `crop`: photos/s on this machine for 1, 2, ... Ray workers, and the same cache.

The photos: a competition-layout sample rendered by ``curate.synth`` from ../shared/data/utkface (``--people``
x 7 photos), unless ``--sample`` names one. Each side calls ``crop_dataset`` into a fresh folder with the
same default settings: local (pass 1 in this process, its usual detector copies side by side), then
``CropParams(ray="local", ray_workers=N)`` for each N of ``--workers`` on a local Ray instance started once
(its start-up is reported apart, not inside a run's seconds: a cluster is started once for many runs). Turns
alternate local and Ray ``--repeat`` times so both see the same machine load; seconds are min / median / max,
and each Ray run's ratio is local / Ray of the same turn. ``identical`` says whether every Ray cache's
``images.npy`` and manifest equal the local one's. Prints one JSON line.

On a 2-core machine this measures Ray's overhead, not a scaling curve: the local run already keeps both
cores busy. The scaling with 1, 2, 4 workers needs a machine with more cores (e.g. a 16-core GPU machine).

  .venv/bin/python bench/crop_ray.py --people 100 --workers 1,2 --repeat 2
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from crop_speed import spread  # noqa: E402  (bench/ is on the path when run as a script)
from facecurate.curate.crop import CropParams, crop_dataset  # noqa: E402

FACES = ROOT.parent / "shared" / "data" / "utkface"


def timed_crop(sample: Path, out: Path, params: CropParams) -> float:
    """Seconds of one ``crop_dataset`` into a fresh ``out``, from the call to the finished cache."""
    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    crop_dataset(sample, out, params)
    return time.perf_counter() - t0


def same_cache(a: Path, b: Path) -> bool:
    """True when two caches hold the same crops and the same manifest."""
    if np.load(a / "images.npy", mmap_mode="r").tobytes() != np.load(b / "images.npy", mmap_mode="r").tobytes():
        return False
    return pd.read_parquet(a / "manifest.parquet").equals(pd.read_parquet(b / "manifest.parquet"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--people", type=int, default=100, help="people in the built sample (7 photos each)")
    ap.add_argument("--sample", type=Path, default=None, help="an existing competition-layout folder to use instead")
    ap.add_argument("--workers", default="1,2", help="Ray worker counts to run (comma-separated)")
    ap.add_argument("--repeat", type=int, default=2, help="turns of each side")
    ap.add_argument("--work", type=Path, default=None, help="keep the sample here (reused when it exists)")
    a = ap.parse_args()
    workers = [int(w) for w in a.workers.split(",") if w.strip()]
    import ray

    work = a.work or Path(tempfile.mkdtemp(prefix="fc_crop_ray_"))
    sample = a.sample
    if sample is None:
        sample = work / "sample"
        if not (sample / "train.csv").is_file():
            from facecurate.curate.synth import synthesize
            synthesize(FACES, sample, people=a.people, seed=1)
    photos = len(list((sample / "images").rglob("*.jpg")))
    t0 = time.perf_counter()
    ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False, configure_logging=False)
    ray_start_s = time.perf_counter() - t0
    local_s: list[float] = []
    ray_s: dict[int, list[float]] = {w: [] for w in workers}
    ratios: dict[int, list[float]] = {w: [] for w in workers}
    identical = True
    try:
        for _ in range(a.repeat):
            local = timed_crop(sample, work / "local", CropParams())
            local_s.append(local)
            for w in workers:
                s = timed_crop(sample, work / f"ray{w}", CropParams(ray="local", ray_workers=w))
                ray_s[w].append(s)
                ratios[w].append(local / s)
                identical = identical and same_cache(work / "local", work / f"ray{w}")
    finally:
        ray.shutdown()
    print(json.dumps({
        "bench": "crop_ray", "photos": photos, "cpu_cores": os.cpu_count(), "repeat": a.repeat,
        "local": {"seconds": spread(local_s), "photos_per_s": round(photos / statistics.median(local_s), 1)},
        "ray": {str(w): {"seconds": spread(ray_s[w]), "photos_per_s": round(photos / statistics.median(ray_s[w]), 1),
                         "ratio_local_over_ray": spread(ratios[w])} for w in workers},
        "ray_start_s": round(ray_start_s, 2), "identical": identical,
        "scaling": "unmeasured beyond this machine's cores" if (os.cpu_count() or 1) < 8 else "measured",
    }))


if __name__ == "__main__":
    main()
