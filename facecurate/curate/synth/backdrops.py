"""Photo backdrops for `synth` (``--backdrops DIR``): a crop of a given photo behind the person instead of a painted wall.

Real portraits have other people behind the subject (street scenes, posters); a folder of such photos
makes synthesized sets where the background holds other faces. Per person, from their own seeded
generator: whether they get a photo (``share``), which file, how far it is zoomed (1 to 1.5 times the
size that fills the frame), where the window sits and whether it is mirrored. The window is recorded
in the decoded photo's pixels (``truth.csv``: ``backdrop``, ``backdrop_x0..y1``, ``backdrop_flip``),
so boxes annotated on the backdrop can be carried into the photo.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..decode import BadImage, check_image_file, is_photo_name, read_rgb
from ..errors import InputError
from ..readers import Problem

MAX_SIDE = 2048  # backdrops are decoded with their longer side at most this (JPEG draft mode: fast)
MIN_SIDE = 64
ZOOM = (1.0, 1.5)


@dataclass(frozen=True)
class Backdrops:
    """The usable photos of a backdrop folder (names relative to ``root``, sorted) and the share of people who get one."""

    root: Path
    files: tuple[str, ...]
    share: float = 1.0


@dataclass(frozen=True)
class BackdropChoice:
    """One person's backdrop: the file and where its window sits (fractions of the free room), zoom, mirror."""

    file: str
    zoom: float
    fx: float
    fy: float
    flip: bool


def list_backdrops(folder: str | Path, share: float = 1.0) -> tuple[Backdrops, list[Problem]]:
    """The photos directly in ``folder`` whose headers look usable; unusable ones are listed, not fatal."""
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise InputError(f"{root}: --backdrops must be a folder of photos")
    if not 0 <= share <= 1:
        raise InputError(f"--backdrop-share: {share} is not a fraction between 0 and 1")
    names = sorted(e.name for e in os.scandir(root) if e.is_file() and is_photo_name(e.name))
    problems, files = [], []
    for name in names:
        why = check_image_file(root / name, MIN_SIDE)
        if why is None:
            files.append(name)
        else:
            problems.append(Problem(str(root / name), f"backdrop not used: {why}"))
    if not files:
        raise InputError(f"{root}: --backdrops holds no usable photos (.jpg, .jpeg, .png of at least {MIN_SIDE} px)")
    return Backdrops(root.resolve(), tuple(files), float(share)), problems


def choose_backdrop(backdrops: Backdrops | None, rng: np.random.Generator) -> BackdropChoice | None:
    """A person's backdrop drawn from ``rng`` (their own stream), or None for the painted wall."""
    if backdrops is None or not backdrops.files or rng.random() >= backdrops.share:
        return None
    k = int(rng.integers(len(backdrops.files)))
    zoom = float(rng.uniform(*ZOOM))
    fx, fy = (float(v) for v in rng.random(2))
    return BackdropChoice(backdrops.files[k], zoom, fx, fy, bool(rng.random() < 0.5))


def window(size: tuple[int, int], choice: BackdropChoice, height: int, width: int) -> tuple[int, int, int, int]:
    """The crop (x0, y0, x1, y1) of a photo of ``size`` (h, w) that ``choice`` scales to fill height x width."""
    h0, w0 = size
    scale = max(width / w0, height / h0) * choice.zoom
    ww, wh = min(w0, max(1, int(round(width / scale)))), min(h0, max(1, int(round(height / scale))))
    x0 = int(round(choice.fx * (w0 - ww)))
    y0 = int(round(choice.fy * (h0 - wh)))
    return x0, y0, x0 + ww, y0 + wh


def render_backdrop(backdrops: Backdrops, choice: BackdropChoice, height: int, width: int) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """(height x width x 3 uint8 backdrop, its window in the decoded photo) for ``choice``."""
    path = backdrops.root / choice.file
    try:
        img = read_rgb(path, max_side=MAX_SIDE)
    except BadImage as e:
        raise InputError(f"{path}: backdrop unreadable ({e}); remove it from --backdrops and run again") from None
    x0, y0, x1, y1 = window(img.shape[:2], choice, height, width)
    crop = img[y0:y1, x0:x1]
    shrink = crop.shape[1] > width
    out = cv2.resize(crop, (width, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    if choice.flip:
        out = np.ascontiguousarray(out[:, ::-1])
    return out, (x0, y0, x1, y1)
