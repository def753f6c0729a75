"""Which layout a data path is read as, in words, and an eval layout's images/ whose info.csv is missing: what
predict needs to say why its submission has the format it has."""
from __future__ import annotations

import os
from pathlib import Path

from .readers import detect_layout, is_photo_name


def layout_reason(path: str | Path) -> str:
    """Which layout ``path`` is read as and why, in words ("eval: info.csv lists the photos in images/"), for the
    summaries of commands whose output depends on it (predict's submission format)."""
    p = Path(path)
    layout = detect_layout(p)
    return {"train": "train: train.csv lists the people in images/",
            "eval": "eval: info.csv lists the photos in images/",
            "csv": f"csv: {p.name} lists the photos' paths",
            "folder": ("folder: no info.csv or train.csv here, so every photo under it is read"
                       + (" (an images/ folder without info.csv)" if competition_images(p) is not None else "")),
            }[layout]


def competition_images(path: str | Path) -> Path | None:
    """The images/ folder of an eval layout whose info.csv is missing (``path`` is that folder or holds it, with photos
    directly in it and no info.csv or train.csv), else None: its photos are the competition's, named as info.csv would."""
    p = Path(path)
    images = p if p.name == "images" else p / "images"
    if not images.is_dir() or (images.parent / "info.csv").is_file() or (images.parent / "train.csv").is_file():
        return None
    return images if any(is_photo_name(e.name) for e in os.scandir(images) if e.is_file()) else None
