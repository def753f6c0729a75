"""The person's mask in a crop: a segmenter's probabilities made safe around the face (pure, OpenCV on arrays).

A selfie segmenter alone erases masked faces (the mask reads as background) and leaves blotches of
wall beside the cheek. The face is known here, so it is foreground by construction: the face box
and an ellipse grown to the hairline and the chin/mask are always kept, the neck and shoulders below
get a prior, then the mask is cleaned: small specks and holes go, and only the part connected to
the face stays. Edges are feathered outwards a little so the fill blends.
"""
from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

# Sizes in face widths, picked with bench/background_quality.py against synth's true person masks (BENCHMARKS.md):
# a wider ellipse (0.85) kept 40% more wall beside the head for a few face pixels more.
HAIR = 0.30        # the ellipse reaches this far above the box (hair line, forehead)
CHIN = 0.20        # ... and this far below a square face (chin, the mask's lower edge)
SIDES = 0.60       # half-width of the ellipse (cheeks, the mask's ear loops)
BOX_PAD = 0.10     # the box kept as it is, grown by this much left, right and above ...
BOX_PAD_BELOW = 0.30  # ... and this much below (jaw corners, a masked face's box often stops at the nose)
SHOULDER_PRIOR = 0.35  # probability added below the chin (neck, shoulders) before the 0.5 cut


def face_regions(shape: tuple[int, int], face: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """(protected, shoulders) boolean masks of an H x W crop for a face box x1, y1, x2, y2 in crop pixels.

    protected = the face box (grown by BOX_PAD, BOX_PAD_BELOW) and the grown face ellipse; shoulders = a trapezoid
    from the chin widening to the crop's bottom edge. A masked face's box often stops at the nose, so the face
    counts as at least as tall as it is wide.
    """
    h, w = shape
    x1, y1, x2, y2 = (float(v) for v in face)
    fw = max(x2 - x1, 1.0)
    fh = max(y2 - y1, fw)
    top, bottom = y1 - HAIR * fw, y1 + fh + CHIN * fw
    protected = np.zeros((h, w), np.uint8)
    centre = (int(round((x1 + x2) / 2 * 16)), int(round((top + bottom) / 2 * 16)))
    axes = (int(round(SIDES * fw * 16)), int(round((bottom - top) / 2 * 16)))
    cv2.ellipse(protected, centre, axes, 0, 0, 360, 1, -1, cv2.LINE_8, 4)
    pad, below = BOX_PAD * fw, BOX_PAD_BELOW * fw
    bx1, by1 = int(np.floor(max(x1 - pad, 0))), int(np.floor(max(y1 - pad, 0)))
    bx2, by2 = int(np.ceil(min(x2 + pad, w))), int(np.ceil(min(y1 + fh + below, h)))
    protected[by1:by2, bx1:bx2] = 1
    cx, chin = (x1 + x2) / 2, y1 + fh
    trapezoid = np.array([[cx - 0.4 * fw, chin], [cx + 0.4 * fw, chin], [cx + 1.3 * fw, h], [cx - 1.3 * fw, h]])
    shoulders = np.zeros((h, w), np.uint8)
    cv2.fillPoly(shoulders, [np.round(trapezoid).astype(np.int32)], 1)
    return protected.astype(bool), shoulders.astype(bool)


def _fill_holes(mask: np.ndarray) -> np.ndarray:
    """``mask`` with every background region not connected to the crop's border filled in."""
    h, w = mask.shape
    flood = np.zeros((h + 2, w + 2), np.uint8)
    flood[1:-1, 1:-1] = mask
    cv2.floodFill(flood, None, (0, 0), 2)  # the padded border connects every outside region
    return (flood[1:-1, 1:-1] != 2)


def protect_face(prob: np.ndarray, face: Sequence[float] | None, feather: float = 1.2) -> np.ndarray:
    """A segmenter's person probability (H x W, 0..1) -> the alpha to composite with, face kept by construction.

    Without a ``face`` box the probabilities are only cleaned (specks, holes) and feathered.
    """
    prob = np.clip(np.asarray(prob, dtype=np.float32), 0, 1)
    h, w = prob.shape
    k = max(3, int(round(0.03 * min(h, w))) | 1)  # odd kernel, ~3% of the crop
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
    if face is not None:
        protected, shoulders = face_regions((h, w), face)
        prob = np.where(shoulders, 1 - (1 - prob) * (1 - SHOULDER_PRIOR), prob)
        fg = (prob >= 0.5) | protected
    else:
        protected = np.zeros((h, w), bool)
        fg = prob >= 0.5
    fg = cv2.morphologyEx(fg.astype(np.uint8), cv2.MORPH_OPEN, kernel)
    fg = cv2.morphologyEx(fg, cv2.MORPH_CLOSE, kernel).astype(bool) | protected
    n, labels = cv2.connectedComponents(fg.astype(np.uint8), connectivity=8)
    if n > 2:  # keep what touches the face (else the largest part)
        touching = np.unique(labels[protected & fg]) if protected.any() else np.array([], int)
        touching = touching[touching > 0]
        if not len(touching):
            sizes = np.bincount(labels.ravel(), minlength=n)
            sizes[0] = 0
            touching = np.array([int(np.argmax(sizes))])
        fg = np.isin(labels, touching)
    fg = _fill_holes(fg.astype(np.uint8)).astype(np.float32)
    # feathered outwards only: the person's own edge pixels stay whole, the fill fades in beyond them
    alpha = np.maximum(cv2.GaussianBlur(fg, (0, 0), feather), fg) if feather > 0 else fg
    alpha[protected] = 1.0
    return np.clip(alpha, 0.0, 1.0)


def crop_box(face: Sequence[float], region: Sequence[float], out_hw: tuple[int, int]) -> tuple[float, float, float, float]:
    """A face box in photo pixels -> the same box in the pixels of the crop cut from ``region`` at ``out_hw``."""
    rx1, ry1, rx2, ry2 = (float(v) for v in region)
    oh, ow = out_hw
    sx, sy = ow / max(rx2 - rx1, 1e-9), oh / max(ry2 - ry1, 1e-9)
    x1, y1, x2, y2 = (float(v) for v in face)
    return (x1 - rx1) * sx, (y1 - ry1) * sy, (x2 - rx1) * sx, (y2 - ry1) * sy
