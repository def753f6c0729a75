#!/usr/bin/env python3
"""Training data path, side by side: augmented batches from the uint8 cache vs the baseline's JPEG DataLoader.

Makes N 384x512 JPEG photos from ../shared/data/utkface faces in /tmp and a cache of the same photos
(256x192, as `crop` writes), then measures in one run: samples/s delivered by our path (memmap ->
tensor augmentation: flip, random resized crop, rotation, colour jitter) and by
../shared/anchors/naive_loader.py (PIL decode + Resize + ToTensor + Normalize, DataLoader with
workers; run as a subprocess), and one whole training epoch of a small model fed both ways.
Prints one JSON line.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from facecurate.curate.cache import load_cache, save_cache  # noqa: E402
from facecurate.train.augment import AugmentParams  # noqa: E402
from facecurate.train.data import CacheImages, iter_train  # noqa: E402

SHARED = ROOT.parent / "shared"
ANCHOR = SHARED / "anchors" / "naive_loader.py"


def make_photos(faces: Path, out: Path, n: int, size=(256, 192)) -> Path:
    """N 384x512 JPEGs (face scaled to the width, grey above and below) and a cache of the same photos at ``size``."""
    jpg, cache = out / "jpg", out / "cache"
    srcs = sorted(faces.glob("*.jpg"))
    if (cache / "meta.json").is_file() and len(list(jpg.glob("*.jpg"))) == n:
        return out
    jpg.mkdir(parents=True, exist_ok=True)
    images, rows = [], []
    for i in range(n):
        src = srcs[i % len(srcs)]
        face = Image.open(src).convert("RGB").resize((384, 384), Image.BILINEAR)
        if (i // len(srcs)) % 2:
            face = face.transpose(Image.FLIP_LEFT_RIGHT)
        photo = Image.new("RGB", (384, 512), (128, 128, 128))
        photo.paste(face, (0, 64))
        p = jpg / f"{i:05d}.jpg"
        photo.save(p, quality=90)
        images.append(np.asarray(photo.resize((size[1], size[0]), Image.BILINEAR)))
        age, gender = (int(v) for v in src.name.split("_")[:2])
        ag = 0 if age < 30 else 1 if age < 60 else 2
        rows.append({"image_id": p.name, "person": src.name, "path": str(p), "photo": "", "mask": 2, "gender": gender,
                     "age": age, "age_group": ag, "label": 12 + gender * 3 + ag, "error": ""})
    save_cache(cache, np.stack(images), pd.DataFrame(rows), {"params": {"size": size[0], "aspect": size[1] / size[0]},
                                                             "source": str(faces)})
    return out


def ours_pass(cache_dir: Path, batch: int, size, g_seed: int = 0) -> dict:
    cache = load_cache(cache_dir)
    images = CacheImages(cache.images, "cpu")
    labels = torch.zeros((len(images), 4), dtype=torch.long)
    g = torch.Generator().manual_seed(g_seed)
    n = 0
    t0 = time.perf_counter()
    for x, _ in iter_train(images, np.arange(len(images)), labels, batch, size, AugmentParams(), g, g):
        n += x.shape[0]
    dt = time.perf_counter() - t0
    return {"samples": n, "seconds": round(dt, 2), "samples_per_s": round(n / dt, 1)}


def naive_pass(jpg: Path, batch: int, size, workers: int) -> dict:
    cmd = [sys.executable, str(ANCHOR), str(jpg), "--size", str(size[0]), str(size[1]), "--workers", str(workers),
           "--batch", str(batch)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _step_fn(model_name: str):
    import timm
    torch.manual_seed(0)
    model = timm.create_model(model_name, num_classes=8)
    opt = torch.optim.AdamW(model.parameters(), 1e-3)
    model.train()

    def step(x):
        loss = model(x).float().logsumexp(1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return step


def epoch_ours(cache_dir: Path, batch: int, size, model_name: str) -> dict:
    step = _step_fn(model_name)
    cache = load_cache(cache_dir)
    images = CacheImages(cache.images, "cpu")
    labels = torch.zeros((len(images), 4), dtype=torch.long)
    g = torch.Generator().manual_seed(0)
    n, t0 = 0, time.perf_counter()
    for x, _ in iter_train(images, np.arange(len(images)), labels, batch, size, AugmentParams(), g, g):
        step(x)
        n += x.shape[0]
    dt = time.perf_counter() - t0
    return {"samples": n, "seconds": round(dt, 1), "samples_per_s": round(n / dt, 1)}


def epoch_naive(jpg: Path, batch: int, size, workers: int, model_name: str) -> dict:
    spec = importlib.util.spec_from_file_location("naive_loader", ANCHOR)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    from torch.utils.data import DataLoader
    paths = sorted(jpg.glob("*.jpg"))
    dl = DataLoader(mod.Photos(paths, tuple(size)), batch_size=batch, shuffle=True, num_workers=workers, drop_last=True)
    step = _step_fn(model_name)
    n, t0 = 0, time.perf_counter()
    for x, _ in dl:
        step(x)
        n += x.shape[0]
    dt = time.perf_counter() - t0
    return {"samples": n, "seconds": round(dt, 1), "samples_per_s": round(n / dt, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--faces", type=Path, default=SHARED / "data" / "utkface")
    ap.add_argument("--work", type=Path, default=Path("/tmp/facecurate_loader_bench"))
    ap.add_argument("-n", type=int, default=2000, help="photos")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--workers", type=int, default=2, help="DataLoader workers of the baseline")
    ap.add_argument("--model", default="mobilenetv3_small_100", help="model of the whole-epoch comparison")
    ap.add_argument("--epoch", type=int, default=1, help="also time one training epoch both ways (0 = skip)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads in this process (default: torch's)")
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    size = (256, 192)
    make_photos(a.faces, a.work, a.n, size)
    naive = naive_pass(a.work / "jpg", a.batch, size, a.workers)  # first: its JPEGs are in the page cache either way
    ours = ours_pass(a.work / "cache", a.batch, size)  # first pass: includes thread-pool start and first page reads
    ours_next = ours_pass(a.work / "cache", a.batch, size, g_seed=1)  # a later epoch of a training run
    res = {"bench": "loader_speed", "photos": a.n, "size_hw": list(size), "batch": a.batch, "cpus": os.cpu_count(),
           "torch_threads": torch.get_num_threads(), "load_avg_1m": round(os.getloadavg()[0], 2),
           "ours_augmented": ours, "ours_augmented_next_pass": ours_next, "naive_loader": {**naive, "workers": a.workers},
           "speedup": round(ours["samples_per_s"] / naive["samples_per_s"], 1),
           "speedup_next_pass": round(ours_next["samples_per_s"] / naive["samples_per_s"], 1)}
    if a.epoch:
        eo = epoch_ours(a.work / "cache", a.batch, size, a.model)
        en = epoch_naive(a.work / "jpg", a.batch, size, a.workers, a.model)
        res["epoch"] = {"model": a.model, "ours": eo, "naive": en, "speedup": round(en["seconds"] / eo["seconds"], 2)}
    print(json.dumps(res))


if __name__ == "__main__":
    main()
