"""Optional background removal for crops: MediaPipe selfie segmentation (bundled) or rembg (model file in U2NET_HOME).

A crop's person mask (0..1) blends the crop with a fill (``gray``, ``blur``: a blurred copy, or ``black``) so a
classifier cannot learn from the studio wall. Given the face box, the mask is made safe around the face
first (``segment_cleanup.protect_face``: the face is never erased). Nothing is ever downloaded: rembg needs its
``.onnx`` file placed in ``U2NET_HOME`` beforehand, and says so in one line when it is absent.
"""
from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from ..errors import InputError
from ..native_logs import quiet_native_stderr
from .segment_cleanup import protect_face

BACKGROUNDS = ("none", "mediapipe", "mediapipe-general", "rembg")
#: ``mediapipe`` is the landscape model: on synthesized portraits it removed more backdrop than the general one at
#: about 60% of its time (bench/background_quality.py, BENCHMARKS.md).
SEGMENTERS = {"mediapipe": "selfie_segmentation_landscape", "mediapipe-general": "selfie_segmentation"}
FILLS = ("gray", "blur", "black")
REMBG_URL = "https://github.com/danielgatis/rembg/releases/download/v0.0.0/{name}.onnx"


def composite(image: np.ndarray, alpha: np.ndarray, fill: str = "gray") -> np.ndarray:
    """Blend ``image`` (H x W x 3 uint8) over a ``fill`` background with ``alpha`` (H x W, 1 = person)."""
    if fill not in FILLS:
        raise ValueError(f"fill must be one of {', '.join(FILLS)}, got {fill!r}")
    if fill == "gray":
        back = np.full_like(image, 128)
    elif fill == "black":
        back = np.zeros_like(image)
    else:
        back = cv2.GaussianBlur(image, (0, 0), sigmaX=max(image.shape[:2]) / 24)
    a = np.clip(np.asarray(alpha, dtype=np.float32), 0, 1)[..., None]
    return (image.astype(np.float32) * a + back.astype(np.float32) * (1 - a) + 0.5).astype(np.uint8)


class BackgroundRemover:
    """Person mask of a crop -> crop with its background replaced; a context manager (``close()``)."""

    name = "none"

    def __init__(self, fill: str = "gray") -> None:
        if fill not in FILLS:
            raise InputError(f"--fill {fill!r}: expected one of {', '.join(FILLS)}")
        self.fill = fill

    def mask(self, image: np.ndarray) -> np.ndarray:
        """Person probability per pixel (H x W float32), as the segmenter sees it."""
        raise NotImplementedError

    def alpha(self, image: np.ndarray, face=None) -> np.ndarray:
        """The mask composited with: the segmenter's, cleaned, and with the face (a box in ``image`` pixels) kept."""
        return protect_face(self.mask(image), face)

    def apply(self, image: np.ndarray, face=None) -> np.ndarray:
        """``image`` with the background replaced by the fill; ``face`` (x1, y1, x2, y2 in its pixels) is never erased."""
        return composite(image, self.alpha(image, face), self.fill)

    def close(self) -> None:
        pass

    def __enter__(self) -> "BackgroundRemover":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class MediaPipeRemover(BackgroundRemover):
    """MediaPipe selfie segmentation through the Tasks ``ImageSegmenter`` with a bundled ``.tflite``: the landscape
    model (144 x 256 input, ``mediapipe``) or the general one (256 x 256, ``mediapipe-general``)."""

    name = "mediapipe"

    def __init__(self, fill: str = "gray", model: str = "selfie_segmentation_landscape") -> None:
        super().__init__(fill)
        self.name = "mediapipe" if model.endswith("landscape") else "mediapipe-general"
        import mediapipe as mp
        from mediapipe.tasks.python import BaseOptions, vision

        from ..models import model_path

        self._mp = mp
        opts = vision.ImageSegmenterOptions(
            base_options=BaseOptions(model_asset_path=str(model_path(model))),
            running_mode=vision.RunningMode.IMAGE, output_confidence_masks=True, output_category_mask=False)
        with quiet_native_stderr():  # graph build and first inference log to fd 2; run both here, silenced
            self._seg = vision.ImageSegmenter.create_from_options(opts)
            self._seg.segment(mp.Image(image_format=mp.ImageFormat.SRGB, data=np.full((64, 64, 3), 128, np.uint8)))

    def mask(self, image: np.ndarray) -> np.ndarray:
        img = self._mp.Image(image_format=self._mp.ImageFormat.SRGB, data=np.ascontiguousarray(image[..., :3]))
        res = self._seg.segment(img)
        return np.array(res.confidence_masks[0].numpy_view(), dtype=np.float32).reshape(image.shape[:2])

    def close(self) -> None:
        if self._seg is not None:
            self._seg.close()
            self._seg = None


def rembg_home() -> Path:
    """The folder rembg reads model files from: ``$U2NET_HOME``, else ``$XDG_DATA_HOME/.u2net`` or ``~/.u2net``."""
    return Path(os.path.expanduser(os.getenv("U2NET_HOME", os.path.join(os.getenv("XDG_DATA_HOME", "~"), ".u2net"))))


def find_rembg_model(model: str = "u2netp") -> Path:
    """The ``.onnx`` file for rembg ``model`` (a name like "u2netp" or a path inside U2NET_HOME), or InputError.

    Looks for ``<U2NET_HOME>/<name>.onnx`` and ``<U2NET_HOME>/models/<name>/<name>.onnx``; the error
    says where to put the file and offers ``--background mediapipe``, which needs no download.
    """
    home = rembg_home().resolve()
    if model.endswith(".onnx") or os.sep in model:
        p = Path(model).expanduser().resolve()
        if not p.is_file():
            raise InputError(f"{p}: rembg model file not found; put the .onnx file inside U2NET_HOME ({home}) or use --background mediapipe")
        if home not in p.parents:
            raise InputError(f"{p}: rembg only loads model files inside U2NET_HOME ({home}); move it there or set U2NET_HOME to its folder")
        return p
    for p in (home / f"{model}.onnx", home / "models" / model / f"{model}.onnx"):
        if p.is_file():
            return p
    raise InputError(f"{home / (model + '.onnx')}: rembg model {model!r} not found (nothing is downloaded); fetch "
                     f"{REMBG_URL.format(name=model)} on a machine with internet into U2NET_HOME ({home}), "
                     f"or use --background mediapipe")


class RembgRemover(BackgroundRemover):
    """rembg's U^2-Net family on onnxruntime, from a model file already in U2NET_HOME (``u2net_custom`` session)."""

    name = "rembg"

    def __init__(self, fill: str = "gray", model: str = "u2netp") -> None:
        super().__init__(fill)
        path = find_rembg_model(model)
        from rembg import new_session

        self._session = new_session("u2net_custom", model_path=str(path))

    def mask(self, image: np.ndarray) -> np.ndarray:
        from PIL import Image

        out = self._session.predict(Image.fromarray(np.ascontiguousarray(image[..., :3])))[0]
        return np.asarray(out, dtype=np.float32).reshape(image.shape[:2]) / 255.0


def make_remover(method: str = "none", fill: str = "gray", rembg_model: str = "u2netp") -> BackgroundRemover | None:
    """The background remover for ``--background`` (None for "none"); InputError for bad names or a missing model."""
    if method not in BACKGROUNDS:
        raise InputError(f"--background {method!r}: expected one of {', '.join(BACKGROUNDS)}")
    if fill not in FILLS:
        raise InputError(f"--fill {fill!r}: expected one of {', '.join(FILLS)}")
    if method == "none":
        return None
    if method in SEGMENTERS:
        return MediaPipeRemover(fill, SEGMENTERS[method])
    return RembgRemover(fill, rembg_model)
