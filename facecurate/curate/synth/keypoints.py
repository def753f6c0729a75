"""Keypoints of each source face for drawing masks: pad the tight chip, detect, keep the subject's face.

The subject is chosen by the same rule as `crop` (``curate.crop.subject.pick_subject``).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import cv2
import numpy as np

from ..crop.subject import pick_subject
from ..decode import BadImage, read_rgb
from ..progress import Progress, Steps
from ..readers import Problem
from .sources import FaceSource


def pad_for_detection(image: np.ndarray, fraction: float = 0.25) -> tuple[np.ndarray, int]:
    """Pad a tight face crop with its border colour so a detector sees the whole face; returns (image, pad)."""
    h, w = image.shape[:2]
    pad = int(round(fraction * max(h, w)))
    border = np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]]).reshape(-1, 3)
    colour = [int(c) for c in np.median(border, axis=0)]
    return cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=colour), pad


def find_keypoints(images: Sequence[np.ndarray], detector, pad_fraction: float = 0.25) -> list[tuple[np.ndarray, np.ndarray] | None]:
    """(keypoints (4, 2), box (4,)) of the subject's face in each image, or None; images are padded first."""
    padded = [pad_for_detection(im, pad_fraction) for im in images]
    results = detector.detect([p for p, _ in padded])
    out: list[tuple[np.ndarray, np.ndarray] | None] = []
    for (img, pad), faces in zip(padded, results):
        k = pick_subject(np.array([f.box for f in faces]), [f.score for f in faces], img.shape[1], img.shape[0])
        if k is None:
            out.append(None)
            continue
        f = faces[k]
        kp = np.asarray(f.keypoints, np.float32).reshape(4, 2) - pad
        d = float(np.linalg.norm(kp[1] - kp[0]))
        out.append(None if not np.isfinite(kp).all() or d < 8 else (kp, np.asarray(f.box, np.float32) - pad))
    return out


def detect_people(names: Sequence[str], order: Sequence[int], by_person: Mapping[str, list[FaceSource]], wanted: int,
                  det, skipped: list[Problem], progress: Progress | None = None, batch: int = 16) -> list[tuple[str, list]]:
    """Walk the draw order in batches, detect keypoints, keep the first ``wanted`` people with a usable face."""
    accepted: list[tuple[str, list]] = []
    steps = Steps(progress, "detect keypoints", wanted)
    pos = 0
    while len(accepted) < wanted and pos < len(order):
        chunk = [names[i] for i in order[pos:pos + batch]]
        pos += len(chunk)
        items: list[tuple[str, FaceSource, np.ndarray]] = []
        for name in chunk:
            for s in by_person[name]:
                try:
                    img = s.image if s.image is not None else read_rgb(s.path)
                except BadImage as e:
                    skipped.append(Problem(s.path, f"{e}; skipped"))
                    continue
                items.append((name, s, img))
        found = find_keypoints([img for _, _, img in items], det) if items else []
        got: dict[str, list] = {}
        for (name, s, img), kb in zip(items, found):
            if kb is None:
                skipped.append(Problem(s.path, "no face keypoints found; skipped"))
            else:
                got.setdefault(name, []).append((img, kb[0], kb[1]))
        for name in chunk:
            if name in got and len(accepted) < wanted:
                accepted.append((name, got[name]))
                steps.advance()
    return accepted
