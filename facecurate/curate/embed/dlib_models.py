"""Where dlib and its two public-domain model files are, checked once per process; one line naming the fix when not.

The files come from the ``face_recognition_models`` package (0.3.0), found without importing it
(its ``__init__`` needs ``pkg_resources``). Only the 5-point landmark model and the ResNet are ever
loaded: the package's 68-point model restricts commercial use (see curate/models/NOTICE).
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

from ..errors import InputError
from ..models import sha256_file

DLIB_PIN, MODELS_PIN = "dlib-bin==20.0.1.post1", "face_recognition_models==0.3.0"
RESNET, LANDMARKS = "dlib_face_recognition_resnet_model_v1.dat", "shape_predictor_5_face_landmarks.dat"
#: sha256 of the files in face_recognition_models 0.3.0 (a different file is refused, not silently used).
EXPECTED = {RESNET: "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30",
            LANDMARKS: "c4b1e9804792707d3a405c2c16a80a20269e6675021f64a41d30fffafbc41888"}
_CHECKED: dict[str, Path] = {}


def import_dlib():
    """The ``dlib`` module, or InputError saying what to install."""
    try:
        import dlib
    except ImportError:
        raise InputError(f"dlib is not installed; run `pip install {DLIB_PIN}` (prebuilt, no compiler needed)") from None
    return dlib


def model_file(name: str) -> Path:
    """Path of ``name`` (RESNET or LANDMARKS) inside face_recognition_models, its sha256 checked once per process."""
    if name not in EXPECTED:
        raise InputError(f"{name}: not a model facecurate loads (only {', '.join(EXPECTED)})")
    if name in _CHECKED:
        return _CHECKED[name]
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise InputError(f"the dlib model files are not installed; run `pip install {MODELS_PIN}`")
    path = Path(list(spec.submodule_search_locations)[0]) / "models" / name
    if not path.is_file():
        raise InputError(f"{path}: missing; reinstall the model files: `pip install --force-reinstall {MODELS_PIN}`")
    digest = sha256_file(path)
    if digest != EXPECTED[name]:
        raise InputError(f"{path}: sha256 {digest[:12]}..., expected {EXPECTED[name][:12]}... (another or a damaged "
                         f"copy); run `pip install --force-reinstall {MODELS_PIN}`")
    _CHECKED[name] = path
    return path
