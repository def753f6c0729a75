"""Predict with a run: crop new photos with the run's own crop settings, average every fold's best checkpoint
and the mirrored photo, write ``submission.csv`` (``ImageID,ans`` in info.csv order) and ``probs.parquet``.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..curate.cache import Cache, load_cache
from ..curate.crop import DEFAULT_CACHE_ROOT, CropParams, competition_images, crop_dataset, dataset_name, layout_reason
from ..curate.errors import InputError
from ..curate.outputs import check_separate, claimed_output
from ..curate.progress import Progress, Steps
from .checkpoint import load_weights
from .config import PROBE_MODELS, TrainConfig
from .data import CacheImages
from .fit import data_norm
from .infer import infer_probs, probs_frame
from .model import build_model
from .runtime import amp_dtype, pick_device


def read_run(run: str | Path) -> tuple[dict, TrainConfig, list[Path]]:
    """(config.json as saved, the TrainConfig, the best checkpoint of every fold); InputError when it is not a run."""
    run = Path(run)
    cfg_path = run / "config.json"
    if not cfg_path.is_file():
        raise InputError(f"{run}: not a run folder (config.json missing); run `train` first")
    try:
        config = json.loads(cfg_path.read_text())
        cfg = TrainConfig.from_dict(config)
        size = config["img_size"]
        if len(size) != 2 or min(int(v) for v in size) < 8:
            raise ValueError(size)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError, KeyError, TypeError, ValueError) as e:
        raise InputError(f"{cfg_path}: not a readable run config ({type(e).__name__}); the run folder is damaged, "
                         f"train it again") from None
    return config, cfg, [run / f"fold_{f}" / "best.safetensors" for f in run_folds(run)]


def run_folds(run: Path) -> list[int]:
    """The folds a finished run trained, from its ``summary.json`` (written when ``train`` ends), each with its best
    checkpoint on disk; InputError for a run that did not finish (killed, or a resume killed) or lost a fold's weights.

    Only these folds are used: a ``fold_*`` folder left by an earlier run with more folds is never averaged in."""
    summary = run / "summary.json"
    resume = f"finish it with `train CACHE --out {run} --resume`"
    if not summary.is_file():
        if next(run.glob("fold_*/best.safetensors"), None) is None:
            raise InputError(f"{run}: no fold_*/best.safetensors; the run has not finished an epoch")
        raise InputError(f"{summary}: missing: the run did not finish (it was stopped before its last fold ended); {resume}")
    try:
        record = json.loads(summary.read_text())
        folds = [int(f) for f in record["folds"]]
        ran = {int(p["fold"]): int(p["epochs_run"]) for p in record.get("per_fold", []) if "epochs_run" in p}
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
        raise InputError(f"{summary}: not a readable run summary ({type(e).__name__}); the run folder is damaged, "
                         f"train it again") from None
    if not folds:
        raise InputError(f"{summary}: lists no folds; the run folder is damaged, train it again")
    try:  # a later `train` into the folder (a --resume) that was stopped: metrics.csv moved on, summary.json did not
        last = pd.read_csv(run / "metrics.csv", usecols=["fold", "epoch"]).groupby("fold")["epoch"].max().to_dict()
    except (OSError, ValueError, pd.errors.ParserError, pd.errors.EmptyDataError):
        last = {}
    moved = [f for f, n in ran.items() if f in last and int(last[f]) != n]
    if moved:
        raise InputError(f"{summary}: fold {moved[0]} has {int(last[moved[0]])} epoch(s) in metrics.csv, not the "
                         f"{ran[moved[0]]} the summary was written after: a later `train` did not finish; {resume}")
    missing = [run / f"fold_{f}" / "best.safetensors" for f in folds if not (run / f"fold_{f}" / "best.safetensors").is_file()]
    if missing:
        raise InputError(f"{missing[0]}: missing ({len(missing)} of the run's {len(folds)} folds' weights are); the run "
                         f"is incomplete: train it again, or restore the file")
    return folds


def run_norm(config: dict, model: torch.nn.Module):
    """The input normalisation the run trained with (``config.json``'s ``norm``; older runs: the model's data config)."""
    if config.get("norm"):
        return tuple(config["norm"]["mean"]), tuple(config["norm"]["std"])
    return data_norm(model)


def predict_cache(run: str | Path, cache: str | Path | Cache, device: str | None = None, batch_size: int = 128,
                  tta: bool = True, progress: Progress | None = None) -> pd.DataFrame:
    """Fold- and flip-averaged probabilities for every row of ``cache``: image_id, person, error, p_* columns, pred."""
    config, cfg, ckpts = read_run(run)
    if batch_size < 1:
        raise InputError(f"--batch-size {batch_size}: expected 1 or more")
    cache = cache if isinstance(cache, Cache) else load_cache(cache)
    if cfg.model in PROBE_MODELS:  # a probe run: the cache's embeddings (computed first when missing), then its heads
        from .probe import NO_EMBEDDING, predict_probe
        total, missing = predict_probe(config, ckpts, cache, device=device, progress=progress)
        return _probs_table(cache, total).assign(**{NO_EMBEDDING: missing})
    dev = pick_device(device)
    size = tuple(config["img_size"])
    images = CacheImages(cache.images, dev)
    positions = np.arange(len(images))
    dtype = amp_dtype(cfg.amp, dev)
    chl = dev.type == "cuda" and cfg.channels_last
    total: dict[str, np.ndarray] = {}
    steps = Steps(progress, f"predict {len(positions)} photos x {len(ckpts)} fold(s){' x 2 flips' if tta else ''}", len(ckpts))
    for ck in ckpts:
        model = build_model(cfg.model, cfg.task, drop_rate=0.0, age_loss=cfg.age_loss).to(dev)  # weights: the checkpoint
        if chl:
            model = model.to(memory_format=torch.channels_last)
        load_weights(model, ck)
        probs = infer_probs(model, images, positions, size, cfg.task, batch_size, flip_tta=tta, dtype=dtype, channels_last=chl,
                            norm=run_norm(config, model), age_loss=cfg.age_loss)
        for k, v in probs.items():
            total[k] = total.get(k, 0) + v / len(ckpts)
        steps.advance()
    return _probs_table(cache, total)


def _probs_table(cache: Cache, total: dict[str, np.ndarray]) -> pd.DataFrame:
    """image_id, person, error, p_* columns and pred for every row of ``cache`` from the averaged probabilities."""
    m = cache.manifest
    err = m["error"].fillna("").astype(str).to_numpy() if "error" in m else np.full(len(m), "")
    frame = pd.DataFrame({"image_id": m["image_id"].astype(str).to_numpy(), "person": m["person"].astype(str).to_numpy(),
                          "error": err})
    frame = pd.concat([frame, probs_frame(total)], axis=1)
    frame["pred"] = total["class"].argmax(1).astype(np.int64)
    return frame


def _cache_folder(data: Path, crop: dict, root: Path = DEFAULT_CACHE_ROOT) -> Path:
    """`crop`'s default folder for ``data`` when it holds a cache with the run's crop settings, else a folder named by them."""
    name = dataset_name(data)
    shaping = CropParams.from_dict(crop).shaping()
    default = root / name
    try:
        meta = json.loads((default / "meta.json").read_text())
        if meta.get("complete") and CropParams.from_dict(meta.get("params", {})).shaping() == shaping:
            return default
    except (OSError, json.JSONDecodeError, TypeError):
        pass
    digest = hashlib.sha256(json.dumps(shaping, sort_keys=True, default=str).encode()).hexdigest()[:8]
    return root / f"{name}-{digest}"


def crop_for_run(config: dict, data: str | Path, cache_root: str | Path, device: str | None = None,
                 progress: Progress | None = None) -> Cache:
    """``data`` cropped with the run's crop settings (``config.json``'s ``crop``) under ``cache_root``: a matching
    cache there is reused or resumed, else one named by the settings is written (what predict, explain, pseudo-label
    and ensemble read)."""
    data = Path(data)
    if not data.exists():
        raise InputError(f"{data}: no such file or folder")
    check_separate(cache_root, [data], option="--cache-root")
    params = CropParams.from_dict(config.get("crop") or {})
    folder = _cache_folder(data.resolve(), config.get("crop") or {}, Path(cache_root))
    return crop_dataset(data, folder, params, device=device, progress=progress).cache


def submission_frame(probs: pd.DataFrame, data: Path, layout: str) -> tuple[pd.DataFrame, int]:
    """``ImageID,ans`` in info.csv's order for the eval layout; for an eval layout's images/ without info.csv
    (``competition_images``) ``ImageID,ans`` with the bare file names in name order; ``image_id,ans`` otherwise.
    Returns (frame, rows filled for missing photos)."""
    if layout != "eval":
        images = competition_images(data) if layout == "folder" else None
        if images is not None:
            prefix = "" if Path(data).name == "images" else "images/"
            ids = probs["image_id"].astype(str)
            bare = ids.str.slice(len(prefix)) if prefix else ids
            if ids.str.startswith(prefix).all() and not bare.str.contains("/").any():
                return pd.DataFrame({"ImageID": bare, "ans": probs["pred"]}).sort_values("ImageID", kind="stable") \
                    .reset_index(drop=True), 0
        return pd.DataFrame({"image_id": probs["image_id"], "ans": probs["pred"]}), 0
    root = data.parent if data.name == "info.csv" else data.parent if data.name == "images" else data
    ids = pd.read_csv(root / "info.csv", dtype=str, keep_default_na=False, skipinitialspace=True)["ImageID"].str.strip()
    pred = dict(zip(probs["image_id"], probs["pred"]))
    fallback = int(probs["pred"].mode().iloc[0]) if len(probs) else 0
    ans = [pred.get(i, fallback) for i in ids]
    missing = int(sum(i not in pred for i in ids))
    return pd.DataFrame({"ImageID": ids, "ans": np.asarray(ans, dtype=np.int64)}), missing


def prediction_warnings(pred: np.ndarray, trained_classes: set[int], age_bins=None, collapse: float = 0.9) -> list[str]:
    """What a user must hear about the predictions: most photos in one class, or photos in classes never trained on."""
    from ..curate.labels import DEFAULT_AGE_BINS, NUM_CLASSES, class_names

    names = class_names(age_bins or DEFAULT_AGE_BINS)
    pred = np.asarray(pred, dtype=np.int64)
    out = []
    if len(pred) >= 10:
        counts = np.bincount(pred, minlength=NUM_CLASSES)
        top = int(counts.argmax())
        if counts[top] >= collapse * len(pred):
            out.append(f"the predictions collapse: {counts[top]} of {len(pred)} photos are class {top} ({names[top]}); "
                       f"the model has not learned to tell the classes apart (see the run's confusion.png)")
    unseen = sorted(set(pred.tolist()) - set(trained_classes))
    if unseen and trained_classes:
        what = ", ".join(f"{c} ({names[c]}): {int((pred == c).sum())}" for c in unseen)
        out.append(f"photos predicted in classes the run never trained on: {what}")
    return out


SUBMISSION = "submission.csv"


def default_submission(run: str | Path, data: str | Path) -> Path:
    """``RUN/predict-<data name>/submission.csv``: where predict writes when ``out`` is not given."""
    return Path(run) / f"predict-{dataset_name(data)}" / SUBMISSION


def predict_folder(out: str | Path) -> Path:
    """The predict folder ``--out`` names: the folder itself, or the folder of ``FOLDER/submission.csv`` (the earlier
    spelling, unambiguous: the file's own name in its folder); any other file-like name is refused by
    ``outputs.check_folder_name``."""
    out = Path(out)
    return out.parent if out.name == SUBMISSION and not out.is_dir() else out


def predict(run: str | Path, data: str | Path, out: str | Path | None = None, device: str | None = None,
            cache_root: str | Path | None = None, batch_size: int = 128, tta: bool = True,
            progress: Progress | None = None) -> Path:
    """Crop ``data`` with the run's crop settings (reusing a matching cache), ensemble, write the submission; returns its path.

    ``out``: the predict folder that holds ``submission.csv``, ``probs.parquet`` and ``predict.json`` (default
    ``RUN/predict-<data name>``; ``FOLDER/submission.csv`` names FOLDER), and the crop cache under
    ``cache_root`` (default: ``out/cache``).
    Photos listed in info.csv that cannot be found get the most frequent predicted class (and are counted in the summary).
    """
    config, _, ckpts = read_run(run)
    data = Path(data)
    if not data.exists():
        raise InputError(f"{data}: no such file or folder")
    if batch_size < 1:
        raise InputError(f"--batch-size {batch_size}: expected 1 or more")
    folder = predict_folder(out) if out else default_submission(run, data).parent
    out = folder / SUBMISSION
    cache_root = Path(cache_root) if cache_root is not None else folder / "cache"
    check_separate(cache_root, [data], option="--cache-root")
    with claimed_output(folder, "predict", [data], recognise=lambda p: (p / "predict.json").is_file()):
        cache = crop_for_run(config, data, cache_root, device=device, progress=progress)
        probs = predict_cache(run, cache, device=device, batch_size=batch_size, tta=tta, progress=progress)
        layout = str((cache.meta or {}).get("layout", ""))
        sub, missing = submission_frame(probs, data, layout)
        sub.to_csv(out, index=False)
        probs.assign(cache=str(cache.path)).to_parquet(out.parent / "probs.parquet", index=False)
        trained = set()
        if (Path(run) / "oof.parquet").is_file():
            trained = set(pd.read_parquet(Path(run) / "oof.parquet", columns=["label"])["label"].astype(int).tolist())
        warnings = prediction_warnings(probs.loc[probs["error"] == "", "pred"].to_numpy(), trained, config.get("age_bins"))
        if layout == "folder" and "ImageID" in sub:
            warnings.insert(0, f"{data}: no info.csv beside images/, so the photos were read as a plain folder; "
                               f"submission.csv keeps the competition's ImageID,ans with bare file names, in name order "
                               f"(put info.csv back for its order)")
        twice = sub.iloc[:, 0].duplicated()
        if twice.any():
            warnings.append(f"info.csv lists {int(twice.sum())} photo(s) more than once (e.g. {sub.iloc[:, 0][twice].iloc[0]}); "
                            f"each was predicted once and its rows share the answer")
        (out.parent / "predict.json").write_text(json.dumps({
            "run": str(Path(run).resolve()), "data": str(data.resolve()), "cache": str(cache.path), "rows": int(len(sub)),
            "layout": layout, "layout_reason": layout_reason(data), "missing_photos": missing,
            "crop_errors": int((probs["error"] != "").sum()), "folds": len(ckpts), "tta": tta,
            "warnings": warnings},
            indent=2))
    return out
