"""``explain``: Grad-CAM pictures of what a run looks at, per head and per class, right and wrong side by side.

Which photos and which model:

- **The run's own cache** (no second argument, or that cache): every photo is explained by the fold model that
  did not train on it, with its out-of-fold prediction (``oof.parquet``) and the labels the run trained on.
- **Another cache, or DATA** (cropped with the run's settings, ``predict.crop_for_run``): the prediction is the
  fold ensemble's (``predict_cache``) and the map is the mean of every fold's map. With labels (a train-layout
  data set) the grids show right and wrong; without them, the most and the least confident predictions.

For each head (mask, gender, age) and each of its classes (the true class, or the predicted one without labels),
the ``per_cell`` most confident right predictions and the ``per_cell`` most confidently wrong ones are shown,
one photo per person first. Every map is of the class the model predicted: what made it say what it said.
Rendering (the PNG grids and the HTML page) is in ``explain_page``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ...curate.cache import Cache, load_cache
from ...curate.errors import InputError
from ...curate.labels import DEFAULT_AGE_BINS, HEAD_CLASSES, HEAD_FIELDS, HEADS
from ...curate.outputs import claimed_output
from ...curate.progress import QUIET, Progress, Steps
from ..checkpoint import load_weights
from ..model import build_model
from ..predict import crop_for_run, predict_cache, read_run, run_norm
from ..runtime import pick_device
from .cam import HeadTarget, grad_cams, pick_layer
from .ensemble import read_oof_table
from .explain_page import write_grid, write_page


@dataclass
class ExplainResult:
    """The pictures written and what they show."""

    out: Path
    html: Path
    grids: dict[str, Path]
    shown: int
    labelled: bool
    mode: str                 # "out-of-fold" or "fold ensemble"
    layer: str
    picks: pd.DataFrame = field(default_factory=pd.DataFrame)


def default_explain_dir(run: str | Path, source: str | Path | None) -> Path:
    """``RUN/explain`` for the run's own cache, ``RUN/explain-<name>`` for another cache or data set."""
    return Path(run) / ("explain" if source is None else f"explain-{Path(source).resolve().name}")


def _head_frame(probs: pd.DataFrame, labels: pd.DataFrame | None) -> pd.DataFrame:
    """Per photo and head: true (or -1), predicted, the predicted class's probability, the true class's."""
    out = pd.DataFrame(index=probs.index)
    for h in HEADS:
        p = probs[[f"p_{h}_{j}" for j in range(HEAD_CLASSES[h])]].to_numpy(np.float64)
        out[f"pred_{h}"] = p.argmax(1)
        out[f"p_{h}"] = p.max(1)
        out[f"true_{h}"] = -1 if labels is None else pd.to_numeric(labels[HEAD_FIELDS[h]], errors="coerce").fillna(-1).astype(int).to_numpy()
    return out


def _distinct_people(rows: pd.DataFrame, n: int) -> pd.DataFrame:
    """The first ``n`` rows in order, one per person first, then the rest in order."""
    first = ~rows["person"].duplicated()
    return pd.concat([rows[first], rows[~first]]).head(n)


def choose(frame: pd.DataFrame, per_cell: int, labelled: bool) -> pd.DataFrame:
    """The photos to show: head, class (row of the grid), side (right/wrong or confident/unsure), rank."""
    picks = []
    for h in HEADS:
        for k in range(HEAD_CLASSES[h]):
            if labelled:
                mine = frame[frame[f"true_{h}"] == k]
                sides = {"right": mine[mine[f"pred_{h}"] == k].sort_values(f"p_{h}", ascending=False, kind="stable"),
                         "wrong": mine[mine[f"pred_{h}"] != k].sort_values(f"p_{h}", ascending=False, kind="stable")}
            else:
                mine = frame[frame[f"pred_{h}"] == k]
                sides = {"confident": mine.sort_values(f"p_{h}", ascending=False, kind="stable"),
                         "unsure": mine.sort_values(f"p_{h}", ascending=True, kind="stable")}
            shown: set = set()
            for side, rows in sides.items():
                for rank, (i, r) in enumerate(_distinct_people(rows[~rows.index.isin(shown)], per_cell).iterrows()):
                    shown.add(i)
                    picks.append({"row": i, "head": h, "cls": k, "side": side, "rank": rank, "image_id": r["image_id"],
                                  "person": r["person"], "cache_row": int(r["cache_row"]), "fold": int(r["fold"]),
                                  "true": int(r[f"true_{h}"]), "pred": int(r[f"pred_{h}"]), "p": float(r[f"p_{h}"])})
    return pd.DataFrame(picks)


def _source(run: Path, config: dict, source, cache_root, device, progress) -> tuple[Cache, bool]:
    """(the cache to explain, whether it is the run's own training cache)."""
    own = Path(config.get("cache", "")).resolve()
    if source is None:
        if not own.is_dir():
            raise InputError(f"{run}: its training cache {own} is gone; give a CACHE or DATA to explain")
        return load_cache(own), True
    source = Path(source)
    if (source / "images.npy").is_file():
        return load_cache(source), source.resolve() == own
    return crop_for_run(config, source, cache_root, device=device, progress=progress), False


def _frame(run: Path, cache: Cache, own: bool, device, progress) -> tuple[pd.DataFrame, bool]:
    """Per photo: image_id, person, cache_row, fold (-1 = every fold) and the head columns; whether labelled."""
    m = cache.manifest
    position = pd.Series(np.arange(len(m)), index=m["image_id"].astype(str))
    if own:
        if not (run / "oof.parquet").is_file():
            raise InputError(f"{run}: no oof.parquet (no fold has finished); train the run first")
        oof = read_oof_table(run / "oof.parquet")  # a cut, flipped or all-NaN table: one line naming it
        oof = oof[oof["image_id"].astype(str).isin(position.index)].reset_index(drop=True)
        frame = pd.concat([oof[["image_id", "person", "fold"]], _head_frame(oof, oof)], axis=1)
        frame["cache_row"] = position.loc[frame["image_id"].astype(str)].to_numpy()
        return frame, True
    probs = predict_cache(run, cache, device=device, progress=progress)
    ok = (probs["error"] == "").to_numpy()
    labelled = all(HEAD_FIELDS[h] in m for h in HEADS) and any(
        pd.to_numeric(m[HEAD_FIELDS[h]], errors="coerce").notna().any() for h in HEADS)
    frame = pd.concat([probs[["image_id", "person"]], _head_frame(probs, m if labelled else None)], axis=1)
    frame["cache_row"], frame["fold"] = np.arange(len(m)), -1
    return frame[ok].reset_index(drop=True), labelled


def _maps(run: Path, config: dict, cfg, ckpts: list[Path], cache: Cache, picks: pd.DataFrame, layer: str, device,
          batch_size: int, progress) -> tuple[np.ndarray, str]:
    """One Grad-CAM map per pick: from its own fold's model (out of fold), else the mean over every fold's."""
    dev = pick_device(device)
    size = tuple(config["img_size"])
    maps = np.zeros((len(picks), *size), np.float32)
    count = np.zeros(len(picks))
    by_fold = {int(p.parent.name.split("_")[1]): p for p in ckpts}
    steps = Steps(progress, f"explain: Grad-CAM of {len(picks)} photos", len(by_fold))
    name = layer
    for f, ck in by_fold.items():
        use = (picks["fold"].to_numpy() == f) | (picks["fold"].to_numpy() == -1)
        if use.any():
            model = load_weights(build_model(cfg.model, cfg.task, age_loss=cfg.age_loss).to(dev), ck)
            name, module = pick_layer(model, layer, size)
            sel = picks[use]
            images = torch.from_numpy(np.asarray(cache.images[sel["cache_row"].to_numpy()]))
            targets = [HeadTarget(h, k, cfg.task, cfg.age_loss) for h, k in zip(sel["head"], sel["pred"])]
            maps[use] += grad_cams(model, module, images, targets, size, run_norm(config, model), batch_size)
            count[use] += 1
        steps.advance()
    if (count == 0).any():
        raise InputError(f"{run}: no best.safetensors for fold(s) {sorted(set(picks.loc[count == 0, 'fold']))}")
    return maps / count[:, None, None], name


def explain(run: str | Path, source: str | Path | None = None, out: str | Path | None = None, per_cell: int = 4,
            layer: str = "auto", device: str | None = None, batch_size: int = 32, cache_root: str | Path | None = None,
            progress: Progress | None = None) -> ExplainResult:
    """Write one Grad-CAM grid per head (``<head>.png``), ``index.html`` and ``explained.csv`` into ``out``."""
    progress = progress or QUIET
    run = Path(run)
    config, cfg, ckpts = read_run(run)
    if not 1 <= per_cell <= 20:
        raise InputError(f"--per-cell {per_cell}: expected 1..20 photos per side of a row")
    out = Path(out) if out else default_explain_dir(run, source)
    photos = [source] if source is not None and not (Path(source) / "images.npy").is_file() else []  # not a cache: read-only
    with claimed_output(out, "explain", photos, recognise=lambda p: (p / "index.html").is_file()):
        cache, own = _source(run, config, source, Path(cache_root) if cache_root else out / "cache", device, progress)
        frame, labelled = _frame(run, cache, own, device, progress)
        if not len(frame):
            raise InputError(f"{cache.path}: no photo with a crop to explain")
        picks = choose(frame, per_cell, labelled)
        maps, layer_name = _maps(run, config, cfg, ckpts, cache, picks, layer, device, batch_size, progress)
        mode = "out-of-fold" if own else "fold ensemble"
        bins = config.get("age_bins") or DEFAULT_AGE_BINS
        grids = {}
        for h in HEADS:
            sel = (picks["head"] == h).to_numpy()
            grids[h] = write_grid(out / f"{h}.png", h, picks[sel], maps[sel], cache.images, frame, per_cell, labelled,
                                  bins, f"{run.name}, {mode}, layer {layer_name}")
        picks.drop(columns=["row"]).to_csv(out / "explained.csv", index=False, float_format="%.4f")
        html = write_page(out / "index.html", run, cache.path, grids, picks, frame, labelled, mode, layer_name, bins)
    return ExplainResult(out, html, grids, len(picks), labelled, mode, layer_name, picks)
