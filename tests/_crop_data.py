"""Small on-disk datasets for the crop tests: the real astronaut face pasted on 384x512 canvases.

``skimage.data.astronaut()`` is a public-domain photo; its face box is about x 175..265, y 60..175
and her whole hair and chin lie in x 152..298, y 15..185. ``paste_face`` returns where those boxes land on the canvas.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from skimage.data import astronaut

W, H = 384, 512
#: the astronaut region pasted (x1, y1, x2, y2 in the 512x512 original) and, inside it, the face and head
SOURCE = (100, 0, 340, 330)
FACE = (175, 60, 265, 175)
HEAD = (152, 15, 298, 185)  # the whole hair (top and sides) down to the chin


def paste_face(offset: tuple[int, int], background: int = 150) -> tuple[np.ndarray, tuple, tuple]:
    """(384x512 RGB photo with the astronaut's head and shoulders at ``offset``, face box, head box) on it."""
    canvas = np.full((H, W, 3), background, np.uint8)
    sx1, sy1, sx2, sy2 = SOURCE
    ox, oy = offset
    canvas[oy:oy + sy2 - sy1, ox:ox + sx2 - sx1] = astronaut()[sy1:sy2, sx1:sx2]

    def moved(box):
        return (box[0] - sx1 + ox, box[1] - sy1 + oy, box[2] - sx1 + ox, box[3] - sy1 + oy)

    return canvas, moved(FACE), moved(HEAD)


def blank(value: int = 128) -> np.ndarray:
    """A 384x512 photo with no face at all (a smooth gradient around ``value``)."""
    ramp = np.linspace(-20, 20, H)[:, None, None]
    return np.clip(value + ramp + np.zeros((H, W, 3)), 0, 255).astype(np.uint8)


def save(img: np.ndarray, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).save(path, "PNG" if path.suffix.lower() == ".png" else "JPEG", quality=92)
    return path


def train_layout(root: Path, persons: dict[str, list[tuple[str, np.ndarray]]]) -> Path:
    """Write a competition train layout: ``persons`` maps a folder name ``{id}_{gender}_{race}_{age}``
    to its (file name, photo) pairs. Returns ``root``."""
    rows = ["id,gender,race,age,path"]
    for folder, photos in persons.items():
        pid, gender, race, age = folder.split("_")
        rows.append(f"{pid},{gender},{race},{age},{folder}")
        for name, img in photos:
            save(img, root / "images" / folder / name)
    root.mkdir(parents=True, exist_ok=True)
    (root / "train.csv").write_text("\n".join(rows) + "\n")
    return root


OFFSETS = [(72, 60), (40, 100), (110, 40), (60, 150), (90, 80), (30, 120), (120, 130), (50, 50)]


def astronaut_person(n: int, start: int = 0, stems=("mask1", "mask2", "mask3", "mask4", "mask5", "incorrect_mask", "normal")) -> tuple[list, list]:
    """``n`` photos of the astronaut at different offsets: ([(file name, photo)], [face box per photo])."""
    photos, faces = [], []
    for k in range(n):
        img, face, _ = paste_face(OFFSETS[(start + k) % len(OFFSETS)])
        photos.append((f"{stems[k]}.jpg", img))
        faces.append(face)
    return photos, faces
