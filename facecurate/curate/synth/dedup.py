"""Skip duplicate source faces: byte-identical files, and near-identical faces (the same photo re-cropped or re-encoded).

UTKFace holds the same photo under several names, sometimes with different labels; synthesizing both
would put one face into two people (and across folds). Faces are checked in draw order against every
face kept before them, so the first one drawn is kept and each later copy is listed as its duplicate.

Near-identical = the 64-bit DCT perceptual hash of ``audit.near_duplicates`` (reused, not copied)
within ``MAX_DISTANCE`` bits *and* the correlation of its 16 x 16 grey thumbnails above
``min_correlation(distance)``. The thresholds were read off all 22,832 UTKFace faces in
../shared/data (utkface + utkface-large, every pair within 14 bits looked at by distance and
correlation band): at <= 4 bits every pair correlating >= 0.95 was the same photo; at 6 bits those
>= 0.964 were, those <= 0.96 were different people; at 8 bits only >= 0.975 was safe; at 10 bits
even 0.976 was two different photos of one person. Different people at 2 bits correlate <= 0.88.
The rule flags 1,064 pairs there (967 faces dropped). Cost: each face is compared with every kept
face by one vectorised XOR + popcount (23k x 23k / 2 pairs in about a second in total); the kept
faces' signatures take 8 + 1,024 bytes each.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..audit.near_duplicates import perceptual_hash, thumbnails
from ..checksums import file_hash, hash_bytes

MAX_DISTANCE = 8  # pHash bits


def min_correlation(distance: int | np.ndarray) -> np.ndarray:
    """Thumbnail correlation a pair at ``distance`` hash bits needs to count as near-identical: 0.95 up to 4 bits,
    rising to 0.975 at 8."""
    return 0.95 + np.maximum(0, np.asarray(distance, np.int64) - 4) * 0.00625


def signatures(images: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(pHash uint64 (N,), thumbnails float32 (N, 256)) of RGB images of any sizes."""
    if not len(images):
        return np.zeros(0, np.uint64), np.zeros((0, 256), np.float32)
    return perceptual_hash(images), thumbnails(images).astype(np.float32)


def content_key(path: str | None, image: np.ndarray | None) -> str:
    """Identity of a face's bytes: the file's xxh3 hash, or the in-memory array's (with its shape)."""
    if image is not None:
        return f"array:{image.shape}:{hash_bytes(image)}"
    return f"file:{file_hash(path)}"


class Deduper:
    """The faces kept so far, in order; ``check`` says whether a new face duplicates one of them."""

    def __init__(self, max_distance: int = MAX_DISTANCE) -> None:
        self.max_distance = max_distance
        self.names: list[str] = []
        self.keys: dict[str, int] = {}
        self._hashes = np.zeros(1024, np.uint64)
        self._thumbs = np.zeros((1024, 256), np.float32)

    def __len__(self) -> int:
        return len(self.names)

    def check(self, key: str, phash: np.uint64, thumb: np.ndarray) -> str | None:
        """Why the face duplicates a kept one ("duplicate of <name> (...)"), or None when it is new."""
        if key in self.keys:
            return f"duplicate of {self.names[self.keys[key]]} (identical bytes)"
        n = len(self.names)
        if not n:
            return None
        dist = np.bitwise_count(self._hashes[:n] ^ np.uint64(phash)).astype(np.int64)
        cand = np.nonzero(dist <= self.max_distance)[0]
        if not len(cand):
            return None
        corr = self._thumbs[cand] @ np.asarray(thumb, np.float32)
        ok = corr >= min_correlation(dist[cand])
        if not ok.any():
            return None
        k = int(cand[ok][0])  # the earliest kept face that matches
        c = float(corr[ok][0])
        return f"duplicate of {self.names[k]} (near-identical: hash distance {int(dist[k])}/64, correlation {c:.3f})"

    def add(self, name: str, key: str, phash: np.uint64, thumb: np.ndarray) -> None:
        """Keep a face (after ``check`` found it new)."""
        n = len(self.names)
        if n == len(self._hashes):
            self._hashes = np.concatenate([self._hashes, np.zeros(n, np.uint64)])
            self._thumbs = np.concatenate([self._thumbs, np.zeros((n, 256), np.float32)])
        self._hashes[n] = phash
        self._thumbs[n] = thumb
        self.keys.setdefault(key, n)
        self.names.append(name)
