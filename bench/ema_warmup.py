"""The default ``train`` with one EMA warm-up or another, side by side: the held-out mask macro F1 of each (issue 24).

The trainer's EMA is timm's ``ModelEmaV3`` with decay 1 - (1 + step / gamma) ** -power (``fold.EMA_WARMUP_GAMMA`` /
``EMA_WARMUP_POWER``); this bench sets the pair for one run, or turns the EMA off (``--ema 0``), and trains the
default config otherwise (8 epochs here, as in the regression report). Variants:
``old``: gamma 9, power 1 (the hand-written EMA before timm's, decay (1 + n) / (10 + n)); ``timm``: gamma 1, power
0.75 (timm's short-run advice, what the trainer used after the move to timm); ``off``: no EMA (the raw weights).

Run the variants as separate processes at the same time (same machine load), e.g.:
  python bench/ema_warmup.py CACHE --variant old  --work artifacts/bench/ema &
  python bench/ema_warmup.py CACHE --variant timm --work artifacts/bench/ema &
Prints one JSON line: the held-out (out-of-fold over the folds run) macro F1 of the mask and of the 18 classes, and
the validated mask F1 after every epoch.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import pandas as pd

VARIANTS = {"old": (9.0, 1.0), "timm": (1.0, 0.75), "off": None}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("cache", type=Path, help="a crop cache (e.g. synth --people 200 --seed 1, then crop)")
    ap.add_argument("--variant", choices=sorted(VARIANTS), required=True, help="the EMA warm-up to train with")
    ap.add_argument("--work", type=Path, default=Path("artifacts/bench/ema"), help="run folders go under WORK/VARIANT-sSEED")
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--fold", default="0", help="one fold id or 'all'")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()

    from facecurate.train import fold as fold_module
    from facecurate.train import train
    from facecurate.train.config import TrainConfig

    warmup = VARIANTS[a.variant]
    if warmup is not None:
        fold_module.EMA_WARMUP_GAMMA, fold_module.EMA_WARMUP_POWER = warmup
    cfg = TrainConfig(epochs=a.epochs, folds=a.folds, fold=a.fold, seed=a.seed, threads=a.threads, plots=False,
                      **({"ema": 0.0} if warmup is None else {}))
    out = a.work / f"{a.variant}-s{a.seed}"
    t0 = time.perf_counter()
    train(a.cache, out, cfg=cfg)
    train_s = time.perf_counter() - t0
    summary = json.loads((out / "summary.json").read_text())
    metrics = pd.read_csv(out / "metrics.csv")
    print(json.dumps({
        "bench": "ema_warmup", "variant": a.variant, "warmup_gamma_power": warmup, "seed": a.seed,
        "folds": a.folds, "fold": a.fold, "epochs": a.epochs, "n_held_out": summary["n_oof"],
        "held_out_f1_mask": round(summary["oof_f1_mask"], 4), "held_out_f1": round(summary["oof_f1"], 4),
        "held_out_acc_mask": round(summary["oof_acc_mask"], 4),
        "best_epochs": [p.get("best_epoch") for p in summary["per_fold"]],
        "steps": int(metrics["steps"].max()),
        "val_f1_mask_by_epoch": [round(v, 3) for v in metrics["val_f1_mask"]],
        "cache": str(a.cache), "train_s": round(train_s, 1)}))


if __name__ == "__main__":
    main()
