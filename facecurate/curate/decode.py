"""Read any photo the datasets hold into RGB uint8, and check files cheaply before decoding.

Real data brings EXIF-rotated JPEGs, grayscale, RGBA, palette and 16-bit PNGs, 0-byte and truncated
files, photos too small to hold a face and photos of hundreds of megapixels; everything readable
becomes an H x W x 3 uint8 array (huge ones downscaled while decoding to ``MAX_SIDE``), everything
else a ``BadImage`` with a reason.
"""
from __future__ import annotations

import os
import threading
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png"})
MAX_SIDE = 4096                  # longer side of a decoded photo: larger ones are decoded downscaled
MAX_PIXELS = 30_000 * 30_000     # beyond this a file is refused rather than decoded (about 2.7 GB as RGB)
DEFAULT_MIN_SIDE = 32            # a photo whose shorter side is smaller holds no usable face
_UNCHECKED = threading.Lock()
# PIL warns about (and above 2x refuses) large images as possible decompression bombs; this module
# decodes them downscaled and refuses only beyond MAX_PIXELS, so PIL's warning is noise here.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)


class BadImage(Exception):
    """A file that cannot be read as a photo; the message says why in a few words."""


def is_photo_name(name: str) -> bool:
    """True for a visible file with an image extension (any case); macOS ``._*`` and dotfiles are not photos."""
    return not name.startswith(".") and os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def open_image(path: str | Path) -> Image.Image:
    """``Image.open`` (header only) that lets through images above PIL's decompression-bomb limit, up to ``MAX_PIXELS``."""
    try:
        im = Image.open(path)
    except Image.DecompressionBombError:
        with _UNCHECKED:  # PIL reads the limit from a module global: lift it for this one open
            old, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
            try:
                im = Image.open(path)
            finally:
                Image.MAX_IMAGE_PIXELS = old
    if im.width * im.height > MAX_PIXELS:
        size = f"{im.width}x{im.height}"
        im.close()
        raise BadImage(f"too large to decode ({size} px, more than {MAX_PIXELS // 1_000_000} megapixels)")
    return im


def check_image_file(path: str | Path, min_side: int = DEFAULT_MIN_SIDE) -> str | None:
    """Cheap check without a full decode: None when the file looks like a whole, usable image, else the reason."""
    try:
        size = os.path.getsize(path)
    except OSError as e:
        return f"cannot stat ({e.strerror})"
    if size == 0:
        return "empty file (0 bytes)"
    try:
        with open_image(path) as im:
            fmt, (w, h) = im.format, im.size
            if fmt == "PNG":
                im.verify()  # walks the chunks and their CRCs: catches truncation
    except BadImage as e:
        return str(e)
    except UnidentifiedImageError:
        return "not an image"
    except (OSError, SyntaxError, ValueError) as e:
        return f"broken image ({e})"
    if min(w, h) < min_side:
        return f"too small ({w}x{h} px; photos need a shorter side of at least {min_side} px, --min-photo-size)"
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


def _plain_jpeg(path: str | Path, size: tuple[int, int]) -> np.ndarray | None:
    """A whole colour JPEG decoded by OpenCV: the same pixels as PIL's path below (both are libjpeg-turbo with EXIF
    orientation applied; tested on real and synthesised photos and all eight orientations): ``read_rgb`` takes about
    half its time per photo on this CPU (no PIL image, no copies; BENCHMARKS.md, "Crowded backdrops: speed").
    None (then PIL decodes, and says what is wrong) for a file that does not end with the JPEG end marker, or that
    OpenCV cannot decode."""
    import cv2

    buf = np.fromfile(str(path), dtype=np.uint8)
    tail = buf[-64:]
    end = len(tail)
    while end > 0 and tail[end - 1] in (0, 10, 13, 32):  # padding some writers leave after the end marker
        end -= 1
    if end < 2 or tail[end - 2] != 0xFF or tail[end - 1] != 0xD9:  # cut: libjpeg would fill it in grey and warn
        return None
    bgr = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    if bgr is None or sorted(bgr.shape[:2]) != sorted(size):
        return None
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def read_rgb(path: str | Path, max_side: int = MAX_SIDE) -> np.ndarray:
    """Decode ``path`` to an H x W x 3 uint8 RGB array, EXIF orientation applied; ``BadImage`` if it cannot.

    A photo longer than ``max_side`` is decoded downscaled (JPEG: in the DCT, at 1/2 to 1/8 the cost),
    then resized so its longer side is ``max_side``; boxes found on it are in the decoded pixels. A colour JPEG
    within ``max_side`` is decoded by OpenCV (``_plain_jpeg``: the same pixels, faster).
    """
    try:
        with open_image(path) as im:  # the header, read once for both paths
            arr = None
            if im.format == "JPEG" and im.mode == "RGB" and max(im.size) <= max_side:
                arr = _plain_jpeg(path, (im.height, im.width))
            if arr is None:
                if max(im.size) > max_side and im.format == "JPEG":
                    im.draft("RGB", (max_side, max_side))  # decodes at the smallest DCT scale still >= max_side
                im.load()
                if max(im.size) > max_side:
                    im.thumbnail((max_side, max_side), Image.Resampling.LANCZOS, reducing_gap=2.0)
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
