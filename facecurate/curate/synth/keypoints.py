"""Keypoints of each source face for drawing masks: decode, skip duplicates, pad the tight chip, detect, keep the subject.

The subject is chosen by the same rule as `crop` (``curate.crop.subject.pick_subject``). Only the
keypoints and box of each face are kept (``FaceRecord``); the image is decoded again when rendered.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass

import cv2
import numpy as np

from ..crop.subject import pick_subject
from ..decode import BadImage, read_rgb
from .dedup import Deduper, content_key, signatures
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


@dataclass
class FaceRecord:
    """What the keypoint pass found for one source face: ``status`` ok | no_keypoints | duplicate | unreadable."""

    pos: int  # the person's place in the draw order
    person: str
    src: int  # index into the sources
    status: str
    reason: str = ""
    keypoints: np.ndarray | None = None  # (4, 2) in the source image
    box: np.ndarray | None = None  # (4,)
    phash: int = 0  # signature of a decoded face (kept faces are what later faces are checked against)
    thumb: bytes = b""
    key: str = ""


def _decode(src: FaceSource) -> tuple[np.ndarray | None, str]:
    try:
        return (src.image if src.image is not None else read_rgb(src.path)), ""
    except BadImage as e:
        return None, str(e)


def scan_people(people: Sequence[tuple[int, str]], by_person: Mapping[str, list[int]], sources: Sequence[FaceSource],
                det, dedup: Deduper | None, pool: Executor | None = None) -> list[FaceRecord]:
    """Decode, deduplicate (against ``dedup``'s kept faces, which it then extends) and detect the faces of ``people``
    ((draw position, name) pairs), in that order; one record per source face."""
    jobs = [(pos, name, k) for pos, name in people for k in by_person[name]]
    decoded = list((pool.map if pool else map)(lambda j: _decode(sources[j[2]]), jobs))
    ok = [i for i, (img, _) in enumerate(decoded) if img is not None]
    records = [FaceRecord(pos, name, k, "unreadable", f"{why}; skipped") for (pos, name, k), (_, why) in zip(jobs, decoded)]
    if dedup is not None and ok:
        hashes, thumbs = signatures([decoded[i][0] for i in ok])
        keys = list((pool.map if pool else map)(lambda i: content_key(sources[jobs[i][2]].path, sources[jobs[i][2]].image), ok))
        fresh = []
        for i, h, t, key in zip(ok, hashes, thumbs, keys):
            r = records[i]
            r.phash, r.thumb, r.key = int(h), t.tobytes(), key
            why = dedup.check(key, h, t)
            if why is None:
                dedup.add(sources[r.src].path, key, h, t)
                fresh.append(i)
            else:
                r.status, r.reason = "duplicate", f"{why}; skipped"
        ok = fresh
    found = find_keypoints([decoded[i][0] for i in ok], det) if ok else []
    for i, kb in zip(ok, found):
        r = records[i]
        if kb is None:
            r.status, r.reason = "no_keypoints", "no face keypoints found; skipped"
        else:
            r.status, r.reason, r.keypoints, r.box = "ok", "", kb[0], kb[1]
    return records
