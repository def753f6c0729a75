"""A linear probe on face embeddings: per-head logistic regression in person-grouped folds, as an out-of-fold table.

``probe_oof`` writes the same table a ``train`` run's ``oof.parquet`` holds (``oof.OOF_COLUMNS``, ``fold``, every
head's ``p_*``, ``p_class_*``, ``pred``), so relabel-report reads it like a CNN's. On a CPU with a few hundred
people the CNN cannot read gender or age; a 128-d identity embedding with a linear model often can.

- Folds: scikit-learn's ``StratifiedGroupKFold`` (shuffled, ``seed``): every person's photos in one fold, and with
  ``groups`` (``identity.identity_groups``) every identity's, stratified by the person's gender x age group.
  Deterministic for a seed and a scikit-learn version (``train/splits.py`` is the version-proof splitter; curate
  may not import train).
- Features: per head, what ``embed.head_features`` gives (identity for the mask, the face attributes for gender,
  both for age, when the cache holds attributes); one matrix for all heads is accepted too.
- Person heads (``person_features``: the face attributes, when the cache has them): gender and age belong to a
  person, not a photo, so the probe reads them per person: the mean attribute columns of the person's unmasked
  photos beside those of the masked ones (by the given mask label), a logistic regression fitted on the training folds' people, its out-of-fold
  probability given to each of the person's photos. The report's quality gate then sees how well the faces tell a
  person's gender (0.84-0.90 balanced accuracy on the planted sets, against 0.75-0.79 a photo, where a masked
  photo alone often cannot), and the two-hypothesis scores compare a person's label with one calibrated reading.
- Photos without an embedding (NaN row) get uniform probabilities (1/k: no evidence either way in the report's
  two-hypothesis scores) and ``embedded`` = False.
- ``combine_oof``: per head, log p = w log p_probe + (1 - w) log p_cnn, renormalised, with w on a 0.05 grid chosen
  by the out-of-fold log-loss against the given labels (each source's own held-out quality decides its weight).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedGroupKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ..errors import InputError
from ..labels import (
    HEAD_CLASSES,
    HEAD_FIELDS,
    HEADS,
    MASK_NONE,
    N_AGE,
    NUM_CLASSES,
    encode,
    joint_probs,
)
from .oof import head_probs

EPS = 1e-6


@dataclass
class ProbeOptions:
    """The probe's folds, regularisation and seed."""

    folds: int = 5
    C: float = 0.5          # inverse L2 strength of the logistic regression (on standardised embeddings)
    max_iter: int = 2000
    seed: int = 0
    person_heads: tuple[str, ...] = ("gender", "age")  # read per person when ``probe_oof`` gets person features


def person_table(x: np.ndarray, manifest: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(person per row of the table, people x 2d features): the mean of ``x``'s finite rows over each person's
    unmasked photos, then over the masked ones; a person without one kind gets that block's mean over people."""
    person = manifest["person"].astype(str).to_numpy()
    unmasked = pd.to_numeric(manifest["mask"], errors="coerce").to_numpy() == MASK_NONE
    names = pd.unique(person)
    blocks = []
    for kind in (unmasked, ~unmasked):
        use = kind & np.all(np.isfinite(x), axis=1)
        mean = pd.DataFrame(x[use]).groupby(person[use]).mean().reindex(names).to_numpy()
        fill = np.nanmean(mean, axis=0) if np.isfinite(mean).any() else np.zeros(x.shape[1])
        blocks.append(np.where(np.isfinite(mean), mean, np.nan_to_num(fill)))
    return np.asarray(names, dtype=object), np.hstack(blocks)


def _person_probs(x: np.ndarray, manifest: pd.DataFrame, y: np.ndarray, fold: np.ndarray, k: int,
                  o: ProbeOptions) -> np.ndarray:
    """Per photo, its person's out-of-fold probabilities from ``person_table`` features (1/k for a person without
    any finite row). A person's label and fold are their first photo's (a person's photos share both)."""
    names, table = person_table(x, manifest)
    person = manifest["person"].astype(str).to_numpy()
    first = pd.Series(np.arange(len(person))).groupby(person).first().reindex(names).to_numpy()
    seen = pd.Series(np.all(np.isfinite(x), axis=1)).groupby(person).any().reindex(names).to_numpy()
    py, pf = y[first], fold[first]
    pp = np.full((len(names), k), 1.0 / k)
    for f in range(o.folds):
        tr, va = seen & (pf != f), seen & (pf == f)
        if va.any() and tr.any():
            pp[va] = _fit_predict(table[tr], py[tr], table[va], k, o)
    row = pd.Series(np.arange(len(names)), index=names).reindex(person).to_numpy()
    return pp[row]


def probe_folds(manifest: pd.DataFrame, folds: int = 5, seed: int = 0, groups: Mapping[str, int] | None = None) -> np.ndarray:
    """Fold index per photo: people (or identity ``groups``) kept whole, stratified by gender x age group."""
    person = manifest["person"].astype(str).to_numpy()
    unit = np.array([f"g{groups[p]}" if p in groups else f"p{p}" for p in person], dtype=object) if groups else person
    strata = (pd.to_numeric(manifest["gender"], errors="coerce").fillna(0).astype(int) * N_AGE
              + pd.to_numeric(manifest["age_group"], errors="coerce").fillna(0).astype(int)).to_numpy()
    n_units = len(pd.unique(unit))
    if n_units < folds:
        raise InputError(f"probe: {n_units} people for {folds} folds; use fewer folds")
    out = np.full(len(manifest), -1, int)
    skf = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    for f, (_, val) in enumerate(skf.split(np.zeros(len(manifest)), strata, groups=unit)):
        out[val] = f
    return out


def _fit_predict(x_tr: np.ndarray, y_tr: np.ndarray, x_va: np.ndarray, k: int, o: ProbeOptions) -> np.ndarray:
    """(len(x_va), k) probabilities; classes absent from the training fold get none."""
    p = np.zeros((len(x_va), k))
    classes = np.unique(y_tr)
    if len(classes) == 1:
        p[:, int(classes[0])] = 1.0
        return p
    # newton-cg: the same penalised likelihood as scikit-learn's default lbfgs, reached in ~9 iterations instead of
    # 40-90 (0.1-0.2 s a fit instead of 0.6-1.1 s here, probabilities within 0.02 of lbfgs's looser stop)
    model = make_pipeline(StandardScaler(), LogisticRegression(C=o.C, max_iter=o.max_iter, solver="newton-cg"))
    model.fit(x_tr, y_tr)
    p[:, model.classes_.astype(int)] = model.predict_proba(x_va)
    return p


def probe_oof(features: np.ndarray | Mapping[str, np.ndarray], manifest: pd.DataFrame, options: ProbeOptions | None = None,
              groups: Mapping[str, int] | None = None, person_features: np.ndarray | None = None) -> pd.DataFrame:
    """Out-of-fold probe probabilities per photo (rows of ``manifest``), oof.parquet's columns.

    ``features``: one N x d matrix for every head (an embedding), or per head its own (``embed.head_features``).
    ``person_features`` (N x d, e.g. ``embed.head_features.attribute_columns``): ``options.person_heads`` are read
    per person from them (``person_table``) instead."""
    o = options or ProbeOptions()
    m = manifest.reset_index(drop=True)
    per_head = {h: np.asarray(features[h] if isinstance(features, Mapping) else features, dtype=np.float64) for h in HEADS}
    for h, e in per_head.items():
        if e.ndim != 2 or len(e) != len(m):
            raise InputError(f"embeddings ({h}): expected {len(m)} rows x D, got shape {e.shape}")
    missing = [c for c in ("image_id", "person", *HEAD_FIELDS.values()) if c not in m]
    if missing:
        raise InputError(f"manifest: missing column(s) {', '.join(missing)}")
    labelled = m[list(HEAD_FIELDS.values())].notna().all(axis=1).to_numpy()
    fold = probe_folds(m, o.folds, o.seed, groups)
    out = pd.DataFrame({"image_id": m["image_id"].astype(str), "person": m["person"].astype(str),
                        "photo": m["photo"].fillna("").astype(str) if "photo" in m else "", "fold": fold})
    for c in HEAD_FIELDS.values():
        out[c] = pd.to_numeric(m[c], errors="coerce").astype("Int64")
    out["label"] = encode(out["mask"], out["gender"], out["age_group"])
    probs = {}
    embedded = labelled.copy()
    for head, k in HEAD_CLASSES.items():
        e = per_head[head]
        ok = labelled & np.all(np.isfinite(e), axis=1)
        embedded &= ok
        y = out[HEAD_FIELDS[head]].fillna(0).astype(int).to_numpy()
        p = np.full((len(m), k), 1.0 / k)
        if person_features is not None and head in o.person_heads:
            pf = np.asarray(person_features, np.float64)
            pf = np.where(labelled[:, None], pf, np.nan)
            p = _person_probs(pf, m, y, fold, k, o)
        else:
            for f in range(o.folds):
                tr, va = ok & (fold != f), ok & (fold == f)
                if va.any() and tr.any():
                    p[va] = _fit_predict(e[tr], y[tr], e[va], k, o)
        probs[head] = p
        for i in range(k):
            out[f"p_{head}_{i}"] = p[:, i]
    joint = joint_probs(probs["mask"], probs["gender"], probs["age"])
    for i in range(NUM_CLASSES):
        out[f"p_class_{i}"] = joint[:, i]
    out["pred"] = joint.argmax(axis=1)
    out["embedded"] = embedded
    return out


def log_loss_of(p: np.ndarray, y: np.ndarray) -> float:
    """Mean negative log-likelihood of labels ``y`` under rows of ``p``."""
    return float(-np.mean(np.log(np.clip(p[np.arange(len(y)), y], EPS, 1.0))))


def mix_logs(p_a: np.ndarray, p_b: np.ndarray, w: float) -> np.ndarray:
    """Rows of exp(w log p_a + (1 - w) log p_b), renormalised (a weighted geometric mean)."""
    z = w * np.log(np.clip(p_a, EPS, 1.0)) + (1 - w) * np.log(np.clip(p_b, EPS, 1.0))
    z = np.exp(z - z.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def combine_oof(probe: pd.DataFrame, cnn: pd.DataFrame, grid: int = 21) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The CNN's out-of-fold table with each head's probabilities replaced by the weighted geometric mean with the probe's.

    Per head, w (the probe's weight) minimises the out-of-fold log-loss over photos both sources scored (photos
    the probe could not embed keep the CNN's). Returns (combined table, per-head frame: w and each log-loss).
    """
    a = cnn.reset_index(drop=True)
    b = probe.set_index(probe["image_id"].astype(str)).reindex(a["image_id"].astype(str))
    if b["fold"].isna().all():
        raise InputError("combine_oof: the probe and the CNN tables share no image_id")
    has = b["embedded"].fillna(False).astype(bool).to_numpy() if "embedded" in b else b["fold"].notna().to_numpy()
    out, rows = a.copy(), []
    probs = {}
    for head in HEADS:
        y = pd.to_numeric(a[HEAD_FIELDS[head]], errors="coerce").to_numpy()
        use = has & np.isfinite(y)
        pc = head_probs(a, head)
        pp = head_probs(b.loc[:, [c for c in b.columns if c.startswith(f"p_{head}_")]].fillna(1.0 / HEAD_CLASSES[head]), head)
        yi = y[use].astype(int)
        losses = [log_loss_of(mix_logs(pp[use], pc[use], w), yi) for w in np.linspace(0, 1, grid)]
        w = float(np.linspace(0, 1, grid)[int(np.argmin(losses))])
        p = pc.copy()
        p[has] = mix_logs(pp[has], pc[has], w)
        probs[head] = p
        for i in range(p.shape[1]):
            out[f"p_{head}_{i}"] = p[:, i]
        rows.append({"head": head, "w_probe": w, "logloss_cnn": losses[0], "logloss_probe": losses[-1],
                     "logloss_combined": min(losses), "photos": int(use.sum())})
    joint = joint_probs(probs["mask"], probs["gender"], probs["age"])
    for i in range(NUM_CLASSES):
        out[f"p_class_{i}"] = joint[:, i]
    out["pred"] = joint.argmax(axis=1)
    return out, pd.DataFrame(rows)
