"""``pseudo-label``: a cache of unlabelled photos that a run's fold ensemble predicts confidently, labelled with
those predictions, for ``train --extra`` (the photos join training only, never a validation fold or oof.parquet).

The photos are cropped with the run's own crop settings (``predict.crop_for_run``) and predicted by every fold's
best checkpoint, with the mirrored photo averaged in (``predict_cache``). A photo is kept when its ensemble's
18-class probability, the product of the three heads' for a multi-task run, is at least ``min_confidence``.
Its labels are the predicted class and its mask, gender and age group; the age in years is unknown (NA). Each
photo is its own person (``person`` = its image id): nothing says which eval photos show one person, so none is
grouped with another. ``meta.json`` records where the labels came from (``pseudo_label``: the run, its folds, the
data, the threshold, how many photos were kept per class), and the manifest's ``confidence`` column says how sure
the ensemble was of each.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ...curate.cache import Cache, save_cache
from ...curate.crop import DEFAULT_CACHE_ROOT, dataset_name
from ...curate.errors import InputError
from ...curate.labels import DEFAULT_AGE_BINS, HEAD_FIELDS, HEADS, NUM_CLASSES, class_names, decode
from ...curate.outputs import claimed_output
from ...curate.progress import QUIET, Progress
from ..predict import crop_for_run, predict_cache, read_run
from .ensemble import CLASS_COLUMNS


@dataclass
class PseudoResult:
    """The written cache and what went into it."""

    cache: Cache
    source: Path                 # the cache of the cropped photos the labels were predicted on
    photos: int                  # photos with a crop
    kept: int
    min_confidence: float
    per_class: dict[int, int] = field(default_factory=dict)
    missing_classes: list[int] = field(default_factory=list)


def default_pseudo_dir(data: str | Path) -> Path:
    """``artifacts/cache/<data name>-pseudo``."""
    return DEFAULT_CACHE_ROOT / f"{dataset_name(data)}-pseudo"


def pseudo_manifest(source: pd.DataFrame, pred: np.ndarray, confidence: np.ndarray) -> pd.DataFrame:
    """The kept rows of ``source`` with the predicted labels; each photo its own person, the age in years NA."""
    m = source.reset_index(drop=True).copy()
    mask, gender, age = decode(np.asarray(pred, dtype=np.int64))
    for head, values in zip(HEADS, (mask, gender, age)):
        m[HEAD_FIELDS[head]] = pd.array(np.asarray(values, dtype=np.int64), dtype="Int64")
    m["label"] = pd.array(np.asarray(pred, dtype=np.int64), dtype="Int64")
    m["age"] = pd.array([pd.NA] * len(m), dtype="Int64")
    m["person"] = m["image_id"].astype(str)
    m["confidence"] = np.asarray(confidence, dtype=np.float32)
    m["label_source"] = "pseudo"
    return m


def pseudo_label(run: str | Path, data: str | Path, out: str | Path, min_confidence: float = 0.9,
                 cache_root: str | Path | None = None, device: str | None = None, batch_size: int = 128,
                 tta: bool = True, progress: Progress | None = None) -> PseudoResult:
    """Crop ``data`` with the run's settings, predict it, and write the confident photos as a cache in ``out``."""
    progress = progress or QUIET
    config, _, ckpts = read_run(run)
    if not 0 < min_confidence <= 1:
        raise InputError(f"--min-confidence {min_confidence}: expected a probability above 0 and at most 1, e.g. 0.9")
    data, out = Path(data), Path(out)
    if not data.exists():
        raise InputError(f"{data}: no such file or folder")
    cache_root = Path(cache_root) if cache_root is not None else DEFAULT_CACHE_ROOT
    with claimed_output(out, "cache", [data, run, config.get("cache")], what="cache",
                        recognise=lambda p: (p / "meta.json").is_file() and "pseudo_label" in (p / "meta.json").read_text()):
        source = crop_for_run(config, data, cache_root, device=device, progress=progress)
        if Path(source.path).resolve() == out.resolve():
            raise InputError(f"{out}: --out is where the photos' crops are cached; choose another --out or --cache-root")
        probs = predict_cache(run, source, device=device, batch_size=batch_size, tta=tta, progress=progress)
        conf = probs[CLASS_COLUMNS].to_numpy(np.float64).max(axis=1)
        usable = (probs["error"] == "").to_numpy()
        keep = np.flatnonzero(usable & (conf >= min_confidence))
        if not len(keep):
            best = float(conf[usable].max()) if usable.any() else float("nan")
            raise InputError(f"--min-confidence {min_confidence}: no photo of {data} is predicted that surely (the most "
                             f"confident is {best:.3f}); lower it or train a better run")
        pred = probs["pred"].to_numpy(np.int64)[keep]
        manifest = pseudo_manifest(source.manifest.iloc[keep], pred, conf[keep])
        per_class = {int(c): int(n) for c, n in zip(*np.unique(pred, return_counts=True))}
        age_bins = list(config.get("age_bins") or DEFAULT_AGE_BINS)
        names = class_names(age_bins)
        record = {"run": str(Path(run).resolve()), "model": config.get("model"), "folds": len(ckpts), "tta": tta,
                  "data": str(data.resolve()), "source_cache": str(Path(source.path).resolve()),
                  "min_confidence": min_confidence, "confidence": "the fold ensemble's 18-class probability",
                  "photos": int(usable.sum()), "kept": int(len(keep)),
                  "per_class": {names[c]: n for c, n in per_class.items()},
                  "labels": "predicted mask, gender, age_group and label; age in years unknown (NA); "
                            "each photo is its own person; train --extra only, never validation"}
        meta = {"params": (source.meta or {}).get("params", {}), "age_bins": age_bins, "layout": "pseudo",
                "source": "pseudo-label", "pseudo_label": record}
        cache = save_cache(out, np.asarray(source.images[keep]), manifest, meta)
    missing = [c for c in range(NUM_CLASSES) if c not in per_class]
    return PseudoResult(cache, Path(source.path), int(usable.sum()), int(len(keep)), min_confidence, per_class, missing)
