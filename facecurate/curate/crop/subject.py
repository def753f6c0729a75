"""Pick the face a person photo is about when a detector finds several: large and central, not the first.

A detector's first face is its most confident one, which can be a sharp bystander or a poster on the
wall. The subject of a portrait fills much of the frame near its centre, so faces are ranked by
``score * sqrt(relative area) * exp(-d^2 / (2 sigma^2))`` with ``d`` the face centre's distance
from the photo centre in photo widths/heights.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def subject_scores(boxes: np.ndarray, scores: Sequence[float], width: int, height: int,
                   sigma: float = 0.3) -> np.ndarray:
    """Rank value of each face (k x 4 boxes x1, y1, x2, y2 in pixels); higher is more likely the subject."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    if len(boxes) == 0:
        return np.zeros(0)
    w = np.clip(boxes[:, 2] - boxes[:, 0], 0, None)
    h = np.clip(boxes[:, 3] - boxes[:, 1], 0, None)
    area = np.sqrt(w * h / float(width * height))
    dx = ((boxes[:, 0] + boxes[:, 2]) / 2 - width / 2) / width
    dy = ((boxes[:, 1] + boxes[:, 3]) / 2 - height / 2) / height
    central = np.exp(-(dx ** 2 + dy ** 2) / (2 * sigma ** 2))
    conf = np.clip(np.asarray(scores, dtype=np.float64).reshape(-1), 0, 1)
    return conf * area * central


def pick_subject(boxes: np.ndarray, scores: Sequence[float], width: int, height: int, sigma: float = 0.3) -> int | None:
    """Index of the subject's face among ``boxes`` (None when there is none); ties go to the earlier face."""
    ranks = subject_scores(boxes, scores, width, height, sigma)
    if len(ranks) == 0:
        return None
    return int(np.argmax(ranks))
