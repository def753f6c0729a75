"""Face box -> head-and-shoulders crop region of fixed aspect, and cutting that region out of a photo.

Margins are measured in face widths, because the width of a detected box is reliable while its
height is not: on masked faces the detector's box often stops at the nose. The crop's lower edge
therefore treats the face as at least as tall as it is wide before adding the chin/mask margin.
Regions are floats in original-photo pixels and may reach past the photo's edge (that part is padded).
"""
from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

#: Default margins (top, side, bottom) in face widths: room for hair above, ears/hair at the sides,
#: chin, mask and neck below.
DEFAULT_MARGINS = (0.7, 0.5, 0.55)
EDGES = ("shift", "pad")
PAD_VALUES = {"gray": 128, "black": 0}


def parse_margins(text: str | Sequence[float]) -> tuple[float, float, float]:
    """Parse ``"0.7,0.5,0.55"`` (top, side, bottom in face widths) into three non-negative floats."""
    if isinstance(text, str):
        try:
            vals = tuple(float(p) for p in text.split(",") if p.strip())
        except ValueError as e:
            raise ValueError(f"margins must be three numbers top,side,bottom like 0.7,0.5,0.55, got {text!r}") from e
    else:
        vals = tuple(float(v) for v in text)
    if len(vals) != 3 or any(not np.isfinite(v) or v < 0 or v > 10 for v in vals):
        raise ValueError(f"margins must be three numbers 0..10 (top,side,bottom in face widths), got {text!r}")
    return vals  # type: ignore[return-value]


def expand_box(face: Sequence[float], margins: Sequence[float] = DEFAULT_MARGINS, aspect: float = 0.75) -> tuple[float, float, float, float]:
    """The head-and-shoulders region (x1, y1, x2, y2) of width/height ``aspect`` around face box ``face``.

    Sides get ``side`` face widths, the top ``top`` face widths above the box; the bottom lies
    ``bottom`` face widths below ``max(box bottom, box top + face width)``. The region is then
    widened about its centre, or lengthened downwards (neck, shoulders), to reach ``aspect``.
    """
    x1, y1, x2, y2 = (float(v) for v in face)
    top, side, bottom = margins
    w = max(x2 - x1, 1.0)
    h = max(y2 - y1, 1.0)
    rx1, rx2 = x1 - side * w, x2 + side * w
    ry1 = y1 - top * w
    ry2 = y1 + max(h, w) + bottom * w
    rw, rh = rx2 - rx1, ry2 - ry1
    if rw / rh < aspect:
        cx, rw = (rx1 + rx2) / 2, rh * aspect
        rx1, rx2 = cx - rw / 2, cx + rw / 2
    else:
        ry2 = ry1 + rw / aspect
    return rx1, ry1, rx2, ry2


def place_region(region: Sequence[float], width: int, height: int, edge: str = "shift") -> tuple[float, float, float, float]:
    """Fit ``region`` to a ``width`` x ``height`` photo without changing its size.

    ``edge="shift"``: along each axis, slide the region inside the photo when it fits there, or centre
    it on the photo when it is larger (the overflow is padded); a face inside the region stays inside.
    ``edge="pad"``: leave the region where it is; whatever lies outside the photo is padded.
    """
    if edge not in EDGES:
        raise ValueError(f"edge must be one of {', '.join(EDGES)}, got {edge!r}")
    x1, y1, x2, y2 = (float(v) for v in region)
    if edge == "pad":
        return x1, y1, x2, y2

    def fit(a: float, b: float, size: float) -> tuple[float, float]:
        span = b - a
        if span >= size:
            a = (size - span) / 2
        elif a < 0:
            a = 0.0
        elif b > size:
            a = size - span
        return a, a + span

    x1, x2 = fit(x1, x2, width)
    y1, y2 = fit(y1, y2, height)
    return x1, y1, x2, y2


def crop_region(face: Sequence[float], width: int, height: int, margins: Sequence[float] = DEFAULT_MARGINS,
                aspect: float = 0.75, edge: str = "shift") -> tuple[float, float, float, float]:
    """Face box -> the crop region in a ``width`` x ``height`` photo: ``expand_box`` then ``place_region``."""
    return place_region(expand_box(face, margins, aspect), width, height, edge)


def output_shape(size: int, aspect: float) -> tuple[int, int]:
    """(height, width) of a crop: ``size`` high, ``round(size * aspect)`` wide."""
    return int(size), max(1, int(round(size * aspect)))


def cut(image: np.ndarray, region: Sequence[float], out_hw: tuple[int, int], pad: int | str = 128) -> np.ndarray:
    """Cut ``region`` out of ``image`` (H x W x 3 uint8), padding outside the photo, resized to ``out_hw``.

    ``pad`` is a grey level 0..255, "gray", "black" or "replicate" (repeat the edge pixels).
    Downscaling uses area averaging, upscaling bilinear interpolation.
    """
    ih, iw = image.shape[:2]
    x1, y1, x2, y2 = (int(round(v)) for v in region)
    x2, y2 = max(x2, x1 + 1), max(y2, y1 + 1)
    cx1, cy1, cx2, cy2 = max(x1, 0), max(y1, 0), min(x2, iw), min(y2, ih)
    if cx1 >= cx2 or cy1 >= cy2:  # region entirely outside the photo
        inner = np.zeros((0, 0, 3), np.uint8)
    else:
        inner = image[cy1:cy2, cx1:cx2]
    borders = (cy1 - y1, y2 - cy2, cx1 - x1, x2 - cx2)
    if any(borders):
        if inner.size == 0:
            value = 128 if pad == "replicate" else PAD_VALUES.get(pad, pad)
            patch = np.full((y2 - y1, x2 - x1, 3), value, np.uint8)
        elif pad == "replicate":
            patch = cv2.copyMakeBorder(inner, *borders, cv2.BORDER_REPLICATE)
        else:
            value = int(PAD_VALUES.get(pad, pad))  # type: ignore[arg-type]
            patch = cv2.copyMakeBorder(inner, *borders, cv2.BORDER_CONSTANT, value=(value, value, value))
    else:
        patch = inner
    oh, ow = out_hw
    interp = cv2.INTER_AREA if patch.shape[0] > oh else cv2.INTER_LINEAR
    return np.ascontiguousarray(cv2.resize(np.ascontiguousarray(patch), (ow, oh), interpolation=interp))


def contains(outer: Sequence[float], inner: Sequence[float], tol: float = 0.0) -> bool:
    """True when box ``inner`` lies inside box ``outer`` (both x1, y1, x2, y2), allowing ``tol`` pixels."""
    return (outer[0] <= inner[0] + tol and outer[1] <= inner[1] + tol
            and outer[2] >= inner[2] - tol and outer[3] >= inner[3] - tol)
