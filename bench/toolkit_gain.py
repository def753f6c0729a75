#!/usr/bin/env python3
"""Toolkit gains on a synthesised UTKFace set: tuned vs default out-of-fold macro F1, and stacked vs mean vs vote
across three runs that share their folds. Prints one JSON line.

../shared/data/utkface -> `synth` (--people, balanced age x gender) -> `crop` (defaults) -> three 5-fold runs with
the same folds (--seed): the trainer's defaults, the best of a `tune` (searched on --tune-folds folds, its epochs
capped at --epochs so it never trains longer than the default) retrained on the same 5 folds, and a third model
(--third-model) -> `ensemble --oof` on the three (each run alone, mean, vote, nested stack-lr, nested stack-gb).

The measurement of BENCHMARKS.md (hours on the 2-core CPU; about 25 min on one GPU):
    .venv/bin/python bench/toolkit_gain.py --people 300 --trials 20 --epochs 10 --folds 5 --tune-folds 3 --threads 1
A tiny check that every step runs (under 3 minutes on the 2-core CPU):
    .venv/bin/python bench/toolkit_gain.py --people 24 --trials 2 --epochs 2 --folds 3 --tune-folds 2 --img-size 64 \
        --tune-img-sizes 48,64 --work /tmp/fc_toolkit_tiny --threads 1
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from facecurate.curate.crop import CropParams, crop_dataset  # noqa: E402
from facecurate.curate.synth import synthesize  # noqa: E402
from facecurate.train import TrainConfig, train  # noqa: E402
from facecurate.train.toolkit.ensemble import ensemble  # noqa: E402
from facecurate.train.toolkit.tune import tune  # noqa: E402
from facecurate.train.toolkit.tune_space import img_size_for, parse_space, trial_config  # noqa: E402


def summary(run: Path) -> dict:
    s = json.loads((run / "summary.json").read_text())
    return {k: round(s[k], 4) for k in ("oof_f1", "oof_f1_mask", "oof_f1_gender", "oof_f1_age")}


def timed(f, *args, **kwargs):
    t0 = time.perf_counter()
    out = f(*args, **kwargs)
    return out, round(time.perf_counter() - t0, 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--faces", type=Path, default=ROOT.parent / "shared" / "data" / "utkface")
    ap.add_argument("--work", type=Path, default=Path("/tmp/facecurate_toolkit"))
    ap.add_argument("--people", type=int, default=300)
    ap.add_argument("--epochs", type=int, default=10, help="epochs of the default run, and the tune's largest budget")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--img-size", type=int, default=128, help="input height of the default run (width: the cache's aspect)")
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--tune-folds", type=int, default=3)
    ap.add_argument("--tune-models", default="mobilenetv3_small_100,resnet10t")
    ap.add_argument("--tune-img-sizes", default="96,128")
    ap.add_argument("--third-model", default="resnet10t")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default=None)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    a.work.mkdir(parents=True, exist_ok=True)
    t: dict[str, float] = {}
    synth_dir = a.work / "synth"
    if not (synth_dir / "train.csv").is_file():
        _, t["synth"] = timed(synthesize, a.faces, synth_dir, people=a.people, seed=0, balance=("age", "gender"))
    result, t["crop"] = timed(crop_dataset, synth_dir, a.work / "cache", CropParams(), device=a.device)
    cache = result.cache
    shape = tuple(cache.images.shape[1:3])
    common = dict(folds=a.folds, seed=a.seed, device=a.device, threads=a.threads, plots=False)
    runs = a.work / "runs"

    default_cfg = TrainConfig(epochs=a.epochs, img_size=img_size_for(a.img_size, shape), **common)
    _, t["default"] = timed(train, cache, runs / "default", default_cfg)

    low = max(1, a.epochs // 2)
    space = parse_space("3e-4,1e-2", "1e-3,0.1", "ce,smooth,focal,f1", "none,class,age", a.tune_img_sizes,
                        a.tune_models, f"{low},{a.epochs}")
    tuned, t["tune"] = timed(tune, cache, a.work / "tune", space, trials=a.trials, folds=a.tune_folds, seed=a.seed,
                             device=a.device, threads=a.threads)
    best = json.loads((a.work / "tune" / "tune.json").read_text())["best"]
    values = {"model": space.models[0], "img_height": space.img_sizes[0], "epochs": space.epochs[0],
              "lr": space.lr[0], "weight_decay": space.weight_decay[0], "loss": space.losses[0],
              "sampler": space.samplers[0], **best["params"]}
    if "img_size" in best["params"]:
        values["img_height"] = values.pop("img_size")
    tuned_cfg = trial_config(values, shape, folds=a.folds, batch_size=32, seed=a.seed, device=a.device, threads=a.threads)
    _, t["tuned"] = timed(train, cache, runs / "tuned", tuned_cfg)

    third_cfg = TrainConfig(model=a.third_model, epochs=a.epochs, img_size=img_size_for(a.img_size, shape), **common)
    _, t["third"] = timed(train, cache, runs / "third", third_cfg)

    ens, t["ensemble"] = timed(ensemble, [runs / "default", runs / "tuned", runs / "third"], a.work / "ensemble", oof=True,
                               seed=a.seed)
    table = {r["method"]: {k: round(float(r[k]), 4) for k in ("f1", "f1_mask", "f1_gender", "f1_age")}
             for r in ens.table.to_dict(orient="records")}
    res = {"bench": "toolkit_gain", "people": int(cache.manifest["person"].nunique()), "photos": int(len(cache.usable())),
           "folds": a.folds, "epochs": a.epochs, "seed": a.seed,
           "default": {"model": default_cfg.model, "img_size": list(default_cfg.img_size), **summary(runs / "default")},
           "tune": {"trials": a.trials, "folds": a.tune_folds, "space": {"models": a.tune_models, "img_sizes": a.tune_img_sizes,
                                                                         "epochs": f"{low},{a.epochs}"},
                    "counts": tuned.counts, "best_trial": tuned.best_trial,
                    "best_oof_f1_tune_folds": round(tuned.best_value, 4), "best_params": best["params"]},
           "tuned": {"model": tuned_cfg.model, "img_size": list(tuned_cfg.img_size), **summary(runs / "tuned")},
           "third": {"model": a.third_model, **summary(runs / "third")},
           "ensemble_oof": table, "stack_note": ens.folds_note, "seconds": t, "cpus": os.cpu_count(),
           "torch_threads": a.threads, "load_avg_1m": round(os.getloadavg()[0], 2), "work": str(a.work)}
    print(json.dumps(res))


if __name__ == "__main__":
    main()
