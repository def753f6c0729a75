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


# ----------------------------------------------------------------------------- crowded backdrops
# Street portraits often have other people behind the subject: faces 0.5 to 1 times the subject's, soft from the
# lens blur, masked or not, and for a person shot in one spot, at the same place in every photo. ``crowd_photo``
# paints such bystanders into a finished photo behind its subject (the true person mask keeps the subject in
# front), so a synthesized set gets the hard case that the crop stage's subject rule is measured on.

BYSTANDER_SCALE = (0.5, 1.0)  # bystander face width / subject face width
BYSTANDER_BLUR = (1.0, 3.5)   # Gaussian sigma of a bystander's lens blur, px
BACKDROP_BLUR = (1.5, 3.0)    # sigma of the backdrop's blur, px


@dataclass(frozen=True)
class Bystander:
    """One face behind the subject: which donor, its size against the subject's face, where its face centre sits
    (fractions of the photo) and its blur (sigma, px)."""

    donor: int
    scale: float
    cx: float
    cy: float
    blur: float


def plan_bystanders(rng: np.random.Generator, n_donors: int, count: tuple[int, int] = (1, 3)) -> list[Bystander]:
    """1 to 3 bystanders drawn from ``rng``: on either side of the subject, upper half of the photo."""
    out = []
    for k in range(int(rng.integers(count[0], count[1] + 1))):
        side = -1 if (k % 2 == 0) == (rng.random() < 0.5) else 1
        cx = 0.5 + side * float(rng.uniform(0.22, 0.4))
        out.append(Bystander(int(rng.integers(n_donors)), float(rng.uniform(*BYSTANDER_SCALE)), cx,
                             float(rng.uniform(0.12, 0.48)), float(rng.uniform(*BYSTANDER_BLUR))))
    return out


def _paste(canvas: np.ndarray, layer: np.ndarray, alpha: np.ndarray, x0: int, y0: int) -> None:
    """Blend ``layer`` (h x w x 3 float32) with ``alpha`` (h x w) into ``canvas`` at (x0, y0), clipped to it."""
    H, W = canvas.shape[:2]
    h, w = alpha.shape
    cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x0 + w, W), min(y0 + h, H)
    if cx1 <= cx0 or cy1 <= cy0:
        return
    a = alpha[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0, None]
    region = canvas[cy0:cy1, cx0:cx1]
    region += (layer[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0] - region) * a


def crowd_photo(photo: np.ndarray, person: np.ndarray, subject_box, donors, plan, backdrop_blur: float = 2.0,
                fade: float = 0.0) -> tuple[np.ndarray, list[tuple[float, float, float, float]]]:
    """``photo`` (H x W x 3 uint8) with the ``plan``'s bystanders (``Bystander``) painted behind its subject.

    ``person``: the subject's true mask (bool H x W), kept in front; ``subject_box``: the subject's face box;
    ``donors``: (photo, person mask, face box) of other people, whose head and shoulders become the bystanders.
    The backdrop is blurred by ``backdrop_blur``; ``fade`` > 0 lowers the subject's contrast by that share (a pale,
    low-contrast face). Returns (the photo, each bystander's face box in it, unclipped).
    """
    sw = float(subject_box[2] - subject_box[0])
    canvas = cv2.GaussianBlur(photo, (0, 0), backdrop_blur).astype(np.float32)
    boxes = []
    for b in sorted(plan, key=lambda b: b.scale):  # the smaller, farther ones first
        img, mask, fb = donors[b.donor]
        ys, xs = np.nonzero(mask)
        if not len(xs):
            continue
        x0, y0, x1, y1 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
        k = b.scale * sw / max(float(fb[2] - fb[0]), 1.0)
        w, h = max(1, int(round((x1 - x0) * k))), max(1, int(round((y1 - y0) * k)))
        layer = cv2.resize(img[y0:y1, x0:x1], (w, h), interpolation=cv2.INTER_AREA).astype(np.float32)
        alpha = cv2.resize(mask[y0:y1, x0:x1].astype(np.float32), (w, h), interpolation=cv2.INTER_AREA)
        layer = cv2.GaussianBlur(layer, (0, 0), b.blur)
        alpha = cv2.GaussianBlur(alpha, (0, 0), max(0.8, b.blur / 2))
        fcx, fcy = ((fb[0] + fb[2]) / 2 - x0) * k, ((fb[1] + fb[3]) / 2 - y0) * k  # donor face centre in the layer
        px, py = int(round(b.cx * photo.shape[1] - fcx)), int(round(b.cy * photo.shape[0] - fcy))
        _paste(canvas, layer, alpha, px, py)
        boxes.append(tuple(float(v) for v in ((fb[0] - x0) * k + px, (fb[1] - y0) * k + py,
                                               (fb[2] - x0) * k + px, (fb[3] - y0) * k + py)))
    front = cv2.GaussianBlur(person.astype(np.float32), (0, 0), 0.8)[..., None]
    subject = photo.astype(np.float32)
    if fade > 0:
        mean = subject[person].mean(axis=0) if person.any() else subject.mean(axis=(0, 1))
        subject = mean + (subject - mean) * (1 - fade) + fade * 30
    out = subject * front + canvas * (1 - front)
    return np.clip(out, 0, 255).astype(np.uint8), boxes
