#!/usr/bin/env python3
"""Learning check: 5-fold macro F1 from scratch on a competition-layout set synthesised from UTKFace faces.

../shared/data/utkface -> `synth` (drawn masks, a few hundred people x 7 photos) -> `crop` (default
settings) -> `train` (default settings from scratch; epochs and input size set to fit the CPU budget)
-> out-of-fold macro F1 per head and for the 18 classes, and the wall time. With CUDA: images/s and
epoch time of efficientnet_b0 at 224 with AMP on the same cache. Prints one JSON line.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from facecurate.curate.crop import CropParams, crop_dataset  # noqa: E402
from facecurate.curate.synth import synthesize  # noqa: E402
from facecurate.train import TrainConfig, train  # noqa: E402


def gpu_speed(cache, work: Path, epochs: int = 2) -> dict:
    """efficientnet_b0 at 224 x 168 (the cache's aspect) with AMP on CUDA: images/s and seconds per epoch."""
    if not torch.cuda.is_available():
        return {"measured": False, "why": "no CUDA device on this machine"}
    cfg = TrainConfig(model="efficientnet_b0", img_size=(224, 168), epochs=epochs, folds=5, fold=0, batch_size=128,
                      amp="auto", patience=0, plots=False)
    run = train(cache, work / "gpu_run", cfg)
    import pandas as pd
    m = pd.read_csv(run / "metrics.csv")
    return {"measured": True, "device": torch.cuda.get_device_name(0), "model": "efficientnet_b0", "img_size": [224, 168],
            "amp": "bf16" if torch.cuda.is_bf16_supported() else "fp16", "images_per_s": round(float(m["images_per_s"].iloc[-1]), 1),
            "epoch_s": round(float(m["epoch_s"].iloc[-1]), 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--faces", type=Path, default=ROOT.parent / "shared" / "data" / "utkface")
    ap.add_argument("--work", type=Path, default=Path("/tmp/facecurate_learn"))
    ap.add_argument("--people", type=int, default=300)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--img-size", type=int, default=128, help="input height; width keeps the cache's 3:4 aspect")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--model", default=TrainConfig().model)
    ap.add_argument("--threads", type=int, default=1,
                    help="torch CPU threads (1: on a shared, loaded 2-core machine two OpenMP threads stall each other)")
    a = ap.parse_args()
    a.work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    synth_dir = a.work / "synth"
    if not (synth_dir / "train.csv").is_file():
        synthesize(a.faces, synth_dir, people=a.people, seed=0, balance=("age", "gender"))
    t_synth = time.perf_counter() - t0
    t1 = time.perf_counter()
    cache = crop_dataset(synth_dir, a.work / "cache", CropParams()).cache
    t_crop = time.perf_counter() - t1
    h, w = cache.images.shape[1:3]
    size = (a.img_size, round(a.img_size * w / h))
    cfg = TrainConfig(model=a.model, epochs=a.epochs, img_size=size, folds=a.folds, threads=a.threads)
    t2 = time.perf_counter()
    run = train(cache, a.work / "run", cfg)
    t_train = time.perf_counter() - t2
    s = json.loads((run / "summary.json").read_text())
    res = {"bench": "learn_utkface", "people": int(cache.manifest["person"].nunique()), "photos": int(len(cache.manifest)),
           "usable": int(len(cache.usable())), "model": a.model, "img_size": list(size), "epochs": a.epochs, "folds": a.folds,
           "other_settings": "defaults (loss smooth 0.1, AdamW 2e-3, cosine + 1 warm-up epoch, EMA 0.998, patience 5, augment on)",
           "oof_f1": round(s["oof_f1"], 4), "oof_f1_mask": round(s["oof_f1_mask"], 4), "oof_f1_gender": round(s["oof_f1_gender"], 4),
           "oof_f1_age": round(s["oof_f1_age"], 4), "oof_acc": round(s["oof_acc"], 4),
           "per_fold_f1": [round(f["tta_f1"], 4) for f in s["per_fold"]],
           "seconds": {"synth": round(t_synth, 1), "crop": round(t_crop, 1), "train_5fold": round(t_train, 1)},
           "cpus": os.cpu_count(), "torch_threads": a.threads, "load_avg_1m": round(os.getloadavg()[0], 2), "run": str(run),
           "gpu": gpu_speed(cache, a.work)}
    print(json.dumps(res))


if __name__ == "__main__":
    main()
