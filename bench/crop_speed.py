#!/usr/bin/env python3
"""Speed of `crop` (default settings) against the naive per-photo loop, side by side on the same 384x512 photos.

The photos: a competition-layout sample rendered by ``curate.synth`` from ../shared/data/utkface
(masks drawn on), in a temp folder unless ``--sample`` names one. Ours runs in this process
(``crop_dataset``, timed from the call to the finished cache, detector start-up and contact sheet
included); the anchor ``../shared/anchors/naive_crop.py`` runs as a subprocess (its own timing: the
loop after its MTCNN is built), so ``ratio`` favours the anchor; ``commands`` also times both as
whole commands (``python -m facecurate crop`` against the anchor script, process start to exit). With CUDA
present, ours also runs on the GPU over ``--gpu-repeat`` copies of the photos and reports photos/s and
peak GPU memory. Prints one JSON line.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

ANCHOR = Path("/work/shared/anchors/naive_crop.py")
FACES = Path("/work/shared/data/utkface")


def build_sample(out: Path, people: int, seed: int = 1) -> Path:
    """A competition-layout folder of ``people`` x 7 photos 384x512 rendered from UTKFace faces (masks drawn on)."""
    from facecurate.curate.synth import synthesize

    synthesize(FACES, out, people=people, seed=seed)
    return out


def _repeat_folder(images: Path, dest: Path, times: int) -> Path:
    """A plain folder holding ``times`` hard-linked copies of every photo under ``images`` (for GPU throughput)."""
    photos = sorted(p for p in images.rglob("*.jpg"))
    for k in range(times):
        for p in photos:
            q = dest / f"r{k:02d}" / p.relative_to(images)
            q.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(p, q)
            except OSError:
                q.write_bytes(p.read_bytes())
    return dest


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--people", type=int, default=40, help="people in the built sample (7 photos each)")
    ap.add_argument("--sample", type=Path, default=None, help="an existing competition-layout folder to use instead")
    ap.add_argument("--threads", type=int, default=2, help="torch threads of the naive loop")
    ap.add_argument("--gpu-repeat", type=int, default=10, help="copies of the sample for the CUDA run")
    a = ap.parse_args()

    import torch

    from facecurate.curate.crop import CropParams, crop_dataset

    with tempfile.TemporaryDirectory(prefix="crop_speed_") as tmp:
        tmp = Path(tmp)
        sample = a.sample or build_sample(tmp / "sample", a.people)
        t0 = time.perf_counter()
        cache = crop_dataset(sample, tmp / "ours", CropParams()).cache
        ours_s = time.perf_counter() - t0
        n = len(cache.manifest)
        counts = cache.meta["counts"]

        t0 = time.perf_counter()
        res = subprocess.run([sys.executable, str(ANCHOR), str(sample / "images"), str(tmp / "naive"), "--threads", str(a.threads)],
                             capture_output=True, text=True, check=True)
        naive_wall = time.perf_counter() - t0
        naive = json.loads(res.stdout.strip().splitlines()[-1])

        # whole commands as a user runs them: process start, imports, model loading and writing included on both sides
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "facecurate", "crop", str(sample), "--out", str(tmp / "ours_cli")],
                       capture_output=True, text=True, check=True, cwd=ROOT)
        ours_cli_wall = time.perf_counter() - t0

        cuda: dict | str = "unmeasured (no CUDA on this machine)"
        if torch.cuda.is_available():
            big = _repeat_folder(sample / "images", tmp / "repeat", a.gpu_repeat)
            torch.cuda.reset_peak_memory_stats()
            t0 = time.perf_counter()
            gcache = crop_dataset(big, tmp / "ours_cuda", CropParams(batch=256, workers=max(2, os.cpu_count() or 2)),
                                  device="cuda").cache
            gs = time.perf_counter() - t0
            cuda = {"device": torch.cuda.get_device_name(0), "photos": len(gcache.manifest), "seconds": round(gs, 2),
                    "photos_per_s": round(len(gcache.manifest) / gs, 1), "detector": gcache.meta["detector"],
                    "peak_gpu_mem_mib": round(torch.cuda.max_memory_allocated() / 2**20, 1)}

    ours_rate = n / ours_s
    print(json.dumps({
        "bench": "crop_speed", "photos": n, "photo_size": "384x512", "cpu_cores": os.cpu_count(),
        "ours": {"detector": cache.meta["detector"], "seconds": round(ours_s, 2), "photos_per_s": round(ours_rate, 2),
                 "detected": counts["detected"], "person": counts["person"], "prior": counts["prior"], "failed": counts["failed"]},
        "naive": {"seconds": naive["seconds"], "wall_with_startup_s": round(naive_wall, 2),
                  "photos_per_s": naive["photos_per_s"], "detected": naive["detected"]},
        "ratio": round(ours_rate / naive["photos_per_s"], 2),
        "commands": {"ours_cli_wall_s": round(ours_cli_wall, 2), "naive_wall_s": round(naive_wall, 2),
                     "ratio": round(naive_wall / ours_cli_wall, 2)},
        "cuda": cuda,
    }))


if __name__ == "__main__":
    main()
