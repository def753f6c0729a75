"""Face-embedding distances per person: which photos are comparable (masked / unmasked), photo-to-person and person-level vectors.

Euclidean distance on the embeddings (dlib's descriptors are made for it: 0.6 is its usual same-person cut).
Masks hide most of a face, so a photo is compared with photos of its own condition when the person has
enough of them, and the calibration is kept per comparison (``comparison``), like with like.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..labels import MASK_NONE

UNMASKED, MASKED = "unmasked", "masked"


def conditions(manifest: pd.DataFrame) -> np.ndarray:
    """Per photo ``unmasked`` (mask label 2, not worn) or ``masked`` (worn or worn incorrectly); all ``unmasked`` without a mask column."""
    if "mask" not in manifest:
        return np.full(len(manifest), UNMASKED, dtype=object)
    m = pd.to_numeric(manifest["mask"], errors="coerce").to_numpy()
    return np.where(m == MASK_NONE, UNMASKED, MASKED).astype(object)


def valid_rows(embeddings: np.ndarray) -> np.ndarray:
    """True for rows with a finite embedding (NaN rows: no usable face)."""
    return np.all(np.isfinite(embeddings), axis=1)


@dataclass
class PersonIndex:
    """The valid photos of every person, split by condition: ``rows[person][condition]`` -> manifest row indices."""

    persons: list[str]
    rows: dict[str, dict[str, np.ndarray]]

    @classmethod
    def build(cls, embeddings: np.ndarray, manifest: pd.DataFrame) -> PersonIndex:
        """Index ``manifest`` (``person`` column; rows aligned with ``embeddings``), skipping NaN embeddings."""
        ok = valid_rows(embeddings)
        cond = conditions(manifest)
        person = manifest["person"].astype(str).to_numpy()
        rows: dict[str, dict[str, np.ndarray]] = {}
        for p, idx in pd.Series(np.arange(len(manifest))).groupby(person, sort=True):
            idx = idx.to_numpy()
            idx = idx[ok[idx]]
            rows[str(p)] = {c: idx[cond[idx] == c] for c in (UNMASKED, MASKED)}
        return cls(sorted(rows), rows)

    def all_rows(self, person: str) -> np.ndarray:
        """Every valid photo of ``person``, in manifest order."""
        r = self.rows[person]
        return np.sort(np.concatenate([r[UNMASKED], r[MASKED]]))


def reference_condition(cond: str, own: dict[str, np.ndarray], min_refs: int) -> str:
    """Which of a person's photos a photo of condition ``cond`` is compared with: its own condition when the person
    has ``min_refs`` others of it, else every other photo (``any``)."""
    others = len(own[cond]) - 1
    return cond if others >= min_refs else "any"


def comparison(cond: str, ref: str) -> str:
    """The calibration key of a photo-to-person comparison, e.g. ``masked~masked`` or ``unmasked~any``."""
    return f"{cond}~{ref}"


def reference_rows(own: dict[str, np.ndarray], ref: str) -> np.ndarray:
    """A person's photos of condition ``ref`` (``any``: all of them)."""
    return np.sort(np.concatenate([own[UNMASKED], own[MASKED]])) if ref == "any" else own[ref]




def person_vectors(embeddings: np.ndarray, index: PersonIndex, condition: str = UNMASKED) -> tuple[list[str], np.ndarray, list[int]]:
    """Per person with photos of ``condition`` (``any``: all): their mean embedding and the row of the photo nearest it.

    Returns (persons, vectors (P x D), representative row per person) for person-level matching.
    """
    persons, vecs, reps = [], [], []
    for p in index.persons:
        rows = reference_rows(index.rows[p], condition) if condition != "any" else index.all_rows(p)
        if len(rows) == 0:
            continue
        v = embeddings[rows].mean(axis=0)
        persons.append(p)
        vecs.append(v)
        reps.append(int(rows[np.argmin(np.linalg.norm(embeddings[rows] - v, axis=1))]))
    d = embeddings.shape[1] if embeddings.ndim == 2 else 0
    return persons, np.asarray(vecs, np.float64).reshape(-1, d), reps
