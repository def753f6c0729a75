"""A probe run (``train --model probe-linear|probe-mlp``): per-head classifiers on the cache's face embeddings, on the
same person-grouped folds as a CNN run, written as an ordinary run folder (config.json, oof.parquet, per_class.csv,
metrics.csv, summary.json, ``fold_<i>/best.safetensors``) so predict, ensemble and relabel-report take it like any run.

The heads are scikit-learn's (LogisticRegression on standardised embeddings; MLPClassifier, one small hidden layer);
their weights are saved as plain tensors (scaler, layers, classes, the training fold's class frequencies) with the
xxh3 the other run files carry, and applied here with numpy (``head_probs``), so no pickle is ever loaded. Photos
without an embedding get the prior: the training fold's class frequencies per head.

Each head reads its own columns (``curate.embed.head_features``: identity for the mask, the face attributes for
gender, both for age, when the cache has attributes); config.json's ``probe.features`` records that layout and
predict builds new photos' features by it (runs without the record read identity for every head).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..curate.cache import Cache, load_cache
from ..curate.embed.head_features import IDENTITY_ONLY, head_features, head_layout
from ..curate.errors import InputError
from ..curate.labels import joint_probs
from ..curate.locks import folder_lock
from ..curate.outputs import claimed_output
from ..curate.progress import QUIET, Progress, Steps
from .config import PROBE_MODELS, TrainConfig, folds_to_run
from .data import LABEL_COLUMN, OUTPUT_CLASSES, label_array
from .groups import groups_record
from .metrics import head_metrics
from .splits import split_indices

HEADS = ("mask", "gender", "age")
NO_EMBEDDING = "no_embedding"  # predict's column: True where the photo had no embedding and got the prior
MLP_HIDDEN = 64                # units of probe-mlp's one hidden layer


def needs_embeddings(cache: Cache) -> np.ndarray:
    """The cache's embeddings, or the one line that says how to get them."""
    emb = cache.embeddings
    if emb is None:
        raise InputError(f"{cache.path}: the cache holds no face embeddings; run `facecurate embed {cache.path}` first "
                         f"(or crop with --embed)")
    return emb


def fit_head(x: np.ndarray, y: np.ndarray, n_classes: int, kind: str = "linear", seed: int = 0) -> dict[str, np.ndarray]:
    """One head fitted on embeddings ``x`` (rows with a finite vector) and labels ``y`` (0..n_classes-1) -> its tensors:
    ``mean``/``scale`` (StandardScaler), ``w<i>``/``b<i>`` per layer, ``classes``, ``prior`` (class frequencies)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier
    from sklearn.preprocessing import StandardScaler

    prior = np.bincount(y, minlength=n_classes).astype(np.float64)
    prior = prior / prior.sum() if prior.sum() else np.full(n_classes, 1.0 / n_classes)
    out = {"prior": prior.astype(np.float32), "classes": np.unique(y).astype(np.int64)}
    if len(out["classes"]) < 2:  # one class in the training fold: nothing to fit, the prior says it
        return out
    scaler = StandardScaler().fit(x)
    xs = scaler.transform(x)
    if kind == "linear":
        clf = LogisticRegression(C=1.0, max_iter=2000, class_weight="balanced").fit(xs, y)
        layers = [(clf.coef_.T, clf.intercept_)]
    else:
        clf = MLPClassifier(hidden_layer_sizes=(MLP_HIDDEN,), alpha=1e-2, max_iter=500, early_stopping=False,
                            random_state=seed).fit(xs, y)
        layers = list(zip(clf.coefs_, clf.intercepts_))
    out.update(mean=scaler.mean_.astype(np.float32), scale=scaler.scale_.astype(np.float32))
    for i, (w, b) in enumerate(layers):
        out[f"w{i}"], out[f"b{i}"] = np.asarray(w, np.float32), np.asarray(b, np.float32)
    return out


def head_probs(t: dict[str, np.ndarray], x: np.ndarray, n_classes: int) -> np.ndarray:
    """n x n_classes probabilities of a head (``fit_head``'s tensors) for embeddings ``x``; rows that are not finite
    get the prior. Hidden layers are ReLU; one output unit is a logistic, several a softmax (as scikit-learn's)."""
    prior = np.asarray(t["prior"], np.float64)
    out = np.tile(prior, (len(x), 1))
    ok = np.isfinite(x).all(1) if len(x) else np.zeros(0, bool)
    if "w0" not in t or not ok.any():
        return out
    h = (np.asarray(x[ok], np.float64) - t["mean"]) / t["scale"]
    n_layers = sum(k.startswith("w") for k in t)
    for i in range(n_layers):
        h = h @ np.asarray(t[f"w{i}"], np.float64) + np.asarray(t[f"b{i}"], np.float64)
        if i < n_layers - 1:
            h = np.maximum(h, 0.0)
    if h.shape[1] == 1:
        p1 = 1.0 / (1.0 + np.exp(-h[:, 0]))
        p = np.stack([1.0 - p1, p1], axis=1)
    else:
        h = h - h.max(1, keepdims=True)
        p = np.exp(h)
        p /= p.sum(1, keepdims=True)
    full = np.zeros((len(p), n_classes))
    full[:, np.asarray(t["classes"], np.int64)] = p
    out[ok] = full
    return out


def probs_of(fold: dict[str, dict[str, np.ndarray]], x: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per-head and 18-class probabilities (the heads taken as independent, as a CNN's multi task) of one fold, from
    each head's features ``x[head]``."""
    probs = {h: head_probs(fold[h], x[h], OUTPUT_CLASSES[h]).astype(np.float32) for h in HEADS}
    probs["class"] = joint_probs(probs["mask"], probs["gender"], probs["age"]).astype(np.float32)
    return probs


def save_fold(fold: dict[str, dict[str, np.ndarray]], path: Path) -> None:
    """A fold's heads as safetensors (``<head>.<tensor>``) with the content xxh3 in its metadata, written atomically."""
    import torch
    from safetensors.torch import save

    from .checkpoint import HASH_KEY, content_hash, write_atomic

    state = {f"{h}.{k}": torch.from_numpy(np.ascontiguousarray(v)) for h, t in fold.items() for k, v in t.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, save(state, metadata={"format": "probe", HASH_KEY: content_hash(dict(sorted(state.items())))}))


def load_fold(path: Path) -> dict[str, dict[str, np.ndarray]]:
    """``save_fold``'s file back (checksum checked by ``read_weights``): {head: {tensor: array}}."""
    from .checkpoint import read_weights

    fold: dict[str, dict[str, np.ndarray]] = {}
    for key, v in read_weights(path).items():
        head, _, name = key.partition(".")
        fold.setdefault(head, {})[name] = v.numpy()
    if set(fold) != set(HEADS):
        raise InputError(f"{path}: not a probe run's weights (heads {', '.join(sorted(fold))}); the run folder is damaged "
                         f"or config.json names another model: train it again")
    return fold


def check_probe(cfg: TrainConfig, cache: Cache) -> None:
    """The options a probe cannot honour, and a cache without embeddings, refused in one line."""
    if cfg.task != "multi":
        raise InputError(f"--model {cfg.model}: a probe fits per-head classifiers; leave --task multi")
    for option, given in (("--extra", bool(cfg.extra)), ("--weights", bool(cfg.weights)), ("--pretrained", cfg.pretrained),
                          ("--resume", cfg.resume)):
        if given:
            raise InputError(f"{option}: not used by --model {cfg.model} (a probe trains in seconds on the cache's "
                             f"embeddings); leave it out")
    needs_embeddings(cache)


@dataclass(frozen=True)
class RunWriters:
    """The run-folder writers of a CNN run (``fit``'s), handed in by ``fit.train`` so a probe run writes the same
    files the same way without this module importing ``fit`` (which imports it)."""

    write_config: Callable  # (out, cfg, config dict)
    oof_part: Callable      # (fold, manifest, labels, val rows, probs) -> oof rows
    finish: Callable        # (out, oof, history, per-fold summaries, age_bins, cfg): per_class.csv, plots, summary.json
    is_run: Callable        # (folder) -> bool: an older run folder without a marker


def train_probe(cache: Cache, out: Path, cfg: TrainConfig, plan, writers: RunWriters,
                progress: Progress | None = None, replace: bool = False) -> Path:
    """Fit the probe's heads per fold of ``plan``'s person-grouped folds (``fit.plan_run``: labels, overrides, groups)
    and write the run folder ``out`` with ``writers``; returns it. A finished run in ``out`` is refused as ``train``
    refuses it, unless ``replace`` (its files are deleted first)."""
    from .run_folder import check_fresh, clear_run

    progress = progress or QUIET
    check_probe(cfg, cache)
    emb = needs_embeddings(cache)
    attributes = cache.face_attributes
    layout = head_layout(attributes)
    feats = head_features(emb, attributes, layout)
    x = {h: v[plan.rows] for h, v in feats.items()}
    ok = _embedded(x)
    labels = label_array(plan.manifest)
    kind = PROBE_MODELS[cfg.model]
    with claimed_output(out, "run", [cache.path], recognise=writers.is_run, what="run"), \
            folder_lock(cache.path, "cache", shared=True):
        (clear_run if replace else check_fresh)(out, cfg)
        writers.write_config(out, cfg, {
            **asdict(cfg), "img_size": [int(s) for s in cache.images.shape[1:3]], "cache": str(Path(cache.path).resolve()),
            "crop": (cache.meta or {}).get("params", {}), "age_bins": list(cache.age_bins),
            "overrides_changed": plan.changed, "overrides_excluded": plan.excluded, "n_photos": int(len(plan.rows)),
            "n_people": int(plan.manifest["person"].nunique()), "device": "cpu", "weights_file": None, "norm": None,
            "extra_data": [], **groups_record(cfg.groups, plan.groups),
            "probe": {"kind": kind, "embeddings": _embedding_record(cache), "no_embedding": int((~ok).sum()),
                      "features": {h: list(p) for h, p in layout.items()}}})
        parts, history, summaries = [], [], []
        steps = Steps(progress, f"probe {kind}: {len(folds_to_run(cfg))} fold(s) on {int(ok.sum())} embeddings", len(folds_to_run(cfg)))
        for f in folds_to_run(cfg):
            train_pos, val_pos = split_indices(plan.fold_ids, f)
            if len(val_pos) == 0 or len(train_pos) < 2:
                raise InputError(f"fold {f}: {len(train_pos)} training and {len(val_pos)} validation photos; too few people "
                                 f"for {cfg.folds} folds")
            fold = {}
            for h in HEADS:
                y = labels[train_pos, LABEL_COLUMN[h]]
                use = ok[train_pos] & (y >= 0)
                fold[h] = fit_head(x[h][train_pos][use], y[use], OUTPUT_CLASSES[h], kind, cfg.seed)
            save_fold(fold, out / f"fold_{f}" / "best.safetensors")
            probs = probs_of(fold, {h: v[val_pos] for h, v in x.items()})
            parts.append(writers.oof_part(f, plan.manifest, labels, val_pos, probs))
            m = head_metrics(probs, labels[val_pos], prefix="val_")
            history.append({"fold": f, "epoch": 1, **m})
            summaries.append({"fold": f, "best_epoch": 1, "epochs_run": 1, "no_embedding": int((~ok[val_pos]).sum()),
                              **head_metrics(probs, labels[val_pos], prefix="tta_")})
            steps.advance()
        oof = pd.concat(parts, ignore_index=True)
        oof.to_parquet(out / "oof.parquet", index=False)
        pd.DataFrame(history).to_csv(out / "metrics.csv", index=False)
        writers.finish(out, oof, pd.DataFrame(), summaries, cache.age_bins, cfg)
    return out


def _embedding_record(cache: Cache) -> dict:
    """What the run's embeddings were (backend and its settings): predict embeds new photos the same way."""
    e = (cache.meta or {}).get("embeddings", {})
    return {"backend": e.get("backend", "dlib"), "dim": e.get("dim"), "params": e.get("params", {})}


def predict_probe(config: dict, ckpts: list[Path], cache: Cache, device: str | None = None,
                  progress: Progress | None = None) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Fold-averaged probabilities of a probe run for every row of ``cache`` (embedded first, the run's way, when it
    holds no embeddings or lacks the age/gender columns the run reads) and which rows had no embedding (they get the
    prior)."""
    from ..curate.embed import EmbedParams, embed_cache

    probe = config.get("probe") or {}
    rec = probe.get("embeddings", {})
    recorded = probe.get("features")
    layout = {h: tuple(p) for h, p in recorded.items()} if recorded else dict(IDENTITY_ONLY)
    wants_attributes = any("attributes" in p for p in layout.values())
    if cache.embeddings is None or (wants_attributes and cache.face_attributes is None):
        params = rec.get("params", {})
        embed_cache(cache.path, EmbedParams(backend=rec.get("backend", "dlib"), min_face=int(params.get("min_face", 20)),
                                            boxes=params.get("boxes", "detected"), device=device), progress=progress)
        cache = load_cache(cache.path, verify="off")
    attributes = cache.face_attributes
    if wants_attributes and attributes is None:
        raise InputError(f"{cache.path}: the probe run reads face attributes (age, gender) its embeddings lack; embed it "
                         f"again with the run's backend: `facecurate embed {cache.path} --backend {rec.get('backend', 'dlib')}`")
    x = head_features(needs_embeddings(cache), attributes, layout)
    total: dict[str, np.ndarray] = {}
    for ck in ckpts:
        for k, v in probs_of(load_fold(ck), x).items():
            total[k] = total.get(k, 0) + v / len(ckpts)
    return total, ~_embedded(x)


def _embedded(x: dict[str, np.ndarray]) -> np.ndarray:
    """Per row: finite features for every head (a photo without an embedding gets the prior)."""
    return np.logical_and.reduce([np.isfinite(v).all(1) for v in x.values()])
