"""``audit_identity``: strangers and duplicate ids of one set in one call, or one diagnostic when identity cannot separate people."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..errors import InputError
from .distances import PersonIndex
from .matching import PairFit, duplicate_id_flags, identity_groups
from .options import IdentityOptions
from .records import empty_identity_flags, flags_frame
from .stranger import ComparisonFit, fit_comparisons, photo_distances, stranger_flags


@dataclass
class IdentityAudit:
    """The identity flags (``records.IDENTITY_FLAG_COLUMNS``), ``off`` (why the checks are off, "" when on),
    each comparison's stranger calibration, the duplicate matching's fit and the person -> identity group map."""

    flags: pd.DataFrame
    off: str
    comparisons: dict[str, ComparisonFit]
    duplicates: PairFit | None
    groups: dict[str, int] = field(default_factory=dict)


def check_inputs(embeddings: np.ndarray, manifest: pd.DataFrame, name: str = "embeddings.npy") -> np.ndarray:
    """The embeddings as float64 (N x D), checked against the manifest; InputError naming what is wrong."""
    e = np.asarray(embeddings, dtype=np.float64)
    if e.ndim != 2 or len(e) != len(manifest):
        raise InputError(f"{name}: expected {len(manifest)} rows (one per manifest photo) x D, got shape {e.shape}; "
                         "recompute the embeddings for this cache")
    missing = [c for c in ("person", "image_id") if c not in manifest]
    if missing:
        raise InputError(f"manifest: missing column(s) {', '.join(missing)}")
    return e


def degenerate_reason(fits: dict[str, ComparisonFit], min_separation: float) -> str:
    """``identity checks off: ...`` when no comparison separates a person's photos from other people's, else ""."""
    seps = {k: f.separation for k, f in fits.items() if np.isfinite(f.separation)}
    if not seps:
        return "identity checks off: no person has two photos with a usable face embedding"
    best = max(seps, key=seps.get)
    if seps[best] >= min_separation:
        return ""
    f = fits[best]
    return (f"identity checks off: a person's photos are no closer to each other than to other people's "
            f"(best comparison {best}: separation {seps[best]:.2f}, needs {min_separation:.2f}; own photos "
            f"{f.genuine_median:.2f} apart, other people {f.impostor_median:.2f}) — are all people variants of one face, "
            "or are the embeddings from another data set?")


def audit_identity(embeddings: np.ndarray, manifest: pd.DataFrame, options: IdentityOptions | None = None) -> IdentityAudit:
    """Stranger and duplicate-id flags of one set (rows of ``manifest`` aligned with ``embeddings``, NaN rows skipped),
    or none and a one-line ``off`` diagnostic when genuine and impostor distances overlap."""
    o = (options or IdentityOptions()).validate()
    manifest = manifest.reset_index(drop=True)
    e = check_inputs(embeddings, manifest)
    dist = photo_distances(e, manifest, PersonIndex.build(e, manifest), o)
    fits = {k: f for k, (f, _) in fit_comparisons(dist, o).items()}
    off = degenerate_reason(fits, o.min_separation)
    if off:
        return IdentityAudit(empty_identity_flags(), off, fits, None, {p: i for i, p in enumerate(sorted(manifest["person"].astype(str).unique()))})
    strangers, fits = stranger_flags(e, manifest, o, dist)
    dups, pair_fit = duplicate_id_flags(e, manifest, o)
    groups = _groups_from(dups, manifest)
    parts = [f for f in (strangers, dups) if len(f)]
    flags = flags_frame(pd.concat(parts, ignore_index=True).to_dict("records")) if parts else empty_identity_flags()
    return IdentityAudit(flags, "", fits, pair_fit, groups)


def _groups_from(dups: pd.DataFrame, manifest: pd.DataFrame) -> dict[str, int]:
    """Every person of ``manifest`` -> identity group (duplicate pairs joined; the rest alone)."""
    persons = sorted(manifest["person"].astype(str).unique())
    pos = {p: i for i, p in enumerate(persons)}
    pairs = pd.DataFrame({"i": [pos[p] for p in dups["person"]], "j": [pos[p] for p in dups["other_person"]]})
    return identity_groups(persons, pairs)
