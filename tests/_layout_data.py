"""Write small competition-layout datasets on disk, with every quirk the real data has, for the reader tests."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

STEMS = ("mask1", "mask2", "mask3", "mask4", "mask5", "incorrect_mask", "normal")


def photo(seed: int, size=(48, 64)) -> Image.Image:
    """A small RGB test photo (W x H) whose pixels depend on ``seed``."""
    rng = np.random.default_rng(seed)
    w, h = size
    base = rng.integers(0, 256, 3)
    arr = np.clip(base + rng.integers(-40, 40, (h, w, 3)), 0, 255).astype(np.uint8)
    return Image.fromarray(arr)


def save_jpeg(img: Image.Image, path: Path, exif_orientation: int | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if exif_orientation is None:
        img.save(path, "JPEG", quality=90)
    else:
        exif = Image.Exif()
        exif[0x0112] = exif_orientation
        img.save(path, "JPEG", quality=90, exif=exif.tobytes())


def write_person(images: Path, folder: str, seed: int, ext: str = ".jpg", stems=STEMS) -> None:
    """Seven photos (or ``stems``) of one person, saved with extension ``ext`` (format follows it)."""
    for i, s in enumerate(stems):
        p = images / folder / f"{s}{ext}"
        img = photo(seed * 10 + i)
        p.parent.mkdir(parents=True, exist_ok=True)
        img.save(p, "PNG" if ext.lower() == ".png" else "JPEG")


def quirky_train_layout(root: Path) -> dict:
    """A competition train layout holding every quirk of the real data; returns what a reader must find.

    Persons (folders): 8 well-formed ones across classes, plus quirks: mixed and upper-case extensions,
    macOS ``._*`` and dot files, an id with a suffix, one id used by two folders, a missing photo, an
    extra photo, a 0-byte, a truncated and a non-image file, EXIF rotation, grayscale, RGBA, palette and
    16-bit PNG, a CSV row whose folder is missing and a folder not in train.csv.
    """
    images = root / "images"
    rows = []
    clean = [("000001", "female", "Asian", 45), ("000002", "male", "Asian", 20), ("000003", "male", "White", 62),
             ("000004", "female", "Black", 25), ("000005", "female", "Asian", 30), ("000006", "male", "Asian", 59),
             ("000007", "female", "White", 60), ("000008", "male", "Asian", 29)]
    for k, (pid, g, race, age) in enumerate(clean):
        folder = f"{pid}_{g}_{race}_{age}"
        write_person(images, folder, seed=k)
        rows.append((pid, g, race, age, folder))

    # mixed extensions in any case inside one folder, macOS junk beside them
    folder = "001498-1_female_Asian_33"  # id with a suffix
    (images / folder).mkdir(parents=True)
    for i, (s, ext) in enumerate(zip(STEMS, [".jpg", ".JPG", ".jpeg", ".png", ".PNG", ".Jpeg", ".jpg"])):
        photo(100 + i).save(images / folder / f"{s}{ext}", "PNG" if ext.lower() == ".png" else "JPEG")
    (images / folder / "._mask1.jpg").write_bytes(b"\x00\x05\x16\x07 macOS resource fork")
    (images / folder / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    rows.append(("001498-1", "female", "Asian", 33, folder))

    # one id used by two folders: two persons
    for k, (g, age) in enumerate([("male", 52), ("female", 19)]):
        folder = f"003399_{g}_Asian_{age}"
        write_person(images, folder, seed=200 + k)
        rows.append(("003399", g, "Asian", age, folder))

    # missing photo (no mask4) and extra photo (mask6)
    write_person(images, "000010_male_Asian_40", seed=300, stems=[s for s in STEMS if s != "mask4"])
    rows.append(("000010", "male", "Asian", 40, "000010_male_Asian_40"))
    write_person(images, "000011_female_Asian_41", seed=301, stems=STEMS + ("mask6",))
    rows.append(("000011", "female", "Asian", 41, "000011_female_Asian_41"))

    # broken files: 0-byte, truncated JPEG, text with a .jpg name
    bad = "000012_male_White_35"
    write_person(images, bad, seed=302)
    (images / bad / "mask1.jpg").write_bytes(b"")
    full = io.BytesIO()
    photo(999, (96, 128)).save(full, "JPEG", quality=95)
    (images / bad / "mask2.jpg").write_bytes(full.getvalue()[: len(full.getvalue()) // 2])
    (images / bad / "mask3.jpg").write_text("this is not an image\n")
    rows.append(("000012", "male", "White", 35, bad))

    # odd encodings: EXIF rotation, grayscale, RGBA, palette, 16-bit PNG
    odd = "000013_female_Black_70"
    write_person(images, odd, seed=303, stems=("mask5", "incorrect_mask", "normal"))
    save_jpeg(photo(1, (40, 80)), images / odd / "mask1.jpg", exif_orientation=6)  # stored 40x80, shown 80x40
    Image.fromarray(np.arange(64 * 48, dtype=np.uint8).reshape(64, 48)).save(images / odd / "mask2.jpg")  # L
    rgba = np.zeros((64, 48, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 128
    Image.fromarray(rgba, "RGBA").save(images / odd / "mask3.png")
    photo(3).convert("P", palette=Image.Palette.ADAPTIVE, colors=16).save(images / odd / "mask4.png")
    Image.fromarray(np.full((64, 48), 40000, np.uint16)).save(images / odd / "mask5.png")  # I;16
    (images / odd / "mask5.jpg").unlink()  # replaced by the 16-bit PNG
    rows.append(("000013", "female", "Black", 70, odd))

    # a CSV row whose folder is missing, and a folder not in the CSV
    rows.append(("000014", "male", "Asian", 22, "000014_male_Asian_22"))
    write_person(images, "000015_female_Asian_58", seed=304)

    lines = ["id,gender,race,age,path"] + [f"{a},{b},{c},{d},{e}" for a, b, c, d, e in rows]
    (root / "train.csv").write_text("\n".join(lines) + "\n")
    return {
        # every CSV row but the missing folder, plus the folder not in the CSV
        "persons": len(rows) - 1 + 1,
        # 7 per person, less: 1 missing (000010), 3 broken (000012); mask6 of 000011 is ignored
        "photos": 7 * len(rows) - 1 - 3,
        "bad_files": {f"{bad}/mask1.jpg", f"{bad}/mask2.jpg", f"{bad}/mask3.jpg"},
        "odd_folder": odd,
    }
