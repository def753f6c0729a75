"""Place a face crop into a 384 x 512 portrait photo: a backdrop, a torso, hair, the face.

Like the reference photos: a person photographed from the chest up, the face in the upper middle.
A person's ``Look`` (backdrop, clothes, hair, framing) is drawn once; each of their photos then
moves the head a little (``compose``). The backdrop is a painted wall (``make_background``) or a
given photo (``backdrops.py``). ``compose`` also returns where the person covers the backdrop (the
over-composited alpha of hair, neck, torso, head and face), the ground truth for background removal.
Everything is driven by a numpy ``Generator``: same seed, same photo.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .masks import face_frame

PHOTO_HEIGHT, PHOTO_WIDTH = 512, 384

HAIR_COLOURS = ((24, 20, 18), (52, 36, 26), (92, 62, 40), (150, 110, 70), (196, 160, 108), (120, 50, 30))
GREY_HAIR = ((150, 148, 146), (190, 188, 186), (225, 222, 218))
SHIRT_COLOURS = ((30, 34, 40), (230, 230, 226), (52, 80, 140), (120, 30, 40), (70, 110, 70), (200, 170, 120),
                 (140, 140, 150), (240, 200, 60), (90, 60, 110), (20, 90, 110), (180, 90, 60))


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


def _smooth_noise(rng: np.random.Generator, h: int, w: int, cells: int) -> np.ndarray:
    """Low-frequency noise in 0..1 (H x W float32): random values on a coarse grid, upsampled smoothly."""
    grid = rng.random((max(2, cells * h // w), cells)).astype(np.float32)
    return cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC).clip(0, 1)


def make_background(rng: np.random.Generator, height: int = PHOTO_HEIGHT, width: int = PHOTO_WIDTH) -> np.ndarray:
    """A plausible indoor backdrop (uint8 H x W x 3): plain wall, two-tone wall with a floor or door, curtain or mottled."""
    kind = rng.choice(["wall", "two_tone", "door", "curtain", "mottled"])
    base = rng.uniform(90, 235, 3)
    if rng.random() < 0.6:  # mostly pale, low-saturation walls, like the reference photos
        base = base.mean() + (base - base.mean()) * 0.35
    img = np.broadcast_to(base.astype(np.float32), (height, width, 3)).copy()
    ys = np.linspace(0, 1, height, dtype=np.float32)[:, None]
    xs = np.linspace(0, 1, width, dtype=np.float32)[None, :]
    if kind == "two_tone":
        cut = int(height * rng.uniform(0.55, 0.8))
        img[cut:] = rng.uniform(60, 200, 3)
        img[cut:cut + max(2, height // 120)] *= 0.7
    elif kind == "door":
        x0 = int(width * rng.uniform(-0.2, 0.6))
        img[:, max(x0, 0):x0 + int(width * rng.uniform(0.35, 0.55))] = rng.uniform(70, 180, 3)
        img[:, max(x0, 0):max(x0, 0) + 3] *= 0.6
    elif kind == "curtain":
        period = rng.uniform(18, 40)
        folds = 0.85 + 0.15 * np.sin(2 * np.pi * xs * width / period + rng.uniform(0, 6))
        img *= folds[..., None]
    elif kind == "mottled":
        img *= (0.8 + 0.35 * _smooth_noise(rng, height, width, 6))[..., None]
    light = 1.0 + rng.uniform(-0.18, 0.18) * (xs - 0.5) * 2 + rng.uniform(-0.12, 0.08) * (ys - 0.3)
    img *= light[..., None]
    img += 2.0 * rng.standard_normal(img.shape, dtype=np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


def make_look(rng: np.random.Generator, age: int | None = None, height: int = PHOTO_HEIGHT,
              width: int = PHOTO_WIDTH, background: np.ndarray | None = None) -> Look:
    """Draw one person's look; ``age`` makes grey hair likelier from 50 on; ``background`` (H x W x 3 uint8)
    replaces the painted wall."""
    grey = age is not None and age >= 50 and rng.random() < (0.35 if age < 60 else 0.65)
    hair = GREY_HAIR[rng.integers(len(GREY_HAIR))] if grey else HAIR_COLOURS[rng.integers(len(HAIR_COLOURS))]
    d = float(rng.uniform(0.14, 0.2) * width)  # eye distance: the face spans a third to two fifths of the width
    return Look(
        background=make_background(rng, height, width) if background is None else background,
        shirt=tuple(int(c) for c in np.clip(np.array(SHIRT_COLOURS[rng.integers(len(SHIRT_COLOURS))]) + rng.normal(0, 10, 3), 0, 255)),
        neckline=str(rng.choice(["round", "v", "collar"])),
        hair=tuple(int(c) for c in hair),
        long_hair=bool(rng.random() < 0.45),
        eye_dist=d,
        centre=(float(width / 2 + rng.normal(0, 0.05) * width), float(height * rng.uniform(0.3, 0.4))),
        roll=float(rng.normal(0, 3.0)),
        cast=tuple(float(c) for c in rng.uniform(0.92, 1.08, 3)),
        brightness=float(rng.uniform(0.9, 1.08)),
    )


def skin_colour(face: np.ndarray, keypoints: np.ndarray) -> np.ndarray:
    """Median colour of the cheeks (below each eye, beside the nose): the neck is painted with it."""
    fr = face_frame(keypoints)
    r = max(2, int(0.12 * fr.eye_dist))
    samples = []
    for x in (-0.45, 0.45):
        px, py = np.round(fr.to_image(np.array([[x, 0.55]]))[0]).astype(int)
        patch = face[max(py - r, 0):py + r, max(px - r, 0):px + r].reshape(-1, 3)
        if len(patch):
            samples.append(patch)
    if not samples:
        return np.array([200, 160, 140], np.float32)
    return np.median(np.concatenate(samples), axis=0).astype(np.float32)


def face_transform(keypoints: np.ndarray, eye_dist: float, centre: tuple[float, float], roll: float) -> np.ndarray:
    """2 x 3 affine map from the face image to the photo: eyes level (then rolled), ``eye_dist`` apart, centred on ``centre``."""
    fr = face_frame(keypoints)
    angle = np.degrees(np.arctan2(fr.ex[1], fr.ex[0]))
    m = cv2.getRotationMatrix2D((float(fr.origin[0]), float(fr.origin[1])), angle - roll, eye_dist / fr.eye_dist)
    m[:, 2] += np.array(centre) - fr.origin
    return m


def _cover(cover: np.ndarray | None, y0: int, x0: int, a: np.ndarray) -> None:
    """Over-composite coverage ``a`` (h x w float32) into ``cover`` at (y0, x0): c = c + a (1 - c)."""
    if cover is not None:
        region = cover[y0:y0 + a.shape[0], x0:x0 + a.shape[1]]
        region += a * (1 - region)


def _fill(canvas: np.ndarray, poly: np.ndarray, colour: np.ndarray, shade=None, cover: np.ndarray | None = None) -> None:
    """Anti-aliased fill of a polygon on a float canvas, in the polygon's bounding box only.

    ``shade(xs, ys)`` (optional) gives a per-pixel brightness factor from photo coordinates; the
    polygon's coverage is added to ``cover`` (H x W float32) when given.
    """
    h, w = canvas.shape[:2]
    x0, y0 = np.maximum(np.floor(poly.min(0)).astype(int) - 1, 0)
    x1, y1 = np.minimum(np.ceil(poly.max(0)).astype(int) + 2, [w, h])
    if x1 <= x0 or y1 <= y0:
        return
    m = np.zeros((y1 - y0, x1 - x0), np.uint8)
    cv2.fillPoly(m, [np.round((poly - [x0, y0]) * 16).astype(np.int32)], 255, lineType=cv2.LINE_AA, shift=4)
    a = (m.astype(np.float32) / 255)[..., None]
    paint = np.asarray(colour, np.float32)[None, None, :]
    if shade is not None:
        ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        paint = paint * shade(xs, ys)[..., None]
    region = canvas[y0:y1, x0:x1]
    region *= 1 - a
    region += paint * a
    _cover(cover, y0, x0, a[..., 0])


def _torso(canvas: np.ndarray, cx: float, chin_y: float, d: float, look: Look, skin: np.ndarray,
           cover: np.ndarray | None = None) -> None:
    """Shoulders and chest in the shirt colour, a neck in the skin colour, a neckline."""
    h, w = canvas.shape[:2]
    shoulder_y = chin_y + 0.75 * d
    half = 2.1 * d
    right = np.array([
        (0.45 * d, shoulder_y - 0.15 * d), (1.2 * d, shoulder_y), (1.75 * d, shoulder_y + 0.2 * d),
        (half, shoulder_y + 0.8 * d), (half + 0.25 * d, h + 40.0),
    ])
    poly = np.concatenate([right, (right * [-1, 1])[::-1]]) + [cx, 0]
    neck = np.array([(cx - 0.55 * d, chin_y - 0.9 * d), (cx + 0.55 * d, chin_y - 0.9 * d),
                     (cx + 0.62 * d, shoulder_y + 0.1 * d), (cx - 0.62 * d, shoulder_y + 0.1 * d)])
    _fill(canvas, neck, skin * 0.92, lambda xs, ys: 1.0 - 0.3 * np.clip(1 - (ys - chin_y) / (0.5 * d), 0, 1),  # shadow under the chin
          cover=cover)
    _fill(canvas, poly, np.array(look.shirt, np.float32),
          lambda xs, ys: 1.0 - 0.25 * np.clip(np.abs(xs - cx) / (half * 1.2), 0, 1) ** 2 - 0.1 * np.clip((ys - shoulder_y) / h, 0, 1),
          cover=cover)
    if look.neckline == "v":
        _fill(canvas, np.array([(cx - 0.5 * d, shoulder_y - 0.12 * d), (cx + 0.5 * d, shoulder_y - 0.12 * d),
                                (cx, shoulder_y + 0.9 * d)]), skin * 0.9)
    elif look.neckline == "round":
        t = np.linspace(0, np.pi, 24)
        _fill(canvas, np.stack([cx + 0.55 * d * np.cos(t), shoulder_y - 0.15 * d + 0.45 * d * np.sin(t)], 1), skin * 0.9)
    else:  # a shirt collar: two pale triangles either side of the neck
        col = np.clip(np.array(look.shirt, np.float32) * 1.25 + 25, 0, 255)
        for s in (-1, 1):
            _fill(canvas, np.array([(cx + s * 0.15 * d, shoulder_y + 0.25 * d), (cx + s * 0.62 * d, shoulder_y - 0.2 * d),
                                    (cx + s * 0.8 * d, shoulder_y + 0.25 * d)]), col)


def _head_alpha(shape: tuple[int, int], keypoints: np.ndarray) -> np.ndarray:
    """Soft oval (float32 0..1) over the face in the face image: forehead to chin, cheek to cheek."""
    fr = face_frame(keypoints)
    d, hgt = fr.eye_dist, float(np.linalg.norm(fr.ey))
    c = fr.to_image(np.array([[0.0, 0.5]]))[0]
    angle = float(np.degrees(np.arctan2(fr.ex[1], fr.ex[0])))
    m = np.zeros(shape, np.uint8)
    cv2.ellipse(m, (int(c[0] * 16), int(c[1] * 16)), (int(1.1 * d * 16), int(1.5 * hgt * 16)), angle, 0, 360,
                255, -1, cv2.LINE_AA, 4)
    a = cv2.GaussianBlur(m.astype(np.float32) / 255, (0, 0), max(1.0, 0.1 * d))
    edge = max(2, int(0.06 * d))  # fade out at the face image's own borders: nothing beyond them shows
    ramp_y = np.clip(np.minimum(np.arange(shape[0]), shape[0] - 1 - np.arange(shape[0])) / edge, 0, 1)
    ramp_x = np.clip(np.minimum(np.arange(shape[1]), shape[1] - 1 - np.arange(shape[1])) / edge, 0, 1)
    return a * ramp_y[:, None].astype(np.float32) * ramp_x[None, :].astype(np.float32)


def _ellipse_box(centre: np.ndarray, axes: tuple[float, float], angle: float, margin: float, w: int, h: int) -> tuple[int, int, int, int]:
    """Pixel box (x0, y0, x1, y1), clipped to the photo, around a rotated ellipse grown by ``margin`` px."""
    t = np.radians(angle)
    ex = np.hypot(axes[0] * np.cos(t), axes[1] * np.sin(t)) + margin
    ey = np.hypot(axes[0] * np.sin(t), axes[1] * np.cos(t)) + margin
    return (max(int(np.floor(centre[0] - ex)), 0), max(int(np.floor(centre[1] - ey)), 0),
            min(int(np.ceil(centre[0] + ex)) + 1, w), min(int(np.ceil(centre[1] + ey)) + 1, h))


def compose(face: np.ndarray, keypoints: np.ndarray, look: Look, rng: np.random.Generator,
            move: float = 1.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One photo of the person: the face (RGB uint8) placed on ``look`` with a small head movement.

    Returns (photo uint8 PHOTO_HEIGHT x PHOTO_WIDTH x 3, keypoints (4, 2) float32 in the photo,
    cover float32 H x W in 0..1: how much the person (hair, neck, torso, head, face) covers the backdrop).
    ``move`` scales the per-photo jitter of position, size and roll (0: none). Head and face are
    blended inside their bounding box only.
    """
    h, w = look.background.shape[:2]
    d = look.eye_dist * (1 + move * rng.uniform(-0.04, 0.04))
    cx = look.centre[0] + move * rng.uniform(-0.025, 0.025) * w
    cy = look.centre[1] + move * rng.uniform(-0.02, 0.02) * h
    roll = look.roll + move * rng.uniform(-3, 3)
    m = face_transform(keypoints, d, (cx, cy), roll)
    kp = (np.concatenate([np.asarray(keypoints, np.float64), np.ones((4, 1))], 1) @ m.T).astype(np.float32)
    fr = face_frame(kp)
    hgt = float(np.linalg.norm(fr.ey))
    angle = float(np.degrees(np.arctan2(fr.ex[1], fr.ex[0])))
    skin = skin_colour(face, keypoints)
    canvas = look.background.astype(np.float32)
    cover = np.zeros((h, w), np.float32)
    chin = fr.to_image(np.array([[0.0, 1.8]]))[0]
    hair = np.array(look.hair, np.float32)
    if look.long_hair:  # hair falling behind the neck to the shoulders
        _fill(canvas, np.array([(cx - 1.25 * d, cy), (cx + 1.25 * d, cy), (cx + 1.35 * d, chin[1] + 1.1 * d),
                                (cx - 1.35 * d, chin[1] + 1.1 * d)]), hair * 0.9, cover=cover)
    _torso(canvas, float(chin[0]), float(chin[1]), d, look, skin, cover)
    # head and face live in one box: the skull's oval and the face's blurred oval, warped there
    hc = fr.to_image(np.array([[0.0, 0.1]]))[0]
    fc = fr.to_image(np.array([[0.0, 0.5]]))[0]
    b1 = _ellipse_box(hc, (1.22 * d, 1.55 * hgt), angle, 2, w, h)
    b2 = _ellipse_box(fc, (1.1 * d, 1.5 * hgt), angle, 0.4 * d + 2, w, h)
    x0, y0, x1, y1 = min(b1[0], b2[0]), min(b1[1], b2[1]), max(b1[2], b2[2]), max(b1[3], b2[3])
    if x1 > x0 and y1 > y0:
        bw, bh = x1 - x0, y1 - y0
        region = canvas[y0:y1, x0:x1]
        # the skull behind the face: a hair-coloured oval reaching above the forehead and to the ears
        head = np.zeros((bh, bw), np.uint8)
        cv2.ellipse(head, (int((hc[0] - x0) * 16), int((hc[1] - y0) * 16)), (int(1.22 * d * 16), int(1.55 * hgt * 16)),
                    angle, 0, 360, 255, -1, cv2.LINE_AA, 4)
        a = head.astype(np.float32) / 255
        cells = max(2, int(round(24 * bw / w)))
        shade = hair * (0.9 + 0.2 * _smooth_noise(rng, bh, bw, cells))[..., None]
        region += (shade - region) * a[..., None]
        _cover(cover, y0, x0, a)
        # the face itself, warped into place with a soft oval edge
        mr = m.copy()
        mr[:, 2] -= (x0, y0)
        fa = _head_alpha(face.shape[:2], keypoints)
        warped = cv2.warpAffine(face, mr, (bw, bh), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        wa = cv2.warpAffine(fa, mr, (bw, bh), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        region += (warped.astype(np.float32) - region) * wa[..., None]
        _cover(cover, y0, x0, wa)
    return np.clip(canvas, 0, 255).astype(np.uint8), kp, cover


def camera(photo: np.ndarray, look: Look, rng: np.random.Generator) -> np.ndarray:
    """The camera's touch on a finished photo: white balance, exposure and a little sensor noise."""
    img = photo.astype(np.float32) * (np.array(look.cast, np.float32) * np.float32(look.brightness))
    img += 2.0 * rng.standard_normal(img.shape, dtype=np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)
