"""Face boxes for photos where no face was found, from the boxes that were: never a hard-coded box.

Order: ``detected`` (the photo's own box) -> ``person`` (median box of the same person's detected
photos, relative to photo size) -> ``prior`` (median relative box of every detection in the data
set; when nothing at all was detected, ``centred_prior``: a square of 0.45 x the shorter photo side,
centred horizontally, its centre at 0.42 of the height, where a portrait's face sits).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

DETECTED, PERSON, PRIOR = "detected", "person", "prior"


def relative_boxes(boxes: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Pixel boxes (n x 4) / photo sizes (n x 2: width, height) -> boxes in 0..1 photo units."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    sizes = np.asarray(sizes, dtype=np.float64).reshape(-1, 2)
    return boxes / np.concatenate([sizes, sizes], axis=1)


def absolute_boxes(rel: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Inverse of ``relative_boxes``."""
    rel = np.asarray(rel, dtype=np.float64).reshape(-1, 4)
    sizes = np.asarray(sizes, dtype=np.float64).reshape(-1, 2)
    return rel * np.concatenate([sizes, sizes], axis=1)


def centred_prior(width: int, height: int) -> np.ndarray:
    """Relative face box for a photo of ``width`` x ``height`` when the data set has no detection at all."""
    side = 0.45 * min(width, height)
    cx, cy = width / 2, 0.42 * height
    box = np.array([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2])
    return box / np.array([width, height, width, height], dtype=np.float64)


def person_medians(rel: np.ndarray, persons: Sequence[str], detected: np.ndarray) -> dict[str, np.ndarray]:
    """Median relative box (4,) per person over that person's detected photos."""
    rel = np.asarray(rel, dtype=np.float64).reshape(-1, 4)
    detected = np.asarray(detected, dtype=bool)
    if not detected.any():
        return {}
    frame = pd.DataFrame(rel[detected], columns=["x1", "y1", "x2", "y2"])
    frame["person"] = np.asarray(persons, dtype=object)[detected]
    med = frame.groupby("person", sort=False)[["x1", "y1", "x2", "y2"]].median()
    return {str(p): row.to_numpy(dtype=np.float64) for p, row in med.iterrows()}


def dataset_prior(rel: np.ndarray, detected: np.ndarray) -> np.ndarray | None:
    """Median relative box (4,) over every detected photo; None when nothing was detected."""
    rel = np.asarray(rel, dtype=np.float64).reshape(-1, 4)
    detected = np.asarray(detected, dtype=bool)
    if not detected.any():
        return None
    return np.median(rel[detected], axis=0)


def assign_boxes(boxes: np.ndarray, sizes: np.ndarray, persons: Sequence[str], usable: np.ndarray | None = None,
                 use_person: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Fill in a face box for every usable photo: (boxes n x 4 in pixels, box_source per photo).

    ``boxes`` holds the detected box or NaN per photo; ``sizes`` the photo (width, height);
    ``usable`` False marks photos that could not be read (their box stays NaN, source "").
    ``use_person=False`` skips the person step (to measure what it adds).
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4).copy()
    sizes = np.asarray(sizes, dtype=np.float64).reshape(-1, 2)
    n = len(boxes)
    usable = np.ones(n, bool) if usable is None else np.asarray(usable, dtype=bool)
    detected = usable & np.isfinite(boxes).all(axis=1)
    source = np.full(n, "", dtype=object)
    source[detected] = DETECTED
    safe_sizes = np.where(sizes > 0, sizes, 1.0)
    rel = relative_boxes(np.where(np.isfinite(boxes), boxes, 0.0), safe_sizes)
    per_person = person_medians(rel, persons, detected) if use_person else {}
    prior = dataset_prior(rel, detected)
    persons = np.asarray(persons, dtype=object)
    for i in np.flatnonzero(usable & ~detected):
        box = per_person.get(str(persons[i]))
        if box is not None:
            source[i] = PERSON
        else:
            box = prior if prior is not None else centred_prior(*sizes[i])
            source[i] = PRIOR
        boxes[i] = absolute_boxes(box, sizes[i])[0]
    boxes[~usable] = np.nan
    return boxes, source
