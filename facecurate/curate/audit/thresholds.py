"""Per-class thresholds learned from the data (confident learning) and per-person pooling of photo probabilities.

Class j's threshold t_j is the average confidence in j of the items labelled j (cleanlab's confident
joint, Northcutt et al.); moving an item labelled i to j needs p_j to reach halfway between t_j and the
average p_j of the items labelled i (``pair_thresholds``). Pure functions on arrays.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

EPS = 1e-6


def class_thresholds(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per-class thresholds t_j = mean p_j over items labelled j (cleanlab's confident-joint thresholds).

    A class nobody is labelled with gets the mean self-confidence over all items.
    """
    k = probs.shape[1]
    self_conf = probs[np.arange(len(labels)), labels]
    overall = float(self_conf.mean()) if len(labels) else 0.5
    return np.array([probs[labels == j, j].mean() if np.any(labels == j) else overall for j in range(k)])


def pair_thresholds(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """(k, k) thresholds T[i, j] for moving an item labelled i to class j, learned from the data.

    T[i, j] is halfway between cleanlab's threshold t_j (mean p_j over items labelled j) and the mean p_j
    over items labelled i: the typical confidence in j of j's members vs of i's members. Unlike t_j alone
    (which half of the truly-j items fall below, so recall would be about 50%), the midpoint adapts to how
    well the model separates each pair of classes and to class imbalance.
    """
    k = probs.shape[1]
    t = class_thresholds(probs, labels)
    off = np.array([[probs[labels == i, j].mean() if np.any(labels == i) else 1.0 - t[j] for j in range(k)] for i in range(k)])
    out = (t[None, :] + off) / 2.0
    np.fill_diagonal(out, np.nan)
    return out


def confident_suggestion(probs: np.ndarray, labels: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Per item labelled i, the class j != i with the largest p_j - T[i, j] >= 0 that is also more probable than i, else -1."""
    t = thresholds[labels]  # (n, k): the thresholds that apply to each item's given label
    margin = np.where(np.isnan(t), -np.inf, probs - np.nan_to_num(t, nan=0.0))
    margin = np.where(probs > probs[np.arange(len(labels)), labels][:, None], margin, -np.inf)
    best = np.argmax(margin, axis=1)
    return np.where(margin[np.arange(len(labels)), best] >= 0, best, -1)


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
