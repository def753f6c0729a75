"""The label checks, frames in, flags out: the quality gate, the simulated thresholds, then the flags.

``audit_labels`` is the whole procedure on an out-of-fold frame: each head is measured
(``quality``); for every head that is on, each of its kinds is simulated (``simulate``) to pick the
threshold that reaches the target precision, and its units (``scores``) at or above it become flags,
marked ``high`` confidence, or ``low`` when the target was out of reach. Structural checks (a
person's photo set, labels that disagree within a person, one id under two folders) do not read
the model and always run.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from dataclasses import field as dc_field

import numpy as np
import pandas as pd

from ..labels import (
    DEFAULT_AGE_BINS,
    GENDER_NAMES,
    MASK_INCORRECT,
    MASK_NAMES,
    MASK_NONE,
    age_group_names,
)
from .flags import FLAG_COLUMNS, empty_flags, sort_flags
from .oof import validate_oof
from .quality import HeadQuality, quality_gate
from .scores import FIELD_OF_KIND, HEAD_OF_KIND, MODEL_KINDS, Units, make_units, score_units
from .simulate import KindEstimate, estimate_kind


def _names(field: str, age_bins: Sequence[int]) -> Sequence[str]:
    return {"gender": GENDER_NAMES, "age_group": age_group_names(age_bins), "mask": MASK_NAMES}[field]


def model_flags(oof: pd.DataFrame, kind: str, threshold: float, confidence: str = "high", pool: str = "mean",
                ages: Mapping[str, float] | None = None, age_bins: Sequence[int] = DEFAULT_AGE_BINS,
                skip_image_ids: Sequence[str] = (), units: Units | None = None) -> pd.DataFrame:
    """The flags of one model-based kind: every unit whose score (``scores``) reaches ``threshold``.

    ``threshold`` is at least 0.5 + a margin in practice (``simulate.estimate_kind``): a tie is never a flag.
    ``confidence`` ("high" | "low") is written on every flag of the kind.
    """
    u = units if units is not None else make_units(oof, kind, pool)
    sugg, score = score_units(u)
    field = FIELD_OF_KIND[kind]
    rows = []
    for j in np.flatnonzero(score >= threshold):
        base = {"kind": kind, "person": u.keys[j], "score": float(score[j]), "threshold": float(threshold),
                "confidence": confidence}
        if kind == "mask_swap":
            pn, pi = u.probs[j]
            why = (f"normal photo: p({MASK_NAMES[MASK_INCORRECT]})={pn[MASK_INCORRECT]:.2f} vs p({MASK_NAMES[MASK_NONE]})="
                   f"{pn[MASK_NONE]:.2f}; incorrect_mask photo: p({MASK_NAMES[MASK_NONE]})={pi[MASK_NONE]:.2f} vs "
                   f"p({MASK_NAMES[MASK_INCORRECT]})={pi[MASK_INCORRECT]:.2f}; joint posterior that the two are swapped "
                   f"{score[j]:.3f} >= threshold {threshold:.3g}")
            for r, given, new in ((oof.iloc[u.rows[j, 0]], MASK_NONE, MASK_INCORRECT), (oof.iloc[u.rows[j, 1]], MASK_INCORRECT, MASK_NONE)):
                rows.append({**base, "scope": "photo", "image_id": r["image_id"], "photo": r["photo"], "field": "mask",
                             "given": given, "suggested": new, "reason": why})
            continue
        g, s = int(u.given[j]), int(sugg[j])
        names = _names(field, age_bins)
        p = u.probs[j]
        if kind == "mask_photo":
            r = oof.iloc[u.rows[j, 0]]
            if r["image_id"] in skip_image_ids:
                continue
            rows.append({**base, "scope": "photo", "image_id": r["image_id"], "photo": r["photo"], "field": field,
                         "given": g, "suggested": s,
                         "reason": (f"{r['photo'] or 'photo'} looks {names[s]} (p={p[s]:.2f}) but is labelled {names[g]} "
                                    f"(p={p[g]:.2f}); score {score[j]:.3f} >= threshold {threshold:.3g}")})
            continue
        age_note = ""
        if ages is not None and u.keys[j] in ages and pd.notna(ages[u.keys[j]]):
            age_note = f", age {int(ages[u.keys[j]])}"
        rows.append({**base, "scope": "person", "image_id": "", "photo": "", "field": field, "given": g, "suggested": s,
                     "reason": (f"{u.n_photos[j]} photo(s) look {names[s]} (pooled p={p[s]:.2f}) but the person is labelled "
                                f"{names[g]} (p={p[g]:.2f}{age_note}); score {score[j]:.3f} >= threshold {threshold:.3g}")})
    return pd.DataFrame(rows, columns=FLAG_COLUMNS) if rows else empty_flags()


def structure_flags(manifest: pd.DataFrame) -> pd.DataFrame:
    """Flag people without exactly one ``incorrect_mask`` and one ``normal`` photo, whose photos disagree on
    gender/age, or whose id is shared with another person folder."""
    rows = []
    has_photo = "photo" in manifest and manifest["photo"].fillna("").astype(str).ne("").any()
    shared: dict[str, list[str]] = {}
    if "id" in manifest:
        ids = manifest.dropna(subset=["id"]).groupby(manifest["id"].astype(str))["person"].unique()
        shared = {str(i): sorted(map(str, f)) for i, f in ids.items() if len(f) > 1}
    id_of = manifest.groupby(manifest["person"].astype(str))["id"].first().astype(str).to_dict() if shared else {}
    for person, g in manifest.groupby(manifest["person"].astype(str), sort=True):
        problems = []
        if has_photo:
            photos = g["photo"].fillna("").astype(str)
            n_inc, n_norm = int((photos == "incorrect_mask").sum()), int((photos == "normal").sum())
            n_mask = int(photos.str.fullmatch(r"mask\d+").sum())
            if n_inc != 1 or n_norm != 1:
                problems.append(f"{n_inc} incorrect_mask and {n_norm} normal photo(s), expected exactly one of each")
            if n_mask != 5 and not problems:
                problems.append(f"{n_mask} mask photo(s), expected 5")
        for field in ("gender", "age_group"):
            if field in g and g[field].dropna().nunique() > 1:
                problems.append(f"photos disagree on {field} ({', '.join(map(str, sorted(g[field].dropna().unique())))})")
        if id_of.get(person) in shared:
            others = [f for f in shared[id_of[person]] if f != person]
            problems.append(f"id {id_of[person]} is also the id of {', '.join(others)}")
        if problems:
            rows.append({"kind": "structure", "scope": "person", "person": person, "image_id": "", "photo": "",
                         "field": "", "given": None, "suggested": None, "score": 1.0, "threshold": np.nan,
                         "reason": "; ".join(problems), "confidence": ""})
    return pd.DataFrame(rows, columns=FLAG_COLUMNS) if rows else empty_flags()


@dataclass
class LabelAudit:
    """Every flag, each head's quality and each model-based kind's simulated estimate."""

    flags: pd.DataFrame
    quality: dict[str, HeadQuality]
    estimates: dict[str, KindEstimate] = dc_field(default_factory=dict)


def audit_labels(oof: pd.DataFrame, manifest: pd.DataFrame | None = None, pool: str = "mean",
                 age_bins: Sequence[int] = DEFAULT_AGE_BINS, target_precision: float = 0.8, margin: float = 0.1,
                 draws: int = 8, lift: float = 0.5, seed: int = 0) -> LabelAudit:
    """The quality gate, the simulated threshold of every kind whose head is on, their flags and the structural ones."""
    oof = validate_oof(oof)
    ages = None
    if manifest is not None and "age" in manifest:
        ages = manifest.dropna(subset=["age"]).groupby(manifest["person"].astype(str))["age"].first().to_dict()
    quality = quality_gate(oof, lift=lift, seed=seed)
    estimates, parts, swap_ids = {}, [], set()
    for i, kind in enumerate(MODEL_KINDS):
        u = make_units(oof, kind, pool)
        q = quality[HEAD_OF_KIND[kind]]
        if not q.on:
            estimates[kind] = KindEstimate(kind, float("nan"), float("nan"), float("nan"), False, target_precision, 0.0, 0,
                                           len(u.given), float("nan"), off=q.describe())
            continue
        est = estimate_kind(u, target=target_precision, margin=margin, draws=draws, seed=seed + i)
        estimates[kind] = est
        f = model_flags(oof, kind, est.threshold, "high" if est.confident else "low", pool=pool, ages=ages,
                        age_bins=age_bins, skip_image_ids=swap_ids, units=u)
        if kind == "mask_swap":
            swap_ids = set(f["image_id"])  # a swapped photo is not reported again as a single photo
        parts.append(f)
    parts.append(structure_flags(manifest if manifest is not None else oof))
    parts = [p for p in parts if len(p)]
    return LabelAudit(sort_flags(pd.concat(parts, ignore_index=True)) if parts else empty_flags(), quality, estimates)


def find_issues(oof: pd.DataFrame, manifest: pd.DataFrame | None = None, pool: str = "mean",
                age_bins: Sequence[int] = DEFAULT_AGE_BINS, **options) -> pd.DataFrame:
    """Every flag of ``audit_labels`` (options: target_precision, margin, draws, lift, seed), highest score first."""
    return audit_labels(oof, manifest, pool=pool, age_bins=age_bins, **options).flags
