"""Read any photo the datasets hold into RGB uint8, and check files cheaply before decoding.

Real data brings EXIF-rotated JPEGs, grayscale, RGBA, palette and 16-bit PNGs, 0-byte and truncated
files; everything readable becomes an H x W x 3 uint8 array, everything else a ``BadImage``.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png"})


class BadImage(Exception):
    """A file that cannot be read as a photo; the message says why in a few words."""


def is_photo_name(name: str) -> bool:
    """True for a visible file with an image extension (any case); macOS ``._*`` and dotfiles are not photos."""
    return not name.startswith(".") and os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def check_image_file(path: str | Path) -> str | None:
    """Cheap check without a full decode: None when the file looks like a whole image, else the reason."""
    try:
        size = os.path.getsize(path)
    except OSError as e:
        return f"cannot stat ({e.strerror})"
    if size == 0:
        return "empty file (0 bytes)"
    try:
        with Image.open(path) as im:
            fmt = im.format
            if fmt == "PNG":
                im.verify()  # walks the chunks and their CRCs: catches truncation
    except UnidentifiedImageError:
        return "not an image"
    except (OSError, SyntaxError, ValueError) as e:
        return f"broken image ({e})"
    if fmt == "JPEG":
        with open(path, "rb") as f:
            f.seek(max(0, size - 4096))
            tail = f.read().rstrip(b"\x00\r\n ")
        if not tail.endswith(b"\xff\xd9"):
            return "truncated JPEG (no end-of-image marker)"
    return None


def _to_rgb(im: Image.Image) -> np.ndarray:
    if im.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        a = np.asarray(im).astype(np.float64)
        top = 65535.0 if im.mode.startswith("I;16") or a.max() > 255 else 255.0
        a = np.clip(a / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.repeat(a[..., None], 3, axis=2)
    if im.mode == "P" and "transparency" in im.info:
        im = im.convert("RGBA")
    if im.mode != "RGB":
        im = im.convert("RGB")  # L, LA, RGBA, CMYK, 1, P: alpha is dropped
    return np.asarray(im, dtype=np.uint8)


def read_rgb(path: str | Path) -> np.ndarray:
    """Decode ``path`` to an H x W x 3 uint8 RGB array, EXIF orientation applied; ``BadImage`` if it cannot."""
    try:
        with Image.open(path) as im:
            im.load()
            im = ImageOps.exif_transpose(im)
            arr = _to_rgb(im)
    except FileNotFoundError as e:
        raise BadImage("file not found") from e
    except UnidentifiedImageError as e:
        raise BadImage("not an image") from e
    except (OSError, SyntaxError, ValueError) as e:
        raise BadImage(f"cannot decode ({e})") from e
    if arr.ndim != 3 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise BadImage(f"unexpected image shape {arr.shape}")
    return np.ascontiguousarray(arr)
