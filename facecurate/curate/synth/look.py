"""``Look``: what stays the same over one person's photos, drawn once per person (``scene.make_look``) and read by
the scene and the body layer alike (its own module, so neither imports the other for it)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Look:
    """What stays the same over one person's photos: background, clothes, hair, framing."""

    background: np.ndarray  # H x W x 3 uint8
    shirt: tuple[int, int, int]
    neckline: str  # round | v | collar
    hair: tuple[int, int, int]
    long_hair: bool
    eye_dist: float  # eye distance in the photo, pixels
    centre: tuple[float, float]  # eye centre in the photo
    roll: float  # head roll, degrees
    cast: tuple[float, float, float]  # camera white balance, per channel gain
    brightness: float
