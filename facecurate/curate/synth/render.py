"""Render one person's 7 photos (scene + face + mask) and write them with their ground truth rows."""
from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from ..labels import (
    MASK_INCORRECT,
    MASK_NONE,
    MASK_WEAR,
    PHOTO_STEMS,
    age_group,
    encode,
)
from .masks import MASK_STYLES, WEARS, draw_mask, jitter_style
from .plan import PersonPlan, person_rng
from .scene import camera, compose, make_look

THUMB_W, THUMB_H = 144, 192  # contact-sheet thumbnails: big enough to see where a mask sits
#: How a drawn mask is worn -> its mask label.
WEAR_MASK = {"correct": MASK_WEAR, "nose": MASK_INCORRECT, "chin": MASK_INCORRECT, "none": MASK_NONE}


def render_person(faces: Sequence[tuple[np.ndarray, np.ndarray]], age: int, rng: np.random.Generator,
                  incorrect: tuple[int, str] | None = None) -> dict[str, dict]:
    """The 7 photos of one person from their face(s) with keypoints: {stem: {image, keypoints, alpha, style, wear}}.

    ``incorrect`` = (style index, wear) of the incorrect_mask photo; drawn from ``rng`` when None
    (any of the five masks, nose or chin exposed with equal odds).
    """
    look = make_look(rng, age)
    styles = [jitter_style(s, rng) for s in MASK_STYLES]
    if incorrect is None:
        incorrect = (int(rng.integers(len(MASK_STYLES))), str(rng.choice(WEARS[1:])))
    photos: dict[str, dict] = {}
    for stem in PHOTO_STEMS:
        image, kp = faces[int(rng.integers(len(faces)))] if len(faces) > 1 else faces[0]
        photo, kp_photo = compose(image, kp, look, rng)
        alpha = None
        if stem.startswith("mask"):
            k, wear = int(stem[4:]) - 1, "correct"
        elif stem == "incorrect_mask":
            k, wear = incorrect
        else:
            k, wear = -1, "none"
        if k >= 0:
            photo, alpha = draw_mask(photo, kp_photo, styles[k], wear, rng)
        photos[stem] = {"image": camera(photo, look, rng), "keypoints": kp_photo, "alpha": alpha,
                        "style": MASK_STYLES[k].name if k >= 0 else "", "wear": wear}
    return photos


def _box_in_photo(box: np.ndarray, kp_src: np.ndarray, kp_photo: np.ndarray) -> np.ndarray:
    """The detector's face box carried into the photo by the similarity that maps the keypoints there."""
    m, _ = cv2.estimateAffinePartial2D(kp_src.astype(np.float32), kp_photo.astype(np.float32))
    if m is None:
        return np.full(4, np.nan, np.float32)
    x1, y1, x2, y2 = box
    corners = np.array([[x1, y1, 1], [x2, y1, 1], [x1, y2, 1], [x2, y2, 1]], np.float64) @ m.T
    return np.concatenate([corners.min(0), corners.max(0)]).astype(np.float32)


def _save_jpeg(path: Path, image: np.ndarray, quality: int) -> None:
    Image.fromarray(image).save(path, format="JPEG", quality=quality, subsampling=0)


def eval_name(seed: int, folder: str, stem: str) -> str:
    """Hashed file name of a photo in the eval layout (like the competition's 40-hex names)."""
    return hashlib.sha1(f"{seed}:{folder}:{stem}".encode()).hexdigest() + ".jpg"


def write_person(plan: PersonPlan, out: Path, seed: int, eval_layout: bool, quality: int,
                  age_bins: Sequence[int]) -> tuple[list[dict], dict[str, np.ndarray]]:
    """Render one person, write their 7 JPEGs, return their truth rows and small thumbnails for the contact sheet."""
    rng = person_rng(seed, plan.key, 1)
    photos = render_person([(im, kp) for im, kp, _ in plan.faces], plan.age, rng)
    folder = out / "images" if eval_layout else out / "images" / plan.folder
    folder.mkdir(parents=True, exist_ok=True)
    rows, thumbs = [], {}
    for stem in PHOTO_STEMS:
        written = {"incorrect_mask": "normal", "normal": "incorrect_mask"}.get(stem, stem) if plan.swap else stem
        ph = photos[stem]
        name = eval_name(seed, plan.folder, written) if eval_layout else f"{written}.jpg"
        _save_jpeg(folder / name, ph["image"], quality)
        src_kp = plan.faces[0][1]
        box = _box_in_photo(plan.faces[0][2], src_kp, ph["keypoints"])
        kp = ph["keypoints"]
        mask = WEAR_MASK[ph["wear"]]
        grp = age_group(plan.age, age_bins)
        rows.append({
            "image_id": name if eval_layout else f"{plan.folder}/{name}",
            "person": plan.folder, "id": plan.id, "photo": written, "true_photo": stem,
            "mask": mask, "gender": plan.gender, "age": plan.age, "age_group": grp,
            "label": encode(mask, plan.gender, grp), "style": ph["style"], "wear": ph["wear"],
            **{f"{n}_{a}": float(kp[i, j]) for i, n in enumerate(("leye", "reye", "nose", "mouth")) for j, a in enumerate("xy")},
            **{f"face_{k}": float(v) for k, v in zip(("x1", "y1", "x2", "y2"), box)},
        })
        thumbs[written] = cv2.resize(ph["image"], (THUMB_W, THUMB_H), interpolation=cv2.INTER_AREA)
    return rows, thumbs
