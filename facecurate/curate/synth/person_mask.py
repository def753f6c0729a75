"""Each synthesized photo's true person mask: ``OUT/masks/<image_id>.png``, 1-bit, in the photo's pixels.

A pixel is the person's where the composited hair, head, face, neck, torso and drawn mask cover the
backdrop with alpha >= 0.5 (``scene.compose`` accumulates that coverage). One PNG per photo, beside
the photos' own tree, rather than run-length codes in truth.csv: truth.csv stays small enough to read
whole (about 3 kB of RLE per photo would make it hundreds of MB for 23,000 people), a mask opens in
any image viewer next to its photo, and a 1-bit PNG of a portrait silhouette is under 2 kB.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import InputError

MASKS = "masks"


def mask_path(out: str | Path, image_id: str) -> Path:
    """Where the mask of photo ``image_id`` (as in truth.csv: ``<folder>/<file>.jpg`` or ``<sha1>.jpg``) is."""
    return Path(out) / MASKS / Path(image_id).with_suffix(".png")


def write_person_mask(path: Path, mask: np.ndarray) -> None:
    """Save a bool H x W mask as a 1-bit PNG."""
    Image.fromarray(np.asarray(mask, bool)).save(path, format="PNG")


def read_person_mask(out: str | Path, image_id: str) -> np.ndarray:
    """The true person mask (bool H x W, True on the person) of photo ``image_id`` in the synth output ``out``."""
    path = mask_path(out, image_id)
    if not path.is_file():
        raise InputError(f"{path}: no person mask for {image_id} (written by synth unless --no-person-masks)")
    with Image.open(path) as im:
        return np.asarray(im.convert("1"), dtype=bool)
