"""synth's contact sheet: one row per person (labels, injected error) with their 7 photos side by side."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from ..labels import PHOTO_STEMS
from .render import THUMB_H, THUMB_W


def person_sheet(people: Sequence[tuple[str, dict[str, np.ndarray]]], path: Path) -> Path:
    """A PNG: one row per person (their label text, then mask1..5, incorrect_mask, normal thumbnails)."""
    tw, th, label_w, head = THUMB_W, THUMB_H, 150, 16
    sheet = Image.new("RGB", (label_w + tw * len(PHOTO_STEMS), head + th * len(people)), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for j, stem in enumerate(PHOTO_STEMS):
        draw.text((label_w + j * tw + 4, 2), stem, fill=(0, 0, 0))
    for i, (label, thumbs) in enumerate(people):
        y = head + i * th
        for k, line in enumerate(label.split("\n")):
            draw.text((4, y + 40 + 14 * k), line, fill=(0, 0, 0))
        for j, stem in enumerate(PHOTO_STEMS):
            if stem in thumbs:
                sheet.paste(Image.fromarray(thumbs[stem]), (label_w + j * tw, y))
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)
    return path
