"""Render one person's photos (backdrop + body + face + mask) and write them, their person masks and ground-truth rows."""
from __future__ import annotations

import hashlib
import io
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from ..checksums import hash_bytes
from ..decode import BadImage, read_rgb
from ..errors import InputError
from ..labels import (
    MASK_INCORRECT,
    MASK_NONE,
    MASK_WEAR,
    PHOTO_STEMS,
    age_group,
    encode,
)
from .backdrops import Backdrops, choose_backdrop, render_backdrop
from .masks import MASK_STYLES, WEARS, draw_mask, jitter_style
from .params import SynthParams
from .person_mask import MASKS, mask_path, write_person_mask
from .plan import PersonPlan, person_rng
from .scene import (
    PHOTO_HEIGHT,
    PHOTO_WIDTH,
    camera,
    compose,
    face_alpha,
    make_look,
    person_body,
)

THUMB_W, THUMB_H = 144, 192  # contact-sheet thumbnails: big enough to see where a mask sits
#: truth.csv's columns, in order (one row per photo).
TRUTH_COLUMNS = ["image_id", "person", "id", "photo", "true_photo", "mask", "gender", "age", "age_group", "label", "style",
                 "wear", *[f"{n}_{a}" for n in ("leye", "reye", "nose", "mouth") for a in "xy"],
                 *[f"face_{k}" for k in ("x1", "y1", "x2", "y2")], "backdrop",
                 *[f"backdrop_{k}" for k in ("x0", "y0", "x1", "y1")], "backdrop_flip"]
#: How a drawn mask is worn -> its mask label.
WEAR_MASK = {"correct": MASK_WEAR, "nose": MASK_INCORRECT, "chin": MASK_INCORRECT, "none": MASK_NONE}
#: The key of a truth row (never written to truth.csv) holding its photo's and person mask's xxh3, concatenated.
FILES_HASH = "_files_xxh3"


def render_person(faces: Sequence[tuple[np.ndarray, np.ndarray]], age: int, rng: np.random.Generator,
                  incorrect: tuple[int, str] | None = None, stems: Sequence[str] = PHOTO_STEMS,
                  background: np.ndarray | None = None) -> dict[str, dict]:
    """The photos of one person from their face(s) with keypoints: {stem: {image, keypoints, alpha, person, style, wear}}.

    ``incorrect`` = (style index, wear) of the incorrect_mask photo; drawn from ``rng`` when None
    (any of the five masks, nose or chin exposed with equal odds). ``stems`` picks which of the 7
    photos are made; each photo draws from its own child of ``rng``, so a photo is the same whichever
    others are made. ``alpha`` is the drawn mask's coverage (None without a mask), ``person`` the bool
    true person mask (everything of the person over the backdrop, alpha >= 0.5). ``background``
    (H x W x 3 uint8) replaces the painted wall.
    """
    look = make_look(rng, age, background=background)
    styles = [jitter_style(s, rng) for s in MASK_STYLES]
    if incorrect is None:
        incorrect = (int(rng.integers(len(MASK_STYLES))), str(rng.choice(WEARS[1:])))
    children = dict(zip(PHOTO_STEMS, rng.spawn(len(PHOTO_STEMS))))
    alphas = [face_alpha(im.shape[:2], kp) for im, kp in faces]
    bodies = [person_body(im, kp, look) for im, kp in faces]
    photos: dict[str, dict] = {}
    for stem in (s for s in PHOTO_STEMS if s in stems):
        r = children[stem]
        k = int(r.integers(len(faces))) if len(faces) > 1 else 0
        image, kp = faces[k]
        photo, kp_photo, cover = compose(image, kp, look, r, face_alpha=alphas[k], body=bodies[k])
        alpha = None
        if stem.startswith("mask"):
            k, wear = int(stem[4:]) - 1, "correct"
        elif stem == "incorrect_mask":
            k, wear = incorrect
        else:
            k, wear = -1, "none"
        if k >= 0:
            photo, alpha = draw_mask(photo, kp_photo, styles[k], wear, r, cover=cover)
        photos[stem] = {"image": camera(photo, look, r), "keypoints": kp_photo, "alpha": alpha, "person": cover >= 0.5,
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


def _save_jpeg(path: Path, image: np.ndarray, quality: int) -> str:
    """Write the JPEG; returns the xxh3 of its bytes (a resume checks the finished blocks' photos against it)."""
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=quality, subsampling=0)
    data = buf.getvalue()
    path.write_bytes(data)
    return hash_bytes(data)


def eval_name(seed: int, folder: str, stem: str) -> str:
    """Hashed file name of a photo in the eval layout (like the competition's 40-hex names)."""
    return hashlib.sha1(f"{seed}:{folder}:{stem}".encode()).hexdigest() + ".jpg"


def load_faces(plan: PersonPlan) -> list[tuple[np.ndarray, np.ndarray]]:
    """The person's face images (decoded again: only the keypoints were kept) with their keypoints."""
    out = []
    for src, kp, _ in plan.faces:
        try:
            out.append((src.image if src.image is not None else read_rgb(src.path), kp))
        except BadImage as e:
            raise InputError(f"{src.path}: unreadable now ({e}), though it was read when its keypoints were found; "
                             "was it changed during the run? Run again to start over") from None
    return out


def image_ids(plan: PersonPlan, params: SynthParams) -> list[str]:
    """The photos ``write_person`` writes for ``plan`` (as truth.csv's image_id), known before it writes them."""
    stems = params.photos
    return [eval_name(params.seed, plan.folder, s) for s in stems] if params.eval_layout else [f"{plan.folder}/{s}.jpg" for s in stems]


def write_person(plan: PersonPlan, out: Path, params: SynthParams, backdrops: Backdrops | None = None) -> list[dict]:
    """Render one person, write their JPEGs (and 1-bit person masks), return their truth rows (one per photo).

    ``params``: the run's validated options (seed, layout, JPEG quality, age bins, photos, person masks);
    ``backdrops``: the listed ``params.backdrops``."""
    seed, eval_layout, quality, person_masks = params.seed, params.eval_layout, params.quality, params.person_masks
    choice = choose_backdrop(backdrops, person_rng(seed, plan.key, 2))
    background, win = render_backdrop(backdrops, choice, PHOTO_HEIGHT, PHOTO_WIDTH) if choice else (None, None)
    rng = person_rng(seed, plan.key, 1)
    photos = render_person(load_faces(plan), plan.age, rng, stems=params.photos, background=background)
    rel = "" if eval_layout else plan.folder
    (out / "images" / rel).mkdir(parents=True, exist_ok=True)
    if person_masks:
        (out / MASKS / rel).mkdir(parents=True, exist_ok=True)
    rows = []
    swap = {"incorrect_mask": "normal", "normal": "incorrect_mask"}
    for stem, ph in photos.items():
        written = swap.get(stem, stem) if plan.swap else stem
        name = eval_name(seed, plan.folder, written) if eval_layout else f"{written}.jpg"
        image_id = name if eval_layout else f"{plan.folder}/{name}"
        written_hash = _save_jpeg(out / "images" / image_id, ph["image"], quality)
        if person_masks:
            written_hash += write_person_mask(mask_path(out, image_id), ph["person"])
        src_kp = plan.faces[0][1]
        box = _box_in_photo(plan.faces[0][2], src_kp, ph["keypoints"])
        kp = ph["keypoints"]
        mask = WEAR_MASK[ph["wear"]]
        grp = age_group(plan.age, params.age_bins)
        rows.append({
            "image_id": image_id,
            "person": plan.folder, "id": plan.id, "photo": written, "true_photo": stem,
            "mask": mask, "gender": plan.gender, "age": plan.age, "age_group": grp,
            "label": encode(mask, plan.gender, grp), "style": ph["style"], "wear": ph["wear"],
            **{f"{n}_{a}": float(kp[i, j]) for i, n in enumerate(("leye", "reye", "nose", "mouth")) for j, a in enumerate("xy")},
            **{f"face_{k}": float(v) for k, v in zip(("x1", "y1", "x2", "y2"), box)},
            "backdrop": choice.file if choice else "",
            **{f"backdrop_{k}": float(v) if win else np.nan for k, v in zip(("x0", "y0", "x1", "y1"), win or (0, 0, 0, 0))},
            "backdrop_flip": int(bool(choice and choice.flip)),
            FILES_HASH: written_hash,  # not a truth.csv column: the written files' xxh3, for the block's checksum
        })
    return rows
