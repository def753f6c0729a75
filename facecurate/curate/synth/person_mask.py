"""Each synthesized photo's true person mask: ``OUT/masks/<image_id>.png``, 1-bit, in the photo's pixels.

A pixel is the person's where the composited hair, head, face, neck, torso and drawn mask cover the
backdrop with alpha >= 0.5 (``scene.compose`` accumulates that coverage). One PNG per photo, beside
the photos' own tree, rather than run-length codes in truth.csv: truth.csv stays small enough to read
whole (a portrait silhouette is about 900 run lengths, 3.5 kB of text, so RLE would make truth.csv
over 500 MB for 23,000 people), a mask opens in any image viewer next to its photo, and its 1-bit
PNG is about 1.4 kB.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from ..checksums import hash_bytes
from ..errors import InputError

MASKS = "masks"


def mask_path(out: str | Path, image_id: str) -> Path:
    """Where the mask of photo ``image_id`` (as in truth.csv: ``<folder>/<file>.jpg`` or ``<sha1>.jpg``) is."""
    return Path(out) / MASKS / Path(image_id).with_suffix(".png")


def write_person_mask(path: Path, mask: np.ndarray) -> str:
    """Save a bool H x W mask as a 1-bit PNG (cv2's bilevel writer at zlib level 1: 0.7 ms, PIL's takes 1.8 ms); returns
    the xxh3 of its bytes."""
    ok, data = cv2.imencode(".png", np.asarray(mask, np.uint8) * 255, [cv2.IMWRITE_PNG_BILEVEL, 1, cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:
        raise OSError(f"{path}: could not encode the person mask")
    path.write_bytes(data.tobytes())
    return hash_bytes(data)


def read_person_mask(out: str | Path, image_id: str) -> np.ndarray:
    """The true person mask (bool H x W, True on the person) of photo ``image_id`` in the synth output ``out``."""
    path = mask_path(out, image_id)
    if not path.is_file():
        raise InputError(f"{path}: no person mask for {image_id} (written by synth unless --no-person-masks)")
    with Image.open(path) as im:
        return np.asarray(im.convert("1"), dtype=bool)
