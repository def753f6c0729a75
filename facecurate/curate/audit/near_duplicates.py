"""Near-duplicate photos filed under different people with different labels (one person filed twice).

Pure on arrays: a 64-bit DCT perceptual hash finds candidate pairs by Hamming distance, and the
correlation of small normalised grey thumbnails confirms them (masked faces share a lot of layout).
"""
from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import pandas as pd
from scipy.fft import dctn

from ..labels import DEFAULT_AGE_BINS, class_names
from .flags import FLAG_COLUMNS, empty_flags

THUMB = 16


def _grey(images: np.ndarray, side: int) -> np.ndarray:
    """(N, H, W, 3) uint8 -> (N, side, side) float32 grey, area-resampled."""
    out = np.empty((len(images), side, side), np.float32)
    for i, im in enumerate(images):
        g = cv2.cvtColor(np.ascontiguousarray(im), cv2.COLOR_RGB2GRAY)
        out[i] = cv2.resize(g, (side, side), interpolation=cv2.INTER_AREA)
    return out


def perceptual_hash(images: np.ndarray, chunk: int = 1024) -> np.ndarray:
    """64-bit DCT perceptual hash per image (pHash: 8x8 low frequencies of a 32x32 grey image vs their median)."""
    hashes = np.zeros(len(images), np.uint64)
    weights = (np.uint64(1) << np.arange(64, dtype=np.uint64))
    for s in range(0, len(images), chunk):
        low = dctn(_grey(images[s:s + chunk], 32), axes=(1, 2), norm="ortho")[:, :8, :8].reshape(-1, 64)
        med = np.median(low[:, 1:], axis=1, keepdims=True)
        hashes[s:s + chunk] = ((low > med).astype(np.uint64) * weights).sum(axis=1, dtype=np.uint64)
    return hashes


def thumbnails(images: np.ndarray, side: int = THUMB, chunk: int = 1024) -> np.ndarray:
    """Zero-mean, unit-norm grey thumbnails (N, side*side): a tiny embedding whose dot product is a correlation."""
    parts = []
    for s in range(0, len(images), chunk):
        t = _grey(images[s:s + chunk], side).reshape(-1, side * side)
        t -= t.mean(axis=1, keepdims=True)
        parts.append(t / np.maximum(np.linalg.norm(t, axis=1, keepdims=True), 1e-6))
    return np.concatenate(parts) if parts else np.zeros((0, side * side), np.float32)


def candidate_pairs(hashes: np.ndarray, groups: Sequence, max_distance: int = 8, block: int = 2048) -> np.ndarray:
    """Pairs (i, j, distance) with i < j, Hamming distance <= ``max_distance`` and different ``groups``."""
    groups = pd.factorize(pd.Series(list(groups)))[0]
    found = []
    for s in range(0, len(hashes), block):
        d = np.bitwise_count(hashes[s:s + block, None] ^ hashes[None, :])
        ii, jj = np.nonzero(d <= max_distance)
        ii += s
        keep = (ii < jj) & (groups[ii] != groups[jj])
        found.append(np.stack([ii[keep], jj[keep], d[ii[keep] - s, jj[keep]]], axis=1))
    return np.concatenate(found) if found else np.zeros((0, 3), np.int64)


def near_duplicate_flags(images: np.ndarray, manifest: pd.DataFrame, max_hash_distance: int = 4, min_corr: float = 0.97,
                         single_corr: float = 0.99, same_label: bool = False,
                         age_bins: Sequence[int] = DEFAULT_AGE_BINS) -> pd.DataFrame:
    """Flag pairs of people with near-identical photos and different labels (one flag per person per pair).

    Two people who share several matching photos are flagged at ``min_corr``; a pair sharing a single
    matching photo needs ``single_corr``, because two different people in the same mask, shirt and
    backdrop can look alike in one photo (seen on synthesised sets) while a copied photo is near-exact.

    ``images`` rows match ``manifest`` rows (``image_id``, ``person``, ``label``; a cache's memory map is read in
    chunks); rows with a non-empty ``error`` are skipped. ``same_label=True`` also reports duplicates whose labels
    agree (a leak across folds, not a label error).
    """
    manifest = manifest.reset_index(drop=True)
    if len(images) < 2:
        return empty_flags()
    hashes = perceptual_hash(images)
    persons = manifest["person"].astype(str).to_numpy()
    pairs = candidate_pairs(hashes, persons, max_distance=max_hash_distance)
    if "error" in manifest and len(pairs):  # an errored row's image is all zeros: never a duplicate
        bad = manifest["error"].fillna("").astype(str).to_numpy() != ""
        pairs = pairs[~(bad[pairs[:, 0]] | bad[pairs[:, 1]])]
    if not len(pairs):
        return empty_flags()
    emb = thumbnails(images)
    corr = np.einsum("ij,ij->i", emb[pairs[:, 0]], emb[pairs[:, 1]])
    labels = manifest["label"].to_numpy()
    ids = manifest["image_id"].astype(str).to_numpy()
    names = class_names(age_bins)
    matches: dict[tuple[str, str], list[tuple[float, int, int, int]]] = {}
    for (i, j, d), c in zip(pairs, corr):
        if c < min_corr:
            continue
        differ = pd.isna(labels[i]) or pd.isna(labels[j]) or int(labels[i]) != int(labels[j])
        if differ or same_label:
            matches.setdefault(tuple(sorted((persons[i], persons[j]))), []).append((float(c), int(i), int(j), int(d)))
    rows = []
    for found in matches.values():
        (c, i, j, d), n = max(found), len({i for _, i, _, _ in found})
        if n == 1 and c < single_corr:
            continue
        for a, b in ((i, j), (j, i)):
            la = names[int(labels[a])] if pd.notna(labels[a]) else "unlabelled"
            lb = names[int(labels[b])] if pd.notna(labels[b]) else "unlabelled"
            rows.append({"kind": "near_duplicate", "scope": "person", "person": persons[a], "image_id": ids[a],
                         "photo": str(manifest["photo"].iloc[a]) if "photo" in manifest else "", "field": "",
                         "given": None, "suggested": None, "score": round(c, 4), "threshold": min_corr, "confidence": "",
                         "reason": (f"{n} photo(s) nearly identical to person {persons[b]}'s (best: {ids[a]} ~ {ids[b]}, "
                                    f"hash distance {d}/64, correlation {c:.2f}); labelled {la} here, {lb} there")})
    return pd.DataFrame(rows, columns=FLAG_COLUMNS) if rows else empty_flags()
