"""What a photo's pixels say about each candidate face: its focus, and whether a neck and shoulders in focus lie below it.

A face behind the subject is softer than the subject's own (the lens focuses on the subject), and below the
subject's face sits their own neck and shoulders, as sharp as the face. Both are measured as contrast-normalised
sharpness, ``mean |Laplacian| / std(intensity)`` over a box, divided by the same over the whole photo, so a pale,
low-contrast face is not taken for a blurred one. Box sums come from integral images: a few ms per photo, whatever
the number of candidates. Our own code: OpenCV gives the Laplacian and integral images, no library scores a box.
"""
from __future__ import annotations

import cv2
import numpy as np

WORK_SIDE = 256  # the photo is measured at most this large (longer side): the cue is a ratio, the size barely matters


class Sharpness:
    """Contrast-normalised sharpness of any box of one photo, from its integral images (``of`` is O(1) per box)."""

    def __init__(self, image: np.ndarray, work_side: int = WORK_SIDE) -> None:
        gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if image.ndim == 3 else image
        h, w = gray.shape
        self.scale = min(1.0, work_side / max(h, w))
        if self.scale < 1.0:
            gray = cv2.resize(gray, (max(1, round(w * self.scale)), max(1, round(h * self.scale))), interpolation=cv2.INTER_AREA)
        g = gray.astype(np.float32)
        lap = np.abs(cv2.Laplacian(g, cv2.CV_32F, ksize=1))
        self.sum_lap = cv2.integral(lap, sdepth=cv2.CV_64F)
        self.sum_i, self.sum_i2 = cv2.integral2(g, sdepth=cv2.CV_64F, sqdepth=cv2.CV_64F)
        self.shape = g.shape
        self.photo = self._raw(0, 0, g.shape[1], g.shape[0])

    def _raw(self, x1: int, y1: int, x2: int, y2: int) -> float:
        n = (x2 - x1) * (y2 - y1)
        if n < 4:
            return float("nan")
        box = lambda s: s[y2, x2] - s[y1, x2] - s[y2, x1] + s[y1, x1]
        mean = box(self.sum_i) / n
        std = np.sqrt(max(box(self.sum_i2) / n - mean * mean, 0.0)) + 2.0  # + 2 grey levels: flat areas stay finite
        return float(box(self.sum_lap) / n / std)

    def of(self, box) -> float:
        """Sharpness of ``box`` (x1, y1, x2, y2 in photo pixels) relative to the whole photo's; NaN when it is empty."""
        h, w = self.shape
        x1, y1, x2, y2 = (float(v) * self.scale for v in box)
        x1, x2 = int(np.clip(np.floor(x1), 0, w)), int(np.clip(np.ceil(x2), 0, w))
        y1, y2 = int(np.clip(np.floor(y1), 0, h)), int(np.clip(np.ceil(y2), 0, h))
        return self._raw(x1, y1, x2, y2) / max(self.photo, 1e-9)


def below_box(box, width: float, height: float) -> tuple[float, float, float, float]:
    """Where a face's neck and shoulders are: a band as wide as 1.6 faces, from just below the chin one face height down."""
    x1, y1, x2, y2 = (float(v) for v in box)
    fw, fh = x2 - x1, max(y2 - y1, x2 - x1)
    cx = (x1 + x2) / 2
    top = y1 + fh * 1.05
    return (max(cx - 0.8 * fw, 0.0), min(top, height), min(cx + 0.8 * fw, width), min(top + fh, height))


def image_cues(image: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(focus, below) per box (k x 4, photo pixels): the face's and the band below it's sharpness relative to the photo's.

    ``below`` is NaN where the band lies outside the photo (a face at the bottom edge: no say).
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    if not len(boxes):
        return np.zeros(0), np.zeros(0)
    s = Sharpness(image)
    h, w = image.shape[:2]
    focus = np.array([s.of(b) for b in boxes])
    below = np.array([s.of(below_box(b, w, h)) for b in boxes])
    return focus, below
