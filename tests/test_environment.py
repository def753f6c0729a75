"""The installed stack: exactly one working cv2, and the pinned versions the design relies on."""
import importlib.metadata as md


def test_exactly_one_opencv_distribution_and_it_imports():
    opencv = sorted(d.metadata["Name"].lower() for d in md.distributions() if d.metadata["Name"].lower().startswith("opencv"))
    assert opencv == ["opencv-contrib-python-headless"], opencv
    import cv2

    img = cv2.resize(__import__("numpy").zeros((8, 8, 3), "uint8"), (4, 4))
    assert img.shape == (4, 4, 3)
    assert hasattr(cv2, "ximgproc")  # contrib modules, which mediapipe's wheel expects


def test_pinned_versions():
    assert md.version("torch").startswith("2.14.1")
    assert md.version("torchvision").startswith("0.29.1")
    assert md.version("facenet-pytorch") == "2.5.3"
    assert md.version("mediapipe").split(".")[0] == "1"
    assert md.version("timm") == "1.0.31"


def test_albumentations_is_not_a_dependency():
    """The augmentation is our own batched warp (train/augment.py); nothing imports albumentations any more."""
    requires = " ".join(md.requires("facecurate") or [])
    assert "albumentations" not in requires and "albumentations" not in open(_requirements()).read()


def _requirements() -> str:
    from pathlib import Path

    return str(Path(__file__).resolve().parents[1] / "requirements.txt")
