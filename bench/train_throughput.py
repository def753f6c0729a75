#!/usr/bin/env python3
"""Training throughput of one process: images/s of the real `train` loop, GPU utilisation, and the epoch time of
the reference task (4,500 people x 7 photos = 31,500 photos, 5 person-grouped folds) extrapolated from it.

A generated cache (random photos at crop's default 256 x 192, 7 photos a person; content does not change the
speed) is trained by ``facecurate.train.train`` itself with one person-grouped split, so the figures come from
the run's own ``metrics.csv`` (``images_per_s``: training steps with augmentation, EMA and the optimizer;
``epoch_s``: training + validation). The first epoch warms up (cuDNN autotuning, first calls) and is left out.
On CUDA the cache lives on the GPU and AMP is on (bf16 where supported), as `train` does by default; the GPU's
utilisation (``torch.cuda.utilization``, i.e. NVML through ``nvidia-ml-py``, else ``nvidia-smi``) is sampled every
0.2 s during the timed epochs. Without CUDA the CPU figure is reported and the GPU figure says it is unmeasured.
The validation speed is the timed epochs' validation pass (epoch_s minus the training time); the reference
epoch is 25,200 training + 6,300 validation photos, a run adds each fold's flip-TTA out-of-fold pass.
Prints one JSON line.

    # GPU (the figure users want: efficientnet_b0 at 224, AMP, GPU-resident cache):
    python bench/train_throughput.py --model efficientnet_b0 --img-size 224 --batch-size 64 --people 1200 --epochs 3
    # CPU, tiny (under 3 minutes on 2 cores):
    python bench/train_throughput.py --device cpu --model mobilenetv3_small_100 --img-size 128 --batch-size 32 \\
        --people 60 --epochs 2 --threads 1

``--img-size H`` keeps the cache's aspect (224 -> 224 x 168), as `train --img-size` does.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from facecurate.curate.cache import save_cache  # noqa: E402
from facecurate.curate.labels import DEFAULT_AGE_BINS, MASK_FROM_STEM, PHOTO_STEMS, age_group, encode  # noqa: E402
from facecurate.train import TrainConfig, train  # noqa: E402
from facecurate.train.config import parse_img_size  # noqa: E402
from facecurate.train.data import steps_per_epoch  # noqa: E402
from facecurate.train.runtime import amp_dtype, pick_device  # noqa: E402

REFERENCE = {"people": 4500, "photos_per_person": 7, "folds": 5}


def make_cache(path: Path, people: int, size=(256, 192), seed: int = 0):
    """``people`` x 7 random photos (a few random tiles, shifted per photo: cheap to make, as fast to train as faces)."""
    rng = np.random.default_rng(seed)
    tiles = rng.integers(0, 256, (16, *size, 3), dtype=np.uint8)
    n = people * len(PHOTO_STEMS)
    images = np.empty((n, *size, 3), np.uint8)
    for i in range(n):
        images[i] = np.roll(tiles[i % len(tiles)], i % size[1], axis=1)
    rows = []
    for p in range(people):
        gender, age = int(rng.integers(2)), int(rng.choice([20, 45, 70]))
        person = f"{p:06d}_{'female' if gender else 'male'}_Asian_{age}"
        for stem in PHOTO_STEMS:
            mask, ag = MASK_FROM_STEM[stem], int(age_group(age, DEFAULT_AGE_BINS))
            rows.append({"image_id": f"{person}/{stem}.jpg", "person": person, "path": f"/generated/{person}/{stem}.jpg",
                         "photo": stem, "mask": mask, "gender": gender, "age": age, "age_group": ag,
                         "label": int(encode(mask, gender, ag)), "error": ""})
    manifest = pd.DataFrame(rows)
    for c in ("mask", "gender", "age", "age_group", "label"):
        manifest[c] = manifest[c].astype("Int64")
    return save_cache(path, images, manifest, {"params": {"size": size[0], "aspect": size[1] / size[0]}, "source": "generated"})


def _nvidia_smi_utilization(index: int) -> int:
    out = subprocess.run(["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits", "-i", str(index)],
                         capture_output=True, text=True, timeout=10, check=True).stdout
    return int(out.strip().splitlines()[0])


class GpuSampler:
    """GPU utilisation (%) every ``every`` seconds, in a thread, while ``on`` is set: ``torch.cuda.utilization``
    (NVML through the ``nvidia-ml-py`` package), else ``nvidia-smi``'s query of the same counter."""

    def __init__(self, device: torch.device, every: float = 0.2):
        self.device, self.every, self.samples, self.error, self.source = device, every, [], None, None
        self.on, self.stop = threading.Event(), threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> int:
        if self.source in (None, "torch.cuda.utilization"):
            try:
                value = torch.cuda.utilization(self.device)
                self.source = "torch.cuda.utilization"
                return value
            except Exception as e:  # no nvidia-ml-py: NVML through nvidia-smi instead
                if self.source is not None:
                    raise
                self.error = f"torch.cuda.utilization: {type(e).__name__}: {e}"
        value = _nvidia_smi_utilization(self.device.index or 0)
        self.source = "nvidia-smi"
        return value

    def _run(self) -> None:
        while not self.stop.is_set():
            if self.on.is_set():
                try:
                    self.samples.append(self._sample())
                except Exception as e:  # neither works: say why, measure nothing
                    self.error = f"{self.error + '; ' if self.error else ''}{type(e).__name__}: {e}"
                    return
            time.sleep(self.every)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="efficientnet_b0")
    ap.add_argument("--img-size", default="224")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--people", type=int, default=1200, help="people in the generated cache (x 7 photos; 80 %% train)")
    ap.add_argument("--epochs", type=int, default=3, help="epochs of one split; the first is the warm-up")
    ap.add_argument("--device", default=None)
    ap.add_argument("--amp", default="auto")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--work", type=Path, default=None, help="folder for the cache and run (default: a temporary one)")
    args = ap.parse_args()
    if args.epochs < 2:
        ap.error("--epochs must be >= 2: the first epoch is the warm-up")

    device = pick_device(args.device)
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        t0 = time.perf_counter()
        cache = make_cache(work / "cache", args.people)
        made_s = time.perf_counter() - t0
        size = parse_img_size(args.img_size, cache.path)
        cfg = TrainConfig(model=args.model, img_size=size, batch_size=args.batch_size, epochs=args.epochs, val_ratio=0.2,
                          patience=0, amp=args.amp, device=str(device), threads=args.threads, plots=False)
        sampler = GpuSampler(device) if device.type == "cuda" else None

        def on_epoch_end(fold, epoch, row):
            if sampler is not None and epoch == 1:
                torch.cuda.reset_peak_memory_stats(device)
                sampler.on.set()  # the timed epochs: 2 .. epochs

        if sampler is not None:
            sampler.thread.start()
        t0 = time.perf_counter()
        run = train(cache, work / "run", cfg, on_epoch_end=on_epoch_end)
        total_s = time.perf_counter() - t0
        if sampler is not None:
            sampler.stop.set()
        metrics = pd.read_csv(run / "metrics.csv")
        config = json.loads((run / "config.json").read_text())
        oof = pd.read_parquet(run / "oof.parquet")
        n_val = len(oof)
        n_train = config["n_photos"] - n_val
        timed = metrics[metrics["epoch"] > 1]
        train_ips = float(timed["images_per_s"].median())
        epoch_s = float(timed["epoch_s"].median())
        seen = steps_per_epoch(n_train, args.batch_size) * min(args.batch_size, n_train)  # full batches only
        val_s = epoch_s - seen / train_ips  # the epoch's validation pass (no flip), as the loop times it
        val_ips = n_val / val_s if val_s > 1e-3 else None  # too short to time: counted as free below

    ref_photos = REFERENCE["people"] * REFERENCE["photos_per_person"]
    ref_val = ref_photos // REFERENCE["folds"]
    ref_train = ref_photos - ref_val
    val_time = (lambda n: n / val_ips) if val_ips else (lambda n: 0.0)
    ref_epoch = ref_train / train_ips + val_time(ref_val)
    out = {
        "bench": "train_throughput", "device": str(device), "torch": torch.__version__,
        "gpu_name": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "model": args.model, "img_size": list(size), "batch_size": args.batch_size,
        "amp": str(amp_dtype(args.amp, device)).replace("torch.", "") if amp_dtype(args.amp, device) else "fp32",
        "channels_last": device.type == "cuda", "cache_on_gpu": device.type == "cuda",
        "threads": torch.get_num_threads() if args.threads is None else args.threads,
        "photos": {"train": int(n_train), "train_per_epoch": int(seen), "val": int(n_val)}, "epochs_timed": int(len(timed)),
        "train_images_per_s": round(train_ips, 1), "val_images_per_s": round(val_ips, 1) if val_ips else None,
        "step_ms": round(1000 * args.batch_size / train_ips, 2), "epoch_s": round(epoch_s, 2),
        "reference": {**REFERENCE, "train_photos": ref_train, "val_photos": ref_val,
                      "epoch_s": round(ref_epoch, 1),
                      "fold_s_15_epochs": round(15 * ref_epoch + val_time(2 * ref_val), 1),  # + the flip-TTA out-of-fold pass
                      "run_s_5_folds_15_epochs": round(REFERENCE["folds"] * (15 * ref_epoch + val_time(2 * ref_val)), 1)},
        "cache_s": round(made_s, 1), "bench_s": round(total_s, 1),
    }
    if sampler is not None:
        s = sampler.samples
        out["gpu"] = {"utilisation_mean_pct": round(float(np.mean(s)), 1) if s else None,
                      "utilisation_max_pct": int(max(s)) if s else None, "samples": len(s), "source": sampler.source,
                      "error": sampler.error,
                      "max_memory_gib": round(torch.cuda.max_memory_allocated(device) / 2**30, 2)}
    else:
        out["gpu"] = ("unmeasured: no CUDA device here; on a GPU machine run the GPU command in this script's docstring "
                      "(efficientnet_b0 at 224, AMP, GPU-resident cache)")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
