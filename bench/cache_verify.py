"""What checking a cache costs next to cropping it: ``load_cache`` with verify off / quick / full against `crop`'s time.

Crops a synthesized sample once (default settings, the time per photo from its own result), then opens
the cache repeatedly at each verify level, warm (page-cached, the usual case right after crop or
between commands). The goal: the default check (quick: sizes, header, xxh3 of every byte of every file)
costs < 5% of the crop. Prints one JSON line.

  .venv/bin/python bench/cache_verify.py --people 100
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
FACES = ROOT.parent / "shared" / "data" / "utkface"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--people", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--work", type=Path, default=None)
    a = ap.parse_args()
    from facecurate.curate.cache import load_cache
    from facecurate.curate.crop import CropParams, crop_dataset
    from facecurate.curate.synth import synthesize

    work = a.work or Path(tempfile.mkdtemp(prefix="cache_verify_"))
    sample = work / "sample"
    if not (sample / "train.csv").is_file():
        synthesize(FACES, sample, people=a.people, seed=0, detector="mediapipe")
    result = crop_dataset(sample, work / "cache", CropParams())
    per_photo_crop = result.seconds / max(result.computed, 1)
    n = len(result.cache.manifest)
    times = {}
    for level in ("off", "quick", "full"):
        best = float("inf")
        for _ in range(a.repeat):
            t0 = time.perf_counter()
            load_cache(work / "cache", verify=level)
            best = min(best, time.perf_counter() - t0)
        times[level] = best
    print(json.dumps({
        "bench": "cache_verify", "photos": n, "image_shape": list(result.cache.images.shape[1:]),
        "cache_mb": round(os.path.getsize(work / "cache" / "images.npy") / 2**20, 1),
        "crop_ms_per_photo": round(1000 * per_photo_crop, 3),
        "verify_ms_per_photo": {k: round(1000 * v / n, 4) for k, v in times.items()},
        "verify_share_of_crop": {k: round(v / n / per_photo_crop, 4) for k, v in times.items()},
        "goal": "quick < 0.05 of the crop", "met": times["quick"] / n / per_photo_crop < 0.05, "cpu_cores": os.cpu_count(),
    }))


if __name__ == "__main__":
    main()
