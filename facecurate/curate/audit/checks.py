"""The label checks, frames in, flags out: the quality gate, the simulated thresholds, then the flags.

``audit_labels`` runs every kind of the registry (``kinds.KINDS``) on an out-of-fold frame: each head
is measured (``quality``); for every head that is on, each of its model-based kinds is simulated
(``simulate``) to pick the threshold that reaches the target precision, and its units (``scores``)
at or above it become flags (each kind's ``explain``, in ``explain``), marked ``high`` confidence, or
``low`` when the target was out of reach. Detected kinds (``structure``, near-duplicates, the identity kinds,
photo quality) do not read the model; they run whenever their inputs exist (``RelabelResult.detector_status``).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field as dc_field

import numpy as np
import pandas as pd

from ..cache import Cache
from ..labels import DEFAULT_AGE_BINS
from ..progress import QUIET, Progress
from .faces import FaceEvidence
from .flag_kind import AuditContext, FlagKind, Hit
from .flags import FLAG_COLUMNS, empty_flags
from .kinds import KINDS, model_kinds, sort_flags
from .oof import validate_oof
from .options import ReportOptions
from .quality import HeadQuality, quality_gate
from .scores import Units, score_units
from .simulate import KindEstimate, estimate_kind


def model_flags(kind: FlagKind, units: Units, threshold: float, ctx: AuditContext, confidence: str = "high",
                skip_image_ids: set | frozenset = frozenset()) -> pd.DataFrame:
    """The flags of one model-based kind: every unit whose score (``scores``) reaches ``threshold``, explained by the kind.

    ``threshold`` is at least 0.5 + a margin in practice (``simulate.estimate_kind``): a tie is never a flag.
    ``confidence`` ("high" | "low") is written on every flag of the kind. Photo flags on an image in
    ``skip_image_ids`` (flagged by an earlier kind: a swapped photo) are left out.
    """
    sugg, score = score_units(units)
    rows = []
    for j in np.flatnonzero(score >= threshold):
        hit = Hit(ctx, kind, units, int(j), int(sugg[j]), float(score[j]), float(threshold), confidence)
        rows += [r for r in kind.explain(hit) if not (r["scope"] == "photo" and r["image_id"] in skip_image_ids)]
    return pd.DataFrame(rows, columns=FLAG_COLUMNS) if rows else empty_flags()


@dataclass
class LabelAudit:
    """Every flag, each head's quality and each model-based kind's simulated estimate."""

    flags: pd.DataFrame
    quality: dict[str, HeadQuality]
    estimates: dict[str, KindEstimate] = dc_field(default_factory=dict)


def audit_labels(oof: pd.DataFrame, manifest: pd.DataFrame | None = None, options: ReportOptions | None = None,
                 age_bins: Sequence[int] = DEFAULT_AGE_BINS, cache: Cache | None = None,
                 progress: Progress | None = None, faces: FaceEvidence | None = None, **changes) -> LabelAudit:
    """Every registered kind on an out-of-fold frame: the quality gate, the simulated threshold of every model-based
    kind whose head is on, their flags, then every detected kind's (structure; near-duplicates when ``cache`` is given).

    ``options``: a ``ReportOptions`` (default: the defaults); ``changes``: options by name over it (``gate=0.3``).
    ``faces``: what the face embeddings said (``faces.read_faces``), for the identity kinds.
    """
    options = (options or ReportOptions()).replace(**changes)
    oof = validate_oof(oof)
    ages = None
    if manifest is not None and "age" in manifest:
        ages = manifest.dropna(subset=["age"]).groupby(manifest["person"].astype(str))["age"].first().to_dict()
    ctx = AuditContext(oof, manifest if manifest is not None else oof, options, tuple(age_bins), cache, ages,
                       progress or QUIET, faces)
    return run_checks(ctx)


def run_checks(ctx: AuditContext) -> LabelAudit:
    """``audit_labels`` on a built context: the model-based kinds of ``KINDS``, then the detected ones, each in registry
    order; the flags sorted one way (``kinds.sort_flags``)."""
    o = ctx.options
    quality = quality_gate(ctx.oof, gate=o.gate, seed=o.seed)
    estimates, parts, taken = {}, [], set()
    for i, kind in enumerate(model_kinds()):
        u = kind.units(ctx.oof, kind, o.pool)
        q = quality[kind.head]
        if not q.on:
            estimates[kind.name] = KindEstimate(kind.name, float("nan"), float("nan"), float("nan"), False,
                                                o.target_precision, 0.0, 0, len(u.given), float("nan"), off=q.describe())
            continue
        est = estimate_kind(u, target=o.target_precision, margin=o.margin, draws=o.draws, seed=o.seed + i)
        estimates[kind.name] = est
        f = model_flags(kind, u, est.threshold, ctx, "high" if est.confident else "low", skip_image_ids=taken)
        taken |= set(f.loc[f["scope"] == "photo", "image_id"])  # a swapped photo is not reported again as a single photo
        parts.append(f)
    parts += [kind.detect(ctx) for kind in KINDS.values() if not kind.model_based]
    parts = [p for p in parts if p is not None and len(p)]
    return LabelAudit(sort_flags(pd.concat(parts, ignore_index=True)) if parts else empty_flags(), quality, estimates)


def find_issues(oof: pd.DataFrame, manifest: pd.DataFrame | None = None, **changes) -> pd.DataFrame:
    """Every flag of ``audit_labels`` (``changes``: options by name, like pool, target_precision, gate), highest score first."""
    return audit_labels(oof, manifest, **changes).flags
