#!/usr/bin/env python3
"""The picture of a close call in docs/crop.md: the subject rule on a public-domain scene, drawn as the contact sheet does.

The scene: skimage's astronaut (public domain) as the subject, off-centre, and behind her a copy of the same photo as
a bystander, ``--scale`` times her size and blurred by ``--blur`` px, nearer the centre, in a person's ``--photos``
photos. `crop` runs on it with default settings; the photo whose choice was closest is drawn whole with the chosen face
(cyan) and the runner-up (yellow), as on the contact sheet, into ``--out``. Prints one JSON line (each photo's margin).

  .venv/bin/python bench/crop_close_call.py --out docs/img/crop-close-call.png
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


def scene(k: int, blur: float, scale: float) -> np.ndarray:
    """Photo ``k`` of the person: noisy grey wall, the bystander, then the subject in front (small head movement)."""
    from skimage.data import astronaut

    src = astronaut()[0:330, 165:290]
    by = cv2.GaussianBlur(cv2.resize(src, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA), (0, 0), blur)
    bx0, by0 = int(185 - 55 * scale), int(200 - 117 * scale)
    rng = np.random.default_rng(k)
    img = cv2.GaussianBlur(cv2.add(np.full((512, 384, 3), 120, np.uint8), rng.integers(0, 30, (512, 384, 3), dtype=np.uint8)), (0, 0), 3)
    img[by0:by0 + by.shape[0], bx0:bx0 + by.shape[1]] = by[:512 - by0, :384 - bx0]
    dx, dy = [(0, 0), (6, 4), (-5, 8), (4, -6), (-6, -3), (3, 7), (-2, 2)][k % 7]
    sx, sy = 226 + dx, 80 + dy
    img[sy:sy + 330, sx:sx + 125] = src[:512 - sy, :384 - sx]
    return img


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "img" / "crop-close-call.png")
    ap.add_argument("--blur", type=float, default=1.0, help="the bystander's blur, px")
    ap.add_argument("--scale", type=float, default=0.9, help="the bystander's size against the subject's")
    ap.add_argument("--photos", type=int, default=7)
    a = ap.parse_args()

    from _crop_data import train_layout
    from facecurate.curate.crop import CropParams, crop_dataset
    from facecurate.curate.crop.contact import close_call_tile

    stems = ["mask1", "mask2", "mask3", "mask4", "mask5", "incorrect_mask", "normal"]
    photos = [(f"{stems[k]}.jpg", scene(k, a.blur, a.scale)) for k in range(a.photos)]
    with tempfile.TemporaryDirectory() as tmp:
        root = train_layout(Path(tmp) / "data", {"000001_female_White_45": photos})
        m = crop_dataset(root, Path(tmp) / "cache", CropParams()).cache.manifest
    k = int(np.nanargmin(m["margin"].to_numpy(float)))
    r = m.iloc[k]
    tile = close_call_tile(photos[k][1], r[["face_x1", "face_y1", "face_x2", "face_y2"]].to_numpy(float),
                           r[["runner_x1", "runner_y1", "runner_x2", "runner_y2"]].to_numpy(float))
    a.out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(tile).save(a.out)
    print(json.dumps({"bench": "crop_close_call", "blur": a.blur, "scale": a.scale, "drawn": str(r["image_id"]),
                      "margins": [round(float(v), 3) for v in m["margin"]], "out": str(a.out)}))


if __name__ == "__main__":
    main()
