"""What every detector returns and the pure box arithmetic they share: ``Face``, IoU, calibration, fusion, NMS.

A ``Face`` is a tight box in input pixels, moved onto one box convention whatever the detector
(``BOX_CALIBRATION``), a score 0..1 and four keypoints. ``Detector`` is the interface all detectors share.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError

# Per-source box correction (dx1, dy1, dx2, dy2 as fractions of the box's width/height) mapping every
# detector's box onto one convention: hand-annotated tight face boxes (median offsets to the facemask-voc
# annotations over ~300 matched faces, stable within 0.02 between halves of the set; measured by
# bench/detect_recall.py, see docs/crop.md).
BOX_CALIBRATION: dict[str, tuple[float, float, float, float]] = {
    "mp-full": (0.03, 0.08, 0.01, 0.15),
    "mp-short": (0.04, 0.055, -0.025, 0.08),
    "mtcnn": (-0.005, 0.17, 0.05, 0.12),
}


@dataclass(frozen=True)
class Face:
    """One detected face: ``box`` (x1, y1, x2, y2) in input-image pixels, ``score`` 0..1, ``keypoints``
    (4, 2) float32 x,y of the eye on the image's left, the eye on the image's right, nose tip, mouth centre."""

    box: tuple[float, float, float, float]
    score: float
    keypoints: np.ndarray = field(compare=False, repr=False)
    source: str = ""

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]


def default_min_face(height: int, width: int, fraction: float = 0.1, floor: int = 20) -> int:
    """Smallest face (px) searched when ``min_face`` is None: ``fraction`` of the shorter side, at least ``floor``.

    For a 384 x 512 portrait that is 38 px, far below the subject's face and 2-3x cheaper than MTCNN's 20.
    """
    return int(max(floor, round(min(height, width) * fraction)))


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix (len(a) x len(b)) of x1,y1,x2,y2 boxes."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    ix = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    iy = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    inter = ix * iy
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


def calibrate_box(box: Sequence[float], source: str) -> tuple[float, float, float, float]:
    """``box`` moved onto the common tight-face convention with ``BOX_CALIBRATION[source]`` (unchanged if unknown)."""
    x1, y1, x2, y2 = (float(v) for v in box)
    c = BOX_CALIBRATION.get(source)
    if c is None:
        return x1, y1, x2, y2
    w, h = x2 - x1, y2 - y1
    return x1 + c[0] * w, y1 + c[1] * h, x2 + c[2] * w, y2 + c[3] * h


def make_face(box: Sequence[float], score: float, keypoints: np.ndarray, source: str, height: int, width: int,
              calibrate: bool = True) -> Face:
    """A ``Face`` with the box calibrated (``calibrate_box``), box and keypoints clamped to the image, and the
    two eyes ordered left-to-right in the image."""
    x1, y1, x2, y2 = calibrate_box(box, source) if calibrate else tuple(float(v) for v in box)
    x1, x2 = min(max(x1, 0.0), width), min(max(x2, 0.0), width)
    y1, y2 = min(max(y1, 0.0), height), min(max(y2, 0.0), height)
    kp = np.asarray(keypoints, dtype=np.float32).reshape(4, 2).copy()
    if kp[0, 0] > kp[1, 0]:
        kp[[0, 1]] = kp[[1, 0]]
    kp[:, 0] = np.clip(kp[:, 0], 0, width)
    kp[:, 1] = np.clip(kp[:, 1], 0, height)
    return Face((x1, y1, x2, y2), float(min(max(score, 0.0), 1.0)), kp, source)


def fuse_faces(groups: Sequence[Sequence[Face]], iou: float = 0.4) -> list[Face]:
    """Fuse faces found by several detectors in one photo (weighted box fusion).

    Faces overlapping by ``iou`` or more form one cluster; its box and keypoints are the score-weighted
    mean, its score ``1 - prod(1 - s)`` over detectors (agreement raises confidence).
    """
    faces = sorted((f for g in groups for f in g), key=lambda f: -f.score)
    clusters: list[list[Face]] = []
    for f in faces:
        best, best_iou = None, iou
        for c in clusters:
            o = float(box_iou(np.array([f.box]), np.array([c[0].box]))[0, 0])
            if o >= best_iou:
                best, best_iou = c, o
        if best is None:
            clusters.append([f])
        else:
            best.append(f)
    out = []
    for c in clusters:
        w = np.array([f.score for f in c], dtype=np.float64) + 1e-6
        box = tuple(float(v) for v in (np.array([f.box for f in c]) * w[:, None]).sum(0) / w.sum())
        kp = (np.stack([f.keypoints for f in c]) * w[:, None, None]).sum(0) / w.sum()
        best_by_source: dict[str, float] = {}
        for f in c:
            best_by_source[f.source] = max(best_by_source.get(f.source, 0.0), f.score)
        score = 1.0 - float(np.prod([1.0 - s for s in best_by_source.values()]))
        out.append(Face(box, score, kp.astype(np.float32), "+".join(sorted(best_by_source))))
    return sorted(out, key=lambda f: -f.score)


def nms_faces(faces: Sequence[Face], iou: float = 0.3) -> list[Face]:
    """Greedy non-maximum suppression on ``Face`` records, highest score kept."""
    kept: list[Face] = []
    for f in sorted(faces, key=lambda f: -f.score):
        if not kept or box_iou(np.array([f.box]), np.array([k.box for k in kept])).max() < iou:
            kept.append(f)
    return kept


def check_images(images: Sequence[np.ndarray]) -> None:
    """InputError unless every image is an H x W x 3 uint8 RGB array."""
    for i, im in enumerate(images):
        if not (isinstance(im, np.ndarray) and im.dtype == np.uint8 and im.ndim == 3 and im.shape[2] == 3):
            shape = getattr(im, "shape", None)
            raise InputError(f"image {i}: expected an H x W x 3 uint8 RGB array, got {type(im).__name__} {shape}")


class Detector(ABC):
    """A face detector: ``detect(images)`` -> per image a list of ``Face`` sorted by score; a context manager.

    ``detect_quick`` + ``is_clear`` let a caller look cheaply first and decide itself where to look
    harder (`crop` uses the person's other photos before paying for ``detect``); a detector without a
    cheap first look answers ``detect`` and calls every result clear.
    """

    name: str = "detector"

    @abstractmethod
    def detect(self, images: Sequence[np.ndarray]) -> list[list[Face]]:
        """Faces in each RGB uint8 H x W x 3 image, highest score first."""

    def detect_quick(self, images: Sequence[np.ndarray]) -> list[list[Face]]:
        """The cheap first look (the same as ``detect`` unless the detector has one)."""
        return self.detect(images)

    def is_clear(self, faces: Sequence[Face], height: int, width: int) -> bool:
        """Whether ``detect`` would add nothing to these ``detect_quick`` faces of a ``height`` x ``width`` photo."""
        return True

    def prepare(self) -> None:
        """Start loading what ``detect`` needs beyond ``detect_quick`` (in the background; a no-op by default): a caller
        that sees a photo in doubt calls it, so the slower detectors are ready when the full look comes."""

    def close(self) -> None:
        """Release native resources (LiteRT interpreters, MediaPipe graphs); idempotent."""

    def __enter__(self) -> "Detector":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
