"""Small generated caches for the trainer's tests: each head's label is drawn as a coloured band, learnable by a tiny model."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from facecurate.curate.cache import save_cache

PALETTE = np.array([[220, 40, 40], [40, 200, 60], [50, 80, 230]], dtype=np.float32)


def band_image(mask: int, gender: int, age_grp: int, size=(32, 24), rng=None) -> np.ndarray:
    """H x W x 3 uint8: top band colour = mask, middle = gender, bottom = age group, plus noise."""
    rng = rng or np.random.default_rng(0)
    h, w = size
    img = np.zeros((h, w, 3), np.float32)
    thirds = np.array_split(np.arange(h), 3)
    for rows, value in zip(thirds, (mask, gender, age_grp)):
        img[rows] = PALETTE[value]
    img += rng.normal(0, 12, img.shape)
    return img.clip(0, 255).astype(np.uint8)


def make_people(n_people: int, seed: int = 0, ages=(20, 45, 70), p_age=(0.5, 0.35, 0.15)) -> pd.DataFrame:
    """A train-layout manifest: ``n_people`` people x 7 photos (5 masked, 1 incorrect, 1 none), imbalanced ages."""
    rng = np.random.default_rng(seed)
    rows = []
    stems = ["mask1", "mask2", "mask3", "mask4", "mask5", "incorrect_mask", "normal"]
    for p in range(n_people):
        gender = int(rng.integers(2))
        ag = int(rng.choice(3, p=p_age))
        person = f"{p:06d}_{'female' if gender else 'male'}_Asian_{ages[ag]}"
        for s in stems:
            mask = 0 if s.startswith("mask") else (1 if s == "incorrect_mask" else 2)
            rows.append({"image_id": f"{person}/{s}.jpg", "person": person, "path": f"/nonexistent/{person}/{s}.jpg",
                         "photo": s, "mask": mask, "gender": gender, "age": ages[ag], "age_group": ag,
                         "label": mask * 6 + gender * 3 + ag})
    df = pd.DataFrame(rows)
    for c in ("mask", "gender", "age", "age_group", "label"):
        df[c] = df[c].astype("Int64")
    df["error"] = ""
    return df


def make_cache(path: Path, n_people: int = 12, size=(32, 24), seed: int = 0, manifest: pd.DataFrame | None = None):
    """Write a cache of band images for ``manifest`` (default ``make_people``) with ``save_cache``."""
    manifest = make_people(n_people, seed) if manifest is None else manifest
    rng = np.random.default_rng(seed + 1)
    images = np.stack([band_image(int(r.mask), int(r.gender), int(r.age_group), size, rng) for r in manifest.itertuples()])
    return save_cache(path, images, manifest, {"params": {"size": size[0], "aspect": size[1] / size[0]}, "source": "generated"})


def astronaut_photo(variant: int = 0) -> np.ndarray:
    """A 512 x 384 (h x w) portrait photo from skimage's astronaut, varied by ``variant`` (brightness, mirror, a drawn mask)."""
    from skimage import data

    img = data.astronaut()[:, 40:424].astype(np.float32)
    img *= 0.8 + 0.1 * (variant % 4)
    if variant % 2:
        img = img[:, ::-1]
    if variant % 3 == 0:  # a light-blue "mask" over mouth and chin
        x0 = 135 if variant % 2 == 0 else 384 - 225
        img[125:175, x0:x0 + 90] = (170, 200, 230)
    return np.ascontiguousarray(img.clip(0, 255).astype(np.uint8))


def make_eval_layout(root: Path, n: int = 5, order_seed: int = 0) -> list[str]:
    """Write the eval layout (info.csv + images/) with ``n`` astronaut photos; info.csv lists them shuffled. Returns its ImageIDs."""
    from PIL import Image

    (root / "images").mkdir(parents=True, exist_ok=True)
    names = [f"{i:03d}{'abcdef'[i % 6]}.jpg" for i in range(n)]
    for i, name in enumerate(names):
        Image.fromarray(astronaut_photo(i)).save(root / "images" / name, quality=90)
    order = list(np.random.default_rng(order_seed).permutation(names))
    pd.DataFrame({"ImageID": order, "ans": 0}).to_csv(root / "info.csv", index=False)
    return order


def make_extra_cache(path: Path, n_people: int = 6, size=(40, 30), seed: int = 7, no_mask_people: int = 0,
                     copies: dict[int, np.ndarray] | None = None):
    """An external cache: band images of other people (ids ``ext...``) at another crop size.

    The first ``no_mask_people`` people have no mask label (NA, like plain faces); ``copies`` maps a row to a
    main photo that row becomes (resized to ``size``): a duplicate of the main data.
    """
    import cv2

    manifest = make_people(n_people, seed)
    manifest["person"] = "ext" + manifest["person"].astype(str)
    manifest["image_id"] = "ext" + manifest["image_id"].astype(str)
    first = manifest["person"].isin(sorted(manifest["person"].unique())[:no_mask_people])
    manifest.loc[first, ["mask", "label"]] = pd.NA
    rng = np.random.default_rng(seed + 1)
    mask = manifest["mask"].fillna(2).astype(int)  # the drawn band of a photo without a mask label: any colour
    images = np.stack([band_image(int(m), int(r.gender), int(r.age_group), size, rng) for m, r in zip(mask, manifest.itertuples())])
    for row, photo in (copies or {}).items():
        images[row] = cv2.resize(photo, (size[1], size[0]), interpolation=cv2.INTER_LINEAR)
    return save_cache(path, images, manifest, {"params": {"size": size[0], "aspect": size[1] / size[0]}, "source": "generated"})
