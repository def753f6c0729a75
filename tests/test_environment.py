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


def test_a_users_train_py_or_curate_py_does_not_shadow_the_package(tmp_path):
    """The packages live under `facecurate.`: a notebook folder holding its own train.py / curate.py / cli.py breaks
    neither the console script nor `python -m facecurate`."""
    import subprocess
    import sys
    from pathlib import Path

    for name in ("train.py", "curate.py", "cli.py"):
        (tmp_path / name).write_text("raise SystemExit('the user\\'s own module was imported')\n")
    script = Path(sys.executable).with_name("facecurate")
    for cmd in ([str(script), "--version"], [sys.executable, "-m", "facecurate", "train", "--help"]):
        r = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0 and "the user's own module" not in r.stderr + r.stdout, (cmd, r.stderr)
    assert "facecurate" in subprocess.run([str(script), "--version"], cwd=tmp_path, capture_output=True, text=True).stdout
