"""Per-person pooling of photo probabilities: a person's photos share gender and age, so they are judged together."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

EPS = 1e-6


def pool_by_person(probs: np.ndarray, persons: Sequence[str], how: str = "mean") -> tuple[np.ndarray, np.ndarray]:
    """Pool photo probabilities per person: ``mean`` of probabilities or ``log`` (normalised geometric mean).

    Returns (person names in first-seen order, (n_people, k) pooled probabilities).
    """
    codes, names = pd.factorize(pd.Series(persons, dtype=str))
    n, k = len(names), probs.shape[1]
    src = np.log(np.clip(probs, EPS, 1.0)) if how == "log" else probs if how == "mean" else None
    if src is None:
        raise ValueError(f"pool must be 'mean' or 'log', got {how!r}")
    sums = np.zeros((n, k))
    np.add.at(sums, codes, src)
    counts = np.bincount(codes, minlength=n)[:, None]
    pooled = sums / counts
    if how == "log":
        pooled = np.exp(pooled - pooled.max(axis=1, keepdims=True))
    return np.asarray(names, dtype=object), pooled / pooled.sum(axis=1, keepdims=True)
