"""Place a face crop into a 384 x 512 portrait photo: a backdrop, a torso, hair, the face.

Like the reference photos: a person photographed from the chest up, the face in the upper middle.
A person's ``Look`` (backdrop, clothes, hair, framing; ``look.py``) is drawn once; each of their photos then
moves the head a little (``compose``). The backdrop is a painted wall (``make_background``) or a
given photo (``backdrops.py``). ``compose`` also returns where the person covers the backdrop (the
over-composited alpha of hair, neck, torso, head and face), the ground truth for background removal.
Everything is driven by a numpy ``Generator``: same seed, same photo.
"""
from __future__ import annotations

from statistics import NormalDist

import cv2
import numpy as np

from .body import BodyLayer, add_cover, body_layer, channels, paste_body
from .look import Look
from .masks import face_frame

PHOTO_HEIGHT, PHOTO_WIDTH = 512, 384

HAIR_COLOURS = ((24, 20, 18), (52, 36, 26), (92, 62, 40), (150, 110, 70), (196, 160, 108), (120, 50, 30))
GREY_HAIR = ((150, 148, 146), (190, 188, 186), (225, 222, 218))
SHIRT_COLOURS = ((30, 34, 40), (230, 230, 226), (52, 80, 140), (120, 30, 40), (70, 110, 70), (200, 170, 120),
                 (140, 140, 150), (240, 200, 60), (90, 60, 110), (20, 90, 110), (180, 90, 60))


def _smooth_noise(rng: np.random.Generator, h: int, w: int, cells: int) -> np.ndarray:
    """Low-frequency noise in 0..1 (H x W float32): random values on a coarse grid, upsampled smoothly."""
    grid = rng.random((max(2, cells * h // w), cells)).astype(np.float32)
    return cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC).clip(0, 1)


# Gaussian sensor noise of sigma 2 grey levels, whole levels: random bytes through a table of the normal's quantiles,
# split into what is added and what is taken away so that cv2's saturating add/subtract do the clipping.
# ~10x cheaper than rng.standard_normal on a whole photo (the largest cost of a photo before).
_Z = np.array([NormalDist().inv_cdf((k + 0.5) / 256) for k in range(256)])
_NOISE_UP = np.clip(np.round(2.0 * _Z), 0, None).astype(np.uint8)
_NOISE_DOWN = np.clip(-np.round(2.0 * _Z), 0, None).astype(np.uint8)


def add_noise(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``img`` (uint8) plus Gaussian noise of sigma 2 grey levels (rounded), clipped to 0..255."""
    u = np.frombuffer(rng.bytes(img.size), np.uint8).reshape(img.shape)
    return cv2.subtract(cv2.add(img, cv2.LUT(u, _NOISE_UP)), cv2.LUT(u, _NOISE_DOWN))


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
        img *= channels(np.broadcast_to(folds, (height, width)).astype(np.float32))
    elif kind == "mottled":
        img *= channels(0.8 + 0.35 * _smooth_noise(rng, height, width, 6))
    light = 1.0 + rng.uniform(-0.18, 0.18) * (xs - 0.5) * 2 + rng.uniform(-0.12, 0.08) * (ys - 0.3)
    img *= channels(light.astype(np.float32))
    return add_noise(np.clip(img, 0, 255).astype(np.uint8), rng)


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


def face_alpha(shape: tuple[int, int], keypoints: np.ndarray) -> np.ndarray:
    """The face's soft oval in its own image (see ``compose``)."""
    return _head_alpha(shape, keypoints)


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


def person_body(face: np.ndarray, keypoints: np.ndarray, look: Look) -> BodyLayer:
    """The body layer (``body.py``) for this face on ``look``, at rest (no head movement)."""
    h, w = look.background.shape[:2]
    m = face_transform(keypoints, look.eye_dist, look.centre, look.roll)
    kp = np.concatenate([np.asarray(keypoints, np.float64), np.ones((4, 1))], 1) @ m.T
    fr = face_frame(kp)
    chin = fr.to_image(np.array([[0.0, 1.8]]))[0]
    angle = float(np.degrees(np.arctan2(fr.ex[1], fr.ex[0])))
    return body_layer(h, w, look, fr.origin, chin, look.eye_dist, angle, skin_colour(face, keypoints))


def compose(face: np.ndarray, keypoints: np.ndarray, look: Look, rng: np.random.Generator,
            move: float = 1.0, face_alpha: np.ndarray | None = None,
            body: BodyLayer | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One photo of the person: the face (RGB uint8) placed on ``look`` with a small head movement.

    Returns (photo uint8 PHOTO_HEIGHT x PHOTO_WIDTH x 3, keypoints (4, 2) float32 in the photo,
    cover float32 H x W in 0..1: how much the person (hair, neck, torso, head, face) covers the backdrop).
    ``move`` scales the per-photo jitter of position, size and roll (0: none). ``face_alpha`` and
    ``body`` are ``face_alpha(face.shape, keypoints)`` and ``person_body(face, keypoints, look)``,
    computed here when not given (a person's photos share them). Head and face are blended inside
    their bounding box only.
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
    canvas = look.background.astype(np.float32)
    cover = np.zeros((h, w), np.float32)
    chin = fr.to_image(np.array([[0.0, 1.8]]))[0]
    hair = np.array(look.hair, np.float32)
    paste_body(canvas, cover, body if body is not None else person_body(face, keypoints, look), chin)
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
        shade = cv2.multiply(channels(0.9 + 0.2 * _smooth_noise(rng, bh, bw, cells)), (*(float(c) for c in hair), 0.0))
        region += (shade - region) * channels(a)
        add_cover(cover, y0, x0, a)
        # the face itself, warped into place with a soft oval edge
        mr = m.copy()
        mr[:, 2] -= (x0, y0)
        fa = face_alpha if face_alpha is not None else _head_alpha(face.shape[:2], keypoints)
        warped = cv2.warpAffine(face, mr, (bw, bh), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        wa = cv2.warpAffine(fa, mr, (bw, bh), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        region += (warped.astype(np.float32) - region) * channels(wa)
        add_cover(cover, y0, x0, wa)
    return np.clip(canvas, 0, 255).astype(np.uint8), kp, cover


def camera(photo: np.ndarray, look: Look, rng: np.random.Generator) -> np.ndarray:
    """The camera's touch on a finished photo: white balance, exposure and a little sensor noise."""
    gain = np.diag(np.array(look.cast, np.float32) * np.float32(look.brightness))
    return add_noise(cv2.transform(photo, gain), rng)  # per-channel gain, rounded and saturated by cv2
